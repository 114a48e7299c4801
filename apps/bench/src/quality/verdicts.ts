// Decision rules of the claims: each test turns a paired bootstrap interval into "supported", "refuted" or
// "inconclusive", and a claim combines its tests. Every interval is a 95% interval on its own (no
// multiplicity correction across the tests of a claim): the percentile interval of the per-resample
// differences, bias-corrected for FD (see biasCorrectedInterval).
import { biasCorrectedInterval, differenceReplicates, meanReplicates, percentileInterval, resampleCounts, type Interval } from './bootstrap.js'
import type { Row } from './runner.js'

export type Verdict = 'supported' | 'refuted' | 'inconclusive'

/** One decided comparison: a paired difference (or a single quantity) with its interval and outcome. */
export interface Test {
  /** What is compared, e.g. `FD(apg w=5) - FD(cfg w=5)`. */
  readonly quantity: string
  /** The rows (ids) and the image count they were compared at. */
  readonly rows: readonly string[]
  readonly images: number
  readonly estimate: number
  /** 95% paired bootstrap interval of the estimate (null for a quantity that is not resampled, e.g. NFE). */
  readonly interval: Interval | null
  /** The bound the interval is held against (0, or a margin such as +5% of FD(CFG)). */
  readonly bound: number
  readonly verdict: Verdict
}

/**
 * "Lower is better" against a bound: supported if the whole interval lies below `bound`, refuted if it
 * lies above, otherwise inconclusive. With `bound` = +5% of the baseline this is a non-inferiority test
 * ("no worse than 5%"); with 0 it is a superiority test ("lower").
 */
export function below(interval: Interval, bound: number): Verdict {
  if (interval[1] < bound) return 'supported'
  if (interval[0] > bound) return 'refuted'
  return 'inconclusive'
}

/** "Higher is better" against a bound: supported if the whole interval lies above `bound`, refuted if below. */
export function above(interval: Interval, bound: number): Verdict {
  if (interval[0] > bound) return 'supported'
  if (interval[1] < bound) return 'refuted'
  return 'inconclusive'
}

/** All must hold: refuted if any is refuted, supported if all are supported, otherwise inconclusive. */
export function allOf(verdicts: readonly Verdict[]): Verdict {
  if (verdicts.includes('refuted')) return 'refuted'
  if (verdicts.length > 0 && verdicts.every((v) => v === 'supported')) return 'supported'
  return 'inconclusive'
}

/** Per-image means that rows keep for paired tests. */
export type PerImageMetric = 'accuracy' | 'clippedFraction' | 'whiteFraction' | 'contrast' | 'reward'
/** Every resampled metric: the per-image means and the Frechet distance. */
export type Metric = PerImageMetric | 'frechetDistance'

const countsCache = new Map<string, Uint16Array>()
function countsFor(n: number, resamples: number): Uint16Array {
  const key = `${n}x${resamples}`
  let c = countsCache.get(key)
  if (!c) {
    c = resampleCounts(n, { resamples })
    countsCache.set(key, c)
  }
  return c
}

/** The per-image values of a row for a per-image metric (hits, clipped/white fractions, contrast, reward). */
export function perImageValues(row: Row, metric: PerImageMetric): Float64Array {
  const p = row.perImage
  const pixels = row.pixelsPerImage
  switch (metric) {
    case 'accuracy':
      return Float64Array.from(p.correct, (c) => (c === '1' ? 1 : 0))
    case 'clippedFraction':
      return Float64Array.from(p.clippedPixels, (v) => v / pixels)
    case 'whiteFraction':
      return Float64Array.from(p.whitePixels, (v) => v / pixels)
    case 'contrast':
      return Float64Array.from(p.contrast)
    case 'reward':
      return Float64Array.from(p.reward)
  }
}

/** The point estimate of a metric as the row reports it. */
export function pointEstimate(row: Row, metric: Metric): number {
  return row[metric]
}

/**
 * Bootstrap replicates of a metric (the first `resamples` of the row's resample stream): the stored FD
 * replicates, or per-image means recomputed on the same resample indices.
 */
export function replicates(row: Row, metric: Metric, resamples: number): Float64Array {
  if (metric === 'frechetDistance') {
    if (row.bootstrap.frechetDistance.length < resamples) throw new Error(`${row.id} (n=${row.images}) has ${row.bootstrap.frechetDistance.length} FD replicates, ${resamples} asked`)
    return Float64Array.from(row.bootstrap.frechetDistance.slice(0, resamples))
  }
  return meanReplicates(perImageValues(row, metric), countsFor(row.images, resamples))
}

/** A linear combination of rows of the same size (e.g. CFG interpolated between two scales). */
export interface Mix {
  readonly label: string
  readonly parts: readonly (readonly [number, Row])[]
}

export const single = (label: string, row: Row): Mix => ({ label, parts: [[1, row]] })

/** Point estimate and replicates of a mix. */
export function mixReplicates(mix: Mix, metric: Metric, resamples: number): { estimate: number; values: Float64Array } {
  const values = new Float64Array(resamples)
  let estimate = 0
  for (const [w, row] of mix.parts) {
    estimate += w * pointEstimate(row, metric)
    const r = replicates(row, metric, resamples)
    for (let k = 0; k < resamples; k++) values[k] = (values[k] as number) + w * (r[k] as number)
  }
  return { estimate, values }
}

/** The resample count two sets of rows share (the streams are prefixes of one another). */
export function sharedResamples(rows: readonly Row[]): number {
  return Math.min(...rows.map((r) => r.bootstrap.resamples))
}

/**
 * The paired bootstrap of `metric(a) - metric(b)` for rows measured on the same seeds and classes at the
 * same image count, decided against `bound` in the given direction.
 */
export function pairedTest(options: { a: Mix; b: Mix; metric: Metric; name: string; bound: number; direction: 'below' | 'above' }): Test {
  const { a, b, metric, name, bound, direction } = options
  const rows = [...a.parts, ...b.parts].map(([, r]) => r)
  const n = rows[0]?.images ?? 0
  if (rows.some((r) => r.images !== n)) throw new Error(`pairedTest: rows of different sizes (${rows.map((r) => `${r.id} n=${r.images}`).join(', ')}); compare rows of the same n`)
  const resamples = sharedResamples(rows)
  const ra = mixReplicates(a, metric, resamples)
  const rb = mixReplicates(b, metric, resamples)
  const estimate = ra.estimate - rb.estimate
  const differences = differenceReplicates(ra.values, rb.values)
  // FD's small-sample bias differs between configurations, so its paired differences are bias-corrected.
  const interval = metric === 'frechetDistance' ? biasCorrectedInterval(differences, estimate) : percentileInterval(differences)
  return {
    quantity: `${name}(${a.label}) - ${name}(${b.label})`,
    rows: [...new Set(rows.map((r) => r.id))],
    images: n,
    estimate,
    interval,
    bound,
    verdict: direction === 'below' ? below(interval, bound) : above(interval, bound),
  }
}

/** A non-resampled requirement (e.g. the measured NFE saving): supported when it holds, else inconclusive. */
export function requirement(options: { quantity: string; rows: readonly Row[]; estimate: number; bound: number; holds: boolean }): Test {
  const { quantity, rows, estimate, bound, holds } = options
  return { quantity, rows: rows.map((r) => r.id), images: rows[0]?.images ?? 0, estimate, interval: null, bound, verdict: holds ? 'supported' : 'inconclusive' }
}

/**
 * The largest image count at which every one of the given configurations has a row, and those rows
 * (in order); undefined when they share none.
 */
export function atCommonSize(sizes: readonly (readonly Row[])[]): Row[] | undefined {
  if (sizes.some((s) => s.length === 0)) return undefined
  const common = (sizes[0] as readonly Row[]).map((r) => r.images).filter((n) => sizes.every((s) => s.some((r) => r.images === n)))
  if (!common.length) return undefined
  const n = Math.max(...common)
  return sizes.map((s) => s.find((r) => r.images === n) as Row)
}
