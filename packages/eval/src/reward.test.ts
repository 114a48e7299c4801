import pako from 'pako'
import { Tensor } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import golden from './__fixtures__/golden.json' with { type: 'json' }
import { saturationStatistics, toUint8, toUint8Pixel } from './images.js'
import { compressibility } from './reward.js'

const fromBase64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'))
const images = (() => {
  const bytes = fromBase64(golden.reward.imagesFloat32Base64)
  return new Tensor(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), golden.reward.shape)
})()

describe('toUint8', () => {
  it('matches torch (clamp, affine map in float32, round half to even) byte for byte', () => {
    expect(Array.from(toUint8(images))).toEqual(Array.from(fromBase64(golden.reward.uint8Base64)))
  })

  it('rounds halves to even and clamps', () => {
    expect(toUint8Pixel(0)).toBe(128) // 127.5 -> 128
    expect(toUint8Pixel(-1 + 0.5 / 127.5)).toBe(0) // 0.5 -> 0
    expect(toUint8Pixel(5)).toBe(255)
    expect(toUint8Pixel(-5)).toBe(0)
  })
})

describe('compressibility', () => {
  it('equals the RL training reward (tooling/train/common.py) on noise, blobs and half-step images', () => {
    expect(Array.from(compressibility(images))).toEqual(golden.reward.compressibility)
  })

  it('is minus the size of the training script\'s PNG: 57 bytes of chunks around the level-9 zlib stream of filtered rows', () => {
    const pixels = Uint8Array.from({ length: 6 }, (_, i) => i * 40)
    const tensor = new Tensor(Float32Array.from(pixels, (v) => v / 127.5 - 1), [1, 1, 2, 3])
    const rows = Uint8Array.from([0, ...toUint8(tensor).subarray(0, 3), 0, ...toUint8(tensor).subarray(3, 6)])
    expect(compressibility(tensor)[0]).toBe(-(57 + pako.deflate(rows, { level: 9 }).length))
  })


  it('prefers flat images to noisy ones', () => {
    const flat = Tensor.full([1, 1, 28, 28], -1)
    const [noisy] = compressibility(images.batchSlice(0, 1))
    expect(compressibility(flat)[0] as number).toBeGreaterThan(noisy as number)
  })
})

describe('saturationStatistics', () => {
  it('measures intensity, contrast and clipping', () => {
    // Image 0: half at -1, half at +1 (contrast 0.5); image 1: all 0.5 with two values at 3 and -2.
    const a = new Float32Array(8).map((_, i) => (i < 4 ? -1 : 1))
    const b = Float32Array.from([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 3, -2])
    const s = saturationStatistics(new Tensor(Float32Array.from([...a, ...b]), [2, 1, 2, 4]))
    expect(s.count).toBe(2)
    expect(s.clippedFraction).toBeCloseTo(2 / 16, 12)
    expect(s.clippedHighFraction).toBeCloseTo(1 / 16, 12)
    expect(s.meanOvershoot).toBeCloseTo((2 + 1) / 2, 12)
    expect(s.whiteFraction).toBeCloseTo(5 / 16, 12)
    const meanB = (6 * 0.75 + 1 + 0) / 8
    expect(s.meanIntensity).toBeCloseTo((0.5 * 8 + meanB * 8) / 16, 12)
    const stdB = Math.sqrt((6 * 0.75 ** 2 + 1) / 8 - meanB ** 2)
    expect(s.contrast).toBeCloseTo((0.5 + stdB) / 2, 12)
  })
})
