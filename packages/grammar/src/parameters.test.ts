import { describe, expect, it } from 'vitest'
import { formatParameters, parseParameters } from './parameters.js'

describe('PNG parameters text', () => {
  it('writes the A1111 layout and reads it back, quoting values with separators', () => {
    const text = formatParameters({
      label: 'a photo of a sneaker',
      negativePrompt: 'dark',
      fields: [
        ['Steps', 30],
        ['Sampler', 'euler'],
        ['Guidance', 'adaptive(threshold=0.99):apg(scale=5,eta=0)'],
        ['Seed', 42],
      ],
    })
    expect(text).toBe('a photo of a sneaker\nNegative prompt: dark\nSteps: 30, Sampler: euler, Guidance: "adaptive(threshold=0.99):apg(scale=5,eta=0)", Seed: 42')
    expect(parseParameters(text)).toEqual({
      label: 'a photo of a sneaker',
      negativePrompt: 'dark',
      fields: { Steps: '30', Sampler: 'euler', Guidance: 'adaptive(threshold=0.99):apg(scale=5,eta=0)', Seed: '42' },
    })
  })
})
