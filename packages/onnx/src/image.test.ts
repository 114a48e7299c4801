import { Tensor } from '@guidekit/core'
import { guidekitErrorOf } from '@guidekit/core/testing'
import { describe, expect, it } from 'vitest'
import { toRawImages } from './image.js'

const codeOf = (f: () => unknown) => guidekitErrorOf(f)?.code

describe('toRawImages', () => {
  const image = new Tensor(Float32Array.from([-1, 0, 1, 0.5, -0.5, 2]), [1, 1, 2, 3])

  it('maps the range to 0..255 (rounded, clamped) and types channels for sharp', () => {
    const [raw] = toRawImages(image)
    expect([...raw!.data]).toEqual([0, 128, 255, 191, 64, 255])
    const channels: 1 | 2 | 3 | 4 = raw!.channels
    expect(channels).toBe(1)
    const [unit] = toRawImages(image, { range: [0, 1] })
    expect([...unit!.data]).toEqual([0, 0, 255, 128, 0, 255])
  })

  it('rejects NaN and infinity instead of drawing them black or white', () => {
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      const t = new Tensor(Float32Array.from([0, 0, bad, 0]), [1, 1, 2, 2])
      expect(codeOf(() => toRawImages(t))).toBe('NON_FINITE')
      expect(() => toRawImages(t)).toThrowError(new RegExp(`hold ${String(bad)} at element 2`))
    }
  })

  it('rejects a range that is not two finite numbers with high > low', () => {
    for (const range of [['abc', 1], [1, 1], [1, -1], [0, Number.NaN], [0], [0, 1, 2], 'abc']) {
      expect(codeOf(() => toRawImages(image, { range: range as unknown as [number, number] }))).toBe('INVALID_ARGUMENT')
    }
    expect(() => toRawImages(image, { range: ['abc', 1] as unknown as [number, number] })).toThrowError(/got \["abc",1\]/)
  })

  it('rejects tensors that are not images', () => {
    expect(codeOf(() => toRawImages(new Tensor(new Float32Array(4), [2, 2])))).toBe('INVALID_ARGUMENT')
    expect(() => toRawImages(Tensor.zeros([1, 5, 2, 2]))).toThrowError(/1 to 4 channels .* got 5/)
  })
})
