import { assertSameShape, checkNumber, combine, dot, type GuidanceSession, type Guider, type Prediction, type RunInfo, type StepContext, type Tensor, checkBranchShapes, denoisedFrom, modelOutput, positiveOnly, predictPair } from '@guidekit/core'

/**
 * Tangential CFG combination (TCFG, arXiv 2503.18137; diffusers `TangentialClassifierFreeGuidance`), paper
 * scale `w`: per sample, `v1` is the top right-singular vector of the 2 x N matrix `[c; u]`,
 * `u' = <u, v1> v1`, `pred = u' + w (c - u')`.
 *
 * Instead of an SVD of the 2 x N matrix, `v1 ∝ y1 c + y2 u` with `(y1, y2)` the top eigenvector of the
 * 2 x 2 Gram matrix `[[<c,c>, <c,u>], [<u,c>, <u,u>]]` (closed form, float64), so `u'` is a per-sample
 * combination of `c` and `u` and the whole guider is one fused pass. The sign of `v1` does not matter.
 *
 * @example
 * const pred = tangentialCombine(epsCond, epsUncond, 7.5)
 */
export function tangentialCombine(cond: Tensor, uncond: Tensor, scale: number): Tensor {
  checkNumber('scale', scale)
  assertSameShape('tangentialCombine (cond, uncond)', cond, uncond)
  const cc = dot(cond, cond)
  const cu = dot(cond, uncond)
  const uu = dot(uncond, uncond)
  const kc = new Float64Array(cond.batch)
  const ku = new Float64Array(cond.batch)
  for (let b = 0; b < kc.length; b++) {
    const a = cc[b] as number
    const o = cu[b] as number
    const d = uu[b] as number
    const half = (a - d) / 2
    const lambda = (a + d) / 2 + Math.hypot(half, o)
    // Two equivalent eigenvector forms; take the one with the larger norm for accuracy.
    let y1 = o
    let y2 = lambda - a
    const z1 = lambda - d
    const z2 = o
    if (z1 * z1 + z2 * z2 > y1 * y1 + y2 * y2) {
      y1 = z1
      y2 = z2
    }
    const vv = y1 * y1 * a + 2 * y1 * y2 * o + y2 * y2 * d // |y1 c + y2 u|^2
    // u' = (<u, v>/|v|^2) v with v = y1 c + y2 u; degenerate (both zero) gives u' = 0.
    const k = vv > 0 ? (y1 * o + y2 * d) / vv : 0
    kc[b] = (1 - scale) * k * y1 + scale
    ku[b] = (1 - scale) * k * y2
  }
  return combine([
    [kc, cond],
    [ku, uncond],
  ])
}

/**
 * Tangential classifier-free guidance (TCFG, arXiv 2503.18137): CFG against the unconditional prediction
 * projected onto the dominant singular direction of `[c; u]`, in the model-output space (epsilon for 'vp'
 * models, velocity for 'flow' models, as diffusers). Paper scale `w`; `w = 1` asks for one branch.
 *
 * @example
 * const guider = tangentialCfg({ scale: 7.5 })
 */
export function tangentialCfg(options: { readonly scale: number }): Guider {
  const scale = checkNumber('scale', options.scale)
  return {
    specificationVersion: 'v1',
    name: `tangential-cfg(scale=${scale})`,
    start(_run: RunInfo): GuidanceSession {
      return {
        async step(ctx: StepContext) {
          if (scale === 1) return positiveOnly(ctx)
          const { cond: c, uncond: u } = await predictPair(ctx, 'tangentialCfg')
          const denoised = denoisedFrom(ctx.x, ctx.sigma, tangentialCombine(modelOutput(c, ctx.family), modelOutput(u, ctx.family), scale))
          return { denoised, renoise: denoised }
        },
      }
    },
  }
}
