import { type Tensor, assertSameShape, checkNumber, combine, dot, type GuidanceSession, type Guider, type Prediction, type RunInfo, type StepContext, checkBranchShapes, denoisedFrom, modelOutput, positiveOnly, predictPair } from '@guidekit/core'

/**
 * CFG-Zero*'s optimised scale (arXiv 2503.18886, eq. 7; diffusers `cfg_zero_star_scale`):
 * `alpha = <cond, uncond> / (|uncond|^2 + 1e-8)` per sample over all non-batch dimensions.
 *
 * @example
 * const alpha = cfgZeroStarAlpha(epsCond, epsUncond)   // one value per batch item
 */
export function cfgZeroStarAlpha(cond: Tensor, uncond: Tensor): Float64Array {
  assertSameShape('cfgZeroStarAlpha (cond, uncond)', cond, uncond)
  const cu = dot(cond, uncond)
  const uu = dot(uncond, uncond)
  // The 1e-8 is diffusers' (and the paper code's) guard; kept so results match the reference.
  for (let b = 0; b < cu.length; b++) cu[b] = (cu[b] as number) / ((uu[b] as number) + 1e-8)
  return cu
}

/**
 * The CFG-Zero* combination with the paper scale `w`: `u' = alpha u`, `pred = u' + w (cond - u')`
 * (diffusers' `use_original_formulation` form `c + w'(c - u')` is the same with `w = w' + 1`); arXiv 2503.18886.
 *
 * @example
 * const pred = cfgZeroStarCombine(epsCond, epsUncond, 5)
 */
export function cfgZeroStarCombine(cond: Tensor, uncond: Tensor, scale: number, alpha: ArrayLike<number> = cfgZeroStarAlpha(cond, uncond)): Tensor {
  checkNumber('scale', scale)
  const k = Float64Array.from(alpha, (a) => (1 - scale) * a)
  return combine([
    [k, uncond],
    [scale, cond],
  ])
}

/** Options of {@link cfgZeroStar}. */
export interface CfgZeroStarOptions {
  /** Paper scale `w` (`u' + w (c - u')`; 1 means no guidance). */
  readonly scale: number
  /** Steps at the start that output a zero prediction (diffusers default 1; 0 disables). */
  readonly zeroInitSteps?: number
}

/**
 * CFG-Zero*, epsilon form (arXiv 2503.18886; diffusers `ClassifierFreeZeroStarGuidance`): in the
 * model-output space (epsilon for 'vp' models, velocity for 'flow' models, as diffusers), per sample
 * `alpha = <c, u>/(|u|^2 + 1e-8)`, `u' = alpha u`, `pred = u' + w (c - u')`. During the first
 * `zeroInitSteps` steps the prediction is zero (`x0 = x`, so a first-order step leaves x unchanged); those
 * steps ask the model for nothing, unlike diffusers, which still evaluates both branches.
 *
 * @example
 * const guider = cfgZeroStar({ scale: 5, zeroInitSteps: 1 })
 */
export function cfgZeroStar(options: CfgZeroStarOptions): Guider {
  const scale = checkNumber('scale', options.scale)
  const zeroInitSteps = checkNumber('zeroInitSteps', options.zeroInitSteps ?? 1, { min: 0, integer: true })
  return {
    specificationVersion: 'v1',
    name: `cfg-zero-star(scale=${scale}, zeroInitSteps=${zeroInitSteps})`,
    start(_run: RunInfo): GuidanceSession {
      return {
        async step(ctx: StepContext) {
          if (ctx.step < zeroInitSteps) {
            const denoised = ctx.x.clone()
            return { denoised, renoise: denoised }
          }
          if (scale === 1) return positiveOnly(ctx)
          const { cond: c, uncond: u } = await predictPair(ctx, 'cfgZeroStar')
          const pred = cfgZeroStarCombine(modelOutput(c, ctx.family), modelOutput(u, ctx.family), scale)
          const denoised = denoisedFrom(ctx.x, ctx.sigma, pred)
          return { denoised, renoise: denoised }
        },
      }
    },
  }
}

/**
 * The x0 form of CFG-Zero* (ComfyUI's `CFGZeroStar` node, a post-CFG hook), pure: with
 * `alpha = <x - D_c, x - D_u> / (|x - D_u|^2 + 1e-8)` per sample, `D = alpha D_u + s (D_c - alpha D_u)`.
 * It differs from the epsilon form by `(alpha - 1)(1 - s) x`. arXiv 2503.18886.
 *
 * @example
 * const denoised = cfgZeroStarX0Combine(x, condDenoised, uncondDenoised, 5)
 */
export function cfgZeroStarX0Combine(x: Tensor, condDenoised: Tensor, uncondDenoised: Tensor, scale: number): Tensor {
  checkNumber('scale', scale)
  assertSameShape('cfgZeroStarX0Combine (x, cond, uncond)', x, condDenoised, uncondDenoised)
  const xc = combine([
    [1, x],
    [-1, condDenoised],
  ])
  const xu = combine([
    [1, x],
    [-1, uncondDenoised],
  ])
  const alpha = cfgZeroStarAlpha(xc, xu)
  return cfgZeroStarCombine(condDenoised, uncondDenoised, scale, alpha)
}

/**
 * CFG-Zero*, x0 form (ComfyUI `comfy_extras/nodes_cfg.py::CFGZeroStar`): `alpha` from `x - D_c` and
 * `x - D_u` (proportional to epsilon, so it is scale invariant), `D = alpha D_u + s (D_c - alpha D_u)` with
 * `s` the CFG scale. No zero-init, as the node.
 *
 * @example
 * const guider = cfgZeroStarX0({ scale: 5 })
 */
export function cfgZeroStarX0(options: { readonly scale: number }): Guider {
  const scale = checkNumber('scale', options.scale)
  return {
    specificationVersion: 'v1',
    name: `cfg-zero-star-x0(scale=${scale})`,
    start(_run: RunInfo): GuidanceSession {
      return {
        async step(ctx: StepContext) {
          const { cond: c, uncond: u } = await predictPair(ctx, 'cfgZeroStarX0')
          const denoised = cfgZeroStarX0Combine(ctx.x, c.denoised, u.denoised, scale)
          return { denoised, renoise: denoised }
        },
      }
    },
  }
}
