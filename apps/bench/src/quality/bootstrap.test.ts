import { RandomStream } from '@guidekit/core'
import { featureStatistics, frechetDistance, type GaussianStatistics } from '@guidekit/eval'
import { describe, expect, it } from 'vitest'
import { biasCorrectedInterval, differenceReplicates, frechetReplicates, meanReplicates, percentileInterval, prepareReference, resampleCounts } from './bootstrap.js'
import { symmetricEigenvalues } from './eigenvalues.js'

const normals = (seed: number, count: number) => {
  const s = new RandomStream(seed)
  return Float64Array.from({ length: count }, () => s.nextNormal())
}
/** Standard normal reference statistics in `dim` dimensions (as if from infinitely many samples). */
const standard = (dim: number): GaussianStatistics => {
  const covariance = new Float64Array(dim * dim)
  for (let i = 0; i < dim; i++) covariance[i * dim + i] = 1
  return { dim, count: 1e9, mean: new Float64Array(dim), covariance }
}
const width = (i: readonly [number, number]) => i[1] - i[0]

describe('symmetricEigenvalues', () => {
  it('recovers the eigenvalues of Q diag(lambda) Q^T, including repeated zeros (a rank-deficient covariance)', () => {
    const n = 40
    const lambda = Float64Array.from({ length: n }, (_, i) => (i < 15 ? 0 : (i - 14) * 0.7))
    // Q = I - 2 u u^T / |u|^2 (a Householder reflection), orthogonal.
    const u = normals(3, n)
    const uu = u.reduce((s, v) => s + v * v, 0)
    const q = (i: number, j: number) => (i === j ? 1 : 0) - (2 * (u[i] as number) * (u[j] as number)) / uu
    const a = new Float64Array(n * n)
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) for (let k = 0; k < n; k++) a[i * n + j] = (a[i * n + j] as number) + q(i, k) * (lambda[k] as number) * q(j, k)
    const values = symmetricEigenvalues(a, n)
    values.forEach((v, i) => expect(v).toBeCloseTo(lambda[i] as number, 10))
  })

  it('rejects a non-finite matrix', () => {
    expect(() => symmetricEigenvalues(new Float64Array([1, Number.NaN, Number.NaN, 1]), 2)).toThrow(/finite/)
  })
})

describe('resampleCounts', () => {
  it('is seeded and deterministic, sums to n per resample, and a shorter run is a prefix of a longer one', () => {
    const a = resampleCounts(50, { resamples: 20 })
    expect(resampleCounts(50, { resamples: 20 })).toEqual(a)
    expect(resampleCounts(50, { resamples: 20, seed: 1 })).not.toEqual(a)
    expect(resampleCounts(50, { resamples: 10 })).toEqual(a.subarray(0, 500))
    for (let r = 0; r < 20; r++) expect(a.subarray(r * 50, (r + 1) * 50).reduce((s, c) => s + c, 0)).toBe(50)
  })
})

describe('frechetReplicates', () => {
  it('with every image counted once equals eval frechetDistance', () => {
    const dim = 6
    const n = 80
    const data = Float32Array.from(normals(11, n * dim), (v, i) => v * (1 + (i % dim) * 0.3) + 0.2 * (i % dim))
    const reference = featureStatistics({ count: 200, dim, data: Float32Array.from(normals(12, 200 * dim)) })
    const [fd] = frechetReplicates({ count: n, dim, data }, prepareReference(reference), new Uint16Array(n).fill(1))
    expect(fd).toBeCloseTo(frechetDistance(featureStatistics({ count: n, dim, data }), reference), 10)
  })

  it('95% percentile intervals cover the true FD about 95% of the time (2-D Gaussian, FD = |m|^2 = 0.25)', () => {
    const dim = 2
    const n = 200
    const prepared = prepareReference(standard(dim))
    const counts = resampleCounts(n, { resamples: 500 })
    let covered = 0
    const trials = 200
    for (let t = 0; t < trials; t++) {
      const data = Float64Array.from(normals(100 + t, n * dim), (v, i) => v + (i % dim === 0 ? 0.5 : 0))
      const ci = percentileInterval(frechetReplicates({ count: n, dim, data }, prepared, counts))
      if (ci[0] <= 0.25 && 0.25 <= ci[1]) covered++
    }
    expect(covered / trials).toBeGreaterThan(0.88) // 0.925 with these seeds
    expect(covered / trials).toBeLessThan(0.995)
  })

  it('is biased upwards in high dimension at small n: the resamples score above the point estimate', () => {
    const dim = 32
    const n = 100
    const data = normals(7, n * dim)
    const prepared = prepareReference(standard(dim))
    const [point] = frechetReplicates({ count: n, dim, data }, prepared, new Uint16Array(n).fill(1))
    const replicates = frechetReplicates({ count: n, dim, data }, prepared, resampleCounts(n, { resamples: 200 }))
    expect(percentileInterval(replicates)[0]).toBeGreaterThan(point as number)
    // The bias-corrected interval of a difference with itself is exactly [0, 0].
    expect(biasCorrectedInterval(differenceReplicates(replicates, replicates), 0)).toEqual([0, 0])
  })
})

describe('paired intervals', () => {
  it('cover a known proportion about 95% of the time (accuracy-type means)', () => {
    const n = 200
    const counts = resampleCounts(n, { resamples: 500 })
    let covered = 0
    const trials = 200
    for (let t = 0; t < trials; t++) {
      const s = new RandomStream(500 + t)
      const hits = Array.from({ length: n }, () => (s.nextUint32() / 4294967296 < 0.3 ? 1 : 0))
      const ci = percentileInterval(meanReplicates(hits, counts))
      if (ci[0] <= 0.3 && 0.3 <= ci[1]) covered++
    }
    expect(covered / trials).toBeGreaterThan(0.88) // 0.925 with these seeds
    expect(covered / trials).toBeLessThan(0.995)
  })

  it('are much narrower paired (same resample indices) than unpaired when rows share their noise', () => {
    const n = 300
    const shared = normals(21, n)
    const own = normals(22, n)
    const a = Array.from(shared)
    const b = Array.from(shared, (v, i) => v + 0.1 + 0.05 * (own[i] as number))
    const paired = percentileInterval(differenceReplicates(meanReplicates(a, resampleCounts(n)), meanReplicates(b, resampleCounts(n))))
    const unpaired = percentileInterval(differenceReplicates(meanReplicates(a, resampleCounts(n)), meanReplicates(b, resampleCounts(n, { seed: 99 }))))
    expect(paired[0]).toBeLessThan(-0.1 + 0.02)
    expect(paired[1]).toBeGreaterThan(-0.1 - 0.02)
    expect(width(paired)).toBeLessThan(0.1 * width(unpaired))

    // The same for FD on features that share their noise.
    const dim = 4
    const fa = normals(31, n * dim)
    const noise = normals(32, n * dim)
    const fb = Float64Array.from(fa, (v, i) => v + 0.05 * (noise[i] as number) + (i % dim === 0 ? 0.1 : 0))
    const prepared = prepareReference(standard(dim))
    const fdA = frechetReplicates({ count: n, dim, data: fa }, prepared, resampleCounts(n, { resamples: 300 }))
    const fdB = frechetReplicates({ count: n, dim, data: fb }, prepared, resampleCounts(n, { resamples: 300 }))
    const fdBOther = frechetReplicates({ count: n, dim, data: fb }, prepared, resampleCounts(n, { resamples: 300, seed: 99 }))
    expect(width(percentileInterval(differenceReplicates(fdA, fdB)))).toBeLessThan(0.5 * width(percentileInterval(differenceReplicates(fdA, fdBOther)))) // 0.038 vs 0.104
  })
})
