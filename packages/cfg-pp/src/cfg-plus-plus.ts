import { check, checkNumber, combine, type GuidanceSession, type Guider, type NoiseFamily, type Prediction, type RunInfo, type StepContext, checkBranchShapes, predictPair } from '@guidekit/core'

/** Options of {@link cfgPlusPlus}. */
export interface CfgPlusPlusOptions {
  /**
   * Guidance strength: the paper's lambda >= 0 (arXiv 2406.08070), `D_lambda = D_u + lambda (D_c - D_u)`.
   * Typically in [0, 1] (0.6 for SD1.5 DDIM in the paper's README); values above 1 are legal. It is not a
   * CFG scale `w`: see {@link lambdaFromCfgScale}.
   */
  readonly scale: number
}

/**
 * CFG++ (Chung et al., arXiv 2406.08070, ICLR'25): build the x0 estimate from the guided prediction but
 * re-noise with the unconditional one. Returns `{ denoised: D_lambda, renoise: D_u }`, so it works with every
 * core sampler: Euler (`x' = D_lambda + sigma' (x - D_u)/sigma`), Euler ancestral, DDIM, flow-matching Euler
 * (`x' = alpha' D_lambda + sigma' (x - alpha D_u)/sigma`, ComfyUI PR #9008) and DPM-Solver++(2M), whose
 * history keeps the unconditional denoised as the official CFG++ solver does. Both branches are evaluated on
 * every step (`scale = 0` asks for the negative branch only).
 *
 * @example
 * await sample({ denoiser, guider: cfgPlusPlus({ scale: 0.6 }), sampler: dpmpp2m(), plan, shape })
 */
export function cfgPlusPlus(options: CfgPlusPlusOptions): Guider {
  const lambda = checkNumber('scale', options.scale, { min: 0 })
  return {
    specificationVersion: 'v1',
    name: `cfg++(scale=${lambda})`,
    start(_run: RunInfo): GuidanceSession {
      return {
        async step(ctx: StepContext) {
          if (lambda === 0) {
            const [u] = (await ctx.predict([{ role: 'negative' }])) as [Prediction]
            checkBranchShapes('cfgPlusPlus', ctx.x, [u])
            return { denoised: u.denoised, renoise: u.denoised }
          }
          const { cond: c, uncond: u } = await predictPair(ctx, 'cfgPlusPlus')
          const denoised = combine([
            [1 - lambda, u.denoised],
            [lambda, c.denoised],
          ])
          return { denoised, renoise: u.denoised }
        },
      }
    },
  }
}

/** How to map a CFG scale to CFG++'s lambda. */
export type LambdaMapping =
  /** A1111 (PR #16035): `lambda = scale / 12.5`, mapping the UI range [1, 12.5] onto [0, 1]. Step independent. */
  | { readonly mapping: 'a1111' }
  /**
   * Exact for one first-order step sigma -> sigmaNext (Euler, DDIM, an ancestral step with sigmaNext =
   * sigma_down): CFG with scale omega and CFG++ with `lambda = omega (sigma - sigmaNext) / sigma` give the
   * same x'. For 'flow' models the VE-cast sigmas `sigma / (1 - sigma)` are used.
   */
  | { readonly mapping: 'first-order'; readonly sigma: number; readonly sigmaNext: number; readonly family?: NoiseFamily }

/**
 * Converts a usual CFG scale omega to CFG++'s lambda. There is no single right mapping:
 * - `'a1111'` (`omega / 12.5`) is the convention of A1111's CFG++ samplers and the CFG++ README's claim that
 *   lambda in [0, 1] behaves like omega in [1, 12.5]; it is what a UI slider wants.
 * - `'first-order'` is the exact equivalence of one first-order step, `omega_i = lambda sigma_i / (sigma_i -
 *   sigma_{i+1})` (see the reference notes, §5.4): lambda that reproduces CFG at scale omega on that step.
 *   It is step dependent (a fixed lambda is a CFG scale that grows late in sampling), and it does not hold
 *   for multistep samplers (DPM++ 2M), whose history uses `D_u`.
 *
 * @example
 * lambdaFromCfgScale(7.5, { mapping: 'a1111' })                                  // 0.6
 * lambdaFromCfgScale(7.5, { mapping: 'first-order', sigma: 1.0, sigmaNext: 0.8 })  // 1.5
 */
export function lambdaFromCfgScale(scale: number, how: LambdaMapping): number {
  checkNumber('scale', scale, { min: 0 })
  if (how.mapping === 'a1111') return scale / 12.5
  check(how.mapping === 'first-order', 'mapping', how.mapping, "'a1111' or 'first-order'")
  return scale * (1 - stepRatio(how.sigma, how.sigmaNext, how.family ?? 'vp'))
}

/**
 * The inverse of {@link lambdaFromCfgScale}: the CFG scale omega equivalent to lambda (A1111: `12.5 lambda`;
 * first order: `lambda sigma / (sigma - sigmaNext)`). arXiv 2406.08070.
 *
 * @example
 * cfgScaleFromLambda(0.6, { mapping: 'a1111' })   // 7.5
 */
export function cfgScaleFromLambda(lambda: number, how: LambdaMapping): number {
  checkNumber('lambda', lambda, { min: 0 })
  if (how.mapping === 'a1111') return lambda * 12.5
  check(how.mapping === 'first-order', 'mapping', how.mapping, "'a1111' or 'first-order'")
  return lambda / (1 - stepRatio(how.sigma, how.sigmaNext, how.family ?? 'vp'))
}

/** `sigmaNext / sigma` in the VE cast (`sigma / (1 - sigma)` for flow; 0 at flow's sigma = 1, where the cast is infinite). */
function stepRatio(sigma: number, sigmaNext: number, family: NoiseFamily): number {
  checkNumber('sigma', sigma, { min: 0, minExclusive: true, ...(family === 'flow' ? { max: 1 } : {}) })
  checkNumber('sigmaNext', sigmaNext, { min: 0, max: sigma, maxExclusive: true })
  if (family !== 'flow') return sigmaNext / sigma
  if (sigma === 1) return 0
  return sigmaNext / (1 - sigmaNext) / (sigma / (1 - sigma))
}
