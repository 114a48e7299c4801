// Samplers written on the guider's {denoised D, renoise R} pair. With x = alpha(sigma) x0 + sigma eps
// (alpha = 1 for the VE-cast 'vp' family, 1 - sigma for 'flow'), the noise direction of a step is
// (x - alpha R) / sigma. With R = D every update below is the textbook one; with CFG++'s R = D_u it is
// the paper's re-noising (arXiv 2406.08070), for every sampler at once.
import type { NoiseFamily, Sampler, SamplerRunInfo, SamplerSession, SamplerStepInput } from './contracts.js'
import { GuidekitError, checkNumber } from './errors.js'
import { Tensor, assertSameShape } from './tensor.js'
import { familyAlpha } from './contracts.js'

/**
 * Euler (Karras et al. arXiv 2206.00364, Alg. 2; deterministic DDIM, arXiv 2010.02502):
 * `x' = alpha' D + sigma' (x - alpha R) / sigma`. On a `'flow'` model this is exactly flow-matching Euler
 * `x' = x + (sigma' - sigma) v` (SD3, arXiv 2403.03206).
 *
 * @example
 * await sample({ denoiser, guider, sampler: euler(), plan })
 */
export function euler(): Sampler {
  return {
    specificationVersion: 'v1',
    name: 'euler',
    stochastic: false,
    start(run: SamplerRunInfo): SamplerSession {
      return { step: (input) => ancestralUpdate(run.family, input, 0, 0, null) }
    },
  }
}

/**
 * Flow-matching Euler (diffusers `FlowMatchEulerDiscreteScheduler`): `x' = x + (sigma' - sigma) v`. The same
 * update as {@link euler}, restricted to `'flow'` models so a mismatched model is caught early.
 */
export function flowMatchEuler(): Sampler {
  const inner = euler()
  return {
    specificationVersion: 'v1',
    name: 'flow-match-euler',
    stochastic: false,
    start(run: SamplerRunInfo): SamplerSession {
      if (run.family !== 'flow') {
        throw new GuidekitError('UNSUPPORTED', `flowMatchEuler needs a 'flow' model, got '${run.family}'; use euler() for VP models.`)
      }
      return inner.start(run)
    },
  }
}

/**
 * Euler ancestral (k-diffusion `sample_euler_ancestral`; diffusers `EulerAncestralDiscreteScheduler` at
 * eta = 1): with `(down, up) = ancestral(sigma/alpha, sigma'/alpha', eta)`,
 * `x' = alpha' D + alpha' down (x - alpha R)/sigma + alpha' up sNoise z`, z from each image's seeded stream.
 * `up = min(t, eta sqrt(t^2 (f^2 - t^2) / f^2))`, `down = sqrt(t^2 - up^2)` for `f = sigma/alpha`, `t = sigma'/alpha'`.
 */
export function eulerAncestral(options: { eta?: number; sNoise?: number } = {}): Sampler {
  const eta = checkNumber('eta', options.eta ?? 1, { min: 0 })
  const sNoise = checkNumber('sNoise', options.sNoise ?? 1, { min: 0 })
  return {
    specificationVersion: 'v1',
    name: `euler-ancestral(eta=${eta})`,
    stochastic: eta > 0 && sNoise > 0,
    start(run: SamplerRunInfo): SamplerSession {
      return { step: (input) => ancestralUpdate(run.family, input, eta, sNoise, run) }
    },
  }
}

/**
 * DDIM (Song et al., arXiv 2010.02502, eq. 12) with eta:
 * `x_prev = sqrt(abar_p) x0 + sqrt(1 - abar_p - s^2) eps + s z`, `s = eta sqrt((1-abar_p)/(1-abar_t)) sqrt(1 - abar_t/abar_p)`.
 * In the VE cast this is exactly the ancestral step with `up = eta sigma' sqrt(sigma^2 - sigma'^2)/sigma`
 * (the same `up` as Euler ancestral for eta <= 1), so DDIM shares that update; eta = 0 (default) is Euler.
 * Use diffusers' DDIM plan (`vpPlan(schedule, { steps, spacing, ddim: true, final: 'first-train-step' })` for
 * `set_alpha_to_one = false`) to reproduce diffusers' `DDIMScheduler` step for step, for every spacing and
 * step count: each step lands at `abar[t - T//N]` (the plan's `targets`).
 */
export function ddim(options: { eta?: number } = {}): Sampler {
  const eta = checkNumber('eta', options.eta ?? 0, { min: 0 })
  return {
    specificationVersion: 'v1',
    name: `ddim(eta=${eta})`,
    stochastic: eta > 0,
    start(run: SamplerRunInfo): SamplerSession {
      return { step: (input) => ancestralUpdate(run.family, input, eta, 1, run) }
    },
  }
}

function ancestralUpdate(family: NoiseFamily, input: SamplerStepInput, eta: number, sNoise: number, run: SamplerRunInfo | null): Tensor {
  const { x, sigma, sigmaNext, guided } = input
  const { denoised, renoise } = guided
  assertSameShape('sampler step (x, denoised, renoise)', x, denoised, renoise)
  const a = familyAlpha(family, sigma)
  const aNext = familyAlpha(family, sigmaNext)
  let down = sigmaNext
  let up = 0
  if (eta > 0 && sigmaNext > 0) {
    const fr = a === 0 ? Infinity : sigma / a
    const to = sigmaNext / aNext
    const ratio = fr === Infinity ? 0 : (to * to) / (fr * fr)
    up = Math.min(to, eta * to * Math.sqrt(Math.max(0, 1 - ratio)))
    down = aNext * Math.sqrt(Math.max(0, to * to - up * up))
    up *= aNext * sNoise
  }
  const out = new Float32Array(x.size)
  const xs = x.data
  const d = denoised.data
  const r = renoise.data
  if (sigmaNext === 0) {
    for (let i = 0; i < out.length; i++) out[i] = aNext * (d[i] as number)
  } else if (r === d) {
    // The usual case (every guider but CFG++): the same update reading D once per element (V8 loads it
    // twice otherwise), the same arithmetic.
    const k = down / sigma
    for (let i = 0; i < out.length; i++) {
      const di = d[i] as number
      out[i] = aNext * di + k * ((xs[i] as number) - a * di)
    }
  } else {
    const k = down / sigma
    for (let i = 0; i < out.length; i++) out[i] = aNext * (d[i] as number) + k * ((xs[i] as number) - a * (r[i] as number))
  }
  if (up > 0 && run) {
    const z = run.noise.next(x.shape).data
    for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) + up * (z[i] as number)
  }
  return new Tensor(out, x.shape)
}

/**
 * DPM-Solver++(2M) (Lu et al., arXiv 2211.01095, Alg. 2; midpoint form as diffusers and k-diffusion), in
 * data prediction with `lambda = log(alpha/sigma)`, `h = lambda' - lambda`, `r = h_prev / h`:
 * `x' = (sigma'/sigma) x + alpha' [D - e^{-h} R - (e^{-h} - 1)(D - R_prev)/(2r)]`.
 * The history keeps R (the re-noise x0), as CFG++'s 2M sampler needs; with R = D it is plain 2M. The first
 * step, and any step to sigma' = 0 (diffusers' `lower_order_final` with `final_sigmas_type = "zero"`), is
 * first order.
 */
export function dpmpp2m(): Sampler {
  return {
    specificationVersion: 'v1',
    name: 'dpmpp-2m',
    stochastic: false,
    start(run: SamplerRunInfo): SamplerSession {
      let prevR: Tensor | null = null
      let prevLambda = 0
      const lambda = (s: number) => Math.log(familyAlpha(run.family, s) / s)
      return {
        step(input: SamplerStepInput): Tensor {
          const { x, sigma, sigmaNext, guided } = input
          const { denoised, renoise } = guided
          assertSameShape('sampler step (x, denoised, renoise)', x, denoised, renoise)
          const out = new Float32Array(x.size)
          const xs = x.data
          const d = denoised.data
          const r = renoise.data
          const aNext = familyAlpha(run.family, sigmaNext)
          const lam = lambda(sigma)
          if (sigmaNext === 0) {
            for (let i = 0; i < out.length; i++) out[i] = aNext * (d[i] as number)
          } else {
            const h = lambda(sigmaNext) - lam
            const e = Math.exp(-h)
            const ratio = sigmaNext / sigma
            if (prevR === null) {
              for (let i = 0; i < out.length; i++) out[i] = ratio * (xs[i] as number) + aNext * ((d[i] as number) - e * (r[i] as number))
            } else {
              const rr = (lam - prevLambda) / h
              const c = (e - 1) / (2 * rr)
              const p = prevR.data
              for (let i = 0; i < out.length; i++) {
                const di = d[i] as number
                out[i] = ratio * (xs[i] as number) + aNext * (di - e * (r[i] as number) - c * (di - (p[i] as number)))
              }
            }
          }
          prevR = renoise
          prevLambda = lam
          return new Tensor(out, x.shape)
        },
      }
    },
  }
}
