// Converting a model's native output to guidekit's {denoised, noise} pair, once, at the edge.
import type { NoiseFamily, Prediction } from './contracts.js'
import { GuidekitError, check } from './errors.js'
import { Tensor, assertSameShape } from './tensor.js'

/** What a model predicts. */
export type Parameterization = 'epsilon' | 'v' | 'x0' | 'flow-velocity'

const valid: readonly Parameterization[] = ['epsilon', 'v', 'x0', 'flow-velocity']

/** The input scale a model expects for the sampler's x: `1 / sqrt(1 + sigma^2)` for `'vp'`, 1 for `'flow'`. */
export function inputScale(family: NoiseFamily, sigma: number): number {
  return family === 'vp' ? 1 / Math.sqrt(1 + sigma * sigma) : 1
}

/**
 * The tensor to feed the model: the sampler's x scaled by {@link inputScale} (diffusers'
 * `scale_model_input` for Euler-type schedulers; the VP sample for DDIM/DPM-Solver).
 */
export function modelInput(x: Tensor, sigma: number, family: NoiseFamily): Tensor {
  const s = inputScale(family, sigma)
  if (s === 1) return x
  const out = new Float32Array(x.size)
  const d = x.data
  for (let i = 0; i < out.length; i++) out[i] = (d[i] as number) * s
  return new Tensor(out, x.shape)
}

/**
 * Converts a model output to `{denoised, noise}` for the sampler's x at `sigma`.
 *
 * With `x = alpha x0 + sigma eps` (`alpha = 1` for `'vp'` in its VE cast, `1 - sigma` for `'flow'`):
 * - epsilon: `x0 = x - sigma eps` (vp) / `(x - sigma eps) / alpha` (flow)
 * - v (vp only; Salimans & Ho, arXiv 2202.00512): with `a = 1/sqrt(1+sigma^2)`, `s = sigma a`,
 *   `x_vp = a x`: `x0 = a x_vp - s v`, `eps = s x_vp + a v`
 * - x0: `eps = (x - alpha x0) / sigma` (0 at sigma = 0)
 * - flow-velocity (rectified flow, `v = eps - x0`): `x0 = x - sigma v`, `eps = x + (1 - sigma) v`
 *
 * @example
 * const { denoised, noise } = toPrediction({ output: eps, x, sigma, parameterization: 'epsilon', family: 'vp' })
 */
export function toPrediction(args: { output: Tensor; x: Tensor; sigma: number; parameterization: Parameterization; family: NoiseFamily }): Prediction {
  const { output, x, sigma, parameterization, family } = args
  check(valid.includes(parameterization), 'parameterization', parameterization, `one of ${valid.join(', ')}`)
  assertSameShape('toPrediction (model output vs sample)', output, x)
  const o = output.data
  const xs = x.data
  const n = o.length
  const denoised = new Float32Array(n)
  const noise = new Float32Array(n)
  const alpha = family === 'flow' ? 1 - sigma : 1
  switch (parameterization) {
    case 'epsilon':
      if (alpha === 0) throw new GuidekitError('UNSUPPORTED', 'An epsilon model cannot give x0 at sigma = 1 of a flow family; use a velocity model.')
      for (let i = 0; i < n; i++) {
        const e = o[i] as number
        denoised[i] = ((xs[i] as number) - sigma * e) / alpha
        noise[i] = e
      }
      break
    case 'v': {
      if (family !== 'vp') throw new GuidekitError('UNSUPPORTED', "v-prediction is defined for the 'vp' family; flow models predict 'flow-velocity'.")
      const a = 1 / Math.sqrt(1 + sigma * sigma)
      const s = sigma * a
      for (let i = 0; i < n; i++) {
        const v = o[i] as number
        const xv = (xs[i] as number) * a
        denoised[i] = a * xv - s * v
        noise[i] = s * xv + a * v
      }
      break
    }
    case 'x0':
      for (let i = 0; i < n; i++) {
        const d = o[i] as number
        denoised[i] = d
        noise[i] = sigma > 0 ? ((xs[i] as number) - alpha * d) / sigma : 0
      }
      break
    case 'flow-velocity':
      if (family !== 'flow') throw new GuidekitError('UNSUPPORTED', "flow-velocity outputs need the 'flow' family.")
      for (let i = 0; i < n; i++) {
        const v = o[i] as number
        const xi = xs[i] as number
        denoised[i] = xi - sigma * v
        noise[i] = xi + (1 - sigma) * v
      }
      break
  }
  return { denoised: new Tensor(denoised, x.shape), noise: new Tensor(noise, x.shape) }
}
