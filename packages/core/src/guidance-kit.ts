// Building blocks shared by guidance packages: the model-output view, positive-only steps, shape and
// guider checks, and merging concurrent sessions' requests into one predict call.
//
// The model-output space of epsilon-space guiders:
//
// With x = alpha(sigma) x0 + sigma eps, the quantity m = (x - x0) / sigma satisfies x0 = x - sigma m for both
// families: for 'vp' (VE cast, alpha = 1) m is epsilon; for 'flow' (alpha = 1 - sigma) m is the velocity
// v = eps - x0, which is what a flow model emits and what diffusers' guiders see on SD3/Flux. Working in m
// never divides by alpha, so it is safe at sigma = 1 of a flow plan.
import type { Branch, Guider, NoiseFamily, Prediction, StepContext } from './contracts.js'
import { GuidekitError, checkNumber } from './errors.js'
import { combine, std } from './kernels.js'
import { Tensor, assertSameShape } from './tensor.js'

/** The model-output-space view (epsilon for 'vp', velocity for 'flow') of a prediction. */
export function modelOutput(p: Prediction, family: NoiseFamily): Tensor {
  if (family === 'vp') return p.noise
  const n = p.noise.data
  const d = p.denoised.data
  const out = new Float32Array(n.length)
  for (let i = 0; i < out.length; i++) out[i] = (n[i] as number) - (d[i] as number)
  return new Tensor(out, p.noise.shape)
}

/** x0 from a model-output-space tensor: `x - sigma m` (in place into `m`'s copy). */
export function denoisedFrom(x: Tensor, sigma: number, m: Tensor): Tensor {
  const out = new Float32Array(m.size)
  const xs = x.data
  const ms = m.data
  for (let i = 0; i < out.length; i++) out[i] = (xs[i] as number) - sigma * (ms[i] as number)
  return new Tensor(out, m.shape)
}

/** Throws SHAPE_MISMATCH unless every prediction has the shape of x (or of the requested sub-batch). */
export function checkBranchShapes(what: string, x: Tensor, predictions: readonly Prediction[]): void {
  for (const p of predictions) assertSameShape(`${what}: branch predictions vs x`, x, p.denoised, p.noise)
}

/**
 * Asks for the positive and the negative branch in one batched call and checks their shapes: the request
 * at the heart of every CFG-style guider.
 *
 * @example
 * const { cond, uncond } = await predictPair(ctx, 'cfg')
 */
export async function predictPair(ctx: StepContext, guider: string): Promise<{ cond: Prediction; uncond: Prediction }> {
  const [cond, uncond] = (await ctx.predict([{ role: 'positive' }, { role: 'negative' }])) as [Prediction, Prediction]
  checkBranchShapes(guider, ctx.x, [cond, uncond])
  return { cond, uncond }
}

/**
 * Guidance rescale (Lin et al., arXiv 2305.08891, §3.4; diffusers `rescale_noise_cfg`), used after CFG and
 * after diffusers-style APG: `pred' = phi * pred * std(ref) / std(pred) + (1 - phi) * pred`, with the
 * unbiased (N - 1) standard deviation per sample over all non-batch dimensions, as `torch.std`.
 *
 * Guard (deviation from diffusers, which returns inf/NaN; diffusers issue #13425): where `std(pred)` is 0
 * (a constant guided prediction) or not finite, the ratio is undefined and that sample is left unchanged.
 *
 * @example
 * const rescaled = guidanceRescale(guided, cond, 0.7)
 */
export function guidanceRescale(pred: Tensor, reference: Tensor, phi: number): Tensor {
  checkNumber('rescale', phi, { min: 0, max: 1 })
  assertSameShape('guidanceRescale (pred, reference)', pred, reference)
  const stdRef = std(reference)
  const stdPred = std(pred)
  const factor = new Float64Array(pred.batch)
  for (let b = 0; b < factor.length; b++) {
    const sp = stdPred[b] as number
    factor[b] = phi * (sp > 0 && Number.isFinite(sp) ? (stdRef[b] as number) / sp : 1) + (1 - phi)
  }
  return combine([[factor, pred]])
}

/** One positive-branch evaluation, used unguided (`D = D_c`). */
export async function positiveOnly(ctx: StepContext): Promise<{ denoised: Tensor; renoise: Tensor }> {
  const [c] = (await ctx.predict([{ role: 'positive' }])) as [Prediction]
  checkBranchShapes('guider', ctx.x, [c])
  return { denoised: c.denoised, renoise: c.denoised }
}

/** Throws when a guider is handed something that is not a guider (a common composition slip). */
export function checkGuider(name: string, value: unknown): asserts value is Guider {
  const ok = typeof value === 'object' && value !== null && typeof (value as Guider).start === 'function'
  if (!ok) throw new GuidekitError('INVALID_ARGUMENT', `${name} must be a Guider (an object with start()), got ${typeof value}.`, { details: { parameter: name } })
}

interface Waiting {
  readonly branches: readonly Branch[]
  readonly resolve: (predictions: Prediction[]) => void
  readonly reject: (error: unknown) => void
}

/**
 * Merges the model requests of several concurrent guidance sessions (per-sample adaptive guidance, RL
 * guidance's two models) into one `ctx.predict` call, so they still cost one batched run per model per step.
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
