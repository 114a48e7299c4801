import { describe, expect, it } from 'vitest'
import { combine, cosineSimilarity, cosineSimilarityFlat, dot, findNonFinite, norm, std } from './kernels.js'
import { randn } from './noise.js'
import { guidekitErrorOf } from './testing/index.js'
import { Tensor } from './tensor.js'

describe('kernels', () => {
  const a = randn([3, 2, 5, 5], 1)
  const b = randn([3, 2, 5, 5], 2)
  const c = randn([3, 2, 5, 5], 3)
  const n = a.sampleSize

  it('combine matches the naive formula for 1-4 terms, scalar and per-sample coefficients', () => {
    const d = randn([3, 2, 5, 5], 4)
    const per = [0.5, -1, 2]
    const out = combine([[2, a], [per, b], [-0.25, c], [1, d]])
    for (let i = 0; i < a.size; i++) {
      const s = Math.floor(i / n)
      const expected = 2 * (a.data[i] as number) + (per[s] as number) * (b.data[i] as number) - 0.25 * (c.data[i] as number) + (d.data[i] as number)
      expect(out.data[i]).toBeCloseTo(expected, 5)
    }
    expect([...combine([[3, a]]).data].slice(0, 3)).toEqual([...a.data].slice(0, 3).map((v) => Math.fround(3 * v)))
    const three = combine([[1, a], [1, b], [1, c]])
    expect(three.data[7]).toBeCloseTo((a.data[7] as number) + (b.data[7] as number) + (c.data[7] as number), 5)
  })

  it('combine may write in place into one of its inputs', () => {
    const x = a.clone()
    combine([[1, x], [1, b]], x)
    expect(x.data[5]).toBeCloseTo((a.data[5] as number) + (b.data[5] as number), 6)
  })

  it('per-sample reductions run over all non-batch dimensions', () => {
    const d = dot(a, b)
    const nm = norm(a)
    const sd = std(a)
    const cs = cosineSimilarity(a, b)
    for (let s = 0; s < 3; s++) {
      let ab = 0
      let aa = 0
      let bb = 0
      let sum = 0
      for (let i = s * n; i < (s + 1) * n; i++) {
        ab += (a.data[i] as number) * (b.data[i] as number)
        aa += (a.data[i] as number) ** 2
        bb += (b.data[i] as number) ** 2
        sum += a.data[i] as number
      }
      const mean = sum / n
      let sq = 0
      for (let i = s * n; i < (s + 1) * n; i++) sq += ((a.data[i] as number) - mean) ** 2
      expect(d[s]).toBeCloseTo(ab, 10)
      expect(nm[s]).toBeCloseTo(Math.sqrt(aa), 10)
      expect(sd[s]).toBeCloseTo(Math.sqrt(sq / (n - 1)), 10) // unbiased, as torch.std
      expect(cs[s]).toBeCloseTo(ab / Math.sqrt(aa * bb), 10)
    }
    expect(cosineSimilarity(a, a)[0]).toBeCloseTo(1, 12)
    expect(cosineSimilarity(a, Tensor.zeros(a.shape))[1]).toBe(0)
    expect(cosineSimilarityFlat(a, a)).toBeCloseTo(1, 12)
  })

  it('finds NaN and infinity', () => {
    const t = Tensor.zeros([2, 3])
    expect(findNonFinite(t)).toBe(-1)
    t.data[4] = Number.NaN
    expect(findNonFinite(t)).toBe(4)
    t.data[1] = -Infinity
    expect(findNonFinite(t)).toBe(1)
    // every position of the four-wide loop and of its tail, each non-finite kind, with large finite values
    for (const bad of [Number.NaN, Infinity, -Infinity]) {
      for (let at = 0; at < 11; at++) {
        const u = Tensor.full([1, 11], 3e38)
        u.data[at] = bad
        expect(findNonFinite(u)).toBe(at)
      }
    }
    expect(findNonFinite(Tensor.full([1, 11], -3e38))).toBe(-1)
  })

  it('rejects shape mismatches', () => {
    expect(() => combine([[1, a], [1, Tensor.zeros([3, 50])]])).toThrowError(/shapes differ/)
    expect(() => dot(a, Tensor.zeros([1, 2, 5, 5]))).toThrowError(/shapes differ/)
  })

  it('rejects a per-sample coefficient list that does not match the batch, and non-finite coefficients', () => {
    const codeOf = (f: () => unknown) => guidekitErrorOf(f)?.code
    expect(a.batch).toBe(3)
    expect(() => combine([[[1, 2], a]])).toThrowError(/coefficient 0 lists 2 values for a batch of 3/)
    expect(() => combine([[1, a], [[0.5, 0.5, 0.5, 0.5], b]])).toThrowError(/coefficient 1 lists 4 values/)
    expect(() => combine([[Number.NaN, a]])).toThrowError(/coefficient 0 is NaN/)
    expect(() => combine([[1, a], [[1, Number.NaN, 1], b]])).toThrowError(/coefficient 1 is NaN for batch item 1/)
    expect(() => combine([[Infinity, a]])).toThrowError(/coefficient 0 is Infinity/)
    expect(codeOf(() => combine([[[1, 2], a]]))).toBe('INVALID_ARGUMENT')
    expect(codeOf(() => combine([[Number.NaN, a]]))).toBe('INVALID_ARGUMENT')
    expect(codeOf(() => combine([[[2, 3, 4], a]]))).toBeUndefined()
  })
})
