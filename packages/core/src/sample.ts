import type { Branch, Denoiser, GuidanceSession, GuidedStep, Guider, NoiseFamily, NoiseSource, Prediction, Sampler, StepContext } from './contracts.js'
import { familyAlpha } from './contracts.js'
import { GuidekitError, check } from './errors.js'
import { findNonFinite } from './kernels.js'
import { seededNoise, seedsFor } from './noise.js'
import { modelInput } from './parameterization.js'
import { checkPlan, type SamplingPlan } from './schedules.js'
import { Tensor } from './tensor.js'

/** Progress after each completed step. */
export interface SampleProgress {
  /** Steps completed (1..steps). */
  readonly step: number
  readonly steps: number
  readonly sigma: number
  readonly modelCalls: number
  readonly elapsedMs: number
}

/** Options of {@link sample}. */
export interface SampleOptions {
  readonly denoiser: Denoiser
  readonly guider: Guider
  readonly sampler: Sampler
  readonly plan: SamplingPlan
  /** Sample shape, batch first (e.g. `[4, 1, 28, 28]`). Required unless `latents` is given. */
  readonly shape?: readonly number[]
  /** First seed; image i uses `seed + i` (see `seedsFor`). Default 0. Ignored when `seeds` is given. */
  readonly seed?: number
  /** One seed per image. */
  readonly seeds?: readonly number[]
  /**
   * The starting sample in the sampling space at `plan.sigmas[0]` (e.g. for inversion round trips). When
   * omitted, it is seeded noise scaled by `sqrt(alpha^2 + sigma^2)` (the marginal std for unit-variance data).
   */
  readonly latents?: Tensor
  /** The noise source for stochastic samplers; default: the seeded streams. */
  readonly noise?: NoiseSource
  readonly signal?: AbortSignal
  readonly onProgress?: (progress: SampleProgress) => void
}

/** What {@link sample} returns. */
export interface SampleResult {
  /** The final samples in data space (the VP sample for `'vp'` plans ending above sigma 0, as diffusers). */
  readonly samples: Tensor
  /** The final state in the sampling space. */
  readonly latents: Tensor
  readonly seeds: readonly number[]
  readonly steps: number
  /** Batched model runs (one per distinct model per denoiser request). */
  readonly modelCalls: number
  /** Branch evaluations (each branch of each request counts once). */
  readonly branchEvaluations: number
  /** Network function evaluations per image, as papers count them (CFG: 2 per step); the batch mean. */
  readonly nfe: number
  /** Each image's own NFE (they differ when a guider skips branches per image, as adaptive guidance does). */
  readonly imageNfe: readonly number[]
  /** Counters reported by the guider (e.g. adaptive guidance's saved calls). */
  readonly guidance: Readonly<Record<string, number>>
  readonly elapsedMs: number
}

/**
 * Runs one trajectory: for each step the guider asks for the branches it needs (`ctx.predict`), combines
 * them into `{denoised, renoise}`, and the sampler moves x to the next sigma, or to the plan's target for
 * that step (then x is re-expressed at the next sigma with the model input unchanged: for 'vp',
 * `x * sqrt(1 + sigma_{i+1}^2) / sqrt(1 + target_i^2)`; 'flow' keeps x). Counts model calls and branch
 * evaluations, reports progress, honours `signal`, and stops with `NON_FINITE` (naming the step and branch)
 * when a prediction contains NaN or infinity.
 *
 * @example
 * const result = await sample({ denoiser, guider: cfg({ scale: 3 }), sampler: euler(), plan: flowPlan({ steps: 30 }), shape: [4, 1, 28, 28], seed: 7 })
 */
export async function sample(options: SampleOptions): Promise<SampleResult> {
  const { denoiser, guider, sampler, signal, onProgress } = options
  checkComponent('denoiser', denoiser, 'predict', 'a Denoiser (an object with predict(), e.g. from @guidekit/onnx)')
  checkComponent('guider', guider, 'start', 'a Guider (an object with start(), e.g. cfg({ scale: 3 }))')
  checkComponent('sampler', sampler, 'start', 'a Sampler (an object with start(), e.g. euler())')
  const plan = checkPlan(options.plan)
  if (plan.family !== denoiser.family) {
    throw new GuidekitError('INVALID_ARGUMENT', `The plan is for the '${plan.family}' family but the denoiser is '${denoiser.family}'; build the plan from the model's schedule.`)
  }
  const shape = options.latents?.shape ?? options.shape
  if (!shape) throw new GuidekitError('INVALID_ARGUMENT', 'sample() needs shape (e.g. [4, 1, 28, 28]) or latents.')
  check(shape.length >= 2 && shape.every((d) => Number.isInteger(d) && d >= 1), 'shape', shape, 'a list of positive integers, batch first')
  const batch = shape[0] as number
  const seeds = options.seeds ? [...options.seeds] : seedsFor(options.seed ?? 0, batch)
  check(seeds.length === batch, 'seeds', seeds, `one seed per image (${batch})`)
  const noise = options.noise ?? seededNoise(seeds)
  const steps = plan.timesteps.length
  const family = plan.family
  throwIfAborted(signal, 0)

  let x: Tensor
  if (options.latents) {
    x = options.latents
  } else {
    x = noise.next(shape)
    const s0 = plan.sigmas[0] as number
    const scale = Math.hypot(familyAlpha(family, s0), s0)
    for (let i = 0; i < x.data.length; i++) x.data[i] = (x.data[i] as number) * scale
  }
  const session: GuidanceSession = guider.start({ steps, sigmas: plan.sigmas, timesteps: plan.timesteps, family, shape })
  const samplerSession = sampler.start({ steps, sigmas: plan.sigmas, family, noise })
  // Inputs beyond this magnitude can only come from a diverging guided step (data is O(1), noise O(sigma)).
  const extreme = 1e6 * Math.max(1, plan.sigmas[0] as number)
  let modelCalls = 0
  let branchEvaluations = 0
  let sampleEvaluations = 0
  const imageNfe = new Array<number>(batch).fill(0)
  const t0 = performance.now()

  for (let step = 0; step < steps; step++) {
    throwIfAborted(signal, step)
    const sigma = plan.sigmas[step] as number
    // Where this step lands: the plan's target (diffusers' DDIM) or the next sigma.
    const sigmaNext = (plan.targets ? plan.targets[step] : plan.sigmas[step + 1]) as number
    const timestep = plan.timesteps[step] as number
    const current = x
    const ctx: StepContext = {
      step,
      steps,
      sigma,
      sigmaNext,
      timestep,
      family,
      x: current,
      predict: async (branches: readonly Branch[]): Promise<Prediction[]> => {
        check(branches.length > 0, 'branches', branches.length, 'at least one branch')
        throwIfAborted(signal, step)
        const request = { x: current, sigma, timestep, step, steps, branches }
        const predictions = await denoiser.predict(signal ? { ...request, signal } : request)
        if (predictions.length !== branches.length) {
          throw new GuidekitError('MODEL_ERROR', `The denoiser returned ${predictions.length} predictions for ${branches.length} branches at step ${step}.`)
        }
        modelCalls += new Set(branches.map((b) => b.model ?? '')).size
        branchEvaluations += branches.length
        branches.forEach((branch, k) => {
          const p = predictions[k] as Prediction
          sampleEvaluations += branch.samples ? branch.samples.length : batch
          if (branch.samples) for (const i of branch.samples) imageNfe[i] = (imageNfe[i] as number) + 1
          else for (let i = 0; i < batch; i++) imageNfe[i] = (imageNfe[i] as number) + 1
          for (const [what, t] of [['denoised', p.denoised], ['noise', p.noise]] as const) {
            const bad = findNonFinite(t)
            if (bad >= 0) {
              // A model fed an absurd input (from an earlier guider step) is not the culprit: say who made it.
              const inputMagnitude = maxAbs(current)
              if (step > 0 && inputMagnitude > extreme) {
                throw new GuidekitError(
                  'NON_FINITE',
                  `Step ${step + 1}/${steps} (sigma ${sigma.toPrecision(6)}): the model returned ${t.data[bad]} for an input of magnitude ${inputMagnitude.toPrecision(3)}, which step ${step} of guider ${guider.name} produced. Lower the guidance scale or check the guider's parameters.`,
                  { details: { step, sigma, guider: guider.name, inputMagnitude } },
                )
              }
              throw new GuidekitError(
                'NON_FINITE',
                `Step ${step + 1}/${steps} (sigma ${sigma.toPrecision(6)}): the ${branch.model ? `'${branch.model}' ` : ''}'${branch.role}' prediction (${what}) has ${t.data[bad]} at element ${bad}. Check the model file and its inputs, or lower the guidance scale.`,
                { details: { step, sigma, role: branch.role, model: branch.model, element: bad } },
              )
            }
          }
        })
        return predictions
      },
    }
    const guided = await session.step(ctx)
    checkGuidedStep(guided, current, guider.name, step, steps, sigma)
    x = samplerSession.step({ step, x: current, sigma, sigmaNext, guided })
    const badX = findNonFinite(x)
    if (badX >= 0) {
      throw new GuidekitError(
        'NON_FINITE',
        `Step ${step + 1}/${steps} (sigma ${sigma.toPrecision(6)}): sampler ${sampler.name} produced ${x.data[badX]} at element ${badX} from guider ${guider.name}'s output (magnitude up to ${maxAbs(guided.denoised).toPrecision(3)}). Lower the guidance scale or check the guider's parameters.`,
        { details: { step, sigma, guider: guider.name, sampler: sampler.name, element: badX } },
      )
    }
    const following = plan.sigmas[step + 1] as number
    if (sigmaNext !== following) x = reexpress(x, family, sigmaNext, following)
    onProgress?.({ step: step + 1, steps, sigma: following, modelCalls, elapsedMs: performance.now() - t0 })
  }
  const last = plan.sigmas[steps] as number
  return {
    samples: modelInput(x, last, family),
    latents: x,
    seeds,
    steps,
    modelCalls,
    branchEvaluations,
    nfe: sampleEvaluations / batch,
    imageNfe,
    guidance: session.report?.() ?? {},
    elapsedMs: performance.now() - t0,
  }
}

function checkComponent(name: string, value: unknown, method: string, expected: string): void {
  const ok = typeof value === 'object' && value !== null && typeof (value as Record<string, unknown>)[method] === 'function'
  if (!ok) throw new GuidekitError('INVALID_ARGUMENT', `sample(): ${name} must be ${expected}, got ${describe(value)}.`, { details: { parameter: name } })
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return String(value)
  if (typeof value !== 'object') return typeof value
  const keys = Object.keys(value)
  return keys.length === 0 ? 'an empty object' : `an object with ${keys.slice(0, 5).join(', ')}`
}

/** The guider's answer must be two finite tensors of x's shape; blames the guider (not the model) otherwise. */
function checkGuidedStep(guided: unknown, x: Tensor, name: string, step: number, steps: number, sigma: number): asserts guided is GuidedStep {
  const where = `Step ${step + 1}/${steps} (sigma ${sigma.toPrecision(6)}): guider ${name}`
  const g = guided as Partial<GuidedStep> | null | undefined
  if (typeof g !== 'object' || g === null || !(g.denoised instanceof Tensor) || !(g.renoise instanceof Tensor)) {
    throw new GuidekitError('INVALID_ARGUMENT', `${where} returned ${describe(guided)}; a guidance session's step() must resolve to { denoised, renoise } tensors.`, {
      details: { step, guider: name },
    })
  }
  for (const [what, t] of [['denoised', g.denoised], ['renoise', g.renoise]] as const) {
    if (what === 'renoise' && t === g.denoised) continue // the same tensor (every guider but CFG++'s): checked
    if (t.shape.length !== x.shape.length || t.shape.some((d, i) => d !== x.shape[i])) {
      throw new GuidekitError('SHAPE_MISMATCH', `${where} returned ${what} of shape [${t.shape.join(', ')}] for x of shape [${x.shape.join(', ')}].`, { details: { step, guider: name } })
    }
    const bad = findNonFinite(t)
    if (bad >= 0) {
      throw new GuidekitError('NON_FINITE', `${where} produced ${t.data[bad]} in ${what} at element ${bad}. Lower the guidance scale or check its parameters.`, {
        details: { step, sigma, guider: name, element: bad },
      })
    }
  }
}

function maxAbs(t: Tensor): number {
  let m = 0
  for (let i = 0; i < t.data.length; i++) m = Math.max(m, Math.abs(t.data[i] as number))
  return m
}

/**
 * The same model input (`x / sqrt(1 + sigma^2)` for 'vp', x itself for 'flow') read at another sigma: for a
 * 'vp' plan, x landed at `from` becomes `x sqrt(1 + to^2) / sqrt(1 + from^2)` at `to`, as diffusers' DDIM
 * hands the sample it reached at `abar[t - T//N]` to the next timestep unchanged.
 */
function reexpress(x: Tensor, family: NoiseFamily, from: number, to: number): Tensor {
  if (family === 'flow') return x
  const k = Math.sqrt(1 + to * to) / Math.sqrt(1 + from * from)
  const out = new Float32Array(x.size)
  for (let i = 0; i < out.length; i++) out[i] = (x.data[i] as number) * k
  return new Tensor(out, x.shape)
}

function throwIfAborted(signal: AbortSignal | undefined, step: number): void {
  if (signal?.aborted) {
    throw new GuidekitError('ABORTED', `Sampling was aborted before step ${step + 1}.`, { cause: signal.reason, details: { step } })
  }
}

/**
 * The unguided guider: asks for the positive branch only (one model evaluation per step).
 *
 * @example
 * await sample({ denoiser, guider: unguided(), sampler: euler(), plan, shape })
 */
export function unguided(): Guider {
  return {
    specificationVersion: 'v1',
    name: 'unguided',
    start: () => ({
      async step(ctx) {
        const [p] = (await ctx.predict([{ role: 'positive' }])) as [Prediction]
        return { denoised: p.denoised, renoise: p.denoised }
      },
    }),
  }
}
