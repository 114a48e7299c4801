// Guidance rescale (Lin et al., arXiv 2305.08891), for apgDiffusers' `guidanceRescale` (diffusers applies
// it after APG). The same rule as @guidekit/cfg's `rescaleNoiseCfg`; guidance packages do not depend on
// each other, so the dozen lines live here too (candidate for @guidekit/core).
import { combine, std, type Tensor } from '@guidekit/core'

/** `phi * pred * std(cond)/std(pred) + (1 - phi) * pred`, unbiased std per sample; std(pred) = 0 leaves it unchanged. */
export function rescale(pred: Tensor, cond: Tensor, phi: number): Tensor {
  const stdCond = std(cond)
  const stdPred = std(pred)
  const factor = new Float64Array(pred.batch)
  for (let b = 0; b < factor.length; b++) {
    const sp = stdPred[b] as number
    factor[b] = phi * (sp > 0 && Number.isFinite(sp) ? (stdCond[b] as number) / sp : 1) + (1 - phi)
  }
  return combine([[factor, pred]])
}
