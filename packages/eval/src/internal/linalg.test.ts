import { describe, expect, it } from 'vitest'
import { fromEigen, matmul, sqrtmPsd, symmetricEigen } from './linalg.js'

function lcg(seed: number): () => number {
  let s = seed
  return () => {
    s = (s * 16807) % 2147483647
    return s / 2147483647 - 0.5
  }
}

/** A random symmetric matrix (indefinite) and a random PSD one of rank `rank`. */
function randomSymmetric(n: number, seed: number): Float64Array {
  const r = lcg(seed)
  const a = new Float64Array(n * n)
  for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) a[i * n + j] = a[j * n + i] = r() * 4
  return a
}
function randomPsd(n: number, rank: number, seed: number): Float64Array {
  const r = lcg(seed)
  const x = Array.from({ length: n * rank }, r)
  const a = new Float64Array(n * n)
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < rank; k++) a[i * n + j] = (a[i * n + j] as number) + (x[i * rank + k] as number) * (x[j * rank + k] as number)
  return a
}
const maxAbsDiff = (a: Float64Array, b: Float64Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - (b[i] as number))), 0)

describe('symmetricEigen', () => {
  it('finds the eigenvalues of a 2x2 matrix in ascending order', () => {
    const { values, vectors } = symmetricEigen(new Float64Array([2, 1, 1, 2]), 2)
    expect(values[0]).toBeCloseTo(1, 14)
    expect(values[1]).toBeCloseTo(3, 14)
    // Column 1 is +-(1, 1)/sqrt 2.
    expect(Math.abs(vectors[1] as number)).toBeCloseTo(Math.SQRT1_2, 14)
    expect(Math.abs(vectors[3] as number)).toBeCloseTo(Math.SQRT1_2, 14)
  })

  it.each([
    [5, 1],
    [40, 2],
    [120, 3],
  ])('reconstructs a random symmetric %i x %i matrix with orthonormal vectors', (n, seed) => {
    const a = randomSymmetric(n, seed)
    const e = symmetricEigen(a, n)
    expect(maxAbsDiff(fromEigen(e, (v) => v), a)).toBeLessThan(1e-12 * n)
    // V^T V = I
    const vt = new Float64Array(n * n)
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) vt[i * n + j] = e.vectors[j * n + i] as number
    const eye = new Float64Array(n * n)
    for (let i = 0; i < n; i++) eye[i * n + i] = 1
    expect(maxAbsDiff(matmul(vt, e.vectors, n), eye)).toBeLessThan(1e-13 * n)
    for (let k = 1; k < n; k++) expect(e.values[k] as number).toBeGreaterThanOrEqual(e.values[k - 1] as number)
  })

  it('keeps the trace and handles a rank-deficient PSD matrix', () => {
    const n = 30
    const a = randomPsd(n, 5, 7)
    const e = symmetricEigen(a, n)
    let trace = 0
    for (let i = 0; i < n; i++) trace += a[i * n + i] as number
    expect(e.values.reduce((s, v) => s + v, 0)).toBeCloseTo(trace, 12)
    // 25 zero eigenvalues up to round-off.
    for (let k = 0; k < 25; k++) expect(Math.abs(e.values[k] as number)).toBeLessThan(1e-13)
    expect(e.values[25] as number).toBeGreaterThan(1e-3)
  })

  it('rejects a non-square or non-finite input', () => {
    expect(() => symmetricEigen(new Float64Array(5), 2)).toThrow(/n\*n/)
    expect(() => symmetricEigen(new Float64Array([1, Number.NaN, Number.NaN, 1]), 2)).toThrow(/finite/)
  })
})

describe('sqrtmPsd', () => {
  it('is the principal square root: R R = A, R symmetric PSD', () => {
    const n = 25
    const a = randomPsd(n, 25, 3)
    const r = sqrtmPsd(a, n)
    expect(maxAbsDiff(matmul(r, r, n), a)).toBeLessThan(1e-12)
    expect(symmetricEigen(r, n).values[0] as number).toBeGreaterThan(-1e-12)
    expect(Array.from(sqrtmPsd(new Float64Array([4, 0, 0, 9]), 2))).toEqual([2, 0, 0, 3])
  })
})
