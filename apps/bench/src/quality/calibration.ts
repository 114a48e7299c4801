// Adaptive Guidance's protocol (Castillo et al., arXiv 2312.12487): pick the threshold that saves a given
// share of CFG's NFE on a calibration set, then measure quality at that threshold on the evaluation set.
//
// One CFG run of the calibration set is enough: AG follows the CFG trajectory exactly until an image's
// cosine similarity of the conditional and unconditional model outputs first reaches the threshold at step
// k, and from step k + 1 on evaluates the conditional branch only. So recording that similarity per image
// and step on CFG trajectories gives AG's NFE for every threshold: S + k + 1 for an image that switches at
// step k of S, 2S for one that never does.
import { cosineSimilarity, modelOutput, type Branch, type GuidanceSession, type Guider, type Prediction, type RunInfo, type StepContext } from '@guidekit/core'

/** Seeds of the calibration set (image i: class i mod 10, seed CALIBRATION_SEED + i), disjoint from the evaluation set. */
export const CALIBRATION_SEED = 3_000_000

/** A calibration: the recorded similarities and the thresholds chosen for the target savings. */
export interface AgCalibration {
  readonly format: 1
  readonly generator: string
  readonly sampler: string
  readonly steps: number
  /** CFG scale of the recorded trajectories (= AG's inner CFG scale). */
  readonly scale: number
  readonly images: number
  readonly seed: number
  readonly modelSha: string
  /** `similarities[i][k]`: cos(cond, uncond) of image i at step k (model output: epsilon, or velocity for flow). */
  readonly similarities: readonly (readonly number[])[]
  /** Chosen threshold per target saving (key: the saving, e.g. `"0.25"`). */
  readonly thresholds: Readonly<Record<string, number>>
  /** AG's mean NFE per image at each chosen threshold, predicted on the calibration set. */
  readonly predictedNfe: Readonly<Record<string, number>>
}

/**
 * Wraps a CFG-like guider (branches 'positive' and 'negative' every step) and records, per image and step,
 * the cosine similarity of the two model outputs, as `adaptive` measures it (`space: 'epsilon'`).
 */
export function similarityRecorder(inner: Guider): { readonly guider: Guider; readonly similarities: number[][] } {
  const similarities: number[][] = []
  const guider: Guider = {
    specificationVersion: 'v1',
    name: `similarity-recorder(${inner.name})`,
    start(run: RunInfo): GuidanceSession {
      const session = inner.start(run)
      const rows = Array.from({ length: run.shape[0] ?? 1 }, () => [] as number[])
      similarities.push(...rows)
      return {
        async step(ctx: StepContext) {
          let positive: Prediction | undefined
          let negative: Prediction | undefined
          const wrapped: StepContext = {
            ...ctx,
            async predict(branches: readonly Branch[]) {
              const predictions = await ctx.predict(branches)
              branches.forEach((b, k) => {
                if (b.role === 'positive' && !positive) positive = predictions[k]
                if (b.role === 'negative' && !negative) negative = predictions[k]
              })
              return predictions
            },
          }
          const out = await session.step(wrapped)
          if (!positive || !negative) throw new Error(`similarityRecorder: ${inner.name} did not evaluate both branches at step ${ctx.step}; calibrate with CFG at a scale other than 1`)
          const sims = cosineSimilarity(modelOutput(positive, ctx.family), modelOutput(negative, ctx.family))
          rows.forEach((r, i) => r.push(sims[i] as number))
          return out
        },
      }
    },
  }
  return { guider, similarities }
}

/** AG's mean NFE per image at `threshold`, from recorded CFG similarities (see the module comment). */
export function predictedNfe(similarities: readonly (readonly number[])[], threshold: number): number {
  let total = 0
  for (const row of similarities) {
    const steps = row.length
    const k = row.findIndex((s) => s >= threshold)
    total += k < 0 ? 2 * steps : steps + k + 1
  }
  return total / similarities.length
}

/**
 * The threshold whose predicted NFE is closest to `(1 - saving) * 2S`, searched over
 * `t = 1 - 10^-x` for x from 0.5 to 6 in steps of 0.025 (t rounded to 6 significant digits).
 */
export function chooseThreshold(similarities: readonly (readonly number[])[], saving: number): number {
  const steps = similarities[0]?.length ?? 0
  if (!steps) throw new Error('chooseThreshold: no recorded similarities')
  const target = (1 - saving) * 2 * steps
  let best = Number.NaN
  let bestGap = Infinity
  for (let x = 0.5; x <= 6 + 1e-9; x += 0.025) {
    const t = Number((1 - 10 ** -x).toPrecision(6))
    const gap = Math.abs(predictedNfe(similarities, t) - target)
    if (gap < bestGap) {
      best = t
      bestGap = gap
    }
  }
  return best
}

/** Chooses the thresholds of a recorded calibration set for each target saving. */
export function calibrate(recorded: Omit<AgCalibration, 'thresholds' | 'predictedNfe' | 'format'>, savings: readonly number[]): AgCalibration {
  const thresholds: Record<string, number> = {}
  const predicted: Record<string, number> = {}
  for (const s of savings) {
    const t = chooseThreshold(recorded.similarities, s)
    thresholds[String(s)] = t
    predicted[String(s)] = predictedNfe(recorded.similarities, t)
  }
  return { format: 1, ...recorded, thresholds, predictedNfe: predicted }
}
