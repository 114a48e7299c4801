import type { Tensor } from '@guidekit/core'
import { classAccuracy, withinClassDiversity } from './classification.js'
import type { Evaluator } from './evaluator.js'
import { frechetDistance } from './frechet.js'
import { saturationStatistics } from './images.js'
import type { SaturationStatistics } from './images.js'
import { compressibility } from './reward.js'
import { featureStatistics } from './statistics.js'
import type { GaussianStatistics } from './statistics.js'

/** Every quality metric of one set of generated images. */
export interface QualityMetrics {
  readonly count: number
  /** Fraction classified as the class they were generated for. */
  readonly accuracy: number
  /** Frechet distance of evaluator features against the reference (lower is better). */
  readonly frechetDistance: number
  readonly saturation: SaturationStatistics
  /** Mean compressibility reward (minus PNG bytes; higher is better). */
  readonly reward: number
  /** Mean within-class pairwise feature distance. */
  readonly diversity: number
}

/** Options of {@link evaluateQuality}. */
export interface EvaluateQualityOptions {
  /** Generated images `[N, 1, 28, 28]` in [-1, 1]. */
  readonly images: Tensor
  /** The class each image was generated for. */
  readonly labels: readonly number[]
  readonly evaluator: Evaluator
  /** Reference feature statistics (e.g. {@link fashionMnistTestStatistics}). */
  readonly reference: GaussianStatistics
  readonly signal?: AbortSignal
}

/**
 * Accuracy, Frechet distance, saturation, reward and diversity of generated images in one call.
 * Frechet distance is biased upwards at small N: compare sets of the same size, or against the reference's
 * floor at that size (the `data.frechetFloor` of the shipped reference header).
 *
 * @example
 * const evaluator = await loadEvaluator(fashionModel('fashion-eval').onnxPath)
 * const metrics = await evaluateQuality({ images: result.samples, labels: classes, evaluator, reference: fashionMnistTestStatistics({ evaluatorSha256: evaluator.sha256 }) })
 */
export async function evaluateQuality(options: EvaluateQualityOptions): Promise<QualityMetrics> {
  const { images, labels, evaluator, reference, signal } = options
  const { logits, features } = await evaluator.evaluate(images, signal ? { signal } : {})
  return {
    count: images.shape[0] as number,
    accuracy: classAccuracy(logits, labels),
    frechetDistance: frechetDistance(featureStatistics(features), reference),
    saturation: saturationStatistics(images),
    reward: mean(compressibility(images)),
    diversity: withinClassDiversity(features, labels).mean,
  }
}

function mean(values: ArrayLike<number>): number {
  let s = 0
  for (let i = 0; i < values.length; i++) s += values[i] as number
  return values.length ? s / values.length : Number.NaN
}
