import { describe, expect, it } from 'vitest'
import { DEFAULT_STATE, formatState, parseState, splitGuidance } from './state.js'

describe('URL state', () => {
  it('round-trips every field through the query string', () => {
    const state = { model: 'fashion-unet', className: 'Ankle boot', seed: 42, columns: 3, steps: 12, sampler: 'ddim:eta=0', guidance: ['cfg:scale=3', 'adaptive(threshold=0.99):apg(scale=5,eta=0)'], backend: 'auto' } as const
    const search = formatState(state)
    expect(search).toContain('class=Ankle+boot')
    expect(parseState(search)).toEqual({ state, problems: [] })
  })

  it('fills missing values with the CLI defaults', () => {
    expect(parseState('')).toEqual({ state: DEFAULT_STATE, problems: [] })
    expect(parseState('?steps=8').state).toEqual({ ...DEFAULT_STATE, steps: 8 })
  })

  it('reports bad values and keeps the defaults for them', () => {
    const { state, problems } = parseState('?model=sd15&seed=-1&columns=99&steps=1.5&backend=cuda')
    expect(state).toEqual(DEFAULT_STATE)
    expect(problems).toEqual([
      'model must be one of fashion-dit, fashion-unet, got "sd15".',
      'seed must be an integer from 0 to 4294967295, got "-1"; using 0.',
      'columns must be an integer from 1 to 8, got "99"; using 4.',
      'steps must be an integer from 1 to 200, got "1.5"; using 30.',
      'backend must be one of auto, wasm, got "cuda".',
    ])
  })

  it('splits guidance on ";" and new lines, as the CLI splits --guidance', () => {
    expect(splitGuidance('none; cfg:scale=3\n\n apg:scale=5 ;')).toEqual(['none', 'cfg:scale=3', 'apg:scale=5'])
  })
})
