// Noise schedules and sampling plans (timesteps + sigmas), matching diffusers' schedulers.
import type { NoiseFamily } from './contracts.js'
import { GuidekitError, check, checkNumber } from './errors.js'

const f = Math.fround

/** Beta schedules of variance-preserving models (diffusers names). */
export type BetaSchedule = 'scaled_linear' | 'linear' | 'squaredcos_cap_v2'

/** A variance-preserving (DDPM) training schedule. */
export interface VpSchedule {
  readonly family: 'vp'
  readonly trainSteps: number
  readonly betas: Float64Array
  /** `abar_t = prod_{s<=t} (1 - beta_s)`, t = 0..T-1 (float32 values, as diffusers stores them). */
  readonly alphasCumprod: Float64Array
  /** `sigma_t = sqrt((1 - abar_t) / abar_t)`, increasing in t. */
  readonly sigmas: Float64Array
  readonly sigmaMin: number
  readonly sigmaMax: number
  /** sigma at a (possibly fractional) timestep, linear interpolation in t (diffusers Euler). */
  sigmaAt(timestep: number): number
  /** The (fractional) timestep of a sigma, interpolated in log sigma (diffusers `_sigma_to_t`). */
  timestepOf(sigma: number): number
}

/**
 * A variance-preserving schedule. Defaults are Stable Diffusion 1.5's (`scaled_linear`, 0.00085 -> 0.012,
 * 1000 steps). With `precision: 'float32'` (default) betas and cumulative products are computed in float32
 * exactly as torch does (linspace, square, sequential cumprod), so sigmas match diffusers to float32
 * rounding; `'float64'` computes them in float64, as ComfyUI does.
 *
 * @example
 * const sd15 = vpSchedule()                 // sigmaMin 0.0291675, sigmaMax 14.614645
 * const cosine = vpSchedule({ betaSchedule: 'squaredcos_cap_v2' })
 */
export function vpSchedule(
  options: { betaSchedule?: BetaSchedule; betaStart?: number; betaEnd?: number; trainSteps?: number; precision?: 'float32' | 'float64' } = {},
): VpSchedule {
  const { betaSchedule = 'scaled_linear', betaStart = 0.00085, betaEnd = 0.012, trainSteps = 1000, precision = 'float32' } = options
  check(precision === 'float32' || precision === 'float64', 'precision', precision, "'float32' (diffusers) or 'float64' (ComfyUI)")
  const r = precision === 'float32' ? f : (v: number) => v
  check(['scaled_linear', 'linear', 'squaredcos_cap_v2'].includes(betaSchedule), 'betaSchedule', betaSchedule, "'scaled_linear', 'linear' or 'squaredcos_cap_v2'")
  checkNumber('trainSteps', trainSteps, { min: 2, integer: true })
  checkNumber('betaStart', betaStart, { min: 0, max: 1, minExclusive: true, maxExclusive: true })
  checkNumber('betaEnd', betaEnd, { min: 0, max: 1, minExclusive: true, maxExclusive: true })
  const T = trainSteps
  const betas = new Float64Array(T)
  if (betaSchedule === 'squaredcos_cap_v2') {
    // Nichol & Dhariwal (arXiv 2102.09672): beta_t = min(1 - abar(t+1)/abar(t), 0.999) with a cosine abar,
    // computed in float64 and stored as float32 (diffusers `betas_for_alpha_bar`).
    const abar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2
    for (let i = 0; i < T; i++) betas[i] = r(Math.min(1 - abar((i + 1) / T) / abar(i / T), 0.999))
  } else {
    const lo = betaSchedule === 'scaled_linear' ? Math.sqrt(betaStart) : betaStart
    const hi = betaSchedule === 'scaled_linear' ? Math.sqrt(betaEnd) : betaEnd
    const ramp = precision === 'float32' ? linspaceFloat32(lo, hi, T) : Float64Array.from({ length: T }, (_, i) => lo + (i / (T - 1)) * (hi - lo))
    for (let i = 0; i < T; i++) {
      const v = ramp[i] as number
      betas[i] = betaSchedule === 'scaled_linear' ? r(v * v) : v
    }
  }
  const alphasCumprod = new Float64Array(T)
  let acc = 1
  for (let i = 0; i < T; i++) {
    acc = r(acc * r(1 - (betas[i] as number)))
    alphasCumprod[i] = acc
  }
  const sigmas = alphasCumprod.map((a) => Math.sqrt((1 - a) / a))
  const logSigmas = sigmas.map(Math.log)
  return {
    family: 'vp',
    trainSteps: T,
    betas,
    alphasCumprod,
    sigmas,
    sigmaMin: sigmas[0] as number,
    sigmaMax: sigmas[T - 1] as number,
    sigmaAt(timestep: number): number {
      const t = Math.min(Math.max(timestep, 0), T - 1)
      const i = Math.min(Math.floor(t), T - 2)
      const w = t - i
      return (1 - w) * (sigmas[i] as number) + w * (sigmas[i + 1] as number)
    },
    timestepOf(sigma: number): number {
      const ls = Math.log(Math.max(sigma, 1e-10))
      // last index with logSigmas[idx] <= ls, clipped to [0, T - 2]
      let lo = 0
      let hi = T - 1
      if (ls < (logSigmas[0] as number)) return 0
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1
        if ((logSigmas[mid] as number) <= ls) lo = mid
        else hi = mid - 1
      }
      const low = Math.min(lo, T - 2)
      const a = logSigmas[low] as number
      const b = logSigmas[low + 1] as number
      const w = Math.min(Math.max((a - ls) / (a - b), 0), 1)
      return (1 - w) * low + w * (low + 1)
    },
  }
}

/** torch.linspace in float32 (the CPU kernel's two-sided formula), as float32 values. */
function linspaceFloat32(start: number, end: number, steps: number): Float64Array {
  const out = new Float64Array(steps)
  const s = f(start)
  const e = f(end)
  const step = f(f(e - s) / (steps - 1))
  const half = Math.floor(steps / 2)
  for (let i = 0; i < steps; i++) out[i] = i < half ? f(s + f(step * i)) : f(e - f(step * (steps - i - 1)))
  return out
}

/** How inference timesteps are spread over the training range (diffusers `timestep_spacing`). */
export type TimestepSpacing = 'leading' | 'trailing' | 'linspace' | 'linspace-exclusive'

/**
 * Inference timesteps, largest first, as diffusers computes them:
 * - `leading`: `arange(N) * (T // N) + stepsOffset`, reversed (951, 901, ..., 1 for SD1.5, N = 20, offset 1)
 * - `trailing`: `round(arange(T, 0, -T/N)) - 1` (999, 949, ..., 49)
 * - `linspace`: `linspace(0, T - 1, N)`, reversed, not rounded (999, 946.42, ..., 0); pass `round: true`
 *   for DDIM's rounded variant
 * - `linspace-exclusive`: DPM-Solver's linspace, `round(linspace(0, T - 1, N + 1))` reversed without its last
 *   element (999, 949, ..., 50)
 *
 * The float64 arithmetic is numpy's (`arange` fills `start + i * delta` with `delta = (start + step) - start`;
 * `linspace` is `i * ((stop - start) / (N - 1))` with the last value set to `stop`) and rounding is half to
 * even, so ties round the same way: trailing N = 16 has 812.5 -> 812 (811), linspace N = 27 has
 * 13 * (999 / 26) = 499.49999999999994 -> 499.
 */
export function spacedTimesteps(options: { trainSteps: number; steps: number; spacing: TimestepSpacing; stepsOffset?: number; round?: boolean }): number[] {
  const { trainSteps: T, steps: N, spacing, stepsOffset = 0, round = false } = options
  checkNumber('steps', N, { min: 1, integer: true })
  checkNumber('trainSteps', T, { min: 2, integer: true })
  checkNumber('stepsOffset', stepsOffset, { min: 0, integer: true })
  check(N <= T, 'steps', N, `at most trainSteps (${T})`)
  let ts: number[]
  switch (spacing) {
    case 'leading': {
      const ratio = Math.floor(T / N)
      ts = Array.from({ length: N }, (_, i) => i * ratio + stepsOffset).reverse()
      break
    }
    case 'trailing': {
      const delta = T - T / N - T
      ts = Array.from({ length: N }, (_, i) => roundHalfEven(T + i * delta) - 1)
      break
    }
    case 'linspace': {
      const values = numpyLinspace(T - 1, N).reverse()
      ts = round ? values.map(roundHalfEven) : values.map(f)
      break
    }
    case 'linspace-exclusive': {
      ts = numpyLinspace(T - 1, N + 1).map(roundHalfEven).reverse().slice(0, N)
      break
    }
    default:
      throw new GuidekitError('INVALID_ARGUMENT', `spacing must be 'leading', 'trailing', 'linspace' or 'linspace-exclusive', got ${JSON.stringify(spacing)}.`, { details: { parameter: 'spacing' } })
  }
  for (const t of ts) check(t >= 0 && t <= T - 1, 'timesteps', ts, `within [0, ${T - 1}] (check stepsOffset)`)
  return ts
}

/** numpy's `linspace(0, stop, n)` in float64: `i * (stop / (n - 1))`, the last value exactly `stop`. */
function numpyLinspace(stop: number, n: number): number[] {
  if (n === 1) return [0]
  const step = stop / (n - 1)
  return Array.from({ length: n }, (_, i) => (i === n - 1 ? stop : i * step))
}

/** numpy's round (half to even). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x)
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r
}

/**
 * Karras et al. (arXiv 2206.00364, eq. 5) sigmas: `(smax^(1/rho) + i/(N-1) (smin^(1/rho) - smax^(1/rho)))^rho`,
 * i = 0..N-1, largest first (no trailing zero).
 */
export function karrasSigmas(options: { sigmaMin: number; sigmaMax: number; steps: number; rho?: number }): number[] {
  const { sigmaMin, sigmaMax, steps, rho = 7 } = options
  checkNumber('steps', steps, { min: 1, integer: true })
  checkNumber('sigmaMin', sigmaMin, { min: 0, minExclusive: true })
  checkNumber('sigmaMax', sigmaMax, { min: sigmaMin })
  checkNumber('rho', rho, { min: 0, minExclusive: true })
  const a = sigmaMax ** (1 / rho)
  const b = sigmaMin ** (1 / rho)
  return Array.from({ length: steps }, (_, i) => (a + (steps === 1 ? 0 : i / (steps - 1)) * (b - a)) ** rho)
}

/**
 * A sampling plan: `steps` model timesteps and `steps + 1` sigmas (strictly decreasing; the last is where
 * the trajectory ends, usually 0). Step i evaluates the model at `sigmas[i]` and lands at `targets[i]`
 * (default `sigmas[i + 1]`).
 */
export interface SamplingPlan {
  readonly family: NoiseFamily
  readonly sigmas: Float64Array
  readonly timesteps: Float64Array
  /**
   * Where each step lands when that is not the next sigma (`steps` values, each `<= sigmas[i]`; the last
   * equals the last sigma). diffusers' DDIM steps from t to `t - T//N` whatever the spacing, so with
   * trailing or linspace spacing and N not dividing T it lands above the next timestep's sigma; `sample()`
   * then re-expresses x at `sigmas[i + 1]`, keeping the model input unchanged. Built by `vpPlan({ ddim: true })`.
   */
  readonly targets?: Float64Array
}

/**
 * Checks a plan and returns it: lengths, finiteness, strictly decreasing non-negative sigmas, and targets
 * (when given) with `0 <= targets[i] <= sigmas[i]` and the last target equal to the last sigma. A plan with
 * targets may end where its last step starts (diffusers' DDIM ends so when its last timestep is 0).
 */
export function checkPlan(plan: SamplingPlan): SamplingPlan {
  const { sigmas, timesteps, targets } = plan
  check(plan.family === 'vp' || plan.family === 'flow', 'plan.family', plan.family, "'vp' or 'flow'")
  check(timesteps.length >= 1, 'plan.timesteps', timesteps.length, 'at least one timestep (steps >= 1)')
  check(sigmas.length === timesteps.length + 1, 'plan.sigmas length', sigmas.length, `timesteps.length + 1 = ${timesteps.length + 1}`)
  for (let i = 0; i < sigmas.length; i++) {
    const s = sigmas[i] as number
    check(Number.isFinite(s) && s >= 0, `plan.sigmas[${i}]`, s, 'a finite number >= 0')
    const endsInPlace = targets !== undefined && i === sigmas.length - 1 && s === sigmas[i - 1]
    if (i > 0 && !endsInPlace) check(s < (sigmas[i - 1] as number), `plan.sigmas[${i}]`, s, `strictly less than sigmas[${i - 1}] = ${sigmas[i - 1]} (sigmas must be decreasing)`)
  }
  check(plan.family !== 'flow' || (sigmas[0] as number) <= 1, 'plan.sigmas[0]', sigmas[0], "<= 1 for the 'flow' family")
  for (let i = 0; i < timesteps.length; i++) check(Number.isFinite(timesteps[i]), `plan.timesteps[${i}]`, timesteps[i], 'finite')
  if (targets !== undefined) {
    check(targets.length === timesteps.length, 'plan.targets length', targets.length, `one per step (${timesteps.length}), or leave targets out`)
    for (let i = 0; i < targets.length; i++) {
      const t = targets[i] as number
      check(Number.isFinite(t) && t >= 0 && t <= (sigmas[i] as number), `plan.targets[${i}]`, t, `a finite number in [0, sigmas[${i}] = ${sigmas[i]}] (a step cannot add noise)`)
    }
    const end = sigmas[sigmas.length - 1] as number
    check(targets[targets.length - 1] === end, `plan.targets[${targets.length - 1}]`, targets[targets.length - 1], `the last sigma (${end}): the trajectory ends where its last step lands`)
  }
  return plan
}

/** Options of {@link vpPlan}. */
export interface VpPlanOptions {
  steps: number
  /** Default `'leading'` with `stepsOffset` 1 (SD1.5's shipped config). */
  spacing?: TimestepSpacing
  stepsOffset?: number
  /** Karras sigmas between the schedule's sigmaMin and sigmaMax; timesteps from log-sigma interpolation. */
  karras?: boolean
  /** Round timesteps to integers (DDIM's and DPM-Solver's Karras timesteps are rounded; Euler's are not). */
  roundTimesteps?: boolean
  /**
   * Where the trajectory ends: `'zero'` (Euler, DPM-Solver; DDIM with `set_alpha_to_one = true`) or
   * `'first-train-step'` (DDIM with `set_alpha_to_one = false`: the sigma of abar[0]; without `ddim`, 0 when
   * the last timestep already is 0).
   */
  final?: 'zero' | 'first-train-step'
  /**
   * diffusers' `DDIMScheduler` exactly: rounded timesteps, and step i lands at `abar[t_i - T//N]` (the
   * plan's `targets`), or at `final` once that index is negative. That is the next timestep only for
   * `leading` spacing or when N divides T (trailing, N = 7: 999 lands at 857, the next timestep is 856).
   * Not with `karras` (DDIM has no Karras sigmas).
   */
  ddim?: boolean
}

/**
 * A plan for a VP schedule, matching diffusers' `set_timesteps`: spaced timesteps with their (linearly
 * interpolated) sigmas, or Karras sigmas with log-sigma-interpolated timesteps. With `ddim: true`, diffusers'
 * DDIM steps: each step lands at `sigma(abar[t - T//N])` (`sigma = sqrt((1 - abar) / abar)`), and `sample()`
 * continues from there at the next timestep (DDIM, Song et al., arXiv 2010.02502, as diffusers implements it).
 *
 * @example
 * const plan = vpPlan(vpSchedule(), { steps: 20, karras: true })
 * // diffusers' DDIMScheduler(timestep_spacing='trailing', set_alpha_to_one=False), 7 steps:
 * const ddimPlan = vpPlan(vpSchedule(), { steps: 7, spacing: 'trailing', ddim: true, final: 'first-train-step' })
 * // ddimPlan.timesteps: 999, 856, ...; ddimPlan.targets[0] = sigma at t = 857
 */
export function vpPlan(schedule: VpSchedule, options: VpPlanOptions): SamplingPlan {
  const { steps, spacing = 'leading', stepsOffset = spacing === 'leading' ? 1 : 0, karras = false, roundTimesteps = false, final = 'zero', ddim = false } = options
  check(final === 'zero' || final === 'first-train-step', 'final', final, "'zero' or 'first-train-step'")
  if (ddim) {
    check(!karras, 'karras', karras, 'false with ddim: true (DDIM has no Karras sigmas; leave ddim out to use them)')
    const timesteps = spacedTimesteps({ trainSteps: schedule.trainSteps, steps, spacing, stepsOffset, round: true })
    const jump = Math.floor(schedule.trainSteps / steps)
    const end = final === 'zero' ? 0 : schedule.sigmaMin
    const targets = timesteps.map((t) => (t - jump >= 0 ? (schedule.sigmas[t - jump] as number) : end))
    const sigmas = [...timesteps.map((t) => schedule.sigmaAt(t)), targets[targets.length - 1] as number]
    return checkPlan({ family: 'vp', sigmas: Float64Array.from(sigmas), timesteps: Float64Array.from(timesteps), targets: Float64Array.from(targets) })
  }
  let sigmas: number[]
  let timesteps: number[]
  if (karras) {
    sigmas = karrasSigmas({ sigmaMin: schedule.sigmaMin, sigmaMax: schedule.sigmaMax, steps })
    timesteps = sigmas.map((s) => schedule.timestepOf(s))
    if (roundTimesteps) timesteps = timesteps.map(roundHalfEven)
  } else {
    timesteps = spacedTimesteps({ trainSteps: schedule.trainSteps, steps, spacing, stepsOffset, round: roundTimesteps })
    sigmas = timesteps.map((t) => schedule.sigmaAt(t))
  }
  // Without `ddim`, a last step from timestep 0 to abar[0] would not move (diffusers' DDIM does exactly that,
  // see `ddim`); this plan ends at 0 instead, so sigmas stay strictly decreasing.
  const last = sigmas[sigmas.length - 1] as number
  sigmas.push(final === 'zero' || last <= schedule.sigmaMin ? 0 : schedule.sigmaMin)
  return checkPlan({ family: 'vp', sigmas: Float64Array.from(sigmas), timesteps: Float64Array.from(timesteps) })
}

/**
 * A flow-matching plan as diffusers' `FlowMatchEulerDiscreteScheduler` (SD3): timesteps
 * `linspace(sigmaMax * T, sigmaMin * T, N)` where sigmaMin is the shifted `1/T`, then the shift
 * `shift * s / (1 + (shift - 1) s)` applied (again), then 0 appended. The model timestep is
 * `sigma * timestepScale` computed in float32 as torch does (`timestepScale` defaults to `T`: SD3 takes
 * `sigma * 1000`; a model trained on t in [0, 1] takes `timestepScale: 1`).
 *
 * @example
 * flowPlan({ steps: 10, shift: 3 }).sigmas  // 1, 0.9601, ..., 0.00893, 0
 */
export function flowPlan(options: { steps: number; shift?: number; trainSteps?: number; timestepScale?: number }): SamplingPlan {
  const { steps, shift = 1, trainSteps = 1000 } = options
  checkNumber('steps', steps, { min: 1, integer: true })
  checkNumber('shift', shift, { min: 0, minExclusive: true })
  checkNumber('trainSteps', trainSteps, { min: 2, integer: true })
  const timestepScale = checkNumber('timestepScale', options.timestepScale ?? trainSteps, { min: 0, minExclusive: true })
  const shifted = (s: number) => (shift * s) / (1 + (shift - 1) * s)
  const sMax = shifted(1)
  const sMin = shifted(1 / trainSteps)
  const sigmas: number[] = []
  for (let i = 0; i < steps; i++) {
    const t = steps === 1 ? sMax * trainSteps : sMax * trainSteps + (i / (steps - 1)) * (sMin * trainSteps - sMax * trainSteps)
    sigmas.push(shifted(t / trainSteps))
  }
  const timesteps = sigmas.map((s) => f(f(s) * f(timestepScale)))
  sigmas.push(0)
  return checkPlan({ family: 'flow', sigmas: Float64Array.from(sigmas), timesteps: Float64Array.from(timesteps) })
}
