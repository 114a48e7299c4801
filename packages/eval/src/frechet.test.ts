import { describe, expect, it } from 'vitest'
import golden from './__fixtures__/golden.json' with { type: 'json' }
import { frechetDistance } from './frechet.js'
import { matmul } from './internal/linalg.js'
import { featureStatistics } from './statistics.js'
import type { GaussianStatistics } from './statistics.js'

function rotation(n: number, seed: number): Float64Array {
  // Gram-Schmidt on a seeded random matrix: an orthogonal Q.
  let s = seed
  const r = () => ((s = (s * 16807) % 2147483647), s / 2147483647 - 0.5)
  const q = new Float64Array(n * n)
  for (let j = 0; j < n; j++) {
    const col = Array.from({ length: n }, r)
    for (let k = 0; k < j; k++) {
      let d = 0
      for (let i = 0; i < n; i++) d += (col[i] as number) * (q[i * n + k] as number)
      for (let i = 0; i < n; i++) col[i] = (col[i] as number) - d * (q[i * n + k] as number)
    }
    const norm = Math.hypot(...col)
    for (let i = 0; i < n; i++) q[i * n + j] = (col[i] as number) / norm
  }
  return q
}
const gaussian = (mean: number[], covariance: Float64Array): GaussianStatistics => ({ dim: mean.length, count: 1000, mean: Float64Array.from(mean), covariance })

describe('frechetDistance', () => {
  it('is 0 for a set against itself', () => {
    const n = 64
    const data = new Float32Array(300 * n).map((_, i) => Math.sin(i * 12.9898) * 43758.5453 % 1)
    const stats = featureStatistics({ count: 300, dim: n, data })
    expect(Math.abs(frechetDistance(stats, stats))).toBeLessThan(1e-10)
  })

  it('matches the closed form for two Gaussians with commuting covariances', () => {
    // S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T: FD = |mu1 - mu2|^2 + sum (sqrt a - sqrt b)^2.
    const n = 12
    const q = rotation(n, 5)
    const a = Array.from({ length: n }, (_, i) => 0.1 + i * 0.7)
    const b = Array.from({ length: n }, (_, i) => 3 / (1 + i))
    const build = (d: number[]) => {
      const m = new Float64Array(n * n)
      for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) m[i * n + j] = (m[i * n + j] as number) + (q[i * n + k] as number) * (d[k] as number) * (q[j * n + k] as number)
      return m
    }
    const mu1 = Array.from({ length: n }, (_, i) => i / 10)
    const mu2 = Array.from({ length: n }, (_, i) => 1 - i / 7)
    const expected = mu1.reduce((s, v, i) => s + (v - (mu2[i] as number)) ** 2, 0) + a.reduce((s, v, i) => s + (Math.sqrt(v) - Math.sqrt(b[i] as number)) ** 2, 0)
    expect(frechetDistance(gaussian(mu1, build(a)), gaussian(mu2, build(b)))).toBeCloseTo(expected, 10)
  })

  it('matches the closed form for non-commuting 2x2 covariances', () => {
    // tr((S1^1/2 S2 S1^1/2)^1/2) for 2x2: sqrt(tr(S1 S2) + 2 sqrt(det(S1 S2))).
    const s1 = new Float64Array([2, 0.5, 0.5, 1])
    const s2 = new Float64Array([1, -0.3, -0.3, 3])
    const p = matmul(s1, s2, 2)
    const trSqrt = Math.sqrt((p[0] as number) + (p[3] as number) + 2 * Math.sqrt((p[0] as number) * (p[3] as number) - (p[1] as number) * (p[2] as number)))
    const expected = 1 + 4 + (3 + 4 - 2 * trSqrt)
    expect(frechetDistance(gaussian([0, 0], s1), gaussian([1, 2], s2))).toBeCloseTo(expected, 12)
  })

  it('matches the training code (tooling/train/common.py) on random features', () => {
    const { a, b, meanA, covarianceA, distance } = golden.frechet
    const flat = (rows: number[][]) => ({ count: rows.length, dim: (rows[0] as number[]).length, data: Float64Array.from(rows.flat()) })
    const sa = featureStatistics(flat(a))
    sa.mean.forEach((v, i) => expect(v).toBeCloseTo(meanA[i] as number, 5))
    sa.covariance.forEach((v, i) => expect(v).toBeCloseTo(covarianceA[i] as number, 4))
    // The golden rows were printed from float32 torch tensors: agreement to ~1e-5 relative.
    expect(frechetDistance(sa, featureStatistics(flat(b)))).toBeCloseTo(distance, 3)
  })

  it('rejects statistics of different dimensions', () => {
    expect(() => frechetDistance(gaussian([0], new Float64Array([1])), gaussian([0, 0], new Float64Array(4)))).toThrow(/dimensions/)
  })
})

describe('featureStatistics', () => {
  it('is the unbiased mean and covariance', () => {
    const s = featureStatistics({ count: 3, dim: 2, data: new Float32Array([1, 2, 3, 4, 5, 9]) })
    expect(Array.from(s.mean)).toEqual([3, 5])
    expect(Array.from(s.covariance)).toEqual([4, 7, 7, 13])
    expect(() => featureStatistics({ count: 1, dim: 2, data: new Float32Array(2) })).toThrow(/at least 2/)
  })
})
