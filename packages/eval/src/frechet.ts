import { GuidekitError } from '@guidekit/core'
import { fromEigen, matmul, symmetricEigen } from './internal/linalg.js'
import type { GaussianStatistics } from './statistics.js'

/**
 * Frechet distance between two Gaussians (Dowson & Landau 1982; FID, Heusel et al., arXiv 1706.08500):
 *
 *   FD = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)
 *
 * `tr((S1 S2)^1/2)` is computed as the sum of the square roots of the eigenvalues of the symmetric PSD
 * matrix `S1^1/2 S2 S1^1/2` (it has the same eigenvalues as `S1 S2`), with two symmetric (Jacobi)
 * eigendecompositions in float64. This avoids the non-symmetric `sqrtm(S1 S2)` of scipy, whose complex
 * round-off the FID implementations have to discard. Negative round-off eigenvalues are clamped to 0, so
 * the result is >= 0 up to round-off and exactly 0 for identical statistics.
 *
 * @example
 * const fd = frechetDistance(featureStatistics(generated), fashionMnistTestStatistics())
 */
export function frechetDistance(a: GaussianStatistics, b: GaussianStatistics): number {
  if (a.dim !== b.dim) {
    throw new GuidekitError('SHAPE_MISMATCH', `frechetDistance: the statistics have different dimensions (${a.dim} and ${b.dim}); compute both with the same evaluator.`, {
      details: { a: a.dim, b: b.dim },
    })
  }
  const n = a.dim
  let meanTerm = 0
  for (let i = 0; i < n; i++) meanTerm += ((a.mean[i] as number) - (b.mean[i] as number)) ** 2
  let trace = 0
  for (let i = 0; i < n; i++) trace += (a.covariance[i * n + i] as number) + (b.covariance[i * n + i] as number)
  const root = fromEigen(symmetricEigen(a.covariance, n), (x) => Math.sqrt(Math.max(x, 0)))
  const inner = matmul(matmul(root, b.covariance, n), root, n)
  const { values } = symmetricEigen(inner, n)
  let traceSqrt = 0
  for (const v of values) traceSqrt += Math.sqrt(Math.max(v, 0))
  return meanTerm + trace - 2 * traceSqrt
}
