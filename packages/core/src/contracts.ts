import type { Tensor } from './tensor.js'

/**
 * How a model's noisy input relates to clean data: `x = alpha(sigma) * x0 + sigma * noise`.
 *
 * - `'vp'`: variance-preserving models (DDPM, Stable Diffusion, epsilon/v prediction). guidekit samples
 *   them in the variance-exploding cast (`alpha = 1`, `x = x_vp * sqrt(1 + sigma^2)`, as k-diffusion and
 *   ComfyUI do); the denoiser scales the model input by `1 / sqrt(1 + sigma^2)`.
 * - `'flow'`: rectified flow / flow matching (SD3, our fashion DiT): `alpha = 1 - sigma`, `sigma` in [0, 1].
 */
export type NoiseFamily = 'vp' | 'flow'

/** `alpha(sigma)` of a noise family: 1 for `'vp'` (VE cast), `1 - sigma` for `'flow'`. */
export function familyAlpha(family: NoiseFamily, sigma: number): number {
  return family === 'flow' ? 1 - sigma : 1
}

/**
 * One thing the guider wants the model to predict on the current noisy input.
 *
 * `role` names the conditioning (`'positive'`, `'negative'`, or a denoiser-specific name); `model` picks a
 * model when a denoiser holds several (`'base'`, `'tuned'` for RL guidance); `samples` restricts the
 * evaluation to some batch items (adaptive guidance per sample), and the prediction then has that
 * sub-batch.
 */
export interface Branch {
  readonly role: 'positive' | 'negative' | (string & {})
  readonly model?: string
  readonly samples?: readonly number[]
}

/** A model prediction converted at the edge: the clean-data estimate and the noise estimate, both always. */
export interface Prediction {
  /** x0 estimate ("denoised", Tweedie). */
  readonly denoised: Tensor
  /** epsilon estimate, `(x - alpha * denoised) / sigma`. */
  readonly noise: Tensor
}

/**
 * What a denoiser is asked to evaluate: the noisy sample, where it is on the trajectory, and which branches.
 * Everything a denoiser (or a {@link DenoiserMiddleware}) legitimately needs to know about the step is here,
 * so nothing has to guess it (a per-step attention schedule reads `step` and `steps`).
 */
export interface DenoiseRequest {
  /** The current sample, in the family's sampling space (VE cast for `'vp'`). */
  readonly x: Tensor
  readonly sigma: number
  /** The model timestep for this sigma, from the plan (e.g. 951 for SD1.5 leading spacing; sigma * 1000 for flow). */
  readonly timestep: number
  /** 0-based index of the sampling step this request belongs to. */
  readonly step: number
  /** Number of sampling steps of the trajectory. */
  readonly steps: number
  readonly branches: readonly Branch[]
  readonly signal?: AbortSignal
}

/**
 * "What the model says": evaluates one or more branches on the same noisy input in as few model calls as
 * possible. Contract: all branches of one `model` go to that model in one batched call, so the number of
 * model calls of a request is the number of distinct `model` values among its branches.
 */
export interface Denoiser {
  readonly specificationVersion: 'v1'
  readonly family: NoiseFamily
  /** One prediction per branch, in order. */
  predict(request: DenoiseRequest): Promise<Prediction[]>
}

/** The guider's answer for one step. */
export interface GuidedStep {
  /** The guided x0 estimate the sampler steps towards. */
  readonly denoised: Tensor
  /** The x0 used to re-noise (derive the noise direction). Equal to `denoised` except for CFG++-style guiders. */
  readonly renoise: Tensor
}

/** Facts about a trajectory, given to a guider when it starts. */
export interface RunInfo {
  readonly steps: number
  /** The plan's sigmas, `steps + 1` values, decreasing. */
  readonly sigmas: Float64Array
  readonly timesteps: Float64Array
  readonly family: NoiseFamily
  readonly shape: readonly number[]
}

/** What a guider sees at one step. */
export interface StepContext {
  /** 0-based step index. */
  readonly step: number
  readonly steps: number
  readonly sigma: number
  /** Where this step lands: the plan's target for the step when it has targets, else the next sigma. */
  readonly sigmaNext: number
  readonly timestep: number
  readonly family: NoiseFamily
  /** The current sample (do not modify). */
  readonly x: Tensor
  /** Asks the denoiser for these branches (one batched call per model); counted as NFE by the loop. */
  predict(branches: readonly Branch[]): Promise<Prediction[]>
}

/** Per-trajectory guidance state (momentum, switches, history). Created by {@link Guider.start}. */
export interface GuidanceSession {
  step(ctx: StepContext): Promise<GuidedStep>
  /** Optional counters the guider wants reported (e.g. adaptive guidance's saved calls). */
  report?(): Readonly<Record<string, number>>
}

/** "How to combine what the model says." A guider is a value; `start` gives fresh state per trajectory. */
export interface Guider {
  readonly specificationVersion: 'v1'
  /** Short human-readable description, e.g. `cfg(scale=7.5)`. */
  readonly name: string
  start(run: RunInfo): GuidanceSession
}

/** A source of standard normal noise with one independent stream per batch item. */
export interface NoiseSource {
  /** A tensor of the given shape; batch item i is drawn from stream i. */
  next(shape: readonly number[]): Tensor
}

/** Facts a sampler needs for one trajectory. */
export interface SamplerRunInfo {
  readonly steps: number
  readonly sigmas: Float64Array
  readonly family: NoiseFamily
  readonly noise: NoiseSource
}

/** One sampler update. */
export interface SamplerStepInput {
  readonly step: number
  readonly x: Tensor
  readonly sigma: number
  /** Where the step lands (the plan's target for the step when it has targets, else the next sigma). */
  readonly sigmaNext: number
  readonly guided: GuidedStep
}

/** Per-trajectory sampler state (multistep history). */
export interface SamplerSession {
  /** Returns the sample at `sigmaNext` (a new tensor; `x` is not modified). */
  step(input: SamplerStepInput): Tensor
}

/**
 * A sampler written in terms of the guider's `{denoised, renoise}` pair, so CFG++ works with every
 * sampler. With `renoise === denoised` each reduces to its textbook update.
 */
export interface Sampler {
  readonly specificationVersion: 'v1'
  readonly name: string
  /** True when the sampler draws fresh noise during the trajectory. */
  readonly stochastic: boolean
  start(run: SamplerRunInfo): SamplerSession
}
