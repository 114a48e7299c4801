import ndarray from 'ndarray'
import { describe, expect, it } from 'vitest'
import { GuidekitError } from './errors.js'
import { float16BitsToFloat32, float16ToFloat32, float32ToFloat16, float32ToFloat16Bits } from './float16.js'
import { Tensor, concatBatch, gatherBatch } from './tensor.js'

describe('Tensor', () => {
  it('slices the batch without copying', () => {
    const t = Tensor.from([0, 1, 2, 3, 4, 5], [3, 2])
    const s = t.batchSlice(1, 3)
    expect(s.shape).toEqual([2, 2])
    expect([...s.data]).toEqual([2, 3, 4, 5])
    s.data[0] = 42
    expect(t.data[2]).toBe(42)
    expect(s.data.buffer).toBe(t.data.buffer)
  })

  it('rejects data that does not match the shape, with a stable code', () => {
    const make = () => new Tensor(new Float32Array(5), [2, 3])
    expect(make).toThrowError(/needs 6/)
    try {
      make()
    } catch (e) {
      expect(GuidekitError.isInstance(e) && e.code).toBe('SHAPE_MISMATCH')
    }
  })

  it('round-trips through ndarray, zero-copy when contiguous, copying transposed views', () => {
    const t = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3])
    const nd = t.toNdarray()
    expect(nd.get(1, 2)).toBe(6)
    expect(Tensor.fromNdarray(nd).data.buffer).toBe(t.data.buffer)
    const transposed = ndarray(new Float32Array([1, 2, 3, 4, 5, 6]), [2, 3]).transpose(1, 0)
    const back = Tensor.fromNdarray(transposed)
    expect(back.shape).toEqual([3, 2])
    expect([...back.data]).toEqual([1, 4, 2, 5, 3, 6])
    const fromF64 = Tensor.fromNdarray(ndarray(new Float64Array([0.5, 1.5]), [2, 1]))
    expect([...fromF64.data]).toEqual([0.5, 1.5])
  })

  it('concatenates and gathers batch items', () => {
    const a = Tensor.from([1, 2], [1, 2])
    const b = Tensor.from([3, 4, 5, 6], [2, 2])
    const c = concatBatch([a, b])
    expect(c.shape).toEqual([3, 2])
    expect([...gatherBatch(c, [2, 0]).data]).toEqual([5, 6, 1, 2])
    expect(() => concatBatch([a, Tensor.zeros([1, 3])])).toThrowError(/non-batch dimensions differ/)
  })
})

describe('float16', () => {
  it('converts known values bit-exactly', () => {
    const cases: [number, number][] = [
      [0, 0x0000], [-0, 0x8000], [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [0.333251953125, 0x3555],
      [2 ** -24, 0x0001], [2 ** -14, 0x0400], [Infinity, 0x7c00], [-Infinity, 0xfc00], [1e6, 0x7c00],
    ]
    for (const [value, bits] of cases) {
      expect(float32ToFloat16Bits(value)).toBe(bits)
      expect(Object.is(float16BitsToFloat32(bits), value) || value === 1e6).toBe(true)
    }
    expect(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(Number.NaN)))).toBe(true)
  })

  it('rounds to nearest even and round-trips every half value', () => {
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00) // tie -> even
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02) // tie -> even (up)
    const all = new Uint16Array(65536).map((_, i) => i)
    const back = float32ToFloat16(float16ToFloat32(all))
    for (let i = 0; i < 65536; i++) {
      const isNan = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0
      if (!isNan) expect(back[i]).toBe(i)
    }
  })
})
