// The `schedulers` section: diffusers' DDIM / Euler / Euler-a / DPM-Solver++(2M) / flow-match schedulers and
// ComfyUI's sigmas, mapped onto guidekit's schedules, plans and samplers. Every parameter comes from the
// case's own config; VP samples are converted between diffusers' VP scale and guidekit's VE cast
// (x_ve = x_vp * sqrt(1 + sigma^2)) at the edges. A key is a kind (`ddim_trajectory`) or a kind with a variant
// (`ddim_trajectory/trailing/n7/epsilon/eta0`, as in variant-vectors.json); the kind picks the mapping.
// Trajectories run through core's sample() with a denoiser that replays the stored model outputs.
import { Tensor, ddim, dpmpp2m, euler, eulerAncestral, flowMatchEuler, flowPlan, karrasSigmas, modelInput, sample, toPrediction, unguided, vpPlan, vpSchedule, type Denoiser, type NoiseSource, type Parameterization, type Sampler, type SamplingPlan, type TimestepSpacing, type VpSchedule } from '@guidekit/core'
import { Comparison, SINGLE_STEP, TRAJECTORY, isStoredTensor, num, tensorData, type CaseResult, type ConformanceCase, type VectorFile } from './types.js'

type Config = Readonly<Record<string, unknown>>
type Dict = Readonly<Record<string, unknown>>

function scheduleFrom(config: Config | undefined, precision: 'float32' | 'float64' = 'float32'): VpSchedule {
  const betaSchedule = (config?.beta_schedule as string | undefined) ?? 'linear'
  return vpSchedule({
    betaSchedule: betaSchedule as 'scaled_linear' | 'linear' | 'squaredcos_cap_v2',
    betaStart: num(config, 'beta_start', 0.0001),
    betaEnd: num(config, 'beta_end', 0.02),
    trainSteps: num(config, 'num_train_timesteps', 1000),
    precision,
  })
}

function parameterizationOf(config: Config | undefined): Parameterization {
  const p = (config?.prediction_type as string | undefined) ?? 'epsilon'
  if (p === 'epsilon') return 'epsilon'
  if (p === 'v_prediction') return 'v'
  if (p === 'sample') return 'x0'
  throw new Error(`unsupported prediction_type '${p}'`)
}

/** A noise source that replays stored noise, one tensor per call. */
function replayNoise(tensors: readonly unknown[]): NoiseSource {
  let i = 0
  return {
    next(shape) {
      const t = tensorData(tensors[i++], `noise ${i - 1}`)
      return new Tensor(t.data, shape)
    },
  }
}

function scaled(x: Tensor, factor: number): Tensor {
  const out = new Float32Array(x.size)
  for (let i = 0; i < out.length; i++) out[i] = (x.data[i] as number) * factor
  return new Tensor(out, x.shape)
}

/** diffusers' `set_alpha_to_one` (default true): the last DDIM step goes to alpha 1 rather than abar[0]. */
const alphaToOne = (config: Config | undefined) => config?.set_alpha_to_one !== false

/** diffusers' DDIM plan of a DDIMScheduler config: each step lands at abar[t - T//N] (core's `ddim: true`). */
function ddimPlan(schedule: VpSchedule, config: Config | undefined, steps: number): SamplingPlan {
  return vpPlan(schedule, {
    steps,
    spacing: ((config?.timestep_spacing as string | undefined) ?? 'leading') as TimestepSpacing,
    stepsOffset: num(config, 'steps_offset', 0),
    ddim: true,
    final: alphaToOne(config) ? 'zero' : 'first-train-step',
  })
}

/** guidekit has no x0 clipping: a DDIM config must turn diffusers' default `clip_sample: true` off. */
function noClipping(config: Config | undefined): void {
  if (config?.clip_sample !== false) throw new Error("clip_sample is on (diffusers' default); guidekit does not clip x0, so the case must set it false")
}

/** Euler-type plan of a diffusers Euler / Euler-a / DPM-Solver config. */
function eulerPlan(schedule: VpSchedule, config: Config | undefined, steps: number, kind: 'euler' | 'dpm'): SamplingPlan {
  const karras = config?.use_karras_sigmas === true
  let spacing = ((config?.timestep_spacing as string | undefined) ?? 'linspace') as TimestepSpacing
  if (kind === 'dpm' && spacing === 'linspace') spacing = 'linspace-exclusive'
  return vpPlan(schedule, { steps, spacing, stepsOffset: num(config, 'steps_offset', 0), karras, roundTimesteps: kind === 'dpm' && karras, final: 'zero' })
}

/**
 * Runs a trajectory through `sample()` with a denoiser that replays the stored model outputs (and a noise
 * source that replays stored noise), and compares after every step: each model call sees the sample the
 * previous step left (re-expressed at its own sigma when a plan step lands elsewhere), the result the last
 * one. `toOut` maps guidekit's sampling-space x at a sigma to the reference's representation.
 */
async function trajectory(args: {
  cmp: Comparison
  plan: SamplingPlan
  sampler: Sampler
  xInit: Tensor
  outputs: readonly unknown[]
  parameterization: Parameterization
  expectedAfter: readonly unknown[]
  noise?: NoiseSource
  scaledInputs?: readonly unknown[]
  toOut: (x: Tensor, sigma: number) => Tensor
}): Promise<void> {
  const { cmp, plan, outputs, parameterization, expectedAfter, toOut } = args
  const steps = plan.timesteps.length
  if (outputs.length !== steps || expectedAfter.length !== steps) throw new Error(`${steps} steps but ${outputs.length} model outputs and ${expectedAfter.length} x_after_step entries`)
  const family = plan.family
  let step = 0
  const denoiser: Denoiser = {
    specificationVersion: 'v1',
    family,
    predict({ x, sigma, branches }) {
      if (step > 0) cmp.add(`x_after_step[${step - 1}]`, toOut(x, sigma).data, expectedAfter[step - 1], TRAJECTORY)
      if (args.scaledInputs) cmp.add(`scaled_model_input[${step}]`, modelInput(x, sigma, family).data, args.scaledInputs[step], TRAJECTORY)
      const out = tensorData(outputs[step], `model_output_per_step[${step}]`)
      step++
      const p = toPrediction({ output: new Tensor(out.data, x.shape), x, sigma, parameterization, family })
      return Promise.resolve(branches.map(() => p))
    },
  }
  const result = await sample({ denoiser, guider: unguided(), sampler: args.sampler, plan, latents: args.xInit, noise: args.noise ?? replayNoise([]) })
  cmp.add(`x_after_step[${steps - 1}]`, toOut(result.latents, plan.sigmas[steps] as number).data, expectedAfter[steps - 1], TRAJECTORY)
}

/** Number of values of a stored list or tensor. */
function lengthOf(value: unknown): number {
  return isStoredTensor(value) ? value.data.length : Array.isArray(value) ? value.length : 0
}

const vpOut = (x: Tensor, sigma: number) => scaled(x, 1 / Math.sqrt(1 + sigma * sigma))
const same = (x: Tensor) => x

function caseOf(id: string, run: () => CaseResult | Promise<CaseResult>): ConformanceCase {
  return { id, run }
}

/** The model outputs of a trajectory and its step count (`num_inference_steps`, else one step per output). */
function stepsOf(c: Dict): { outputs: unknown[]; steps: number } {
  const outputs = c.model_output_per_step as unknown[]
  if (!Array.isArray(outputs)) throw new Error('model_output_per_step: expected a list of tensors')
  return { outputs, steps: num(c, 'num_inference_steps', outputs.length) }
}

/** A VP sample stored by diffusers (`x_init` of DDIM / DPM-Solver) in guidekit's VE cast at the plan's first sigma. */
function veStart(value: unknown, sigma0: number): Tensor {
  const t = tensorData(value, 'x_init')
  return scaled(new Tensor(t.data, t.shape), Math.sqrt(1 + sigma0 * sigma0))
}

// The SD1.5 tables carry no config of their own: they are SD1.5's scaled_linear schedule with T = their length.
const sd15 = (length: number) => vpSchedule({ betaSchedule: 'scaled_linear', betaStart: 0.00085, betaEnd: 0.012, trainSteps: length })

function ddimTable(c: Dict): CaseResult {
  const config = c.config as Config
  const schedule = scheduleFrom(config)
  const plan = ddimPlan(schedule, config, num(c, 'num_inference_steps'))
  const cmp = new Comparison().exact('timesteps', [...plan.timesteps], c.timesteps)
  cmp.add('alpha_prod_t', [...plan.timesteps].map((t) => schedule.alphasCumprod[t] as number), c.alpha_prod_t, SINGLE_STEP)
  cmp.add('final_alpha_cumprod', [alphaToOne(config) ? 1 : (schedule.alphasCumprod[0] as number)], [c.final_alpha_cumprod as number], SINGLE_STEP)
  return cmp.result()
}

function ddimStep(raw: Dict): CaseResult {
  const config = raw.config as Config
  noClipping(config)
  const schedule = scheduleFrom(config)
  const steps = num(raw, 'num_inference_steps')
  const plan = ddimPlan(schedule, config, steps)
  const index = num(raw, 'step_index')
  const cmp = new Comparison().exact('timestep', plan.timesteps[index], raw.timestep)
  const inputs = raw.inputs as Dict
  const sigma = plan.sigmas[index] as number
  const sigmaNext = (plan.targets ? plan.targets[index] : plan.sigmas[index + 1]) as number
  const x = veStart(inputs.sample, sigma)
  const out = tensorData(inputs.model_output, 'model_output')
  const p = toPrediction({ output: new Tensor(out.data, x.shape), x, sigma, parameterization: parameterizationOf(config), family: 'vp' })
  const session = ddim({ eta: num(raw, 'eta', 0) }).start({ steps, sigmas: plan.sigmas, family: 'vp', noise: replayNoise(inputs.variance_noise ? [inputs.variance_noise] : []) })
  const next = session.step({ step: index, x, sigma, sigmaNext, guided: { denoised: p.denoised, renoise: p.denoised } })
  const outputs = raw.outputs as Dict
  cmp.add('pred_original_sample', p.denoised.data, outputs.pred_original_sample, SINGLE_STEP)
  cmp.add('prev_sample', vpOut(next, sigmaNext).data, outputs.prev_sample, SINGLE_STEP)
  return cmp.result()
}

/** Replayed noise of a trajectory (`noise_per_step`), when it has any. */
const noiseOf = (c: Dict) => (Array.isArray(c.noise_per_step) ? { noise: replayNoise(c.noise_per_step as unknown[]) } : {})

async function ddimTrajectory(c: Dict): Promise<CaseResult> {
  const config = c.config as Config
  noClipping(config)
  const { outputs, steps } = stepsOf(c)
  const plan = ddimPlan(scheduleFrom(config), config, steps)
  const cmp = new Comparison().exact('timesteps', [...plan.timesteps], c.timesteps)
  await trajectory({
    cmp, plan, sampler: ddim({ eta: num(c, 'eta', 0) }), parameterization: parameterizationOf(config), ...noiseOf(c),
    xInit: veStart(c.x_init, plan.sigmas[0] as number), outputs, expectedAfter: c.x_after_step as unknown[], toOut: vpOut,
  })
  return cmp.result()
}

function eulerTable(c: Dict): CaseResult {
  const config = c.config as Config
  const plan = eulerPlan(scheduleFrom(config), config, num(c, 'num_inference_steps'), 'euler')
  const cmp = new Comparison().add('timesteps', plan.timesteps, c.timesteps, SINGLE_STEP).add('sigmas', plan.sigmas, c.sigmas, SINGLE_STEP)
  // init_noise_sigma is diffusers' choice of starting scale; guidekit starts from sqrt(alpha^2 + sigma0^2)
  // (exact for unit-variance data), so it is recomputed from the plan by diffusers' rule and compared.
  const maxSigma = Math.max(...plan.sigmas)
  const spacing = (config.timestep_spacing as string | undefined) ?? 'linspace'
  cmp.add('init_noise_sigma', [spacing === 'leading' ? Math.sqrt(maxSigma * maxSigma + 1) : maxSigma], [c.init_noise_sigma as number], SINGLE_STEP)
  return cmp.result()
}

async function eulerLikeTrajectory(c: Dict, kind: 'euler' | 'euler-a' | 'dpm'): Promise<CaseResult> {
  const config = c.config as Config
  const { outputs, steps } = stepsOf(c)
  const plan = eulerPlan(scheduleFrom(config), config, steps, kind === 'dpm' ? 'dpm' : 'euler')
  const cmp = new Comparison().add('sigmas', plan.sigmas, c.sigmas, SINGLE_STEP)
  if (kind === 'dpm') cmp.exact('timesteps', [...plan.timesteps], c.timesteps)
  else cmp.add('timesteps', plan.timesteps, c.timesteps, SINGLE_STEP)
  const init = tensorData(c.x_init, 'x_init')
  await trajectory({
    cmp, plan, outputs, parameterization: parameterizationOf(config), ...noiseOf(c),
    // diffusers' Euler samplers hold x in the VE cast already; DPM-Solver holds the VP sample.
    xInit: kind === 'dpm' ? veStart(c.x_init, plan.sigmas[0] as number) : new Tensor(init.data, init.shape),
    sampler: kind === 'dpm' ? dpmpp2m() : kind === 'euler-a' ? eulerAncestral({ eta: 1 }) : euler(),
    expectedAfter: c.x_after_step as unknown[],
    ...(Array.isArray(c.scaled_model_input_per_step) ? { scaledInputs: c.scaled_model_input_per_step as unknown[] } : {}),
    toOut: kind === 'dpm' ? vpOut : same,
  })
  return cmp.result()
}

async function flowCase(c: Dict): Promise<CaseResult> {
  const config = c.config as Config
  const steps = num(c, 'num_inference_steps', lengthOf(c.timesteps))
  const shift = num(config, 'shift', 1)
  const trainSteps = num(config, 'num_train_timesteps', 1000)
  const plan = flowPlan({ steps, shift, trainSteps })
  const cmp = new Comparison().add('sigmas', plan.sigmas, c.sigmas, SINGLE_STEP).add('timesteps', plan.timesteps, c.timesteps, SINGLE_STEP)
  if (typeof c.init_sigma_min === 'number') {
    // The scheduler's training sigma range: the shifted 1/T and the shifted 1.
    const shifted = (v: number) => (shift * v) / (1 + (shift - 1) * v)
    cmp.add('init_sigma_min', [shifted(1 / trainSteps)], [c.init_sigma_min], SINGLE_STEP).add('init_sigma_max', [shifted(1)], [c.init_sigma_max as number], SINGLE_STEP)
  }
  if (Array.isArray(c.model_output_per_step)) {
    const init = tensorData(c.x_init, 'x_init')
    await trajectory({
      cmp, plan, sampler: flowMatchEuler(), parameterization: 'flow-velocity', xInit: new Tensor(init.data, init.shape),
      outputs: c.model_output_per_step as unknown[], expectedAfter: c.x_after_step as unknown[], toOut: same,
    })
  }
  return cmp.result()
}

function comfyCases(dict: Dict, base: string): ConformanceCase[] {
  // ComfyUI's ModelSamplingDiscrete: SD1.5 betas in float64 (its default discrete schedule), sigmas stored as float32.
  const schedule = vpSchedule({ betaSchedule: 'scaled_linear', betaStart: 0.00085, betaEnd: 0.012, trainSteps: 1000, precision: 'float64' })
  const sMin = Math.fround(schedule.sigmaMin)
  const sMax = Math.fround(schedule.sigmaMax)
  const out: ConformanceCase[] = []
  for (const [key, raw] of Object.entries(dict)) {
    if (typeof raw === 'number') {
      const value = /min/.test(key) ? sMin : sMax
      out.push(caseOf(`${base}/${key}`, () => new Comparison().add(key, [value], [raw], SINGLE_STEP).result()))
    } else if (isStoredTensor(raw)) {
      const n = raw.data.length - 1
      out.push(caseOf(`${base}/${key}`, () => new Comparison().add(key, [...karrasSigmas({ sigmaMin: sMin, sigmaMax: sMax, steps: n, rho: 7 }), 0], raw, SINGLE_STEP).result()))
    }
  }
  return out
}

type Handler = (value: Dict, id: string) => ConformanceCase[]
const one = (run: (c: Dict) => CaseResult | Promise<CaseResult>): Handler => (value, id) => [caseOf(id, () => run(value))]
/** Dictionaries of cases (`ddim_set_timesteps.trailing`, `...['trailing/n7']`): one case per entry. */
const each = (run: (c: Dict) => CaseResult): Handler => (dict, base) => Object.entries(dict).map(([key, raw]) => caseOf(`${base}/${key}`, () => run(raw as Dict)))

/** What each kind of key maps onto (the key's part before the first '/'). */
const kinds: Readonly<Record<string, Handler>> = {
  sd15_betas: one((v) => new Comparison().add('betas', sd15((v.data as unknown[]).length).betas, v, SINGLE_STEP).result()),
  sd15_alphas_cumprod: one((v) => new Comparison().add('alphas_cumprod', sd15((v.data as unknown[]).length).alphasCumprod, v, SINGLE_STEP).result()),
  diffusers_sd15_sigma_min: one((v) => new Comparison().add('sigma_min', [sd15(1000).sigmaMin], [v as unknown as number], SINGLE_STEP).result()),
  diffusers_sd15_sigma_max: one((v) => new Comparison().add('sigma_max', [sd15(1000).sigmaMax], [v as unknown as number], SINGLE_STEP).result()),
  ddim_set_timesteps: each(ddimTable),
  ddim_step: (list, base) => (list as unknown as Dict[]).map((raw) => caseOf(`${base}/${String(raw.id)}`, () => ddimStep(raw))),
  ddim_trajectory: one(ddimTrajectory),
  euler_set_timesteps: each(eulerTable),
  euler_trajectory: one((c) => eulerLikeTrajectory(c, 'euler')),
  euler_karras_trajectory: one((c) => eulerLikeTrajectory(c, 'euler')),
  euler_ancestral_trajectory: one((c) => eulerLikeTrajectory(c, 'euler-a')),
  dpmpp_2m_trajectory: one((c) => eulerLikeTrajectory(c, 'dpm')),
  dpmpp_2m_karras_trajectory: one((c) => eulerLikeTrajectory(c, 'dpm')),
  dpmpp_2m_linspace_set_timesteps: one((c) => {
    const config = c.config as Config
    const plan = eulerPlan(scheduleFrom(config), config, num(c, 'num_inference_steps', lengthOf(c.timesteps)), 'dpm')
    return new Comparison().exact('timesteps', [...plan.timesteps], c.timesteps).add('sigmas', plan.sigmas, c.sigmas, SINGLE_STEP).result()
  }),
  flow_match_euler_trajectory: one(flowCase),
  flow_match_euler_shift1_set_timesteps: one(flowCase),
  comfy: comfyCases,
}

export function schedulerCases(file: VectorFile): ConformanceCase[] {
  const cases: ConformanceCase[] = []
  for (const [key, value] of Object.entries(file.schedulers ?? {})) {
    const id = `schedulers/${key}`
    const handler = kinds[key.split('/')[0] as string]
    if (handler) cases.push(...handler(value as Dict, id))
    else cases.push(caseOf(id, () => ({ status: 'skip', note: `no guidekit mapping for scheduler data '${key.split('/')[0]}'` })))
  }
  return cases
}
