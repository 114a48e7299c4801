import sharp from 'sharp'
import { describe, expect, it } from 'vitest'
import { Canvas, fitText, wrapText } from './canvas.js'
import { encodePng } from './png.js'

describe('PNG output', () => {
  it('embeds Latin-1 text as tEXt and other text as iTXt, readable by libvips', async () => {
    const image = { data: Uint8Array.from({ length: 4 * 3 }, (_, i) => i * 20), width: 2, height: 2, channels: 3 as const }
    const png = await encodePng(image, { parameters: 'Sneaker\nSteps: 30, Seed: 7', guidekit: '{"prompt":"café ☕"}' }, 3)
    expect(png.includes(Buffer.from('tEXtparameters\0'))).toBe(true)
    expect(png.includes(Buffer.from('iTXtguidekit\0'))).toBe(true)
    const meta = await sharp(png).metadata()
    expect(meta.width).toBe(6)
    expect(meta.comments).toEqual([
      { keyword: 'parameters', text: 'Sneaker\nSteps: 30, Seed: 7' },
      { keyword: 'guidekit', text: '{"prompt":"café ☕"}' },
    ])
    // nearest-neighbour upscale keeps the pixels
    const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true })
    expect([...data.subarray(0, 3)]).toEqual([0, 20, 40])
    expect([...data.subarray(3 * 3, 3 * 3 + 3)]).toEqual([60, 80, 100])
  })
})

describe('canvas labels', () => {
  it('draws text with the embedded font (no system fonts involved)', () => {
    const c = new Canvas(40, 20)
    c.text('Ag', 2, 2)
    const dark = c.data.filter((v) => v < 128).length
    expect(dark).toBeGreaterThan(10)
    const blank = new Canvas(40, 20)
    blank.text('  ', 2, 2)
    expect(blank.data.every((v) => v === 255)).toBe(true)
  })

  it('pastes gray images as RGB, upscaled', () => {
    const c = new Canvas(4, 4, [0, 0, 0])
    c.paste({ data: Uint8Array.of(10, 20, 30, 40), width: 2, height: 2, channels: 1 }, 0, 0, 2)
    expect([...c.data.subarray(0, 12)]).toEqual([10, 10, 10, 10, 10, 10, 20, 20, 20, 20, 20, 20])
  })

  it('fits and wraps long labels', () => {
    expect(fitText('adaptive(threshold=0.99):apg(scale=8)', 20)).toBe('adaptive(...scale=8)')
    expect(wrapText('adaptive(threshold=0.99):apg(scale=8,eta=0)', 26, 3)).toEqual(['adaptive(threshold=0.99):', 'apg(scale=8,eta=0)'])
  })
})
