// Merging the model requests of several concurrent guidance sessions into one ctx.predict call, so that
// per-sample (or per-model) sessions still cost one batched model run per model per step.
// A duplicate of this file lives in @guidekit/rlg (guidance packages do not depend on each other);
// candidate for @guidekit/core.
import type { Branch, Prediction } from '@guidekit/core'

interface Waiting {
  readonly branches: readonly Branch[]
  readonly resolve: (predictions: Prediction[]) => void
  readonly reject: (error: unknown) => void
}

/**
 * A barrier over `count` concurrent jobs: each job's `predict` waits until every still-running job is
 * waiting (or finished), then all requests go out as one `predict` call. Branches that carry `samples` and
 * share a role and model are merged into one branch whose prediction is split back (zero-copy).
 * Call `done()` when a job finishes (also on error).
 */
export function mergedPredictor(predict: (branches: readonly Branch[]) => Promise<Prediction[]>, count: number) {
  let waiting: Waiting[] = []
  let active = count
  const flush = (): void => {
    if (waiting.length === 0 || waiting.length < active) return
    const batch = waiting
    waiting = []
    // Group sample-restricted branches by (role, model); others go as they are.
    const merged: Branch[] = []
    const slots: { index: number; offset: number; length: number }[][] = []
    const groups = new Map<string, number>()
    for (const w of batch) {
      const own: { index: number; offset: number; length: number }[] = []
      for (const b of w.branches) {
        if (b.samples) {
          const key = `${b.role}\u0000${b.model ?? ''}`
          let index = groups.get(key)
          if (index === undefined) {
            index = merged.length
            groups.set(key, index)
            merged.push({ role: b.role, ...(b.model === undefined ? {} : { model: b.model }), samples: [] })
          }
          const target = merged[index] as Branch & { samples: number[] }
          own.push({ index, offset: target.samples.length, length: b.samples.length })
          target.samples.push(...b.samples)
        } else {
          own.push({ index: merged.length, offset: -1, length: 0 })
          merged.push(b)
        }
      }
      slots.push(own)
    }
    predict(merged).then(
      (predictions) => {
        batch.forEach((w, k) => {
          w.resolve(
            (slots[k] ?? []).map(({ index, offset, length }) => {
              const p = predictions[index] as Prediction
              if (offset < 0) return p
              return { denoised: p.denoised.batchSlice(offset, offset + length), noise: p.noise.batchSlice(offset, offset + length) }
            }),
          )
        })
      },
      (error: unknown) => batch.forEach((w) => w.reject(error)),
    )
  }
  return {
    predict(branches: readonly Branch[]): Promise<Prediction[]> {
      return new Promise<Prediction[]>((resolve, reject) => {
        waiting.push({ branches, resolve, reject })
        flush()
      })
    },
    done(): void {
      active--
      flush()
    },
  }
}
