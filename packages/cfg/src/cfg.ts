import { check, checkNumber, combine, std, type Tensor, assertSameShape, type GuidanceSession, type Guider, type Prediction, type RunInfo, type StepContext, checkBranchShapes, denoisedFrom, modelOutput, positiveOnly } from '@guidekit/core'
import { checkFractionWindow, checkSigmaWindow, inFractionWindow } from './internal/window.js'

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
 * Guidance rescale (Lin et al., arXiv 2305.08891, §3.4; diffusers `rescale_noise_cfg`):
 * `pred' = phi * pred * std(cond) / std(pred) + (1 - phi) * pred`, with the unbiased (N - 1) standard
 * deviation per sample over all non-batch dimensions, as `torch.std`.
 *
 * Guard (deviation from diffusers, which returns inf/NaN; diffusers issue #13425): where `std(pred)` is 0
 * (a constant guided prediction) or not finite, the ratio is undefined and that sample is left unchanged
 * (factor 1).
 *
 * @example
 * const rescaled = rescaleNoiseCfg(cfgCombine(cond, uncond, 7.5), cond, 0.7)
 */
export function rescaleNoiseCfg(pred: Tensor, cond: Tensor, phi: number): Tensor {
  checkNumber('rescale', phi, { min: 0, max: 1 })
  assertSameShape('rescaleNoiseCfg (pred, cond)', pred, cond)
  const stdCond = std(cond)
  const stdPred = std(pred)
  const factor = new Float64Array(pred.batch)
  for (let b = 0; b < factor.length; b++) {
    const sp = stdPred[b] as number
    const ratio = sp > 0 && Number.isFinite(sp) ? (stdCond[b] as number) / sp : 1
    factor[b] = phi * ratio + (1 - phi)
  }
  return combine([[factor, pred]])
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
  readonly rescaleSpace?: RescaleSpace
  /** Guide only on steps with `int(start * steps) <= step < int(stop * steps)` (diffusers' start/stop). */
  readonly interval?: { readonly start: number; readonly stop: number }
  /** Guide only where `min < sigma <= max` (Kynkaanniemi et al., arXiv 2404.07724; e.g. SDXL (0.28, 5.42]). */
  readonly sigmaInterval?: { readonly min: number; readonly max: number }
}

/**
 * Classifier-free guidance (Ho & Salimans, arXiv 2207.12598) in the paper's convention
 * `D = D_u + w (D_c - D_u)`, with optional guidance rescale (arXiv 2305.08891) and guidance windows by step
 * fraction (diffusers' truncation rule) or by sigma (arXiv 2404.07724). On steps without guidance (outside a
 * window, or `w = 1`) it asks for the positive branch only: one branch instead of two.
 *
 * @example
 * const guider = cfg({ scale: 7.5, rescale: 0.7, sigmaInterval: { min: 0.28, max: 5.42 } })
 */
export function cfg(options: CfgOptions): Guider {
  const scale = checkNumber('scale', options.scale)
  const rescale = checkNumber('rescale', options.rescale ?? 0, { min: 0, max: 1 })
  const rescaleSpace = options.rescaleSpace ?? 'epsilon'
  check(rescaleSpace === 'epsilon' || rescaleSpace === 'x0', 'rescaleSpace', rescaleSpace, "'epsilon' or 'x0'")
  const { interval, sigmaInterval } = options
  if (interval) checkFractionWindow('interval', interval.start, interval.stop)
  if (sigmaInterval) checkSigmaWindow('sigmaInterval', sigmaInterval.min, sigmaInterval.max)
  const parts = [`scale=${scale}`]
  if (rescale > 0) parts.push(`rescale=${rescale}`)
  if (interval) parts.push(`interval=[${interval.start}, ${interval.stop})`)
  if (sigmaInterval) parts.push(`sigma=(${sigmaInterval.min}, ${sigmaInterval.max}]`)
  const enabled = (ctx: StepContext): boolean =>
    scale !== 1 &&
    (!interval || inFractionWindow(ctx.step, ctx.steps, interval.start, interval.stop)) &&
    (!sigmaInterval || (ctx.sigma > sigmaInterval.min && ctx.sigma <= sigmaInterval.max))
  return {
    specificationVersion: 'v1',
    name: `cfg(${parts.join(', ')})`,
    start(_run: RunInfo): GuidanceSession {
      return {
        async step(ctx: StepContext) {
          if (!enabled(ctx)) return positiveOnly(ctx)
          const [c, u] = (await ctx.predict([{ role: 'positive' }, { role: 'negative' }])) as [Prediction, Prediction]
          checkBranchShapes('cfg', ctx.x, [c, u])
          let denoised: Tensor
          if (rescale === 0) {
            denoised = cfgCombine(c.denoised, u.denoised, scale)
          } else if (rescaleSpace === 'x0') {
            denoised = rescaleNoiseCfg(cfgCombine(c.denoised, u.denoised, scale), c.denoised, rescale)
          } else {
            const mc = modelOutput(c, ctx.family)
            const pred = rescaleNoiseCfg(cfgCombine(mc, modelOutput(u, ctx.family), scale), mc, rescale)
            denoised = denoisedFrom(ctx.x, ctx.sigma, pred)
          }
          return { denoised, renoise: denoised }
        },
      }
    },
  }
}

