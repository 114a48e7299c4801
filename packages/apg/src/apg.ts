import { check, checkNumber, type GuidanceSession, type Guider, type RunInfo, type StepContext, type Tensor, denoisedFrom, guidanceRescale, modelOutput, positiveOnly, predictPair } from '@guidekit/core'
import { apgGuided, type ApgDirectionOptions, type NormDim } from './apg-math.js'

/** The settings the three APG conventions share; what `scale` means differs between them. */
interface ApgSettings {
  readonly scale: number
  readonly eta: number
  readonly momentum: number
  readonly normThreshold: number
}

/** Checks a convention's options, filling in that convention's defaults. */
function apgSettings(options: Partial<ApgSettings>, defaults: Omit<ApgSettings, 'scale'> & { readonly scale?: number }): ApgSettings {
  return {
    scale: checkNumber('scale', options.scale ?? defaults.scale),
    eta: checkNumber('eta', options.eta ?? defaults.eta, { min: 0 }),
    momentum: checkNumber('momentum', options.momentum ?? defaults.momentum, { min: -1, max: 1, minExclusive: true, maxExclusive: true }),
    normThreshold: checkNumber('normThreshold', options.normThreshold ?? defaults.normThreshold, { min: 0 }),
  }
}

/**
 * The momentum average of `d = c - u` over one trajectory, `ra = d + momentum ra` (the first `ra = d`; plain
 * `d` when momentum is 0), made inside APG's reduction pass: `guide` returns `base + weight * apgDirection`.
 */
function momentumAverage(momentum: number): { guide(c: Tensor, u: Tensor, options: ApgDirectionOptions, base: Tensor, weight: number): Tensor; reset(): void } {
  let average: Tensor | null = null
  return {
    guide(c, u, options, base, weight) {
      const result = apgGuided({ a: c, b: u, previous: momentum === 0 ? null : average, momentum }, c, options, base, weight)
      average = result.diff
      return result.guided
    },
    reset() {
      average = null
    },
  }
}

/** Options of {@link apg} (paper convention). */
export interface ApgOptions {
  /** Paper guidance scale `w` (`D = D_c + (w - 1) g`; 1 is off). */
  readonly scale: number
  /** Weight of the parallel component; default 0 (the paper's recommendation). */
  readonly eta?: number
  /** Momentum beta in (-1, 1); default -0.5 (the paper's "reverse momentum"); 0 disables. */
  readonly momentum?: number
  /** Norm threshold r (paper: 15 for SDXL, 2.5 for EDM2-XL); default 0 (off: the value is model-specific). */
  readonly normThreshold?: number
}

/**
 * Adaptive projected guidance, the paper's form (Sadat et al., arXiv 2410.02416, Algorithm 1), in x0 space:
 * `Delta = D_c - D_u`; `Delta <- Delta + beta * Delta_prev-avg` (momentum); `Delta <- Delta min(1, r/|Delta|)`;
 * split against `D_c` into parallel and orthogonal parts; `D = D_c + (w - 1)(Delta_orth + eta Delta_par)`.
 * The momentum buffer is per session (per trajectory). `w = 1` asks for the positive branch only.
 *
 * @example
 * const guider = apg({ scale: 7, eta: 0, momentum: -0.5, normThreshold: 15 })
 */
export function apg(options: ApgOptions): Guider {
  const { scale, eta, momentum, normThreshold } = apgSettings(options, { eta: 0, momentum: -0.5, normThreshold: 0 })
  return {
    specificationVersion: 'v1',
    name: `apg(scale=${scale}, eta=${eta}, momentum=${momentum}, normThreshold=${normThreshold})`,
    start(_run: RunInfo): GuidanceSession {
      const average = momentumAverage(momentum)
      return {
        async step(ctx: StepContext) {
          if (scale === 1) return positiveOnly(ctx)
          const { cond: c, uncond: u } = await predictPair(ctx, 'apg')
          const denoised = average.guide(c.denoised, u.denoised, { eta, normThreshold }, c.denoised, scale - 1)
          return { denoised, renoise: denoised }
        },
      }
    },
  }
}

/** Options of {@link apgDiffusers}: diffusers' `AdaptiveProjectedGuidance` parameters, by their meaning. */
export interface ApgDiffusersOptions {
  /** Guidance strength in diffusers' convention (`guidance_scale`, default 7.5): the multiplier of the modified direction. */
  readonly scale?: number
  /** diffusers `eta` (default 1). Not the paper's eta (see the README). */
  readonly eta?: number
  /** diffusers `adaptive_projected_guidance_momentum` (default: none, i.e. 0). */
  readonly momentum?: number
  /** diffusers `adaptive_projected_guidance_rescale` (default 15): the norm threshold r, not guidance rescale. */
  readonly normThreshold?: number
  /** Base `c` instead of `u` (off at `scale = 0` instead of 1). */
  readonly useOriginalFormulation?: boolean
  /** diffusers `adaptive_projected_guidance_norm_dim`. */
  readonly normDim?: NormDim
  /** diffusers `guidance_rescale` phi, applied after APG with the conditional prediction as reference. */
  readonly rescale?: number
}

/**
 * APG exactly as diffusers' `AdaptiveProjectedGuidance` (arXiv 2410.02416 as implemented in
 * `src/diffusers/guiders/adaptive_projected_guidance.py`): in the model-output space (epsilon for 'vp'
 * models, velocity for 'flow' models), `d = c - u`, momentum `ra = d + beta ra`, norm threshold, projection
 * onto `c`, `pred = (useOriginalFormulation ? c : u) + scale (orth + eta par)`, then optional
 * guidance rescale. Disabled (positive branch only) when `scale` is 1 (or 0 with
 * `useOriginalFormulation`). With `useOriginalFormulation` it equals the paper's rule with
 * `w = scale + 1` applied to epsilon.
 *
 * @example
 * const guider = apgDiffusers({ scale: 10, momentum: -0.5, normThreshold: 15, eta: 0 })
 */
export function apgDiffusers(options: ApgDiffusersOptions = {}): Guider {
  const { scale: w, eta, momentum, normThreshold } = apgSettings(options, { scale: 7.5, eta: 1, momentum: 0, normThreshold: 15 })
  const original = options.useOriginalFormulation ?? false
  check(typeof original === 'boolean', 'useOriginalFormulation', original, 'a boolean')
  const phi = checkNumber('rescale', options.rescale ?? 0, { min: 0, max: 1 })
  const normDim = options.normDim
  const off = original ? 0 : 1
  const disabled = Math.abs(w - off) <= 1e-9 // diffusers: math.isclose(w, off)
  return {
    specificationVersion: 'v1',
    name: `apg-diffusers(scale=${w}, eta=${eta}, momentum=${momentum}, normThreshold=${normThreshold}${original ? ', original' : ''})`,
    start(_run: RunInfo): GuidanceSession {
      const average = momentumAverage(momentum)
      return {
        async step(ctx: StepContext) {
          if (disabled) return positiveOnly(ctx)
          const { cond: cp, uncond: up } = await predictPair(ctx, 'apgDiffusers')
          const c = modelOutput(cp, ctx.family)
          const u = modelOutput(up, ctx.family)
          let pred = average.guide(c, u, normDim === undefined ? { eta, normThreshold } : { eta, normThreshold, normDim }, original ? c : u, w)
          if (phi > 0) pred = guidanceRescale(pred, c, phi)
          const denoised = denoisedFrom(ctx.x, ctx.sigma, pred)
          return { denoised, renoise: denoised }
        },
      }
    },
  }
}

/** Options of {@link apgComfy}: the ComfyUI `APG` node's inputs. */
export interface ApgComfyOptions {
  /** Guidance strength in ComfyUI's convention: the sampler's cfg value (`cond_scale`), which is the paper's `w - 1` for this node. */
  readonly scale: number
  /** default 1 (the node's default). */
  readonly eta?: number
  /** default 5 (the node's default). */
  readonly normThreshold?: number
  /** default 0 (the node's default; 0 disables momentum). */
  readonly momentum?: number
}

/**
 * APG as ComfyUI's `APG` node (`comfy_extras/nodes_apg.py`, a pre-CFG hook), in x0 space:
 * `D = D_c + scale (Delta_orth + eta Delta_par)` with momentum `ra = momentum ra + Delta` (first call `ra = Delta`)
 * that resets whenever sigma increases. This is the paper's rule with `w = scale + 1`. As in ComfyUI,
 * `scale = 1` takes the CFG = 1 fast path: the unconditional branch is not evaluated and `D = D_c`. Norms and
 * projections run over the last three dimensions, as the node's `dim=[-1, -2, -3]` (all non-batch
 * dimensions of image latents `[B, C, H, W]`; per channel-free frame volume for video latents).
 *
 * @example
 * const guider = apgComfy({ scale: 6, eta: 0, normThreshold: 5, momentum: -0.5 })
 */
export function apgComfy(options: ApgComfyOptions): Guider {
  const { scale: cfg, eta, momentum, normThreshold } = apgSettings(options, { eta: 1, momentum: 0, normThreshold: 5 })
  return {
    specificationVersion: 'v1',
    name: `apg-comfy(scale=${cfg}, eta=${eta}, normThreshold=${normThreshold}, momentum=${momentum})`,
    start(_run: RunInfo): GuidanceSession {
      const average = momentumAverage(momentum)
      let prevSigma: number | null = null
      return {
        async step(ctx: StepContext) {
          if (Math.abs(cfg - 1) <= 1e-9) return positiveOnly(ctx)
          if (prevSigma !== null && ctx.sigma > prevSigma) average.reset()
          prevSigma = ctx.sigma
          const { cond: c, uncond: u } = await predictPair(ctx, 'apgComfy')
          const rank = ctx.x.shape.length
          const denoised = average.guide(c.denoised, u.denoised, rank > 4 ? { eta, normThreshold, normDim: [-3, -2, -1] } : { eta, normThreshold }, c.denoised, cfg)
          return { denoised, renoise: denoised }
        },
      }
    },
  }
}

/**
 * Converts a ComfyUI APG node `cfg` to the paper's `w` (`w = cfg + 1`).
 *
 * @example
 * apg({ scale: fromComfyApgCfg(6) })   // w = 7
 */
export function fromComfyApgCfg(cfg: number): number {
  return checkNumber('cfg', cfg) + 1
}

/**
 * The diffusers `eta` that makes diffusers' default APG form (base u, multiplier w) equal the paper's rule
 * without momentum or norm threshold: `eta_d = (1 + (w - 1) eta_paper) / w` (arXiv 2410.02416 vs diffusers).
 *
 * @example
 * apgDiffusers({ scale: 7, eta: diffusersEtaFromPaper(7, 0), normThreshold: 0 })   // = apg({ scale: 7, eta: 0, momentum: 0 })
 */
export function diffusersEtaFromPaper(scale: number, eta: number): number {
  checkNumber('scale', scale, { min: 0, minExclusive: true })
  checkNumber('eta', eta, { min: 0 })
  return (1 + (scale - 1) * eta) / scale
}
