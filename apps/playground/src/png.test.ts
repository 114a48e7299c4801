import { decode } from 'fast-png'
import { describe, expect, it } from 'vitest'
import { encodePng } from './png.js'

describe('encodePng', () => {
  it('round-trips grayscale pixels and text chunks', () => {
    const data = Uint8Array.from({ length: 28 * 28 }, (_, i) => (i * 37) % 256)
    const png = encodePng({ data, width: 28, height: 28, channels: 1 }, { parameters: 'Sneaker\nSteps: 30, Guidance: "cfg:scale=3"', guidekit: '{"seed":0}' })
    expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
    const back = decode(png)
    expect([back.width, back.height, back.channels, back.depth]).toEqual([28, 28, 1, 8])
    expect(back.data).toEqual(data)
    expect(back.text).toEqual({ parameters: 'Sneaker\nSteps: 30, Guidance: "cfg:scale=3"', guidekit: '{"seed":0}' })
  })

  it('refuses text that tEXt cannot hold', () => {
    expect(() => encodePng({ data: new Uint8Array(4), width: 2, height: 2, channels: 1 }, { parameters: 'Schuh \u{1F45F}' })).toThrow(/outside Latin-1/)
  })
})
