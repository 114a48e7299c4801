import { GuidekitError, Tensor, check, checkNumber, checkPlan, familyAlpha, findNonFinite, type Denoiser, type Prediction, type SamplingPlan, checkBranchShapes } from '@guidekit/core'

/** Options of {@link invert}. */
export interface InvertOptions {
  readonly denoiser: Denoiser
  /**
   * The clean sample to invert, in the sampling space at the plan's last sigma (for a plan ending at 0 the
   * data itself; for a DDIM plan ending at `sigmaMin`, the sample there).
   */
  readonly image: Tensor
  /** The plan that will sample back; inversion walks it from its last sigma up to its first. */
  readonly plan: SamplingPlan
  /** CFG++ strength (the paper's lambda >= 0); sample back with the same value. */
  readonly scale: number
  /**
   * Extra fixed-point refinements per step (default 0: plain DDIM inversion). Each re-evaluates the model at
   * the current estimate of the noisier sample and costs one more model call per step; the round-trip error
   * then shrinks geometrically instead of only with the step size.
   */
  readonly fixedPointIterations?: number
  readonly signal?: AbortSignal
  readonly onProgress?: (progress: { readonly step: number; readonly steps: number; readonly sigma: number }) => void
}

/** What {@link invert} returns. */
export interface InvertResult {
  /** The noisy latent at `plan.sigmas[0]`; pass it as `latents` to `sample()` with `cfgPlusPlus({ scale })`. */
  readonly latents: Tensor
  readonly modelCalls: number
}

/**
 * Deterministic DDIM inversion with CFG++ (Chung et al., arXiv 2406.08070, §4 "invertibility"). Walking the
 * plan backwards, step i goes from `sigma_{i+1}` up to `sigma_i`, evaluating the model at the destination
 * level (`sigma_i` and its timestep, as diffusers' `DDIMInverseScheduler`) on the current sample, and
 * swaps CFG++'s roles: the data part uses the unconditional x0, the noise part the guided epsilon:
 *
 * `x_i = alpha_i D_u + sigma_i eps_lambda`, with `D_u = (x_{i+1} - sigma_{i+1} eps_u) / alpha_{i+1}`.
 *
 * This is the exact inverse of CFG++'s sampling step `x_{i+1} = alpha_{i+1} D_lambda + sigma_{i+1} eps_u`
 * whenever the model's epsilon at `x_i` equals the one at `x_{i+1}` (the usual DDIM inversion
 * approximation), so `sample({ latents, guider: cfgPlusPlus({ scale }), sampler: euler() or ddim() })`
 * reconstructs the image up to that approximation's error, which shrinks with the step size.
 * `fixedPointIterations` removes the approximation: it solves `x_i = alpha_i D_u(x_i) + sigma_i eps_lambda(x_i)`
 * with `D_u` taken from `x_{i+1}` as above, i.e. the exact preimage of CFG++'s step, by iterating the same
 * update with the model evaluated at the current estimate of `x_i`.
 *
 * @example
 * const { latents } = await invert({ denoiser, image, plan, scale: 0.6 })
 * const back = await sample({ denoiser, guider: cfgPlusPlus({ scale: 0.6 }), sampler: ddim(), plan, latents })
 */
export async function invert(options: InvertOptions): Promise<InvertResult> {
  const { denoiser, image, signal, onProgress } = options
  const plan = checkPlan(options.plan)
  const lambda = checkNumber('scale', options.scale, { min: 0 })
  const iterations = checkNumber('fixedPointIterations', options.fixedPointIterations ?? 0, { min: 0, integer: true })
  check(image instanceof Tensor, 'image', typeof image, 'a Tensor')
  check(plan.family === denoiser.family, 'plan.family', plan.family, `the denoiser's family '${denoiser.family}'`)
  if (plan.targets !== undefined) {
    throw new GuidekitError('UNSUPPORTED', "invert() walks the plan's sigmas back one by one; a plan with per-step targets (diffusers' DDIM plan, vpPlan({ ddim: true })) lands elsewhere. Invert with a plan without targets.", {
      details: { parameter: 'plan.targets' },
    })
  }
  const family = plan.family
  const steps = plan.timesteps.length
  let x = image
  let modelCalls = 0
  for (let i = steps - 1; i >= 0; i--) {
    if (signal?.aborted) throw new GuidekitError('ABORTED', `Inversion was aborted before step ${steps - i}.`, { cause: signal.reason })
    const from = plan.sigmas[i + 1] as number
    const to = plan.sigmas[i] as number
    const timestep = plan.timesteps[i] as number
    const aFrom = familyAlpha(family, from)
    const aTo = familyAlpha(family, to)
    if (aFrom === 0) throw new GuidekitError('UNSUPPORTED', 'invert cannot start a step at alpha = 0 (flow sigma = 1).')
    const xs = x.data
    let at = x
    for (let k = 0; k <= iterations; k++) {
      const request = { x: at, sigma: to, timestep, step: i, steps, branches: [{ role: 'positive' }, { role: 'negative' }] as const }
      const predictions = await denoiser.predict(signal ? { ...request, signal } : request)
      modelCalls++
      const [c, u] = predictions as [Prediction, Prediction]
      checkBranchShapes('invert', x, [c, u])
      const ec = c.noise.data
      const eu = u.noise.data
      const out = new Float32Array(x.size)
      for (let j = 0; j < out.length; j++) {
        const u0 = eu[j] as number
        const du = ((xs[j] as number) - from * u0) / aFrom
        const el = u0 + lambda * ((ec[j] as number) - u0)
        out[j] = aTo * du + to * el
      }
      at = new Tensor(out, x.shape)
    }
    x = at
    const bad = findNonFinite(x)
    if (bad >= 0) throw new GuidekitError('NON_FINITE', `Inversion step ${steps - i}/${steps} produced ${x.data[bad]} at element ${bad}; lower the scale (lambda).`)
    onProgress?.({ step: steps - i, steps, sigma: to })
  }
  return { latents: x, modelCalls }
}
