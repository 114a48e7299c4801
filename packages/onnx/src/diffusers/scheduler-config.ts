import { GuidekitError, vpPlan, vpSchedule } from '@guidekit/core'
import type { BetaSchedule, SamplingPlan, TimestepSpacing, VpPlanOptions, VpSchedule } from '@guidekit/core'

/** The fields of a diffusers `scheduler/scheduler_config.json` that define the noise schedule. */
export interface DiffusersSchedulerConfig {
  /** e.g. `'PNDMScheduler'` (SD1.5 as shipped), `'EulerDiscreteScheduler'`, `'DDIMScheduler'`. */
  readonly className: string
  readonly betaSchedule: BetaSchedule
  readonly betaStart: number
  readonly betaEnd: number
  readonly trainSteps: number
  readonly stepsOffset: number
  readonly timestepSpacing: TimestepSpacing
  /** What the UNet predicts: `'epsilon'` (SD1.x, SD2-base) or `'v_prediction'` (SD2 768). */
  readonly predictionType: 'epsilon' | 'v_prediction' | 'sample'
  /** DDIM's last step goes to alpha 1 (`true`, DDIMScheduler's default) or to abar[0] (`false`, SD1.5's config). */
  readonly setAlphaToOne: boolean
}

/**
 * Reads the noise-schedule part of a diffusers scheduler config. Sampler choices (PNDM's PRK steps,
 * `set_alpha_to_one`, `clip_sample`) are left to guidekit's samplers. A missing `timestep_spacing` is
 * `'leading'` (diffusers' default, and what SD1.5's `steps_offset: 1` config means).
 *
 * @example
 * parseSchedulerConfig(JSON.parse(readFileSync('scheduler/scheduler_config.json', 'utf8')))
 * // { className: 'PNDMScheduler', betaSchedule: 'scaled_linear', betaStart: 0.00085, betaEnd: 0.012, ... }
 */
export function parseSchedulerConfig(json: unknown, where = 'scheduler_config.json'): DiffusersSchedulerConfig {
  const c = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>
  const bad = (field: string, expected: string): never => {
    throw new GuidekitError('MODEL_INVALID', `${where}: '${field}' must be ${expected}, got ${JSON.stringify(c[field])}.`, { details: { file: where, field } })
  }
  if (c.trained_betas !== undefined && c.trained_betas !== null) {
    throw new GuidekitError('UNSUPPORTED', `${where} lists trained_betas; guidekit supports the linear, scaled_linear and squaredcos_cap_v2 beta schedules.`, { details: { file: where } })
  }
  const betaSchedule = (c.beta_schedule ?? 'linear') as BetaSchedule
  if (!['linear', 'scaled_linear', 'squaredcos_cap_v2'].includes(betaSchedule)) bad('beta_schedule', "'linear', 'scaled_linear' or 'squaredcos_cap_v2'")
  const num = (field: string, fallback: number): number => {
    const v = c[field] ?? fallback
    if (typeof v !== 'number' || !Number.isFinite(v)) bad(field, 'a number')
    return v as number
  }
  const spacing = (c.timestep_spacing ?? 'leading') as TimestepSpacing
  if (!['leading', 'trailing', 'linspace'].includes(spacing)) bad('timestep_spacing', "'leading', 'trailing' or 'linspace'")
  const predictionType = (c.prediction_type ?? 'epsilon') as DiffusersSchedulerConfig['predictionType']
  if (!['epsilon', 'v_prediction', 'sample'].includes(predictionType)) bad('prediction_type', "'epsilon', 'v_prediction' or 'sample'")
  return {
    className: typeof c._class_name === 'string' ? c._class_name : 'unknown',
    betaSchedule,
    betaStart: num('beta_start', 0.0001),
    betaEnd: num('beta_end', 0.02),
    trainSteps: num('num_train_timesteps', 1000),
    stepsOffset: num('steps_offset', 0),
    timestepSpacing: spacing,
    predictionType,
    setAlphaToOne: typeof c.set_alpha_to_one === 'boolean' ? c.set_alpha_to_one : c._class_name === 'DDIMScheduler',
  }
}

/** The core VP schedule of a scheduler config. */
export function scheduleFromConfig(config: DiffusersSchedulerConfig): VpSchedule {
  return vpSchedule({ betaSchedule: config.betaSchedule, betaStart: config.betaStart, betaEnd: config.betaEnd, trainSteps: config.trainSteps })
}

/**
 * A sampling plan with the config's spacing and steps offset (overridable). A `DDIMScheduler` config gets
 * diffusers' DDIM plan (`ddim: true`, ending per `set_alpha_to_one`), so `ddim()` reproduces diffusers for
 * every spacing and step count; pass `ddim: false` for another plan (e.g. Karras sigmas).
 */
export function planFromConfig(config: DiffusersSchedulerConfig, schedule: VpSchedule, options: VpPlanOptions): SamplingPlan {
  const spacing = options.spacing ?? config.timestepSpacing
  const ddim: Partial<VpPlanOptions> = config.className === 'DDIMScheduler' ? { ddim: true, final: config.setAlphaToOne ? 'zero' : 'first-train-step' } : {}
  return vpPlan(schedule, { ...ddim, ...options, spacing, stepsOffset: options.stepsOffset ?? (spacing === 'leading' ? config.stepsOffset : 0) })
}
