import { GuidekitError } from '@guidekit/core'
import { checkFeatureSet } from './statistics.js'
import type { FeatureSet } from './statistics.js'

function checkLabels(labels: readonly number[], count: number): void {
  if (labels.length !== count) {
    throw new GuidekitError('SHAPE_MISMATCH', `labels must have one entry per image (${count}), got ${labels.length}.`, { details: { labels: labels.length, count } })
  }
}

/**
 * Fraction of images whose evaluator argmax equals the class they were generated for.
 *
 * @example
 * classAccuracy({ count, dim: 10, data: logits }, classes)   // 0.87
 */
export function classAccuracy(logits: FeatureSet, labels: readonly number[]): number {
  checkFeatureSet('logits', logits)
  checkLabels(labels, logits.count)
  const { count, dim, data } = logits
  let hits = 0
  for (let i = 0; i < count; i++) {
    let best = 0
    for (let k = 1; k < dim; k++) if ((data[i * dim + k] as number) > (data[i * dim + best] as number)) best = k
    if (best === labels[i]) hits++
  }
  return count ? hits / count : Number.NaN
}

/** Within-class diversity: mean pairwise distance per class and its average over classes. */
export interface Diversity {
  /** Average over classes (with >= 2 images) of the mean pairwise Euclidean feature distance. */
  readonly mean: number
  /** Per class label. */
  readonly byClass: Readonly<Record<number, number>>
}

/**
 * Diversity as the mean pairwise Euclidean distance between evaluator features of images of the same class,
 * averaged over classes. Mode collapse (e.g. from a high guidance scale) lowers it; it is 0 when every image
 * of a class is the same.
 *
 * @example
 * withinClassDiversity({ count, dim: 256, data: features }, classes).mean
 */
export function withinClassDiversity(features: FeatureSet, labels: readonly number[]): Diversity {
  checkFeatureSet('features', features)
  checkLabels(labels, features.count)
  const { dim, data } = features
  const groups = new Map<number, number[]>()
  labels.forEach((label, i) => {
    const g = groups.get(label)
    if (g) g.push(i)
    else groups.set(label, [i])
  })
  const byClass: Record<number, number> = {}
  let total = 0
  let classes = 0
  for (const [label, idx] of [...groups].sort((a, b) => a[0] - b[0])) {
    if (idx.length < 2) continue
    let sum = 0
    for (let a = 0; a < idx.length; a++) {
      const oa = (idx[a] as number) * dim
      for (let b = a + 1; b < idx.length; b++) {
        const ob = (idx[b] as number) * dim
        let d2 = 0
        for (let k = 0; k < dim; k++) d2 += ((data[oa + k] as number) - (data[ob + k] as number)) ** 2
        sum += Math.sqrt(d2)
      }
    }
    const m = sum / ((idx.length * (idx.length - 1)) / 2)
    byClass[label] = m
    total += m
    classes++
  }
  return { mean: classes ? total / classes : Number.NaN, byClass }
}
