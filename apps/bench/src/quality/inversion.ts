// DDIM invertibility (CFG++, arXiv 2406.08070 §4): generate images, invert them to noise and sample back;
// the round-trip error of CFG++ (its own inversion, @guidekit/cfg-pp `invert`) against plain CFG
// inversion at a matched guidance strength. Both plain inversions assume the model's prediction is the same
// at x_i and x_{i+1}; for CFG that error cancels to second order per step, for CFG++ (data part from D_u,
// noise part from eps_lambda) it does not, so its plain round trip does not improve with more steps (seen on
// the exact Gaussian denoiser too). `invert`'s fixed-point refinement removes that error; it is reported as
// a third column.
import { Tensor, familyAlpha, sample, euler, ddim, type Denoiser, type Prediction, type SamplingPlan } from '@guidekit/core'
import { cfg } from '@guidekit/cfg'
import { cfgPlusPlus, invert } from '@guidekit/cfg-pp'

/**
 * Plain DDIM inversion with CFG (the usual baseline): step i goes from sigma_{i+1} up to sigma_i with the
 * guided prediction evaluated at the destination level (as `invert` and diffusers' DDIMInverseScheduler),
 * `x_i = alpha_i D_w + sigma_i eps_w` with `D_w = (x_{i+1} - sigma_{i+1} eps_w) / alpha_{i+1}`.
 */
export async function invertCfg(denoiser: Denoiser, image: Tensor, plan: SamplingPlan, scale: number): Promise<Tensor> {
  const steps = plan.timesteps.length
  let x = image
  for (let i = steps - 1; i >= 0; i--) {
    const from = plan.sigmas[i + 1] as number
    const to = plan.sigmas[i] as number
    const aFrom = familyAlpha(plan.family, from)
    const aTo = familyAlpha(plan.family, to)
    const [c, u] = (await denoiser.predict({ x, sigma: to, timestep: plan.timesteps[i] as number, step: i, steps, branches: [{ role: 'positive' }, { role: 'negative' }] })) as [Prediction, Prediction]
    const out = new Float32Array(x.data.length)
    for (let j = 0; j < out.length; j++) {
      const eu = u.noise.data[j] as number
      const e = eu + scale * ((c.noise.data[j] as number) - eu)
      out[j] = (aTo * ((x.data[j] as number) - from * e)) / aFrom + to * e
    }
    x = new Tensor(out, x.shape)
  }
  return x
}

const rmse = (a: Tensor, b: Tensor) => Math.sqrt(a.data.reduce((s, v, i) => s + (v - (b.data[i] as number)) ** 2, 0) / a.data.length)

export interface InversionResult {
  readonly images: number
  readonly steps: number
  readonly lambda: number
  readonly cfgScale: number
  /** Root-mean-square pixel error (range [-1, 1]) of generate -> invert -> regenerate. */
  readonly cfgPlusPlusRmse: number
  /** CFG++ with `invert`'s fixed-point refinement (2 iterations: 3x the inversion's model calls). */
  readonly cfgPlusPlusFixedPointRmse: number
  readonly cfgRmse: number
}

/** Round trips `count` images generated with each method (same seeds/classes) through its own inversion. */
export async function inversionRoundTrip(options: { denoiser: Denoiser; plan: SamplingPlan; lambda: number; cfgScale: number; shape: readonly number[]; seed: number }): Promise<InversionResult> {
  const { denoiser, plan, lambda, cfgScale, shape, seed } = options
  const sampler = plan.family === 'flow' ? euler : () => ddim()
  // CFG++
  const a = await sample({ denoiser, guider: cfgPlusPlus({ scale: lambda }), sampler: sampler(), plan, shape, seed })
  const { latents } = await invert({ denoiser, image: a.latents, plan, scale: lambda })
  const a2 = await sample({ denoiser, guider: cfgPlusPlus({ scale: lambda }), sampler: sampler(), plan, latents })
  const fixed = await invert({ denoiser, image: a.latents, plan, scale: lambda, fixedPointIterations: 2 })
  const a3 = await sample({ denoiser, guider: cfgPlusPlus({ scale: lambda }), sampler: sampler(), plan, latents: fixed.latents })
  // CFG
  const b = await sample({ denoiser, guider: cfg({ scale: cfgScale }), sampler: sampler(), plan, shape, seed })
  const lb = await invertCfg(denoiser, b.latents, plan, cfgScale)
  const b2 = await sample({ denoiser, guider: cfg({ scale: cfgScale }), sampler: sampler(), plan, latents: lb })
  return { images: shape[0] as number, steps: plan.timesteps.length, lambda, cfgScale, cfgPlusPlusRmse: rmse(a.samples, a2.samples), cfgPlusPlusFixedPointRmse: rmse(a.samples, a3.samples), cfgRmse: rmse(b.samples, b2.samples) }
}
