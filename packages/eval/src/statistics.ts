import { GuidekitError } from '@guidekit/core'

/** Mean and (unbiased, `n - 1`) covariance of a set of feature vectors, in float64. */
export interface GaussianStatistics {
  /** Feature dimension. */
  readonly dim: number
  /** Number of vectors the statistics were computed from. */
  readonly count: number
  readonly mean: Float64Array
  /** Row-major `dim x dim`, symmetric. */
  readonly covariance: Float64Array
}

/** A set of `count` feature vectors of `dim` values each, row-major. */
export interface FeatureSet {
  readonly count: number
  readonly dim: number
  readonly data: Float32Array | Float64Array
}

export function checkFeatureSet(name: string, set: FeatureSet): void {
  if (!Number.isInteger(set.count) || !Number.isInteger(set.dim) || set.dim < 1 || set.count < 0 || set.data.length !== set.count * set.dim) {
    throw new GuidekitError('SHAPE_MISMATCH', `${name} must hold count * dim = ${set.count} * ${set.dim} values, got ${set.data.length}.`, {
      details: { parameter: name, count: set.count, dim: set.dim, length: set.data.length },
    })
  }
}

/**
 * Mean and covariance `S = sum (f - mu)(f - mu)^T / (n - 1)` of feature vectors, in float64 with two passes
 * (centring first avoids the cancellation of `E[f f^T] - mu mu^T` on features with a large mean), as
 * `numpy.cov(rowvar=False)` and the FID reference implementations compute it.
 *
 * @example
 * const stats = featureStatistics({ count: 1000, dim: 256, data: features })
 */
export function featureStatistics(set: FeatureSet): GaussianStatistics {
  checkFeatureSet('features', set)
  const { count, dim, data } = set
  if (count < 2) {
    throw new GuidekitError('INVALID_ARGUMENT', `featureStatistics needs at least 2 vectors to estimate a covariance, got ${count}.`, { details: { count } })
  }
  const mean = new Float64Array(dim)
  for (let i = 0; i < count; i++) for (let d = 0; d < dim; d++) mean[d] = (mean[d] as number) + (data[i * dim + d] as number)
  for (let d = 0; d < dim; d++) mean[d] = (mean[d] as number) / count
  const covariance = new Float64Array(dim * dim)
  const row = new Float64Array(dim)
  for (let i = 0; i < count; i++) {
    for (let d = 0; d < dim; d++) row[d] = (data[i * dim + d] as number) - (mean[d] as number)
    for (let a = 0; a < dim; a++) {
      const ra = row[a] as number
      if (ra === 0) continue
      const base = a * dim
      for (let b = 0; b <= a; b++) covariance[base + b] = (covariance[base + b] as number) + ra * (row[b] as number)
    }
  }
  for (let a = 0; a < dim; a++) {
    for (let b = 0; b <= a; b++) {
      const v = (covariance[a * dim + b] as number) / (count - 1)
      covariance[a * dim + b] = v
      covariance[b * dim + a] = v
    }
  }
  return { dim, count, mean, covariance }
}
