// The `schedulers` section: diffusers' DDIM / Euler / Euler-a / DPM-Solver++(2M) / flow-match schedulers and
// ComfyUI's sigmas, mapped onto guidekit's schedules, plans and samplers. Every parameter comes from the
// case's own config; VP samples are converted between diffusers' VP scale and guidekit's VE cast
// (x_ve = x_vp * sqrt(1 + sigma^2)) at the edges.
import {
  Tensor,
  ddim,
  dpmpp2m,
  euler,
  eulerAncestral,
  flowMatchEuler,
  flowPlan,
  karrasSigmas,
  modelInput,
  spacedTimesteps,
  toPrediction,
  vpPlan,
  vpSchedule,
  type NoiseFamily,
  type NoiseSource,
  type Parameterization,
  type Sampler,
  type SamplingPlan,
  type TimestepSpacing,
  type VpSchedule,
} from '@guidekit/core'
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

/** DDIM plan of a diffusers DDIMScheduler config (rounded timesteps; final sigma per set_alpha_to_one). */
function ddimPlan(schedule: VpSchedule, config: Config | undefined, steps: number): SamplingPlan {
  return vpPlan(schedule, {
    steps,
    spacing: ((config?.timestep_spacing as string | undefined) ?? 'leading') as TimestepSpacing,
    stepsOffset: num(config, 'steps_offset', 0),
    roundTimesteps: true,
    final: config?.set_alpha_to_one === true ? 'zero' : 'first-train-step',
  })
}

/** Euler-type plan of a diffusers Euler / Euler-a / DPM-Solver config. */
function eulerPlan(schedule: VpSchedule, config: Config | undefined, steps: number, kind: 'euler' | 'dpm'): SamplingPlan {
  const karras = config?.use_karras_sigmas === true
  let spacing = ((config?.timestep_spacing as string | undefined) ?? 'linspace') as TimestepSpacing
  if (kind === 'dpm' && spacing === 'linspace') spacing = 'linspace-exclusive'
  return vpPlan(schedule, { steps, spacing, stepsOffset: num(config, 'steps_offset', 0), karras, roundTimesteps: kind === 'dpm' && karras, final: 'zero' })
}

/**
 * Runs a trajectory step by step with stored model outputs (and stored noise) and compares after every
 * step. `toOut` maps guidekit's sampling-space x at a sigma to the reference's representation.
 */
function trajectory(args: {
  cmp: Comparison
  family: NoiseFamily
  plan: SamplingPlan
  sampler: Sampler
  xInit: Tensor
  outputs: readonly unknown[]
  parameterization: Parameterization
  expectedAfter: readonly unknown[]
  noise?: NoiseSource
  scaledInputs?: readonly unknown[]
  toOut: (x: Tensor, sigma: number) => Tensor
}): void {
  const { cmp, family, plan, sampler, outputs, parameterization, expectedAfter } = args
  const steps = plan.timesteps.length
  const session = sampler.start({ steps, sigmas: plan.sigmas, family, noise: args.noise ?? replayNoise([]) })
  let x = args.xInit
  for (let step = 0; step < steps; step++) {
    const sigma = plan.sigmas[step] as number
    const sigmaNext = plan.sigmas[step + 1] as number
    if (args.scaledInputs) cmp.add(`scaled_model_input[${step}]`, modelInput(x, sigma, family).data, args.scaledInputs[step], TRAJECTORY)
    const out = tensorData(outputs[step], `model_output_per_step[${step}]`)
    const p = toPrediction({ output: new Tensor(out.data, x.shape), x, sigma, parameterization, family })
    x = session.step({ step, x, sigma, sigmaNext, guided: { denoised: p.denoised, renoise: p.denoised } })
    cmp.add(`x_after_step[${step}]`, args.toOut(x, sigmaNext).data, expectedAfter[step], TRAJECTORY)
  }
}

/** Number of values of a stored list or tensor. */
function lengthOf(value: unknown): number {
  return isStoredTensor(value) ? value.data.length : Array.isArray(value) ? value.length : 0
}

const vpOut = (x: Tensor, sigma: number) => scaled(x, 1 / Math.sqrt(1 + sigma * sigma))
const same = (x: Tensor) => x

function caseOf(id: string, run: () => CaseResult): ConformanceCase {
  return { id, run }
}

export function schedulerCases(file: VectorFile): ConformanceCase[] {
  const s = (file.schedulers ?? {}) as Dict
  const cases: ConformanceCase[] = []
  const add = (key: string, make: (value: Dict, id: string) => ConformanceCase | ConformanceCase[]) => {
    const value = s[key]
    if (value === undefined) return
    const made = make(value as Dict, `schedulers/${key}`)
    cases.push(...(Array.isArray(made) ? made : [made]))
  }
  // The SD1.5 tables carry no config of their own: they are SD1.5's scaled_linear schedule with T = their length.
  const sd15 = (length: number) => vpSchedule({ betaSchedule: 'scaled_linear', betaStart: 0.00085, betaEnd: 0.012, trainSteps: length })
  add('sd15_betas', (v, id) => caseOf(id, () => new Comparison().add('betas', sd15((v.data as unknown[]).length).betas, v, SINGLE_STEP).result()))
  add('sd15_alphas_cumprod', (v, id) => caseOf(id, () => new Comparison().add('alphas_cumprod', sd15((v.data as unknown[]).length).alphasCumprod, v, SINGLE_STEP).result()))
  add('diffusers_sd15_sigma_min', (v, id) => caseOf(id, () => new Comparison().add('sigma_min', [sd15(1000).sigmaMin], [v as unknown as number], SINGLE_STEP).result()))
  add('diffusers_sd15_sigma_max', (v, id) => caseOf(id, () => new Comparison().add('sigma_max', [sd15(1000).sigmaMax], [v as unknown as number], SINGLE_STEP).result()))

  add('ddim_set_timesteps', (dict, base) =>
    Object.entries(dict).map(([key, raw]) =>
      caseOf(`${base}/${key}`, () => {
        const c = raw as Dict
        const config = c.config as Config
        const schedule = scheduleFrom(config)
        const plan = ddimPlan(schedule, config, num(c, 'num_inference_steps'))
        const cmp = new Comparison().exact('timesteps', [...plan.timesteps], c.timesteps)
        cmp.add('alpha_prod_t', [...plan.timesteps].map((t) => schedule.alphasCumprod[t] as number), c.alpha_prod_t, SINGLE_STEP)
        const final = config.set_alpha_to_one === true ? 1 : (schedule.alphasCumprod[0] as number)
        cmp.add('final_alpha_cumprod', [final], [c.final_alpha_cumprod as number], SINGLE_STEP)
        return cmp.result()
      }),
    ),
  )

  const ddimSteps = s.ddim_step
  if (Array.isArray(ddimSteps)) {
    for (const raw of ddimSteps as Dict[]) {
      cases.push(
        caseOf(`schedulers/ddim_step/${String(raw.id)}`, () => {
          const config = raw.config as Config
          const schedule = scheduleFrom(config)
          const steps = num(raw, 'num_inference_steps')
          const plan = ddimPlan(schedule, config, steps)
          const index = num(raw, 'step_index')
          const cmp = new Comparison().exact('timestep', plan.timesteps[index], raw.timestep)
          const inputs = raw.inputs as Dict
          const sample = tensorData(inputs.sample, 'sample')
          const sigma = plan.sigmas[index] as number
          const sigmaNext = plan.sigmas[index + 1] as number
          const x = scaled(new Tensor(sample.data, sample.shape), Math.sqrt(1 + sigma * sigma))
          const out = tensorData(inputs.model_output, 'model_output')
          const p = toPrediction({ output: new Tensor(out.data, sample.shape), x, sigma, parameterization: parameterizationOf(config), family: 'vp' })
          const session = ddim({ eta: num(raw, 'eta', 0) }).start({ steps, sigmas: plan.sigmas, family: 'vp', noise: replayNoise(inputs.variance_noise ? [inputs.variance_noise] : []) })
          const next = session.step({ step: index, x, sigma, sigmaNext, guided: { denoised: p.denoised, renoise: p.denoised } })
          const outputs = raw.outputs as Dict
          cmp.add('pred_original_sample', p.denoised.data, outputs.pred_original_sample, SINGLE_STEP)
          cmp.add('prev_sample', vpOut(next, sigmaNext).data, outputs.prev_sample, SINGLE_STEP)
          return cmp.result()
        }),
      )
    }
  }

  add('ddim_trajectory', (c, id) =>
    caseOf(id, () => {
      const config = c.config as Config
      const schedule = scheduleFrom(config)
      const outputs = c.model_output_per_step as unknown[]
      const plan = ddimPlan(schedule, config, num(c, 'num_inference_steps', outputs.length))
      const cmp = new Comparison().exact('timesteps', [...plan.timesteps], c.timesteps)
      const init = tensorData(c.x_init, 'x_init')
      const sigma0 = plan.sigmas[0] as number
      trajectory({
        cmp, family: 'vp', plan, sampler: ddim({ eta: num(c, 'eta', 0) }), parameterization: parameterizationOf(config),
        xInit: scaled(new Tensor(init.data, init.shape), Math.sqrt(1 + sigma0 * sigma0)), outputs, expectedAfter: c.x_after_step as unknown[], toOut: vpOut,
      })
      return cmp.result()
    }),
  )

  add('euler_set_timesteps', (dict, base) =>
    Object.entries(dict).map(([key, raw]) =>
      caseOf(`${base}/${key}`, () => {
        const c = raw as Dict
        const config = c.config as Config
        const plan = eulerPlan(scheduleFrom(config), config, num(c, 'num_inference_steps'), 'euler')
        const cmp = new Comparison().add('timesteps', plan.timesteps, c.timesteps, SINGLE_STEP).add('sigmas', plan.sigmas, c.sigmas, SINGLE_STEP)
        // init_noise_sigma is diffusers' choice of starting scale; guidekit starts from sqrt(alpha^2 + sigma0^2)
        // (exact for unit-variance data), so it is recomputed from the plan by diffusers' rule and compared.
        const maxSigma = Math.max(...plan.sigmas)
        const spacing = (config.timestep_spacing as string | undefined) ?? 'linspace'
        cmp.add('init_noise_sigma', [spacing === 'leading' ? Math.sqrt(maxSigma * maxSigma + 1) : maxSigma], [c.init_noise_sigma as number], SINGLE_STEP)
        return cmp.result()
      }),
    ),
  )

  const eulerLike = (key: string, kind: 'euler' | 'euler-a' | 'dpm') =>
    add(key, (c, id) =>
      caseOf(id, () => {
        const config = c.config as Config
        const outputs = c.model_output_per_step as unknown[]
        const steps = num(c, 'num_inference_steps', outputs.length)
        const plan = eulerPlan(scheduleFrom(config), config, steps, kind === 'dpm' ? 'dpm' : 'euler')
        const cmp = new Comparison().add('sigmas', plan.sigmas, c.sigmas, SINGLE_STEP)
        if (kind === 'dpm') cmp.exact('timesteps', [...plan.timesteps], c.timesteps)
        else cmp.add('timesteps', plan.timesteps, c.timesteps, SINGLE_STEP)
        const init = tensorData(c.x_init, 'x_init')
        const sigma0 = plan.sigmas[0] as number
        // diffusers' Euler samplers hold x in the VE cast already; DPM-Solver holds the VP sample.
        const xInit = kind === 'dpm' ? scaled(new Tensor(init.data, init.shape), Math.sqrt(1 + sigma0 * sigma0)) : new Tensor(init.data, init.shape)
        trajectory({
          cmp, family: 'vp', plan, outputs, parameterization: parameterizationOf(config), xInit,
          sampler: kind === 'dpm' ? dpmpp2m() : kind === 'euler-a' ? eulerAncestral({ eta: 1 }) : euler(),
          expectedAfter: c.x_after_step as unknown[],
          ...(isStoredTensor((c.noise_per_step as unknown[] | undefined)?.[0]) ? { noise: replayNoise(c.noise_per_step as unknown[]) } : {}),
          ...(Array.isArray(c.scaled_model_input_per_step) ? { scaledInputs: c.scaled_model_input_per_step as unknown[] } : {}),
          toOut: kind === 'dpm' ? vpOut : same,
        })
        return cmp.result()
      }),
    )
  eulerLike('euler_karras_trajectory', 'euler')
  eulerLike('euler_ancestral_trajectory', 'euler-a')
  eulerLike('dpmpp_2m_karras_trajectory', 'dpm')

  add('dpmpp_2m_linspace_set_timesteps', (c, id) =>
    caseOf(id, () => {
      const config = c.config as Config
      const plan = eulerPlan(scheduleFrom(config), config, lengthOf(c.timesteps), 'dpm')
      return new Comparison().exact('timesteps', [...plan.timesteps], c.timesteps).add('sigmas', plan.sigmas, c.sigmas, SINGLE_STEP).result()
    }),
  )

  const flowCase = (key: string) =>
    add(key, (c, id) =>
      caseOf(id, () => {
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
          trajectory({
            cmp, family: 'flow', plan, sampler: flowMatchEuler(), parameterization: 'flow-velocity', xInit: new Tensor(init.data, init.shape),
            outputs: c.model_output_per_step as unknown[], expectedAfter: c.x_after_step as unknown[], toOut: same,
          })
        }
        return cmp.result()
      }),
    )
  flowCase('flow_match_euler_trajectory')
  flowCase('flow_match_euler_shift1_set_timesteps')

  add('comfy', (dict, base) => {
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
        out.push(
          caseOf(`${base}/${key}`, () => {
            const n = raw.data.length - 1
            const sigmas = [...karrasSigmas({ sigmaMin: sMin, sigmaMax: sMax, steps: n, rho: 7 }), 0]
            return new Comparison().add(key, sigmas, raw, SINGLE_STEP).result()
          }),
        )
      }
    }
    return out
  })
  return cases
}
