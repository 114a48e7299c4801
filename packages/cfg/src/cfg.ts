import { check, checkNumber, combine, type Tensor, assertSameShape, type GuidanceSession, type Guider, type RunInfo, type StepContext, denoisedFrom, guidanceRescale, modelOutput, positiveOnly, predictPair } from '@guidekit/core'

/**
 * The CFG combination in the paper's convention (Ho & Salimans, arXiv 2207.12598):
 * `pred = uncond + scale * (cond - uncond)`; `scale = 1` returns `cond`, `scale = 0` returns `uncond`.
 * Works in any space (the combination is affine: its coefficients sum to 1), so x0 and epsilon give the
 * same guided step.
 *
 * @example
 * const guided = cfgCombine(cond, uncond, 7.5)
 */
export function cfgCombine(cond: Tensor, uncond: Tensor, scale: number, out?: Tensor): Tensor {
  checkNumber('scale', scale)
  assertSameShape('cfgCombine (cond, uncond)', cond, uncond)
  return combine(
    [
      [1 - scale, uncond],
      [scale, cond],
    ],
    out,
  )
}

/**
 * Converts a diffusers `guidance_scale` to the paper's `w` stored by guidekit: with
 * `use_original_formulation` (Ho & Salimans' `c + w'(c - u)`, off at 0) `w = w' + 1`; otherwise the scale is
 * already `w` (`u + w(c - u)`, off at 1).
 *
 * @example
 * cfg({ scale: fromDiffusersScale(6.5, { useOriginalFormulation: true }) })  // w = 7.5
 */
export function fromDiffusersScale(guidanceScale: number, options: { useOriginalFormulation?: boolean } = {}): number {
  checkNumber('guidanceScale', guidanceScale)
  return options.useOriginalFormulation ? guidanceScale + 1 : guidanceScale
}

/**
 * The inverse of {@link fromDiffusersScale}: the diffusers `guidance_scale` for a paper `w`.
 *
 * @example
 * toDiffusersScale(7.5, { useOriginalFormulation: true })   // 6.5
 */
export function toDiffusersScale(scale: number, options: { useOriginalFormulation?: boolean } = {}): number {
  checkNumber('scale', scale)
  return options.useOriginalFormulation ? scale - 1 : scale
}

/** The space guidance rescale works in. */
export type RescaleSpace = 'epsilon' | 'x0'

/** Options of {@link cfg}. */
export interface CfgOptions {
  /** Paper scale `w`: `D = D_u + w (D_c - D_u)`; 1 is off (one branch per step), 0 is unconditional. */
  readonly scale: number
  /** Guidance rescale phi in [0, 1] (0: off; 0.7 is the paper's value). */
  readonly rescale?: number
  /**
   * Where guidance rescale is computed. `'epsilon'` (default, as diffusers): the model-output space,
   * epsilon for 'vp' models and the velocity for 'flow' models. `'x0'`: on the denoised predictions (the
   * paper states the rule on x0/v).
   */
  readonly space?: RescaleSpace
}

/**
 * Classifier-free guidance (Ho & Salimans, arXiv 2207.12598) in the paper's convention
 * `D = D_u + w (D_c - D_u)`, with optional guidance rescale (arXiv 2305.08891). With `w = 1` it asks for the
 * positive branch only: one branch instead of two. To guide on some steps only (a guidance interval,
 * diffusers' start/stop), wrap it: `interval(cfg({ scale }), { sigma: [lo, hi] })` from `@guidekit/core`.
 *
 * @example
 * const guider = cfg({ scale: 7.5, rescale: 0.7 })
 */
export function cfg(options: CfgOptions): Guider {
  const scale = checkNumber('scale', options.scale)
  const rescale = checkNumber('rescale', options.rescale ?? 0, { min: 0, max: 1 })
  const space = options.space ?? 'epsilon'
  check(space === 'epsilon' || space === 'x0', 'space', space, "'epsilon' or 'x0'")
  const parts = [`scale=${scale}`]
  if (rescale > 0) parts.push(`rescale=${rescale}`, `space=${space}`)
  return {
    specificationVersion: 'v1',
    name: `cfg(${parts.join(', ')})`,
    start(_run: RunInfo): GuidanceSession {
      return {
        async step(ctx: StepContext) {
          if (scale === 1) return positiveOnly(ctx)
          const { cond: c, uncond: u } = await predictPair(ctx, 'cfg')
          let denoised: Tensor
          if (rescale === 0) {
            denoised = cfgCombine(c.denoised, u.denoised, scale)
          } else if (space === 'x0') {
            denoised = guidanceRescale(cfgCombine(c.denoised, u.denoised, scale), c.denoised, rescale)
          } else {
            const mc = modelOutput(c, ctx.family)
            const pred = guidanceRescale(cfgCombine(mc, modelOutput(u, ctx.family), scale), mc, rescale)
            denoised = denoisedFrom(ctx.x, ctx.sigma, pred)
          }
          return { denoised, renoise: denoised }
        },
      }
    },
  }
}
