import { check, checkNumber, concatBatch, cosineSimilarity, cosineSimilarityFlat, type Branch, type GuidanceSession, type GuidedStep, type Guider, type Prediction, type RunInfo, type StepContext, type Tensor, mergedPredictor, checkBranchShapes, checkGuider, modelOutput } from '@guidekit/core'

/** Options of {@link adaptive}. */
export interface AdaptiveOptions {
  /** Cosine-similarity threshold in (0, 1]; once `cos(cond, uncond) >= threshold` guidance stops. Default 0.99. */
  readonly threshold?: number
  /**
   * Where the similarity is measured: `'epsilon'` (default, the paper's noise predictions; for 'flow'
   * models the velocity, i.e. the model output) or `'x0'` (the denoised predictions, as the ComfyUI
   * `AdaptiveGuider` node).
   */
  readonly space?: 'epsilon' | 'x0'
  /**
   * `'sample'` (default): each image switches on its own, and switched images cost one branch. `'batch'`:
   * the whole batch switches together, on the similarity of the flattened batch (as the ComfyUI node).
   */
  readonly granularity?: 'sample' | 'batch'
}

/**
 * Adaptive Guidance (Castillo et al., arXiv 2312.12487, AAAI'25): run the inner guider while the
 * conditional and unconditional predictions disagree; once their cosine similarity reaches the threshold,
 * stop evaluating the unconditional branch for the rest of the trajectory and use the conditional
 * prediction alone (`D = D_c`). Wraps any guider whose branches are `'positive'` / `'negative'` (CFG, APG,
 * CFG++, ...). With per-sample granularity each image has its own inner session (its own APG momentum),
 * and the requests of all images still go out as one batched model call per step.
 *
 * `report()` gives `savedNfe` (network evaluations saved per image, as papers count them),
 * `savedBranchEvaluations` (per-sample branch evaluations not made), `switchedSamples` and
 * `firstSwitchStep` (-1 when none).
 *
 * @example
 * const guider = adaptive(apg({ scale: 7, momentum: -0.5 }), { threshold: 0.99 })
 */
export function adaptive(inner: Guider, options: AdaptiveOptions = {}): Guider {
  checkGuider('inner', inner)
  const threshold = checkNumber('threshold', options.threshold ?? 0.99, { min: 0, max: 1, minExclusive: true })
  const space = options.space ?? 'epsilon'
  check(space === 'epsilon' || space === 'x0', 'space', space, "'epsilon' or 'x0'")
  const granularity = options.granularity ?? 'sample'
  check(granularity === 'sample' || granularity === 'batch', 'granularity', granularity, "'sample' or 'batch'")
  return {
    specificationVersion: 'v1',
    name: `adaptive(${inner.name}, threshold=${threshold}, space=${space}, granularity=${granularity})`,
    start(run: RunInfo): GuidanceSession {
      return granularity === 'batch' ? batchSession(inner, run, threshold, space) : sampleSession(inner, run, threshold, space)
    },
  }
}

/** A context that forwards to `predict` and remembers the first positive / negative predictions. */
function recordingContext(ctx: StepContext, x: Tensor, predict: (branches: readonly Branch[]) => Promise<Prediction[]>) {
  const seen: { positive?: Prediction; negative?: Prediction; evaluations: number } = { evaluations: 0 }
  const wrapped: StepContext = {
    step: ctx.step,
    steps: ctx.steps,
    sigma: ctx.sigma,
    sigmaNext: ctx.sigmaNext,
    timestep: ctx.timestep,
    family: ctx.family,
    x,
    async predict(branches) {
      const predictions = await predict(branches)
      branches.forEach((b, k) => {
        seen.evaluations += b.samples ? b.samples.length / x.batch : 1
        if (b.role === 'positive' && !seen.positive) seen.positive = predictions[k] as Prediction
        if (b.role === 'negative' && !seen.negative) seen.negative = predictions[k] as Prediction
      })
      return predictions
    },
  }
  return { ctx: wrapped, seen }
}

function view(p: Prediction, space: 'epsilon' | 'x0', family: StepContext['family']): Tensor {
  return space === 'x0' ? p.denoised : modelOutput(p, family)
}

function batchSession(inner: Guider, run: RunInfo, threshold: number, space: 'epsilon' | 'x0'): GuidanceSession {
  const session = inner.start(run)
  let switched = false
  let firstSwitchStep = -1
  let branchesPerStep = 2
  let saved = 0
  const batch = run.shape[0] ?? 1
  return {
    async step(ctx: StepContext): Promise<GuidedStep> {
      if (switched) {
        const [c] = (await ctx.predict([{ role: 'positive' }])) as [Prediction]
        checkBranchShapes('adaptive', ctx.x, [c])
        saved += Math.max(0, branchesPerStep - 1) * batch
        return { denoised: c.denoised, renoise: c.denoised }
      }
      const { ctx: wrapped, seen } = recordingContext(ctx, ctx.x, (b) => ctx.predict(b))
      const out = await session.step(wrapped)
      if (seen.positive && seen.negative) {
        branchesPerStep = seen.evaluations
        const sim = cosineSimilarityFlat(view(seen.positive, space, ctx.family), view(seen.negative, space, ctx.family))
        if (sim >= threshold) {
          switched = true
          firstSwitchStep = ctx.step
        }
      }
      return out
    },
    report() {
      return { ...(session.report?.() ?? {}), savedNfe: saved / batch, savedBranchEvaluations: saved, switchedSamples: switched ? batch : 0, firstSwitchStep }
    },
  }
}

function sampleSession(inner: Guider, run: RunInfo, threshold: number, space: 'epsilon' | 'x0'): GuidanceSession {
  const batch = run.shape[0] ?? 1
  const single: RunInfo = { ...run, shape: [1, ...run.shape.slice(1)] }
  const sessions = Array.from({ length: batch }, () => inner.start(single))
  const switched = new Array<boolean>(batch).fill(false)
  const branchesPerStep = new Array<number>(batch).fill(2)
  let saved = 0
  let firstSwitchStep = -1
  return {
    async step(ctx: StepContext): Promise<GuidedStep> {
      check(ctx.x.batch === batch, 'x batch', ctx.x.batch, `the batch the session started with (${batch})`)
      const active = switched.flatMap((s, i) => (s ? [] : [i]))
      const done = switched.flatMap((s, i) => (s ? [i] : []))
      const merged = mergedPredictor((b) => ctx.predict(b), active.length + (done.length > 0 ? 1 : 0))
      const results = new Array<GuidedStep>(batch)
      const jobs: Promise<void>[] = active.map(async (i) => {
        try {
          const xi = ctx.x.batchSlice(i, i + 1)
          const forward = (branches: readonly Branch[]) =>
            merged.predict(branches.map((b) => ({ ...b, samples: b.samples ? b.samples.map((s) => { check(s === 0, 'samples', b.samples, '[0] within a per-sample session'); return i }) : [i] })))
          const { ctx: sub, seen } = recordingContext(ctx, xi, forward)
          const session = sessions[i] as GuidanceSession
          results[i] = await session.step(sub)
          if (seen.positive && seen.negative) {
            branchesPerStep[i] = seen.evaluations
            const sim = (cosineSimilarity(view(seen.positive, space, ctx.family), view(seen.negative, space, ctx.family))[0] as number)
            if (sim >= threshold) {
              switched[i] = true
              if (firstSwitchStep < 0) firstSwitchStep = ctx.step
            }
          }
        } finally {
          merged.done()
        }
      })
      if (done.length > 0) {
        jobs.push(
          (async () => {
            try {
              const [c] = (await merged.predict([{ role: 'positive', samples: done }])) as [Prediction]
              done.forEach((i, k) => {
                const d = c.denoised.batchSlice(k, k + 1)
                results[i] = { denoised: d, renoise: d }
                saved += Math.max(0, (branchesPerStep[i] as number) - 1)
              })
            } finally {
              merged.done()
            }
          })(),
        )
      }
      await Promise.all(jobs)
      const denoised = concatBatch(results.map((r) => r.denoised))
      const renoise = results.every((r) => r.renoise === r.denoised) ? denoised : concatBatch(results.map((r) => r.renoise))
      checkBranchShapes('adaptive', ctx.x, [{ denoised, noise: renoise }])
      return { denoised, renoise }
    },
    report() {
      return { savedNfe: saved / batch, savedBranchEvaluations: saved, switchedSamples: switched.filter(Boolean).length, firstSwitchStep }
    },
  }
}

