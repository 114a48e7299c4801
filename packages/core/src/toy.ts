import type { Branch, Denoiser, DenoiseRequest, NoiseFamily, Prediction } from './contracts.js'
import { familyAlpha } from './contracts.js'
import { GuidekitError, check, checkNumber } from './errors.js'
import { Tensor } from './tensor.js'

/** Options of {@link gaussianDenoiser}. */
export interface GaussianDenoiserOptions {
  readonly family: NoiseFamily
  /** The data mean per branch role (a scalar or one value per element of a sample). */
  readonly means: Readonly<Record<string, number | Float32Array>>
  /** The data standard deviation (default 1). */
  readonly std?: number
  /** Model names it answers for (default: any); lets tests stand in for RL guidance's 'base'/'tuned'. */
  readonly models?: Readonly<Record<string, Readonly<Record<string, number | Float32Array>>>>
}

/**
 * The exact denoiser of Gaussian data `x0 ~ N(mu, s^2 I)` under `x = alpha x0 + sigma n`:
 * `E[x0 | x] = mu + alpha s^2 / (alpha^2 s^2 + sigma^2) (x - alpha mu)`. An analytic stand-in for a model:
 * sampling it must reproduce the data mean and variance, which makes samplers testable without weights.
 * Each role has its own mean, so guidance has something to steer.
 *
 * @example
 * const toy = gaussianDenoiser({ family: 'flow', means: { positive: 1, negative: 0 } })
 */
export function gaussianDenoiser(options: GaussianDenoiserOptions): Denoiser & { calls: number } {
  const s = checkNumber('std', options.std ?? 1, { min: 0, minExclusive: true })
  const state = { calls: 0 }
  const meansFor = (branch: Branch): Readonly<Record<string, number | Float32Array>> => {
    if (branch.model === undefined || !options.models) return options.means
    const m = options.models[branch.model]
    if (!m) throw new GuidekitError('INVALID_ARGUMENT', `Unknown model '${branch.model}'; this toy denoiser has ${Object.keys(options.models).join(', ')}.`)
    return m
  }
  const predictNow = (request: DenoiseRequest): Prediction[] => {
    const { x, sigma, branches } = request
    state.calls += new Set(branches.map((b) => b.model ?? '')).size
    const a = familyAlpha(options.family, sigma)
    const k = (a * s * s) / (a * a * s * s + sigma * sigma)
    const n = x.sampleSize
    return branches.map((branch) => {
      const mu = meansFor(branch)[branch.role]
      if (mu === undefined) throw new GuidekitError('INVALID_ARGUMENT', `The toy denoiser has no mean for role '${branch.role}'.`)
      check(typeof mu === 'number' || mu.length === n, 'mean length', typeof mu === 'number' ? 1 : mu.length, `1 or ${n}`)
      const rows = branch.samples ?? Array.from({ length: x.batch }, (_, i) => i)
      const denoised = new Float32Array(rows.length * n)
      const noise = new Float32Array(rows.length * n)
      rows.forEach((row, r) => {
        for (let j = 0; j < n; j++) {
          const m = typeof mu === 'number' ? mu : (mu[j] as number)
          const xi = x.data[row * n + j] as number
          const d = m + k * (xi - a * m)
          denoised[r * n + j] = d
          noise[r * n + j] = sigma > 0 ? (xi - a * d) / sigma : 0
        }
      })
      const shape = [rows.length, ...x.shape.slice(1)]
      return { denoised: new Tensor(denoised, shape), noise: new Tensor(noise, shape) }
    })
  }
  return {
    specificationVersion: 'v1',
    family: options.family,
    get calls() {
      return state.calls
    },
    predict(request: DenoiseRequest): Promise<Prediction[]> {
      // Like a real model's, a bad request rejects instead of throwing synchronously.
      return new Promise((resolve) => resolve(predictNow(request)))
    },
  }
}
