// @guidekit/core/testing: the fixtures every guidance package's tests need: a step context serving fixed
// predictions, a guidance session starter, epsilon-to-prediction conversion, a reference CFG guider, seeded
// test data and error measures.
// Published, so third-party guiders can be tested the same way.
import type { Branch, GuidanceSession, Guider, NoiseFamily, Prediction, StepContext } from '../contracts.js'
import { GuidekitError } from '../errors.js'
import { predictPair } from '../guidance-kit.js'
import { combine } from '../kernels.js'
import { Tensor } from '../tensor.js'

export { gaussianDenoiser } from '../toy.js'
export { testUniforms, testNormals, relL2, maxAbsDiff } from './data.js'
export type { GaussianDenoiserOptions } from '../toy.js'

/** Options of {@link fakeStepContext}. */
export interface FakeStepContextOptions {
  readonly x: Tensor
  /** The prediction returned for each branch role. */
  readonly predictions: Readonly<Record<string, Prediction>>
  readonly sigma?: number
  readonly sigmaNext?: number
  readonly step?: number
  readonly steps?: number
  readonly family?: NoiseFamily
}

/**
 * A {@link StepContext} that answers every `predict` with fixed predictions per role and records the
 * branches asked for, to test one guider step without a model.
 *
 * @example
 * const { ctx, calls } = fakeStepContext({ x, predictions: { positive: c, negative: u } })
 * const out = await startSession(cfg({ scale: 3 })).step(ctx)
 * expect(calls).toEqual([[{ role: 'positive' }, { role: 'negative' }]])
 */
export function fakeStepContext(options: FakeStepContextOptions): { ctx: StepContext; calls: Branch[][] } {
  const calls: Branch[][] = []
  const ctx: StepContext = {
    step: options.step ?? 0,
    steps: options.steps ?? 10,
    sigma: options.sigma ?? 1,
    sigmaNext: options.sigmaNext ?? 0.5,
    timestep: 500,
    family: options.family ?? 'vp',
    x: options.x,
    predict(branches) {
      calls.push([...branches])
      return Promise.resolve(
        branches.map((b) => {
          const p = options.predictions[b.role]
          if (!p) throw new GuidekitError('INVALID_ARGUMENT', `fakeStepContext has no prediction for role '${b.role}'.`)
          return p
        }),
      )
    },
  }
  return { ctx, calls }
}

/** Starts a guider's session for a trajectory of `steps` steps on samples of `shape` ('vp' family). */
export function startSession(guider: Guider, steps = 10, shape: readonly number[] = [2, 3]): GuidanceSession {
  return guider.start({ steps, sigmas: new Float64Array(steps + 1), timesteps: new Float64Array(steps), family: 'vp', shape })
}

/** The prediction whose epsilon is `m` at `x` and `sigma` (VE cast): `denoised = x - sigma m`. */
export function fromEpsilon(m: Tensor, x: Tensor = Tensor.zeros(m.shape), sigma = 1): Prediction {
  return { noise: m, denoised: Tensor.from(m.data.map((v, i) => (x.data[i] as number) - sigma * v), m.shape) }
}

/**
 * The textbook CFG guider, `D = D_u + scale (D_c - D_u)`, written in the fewest lines, as a reference for
 * tests of samplers, combinators and denoisers (the full guider with rescale is `@guidekit/cfg`).
 */
export function referenceCfg(scale: number): Guider {
  return {
    specificationVersion: 'v1',
    name: `reference-cfg(${scale})`,
    start: () => ({
      async step(ctx) {
        const { cond, uncond } = await predictPair(ctx, 'reference-cfg')
        const denoised = combine([
          [1 - scale, uncond.denoised],
          [scale, cond.denoised],
        ])
        return { denoised, renoise: denoised }
      },
    }),
  }
}

/**
 * The {@link GuidekitError} that `f` throws, or undefined when `f` returns. Anything else thrown is thrown
 * again, so a test never mistakes a TypeError for the error it expects.
 *
 * @example
 * expect(guidekitErrorOf(() => cfg({ scale: Number.NaN }))?.code).toBe('INVALID_ARGUMENT')
 */
export function guidekitErrorOf(f: () => unknown): GuidekitError | undefined {
  try {
    f()
  } catch (e) {
    if (GuidekitError.isInstance(e)) return e
    throw e
  }
  return undefined
}
