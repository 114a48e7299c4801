// The model-output space shared by the epsilon-space guiders of this package.
//
// With x = alpha(sigma) x0 + sigma eps, the quantity m = (x - x0) / sigma satisfies x0 = x - sigma m for both
// families: for 'vp' (VE cast, alpha = 1) m is epsilon; for 'flow' (alpha = 1 - sigma) m is the velocity
// v = eps - x0, which is what a flow model emits and what diffusers' guiders see on SD3/Flux. Working in m
// never divides by alpha, so it is safe at sigma = 1 of a flow plan.
import { GuidekitError, Tensor, assertSameShape, type Guider, type NoiseFamily, type Prediction, type StepContext } from '@guidekit/core'

/** The model-output-space view (epsilon for 'vp', velocity for 'flow') of a prediction. */
export function modelOutput(p: Prediction, family: NoiseFamily): Tensor {
  if (family === 'vp') return p.noise
  const n = p.noise.data
  const d = p.denoised.data
  const out = new Float32Array(n.length)
  for (let i = 0; i < out.length; i++) out[i] = (n[i] as number) - (d[i] as number)
  return new Tensor(out, p.noise.shape)
}

/** x0 from a model-output-space tensor: `x - sigma m` (in place into `m`'s copy). */
export function denoisedFrom(x: Tensor, sigma: number, m: Tensor): Tensor {
  const out = new Float32Array(m.size)
  const xs = x.data
  const ms = m.data
  for (let i = 0; i < out.length; i++) out[i] = (xs[i] as number) - sigma * (ms[i] as number)
  return new Tensor(out, m.shape)
}

/** Throws SHAPE_MISMATCH unless every prediction has the shape of x (or of the requested sub-batch). */
export function checkBranchShapes(what: string, x: Tensor, predictions: readonly Prediction[]): void {
  for (const p of predictions) assertSameShape(`${what}: branch predictions vs x`, x, p.denoised, p.noise)
}

/** One positive-branch evaluation, used unguided (`D = D_c`). */
export async function positiveOnly(ctx: StepContext): Promise<{ denoised: Tensor; renoise: Tensor }> {
  const [c] = (await ctx.predict([{ role: 'positive' }])) as [Prediction]
  checkBranchShapes('guider', ctx.x, [c])
  return { denoised: c.denoised, renoise: c.denoised }
}

/** Throws when a guider is handed something that is not a guider (a common composition slip). */
export function checkGuider(name: string, value: unknown): asserts value is Guider {
  const ok = typeof value === 'object' && value !== null && typeof (value as Guider).start === 'function'
  if (!ok) throw new GuidekitError('INVALID_ARGUMENT', `${name} must be a Guider (an object with start()), got ${typeof value}.`, { details: { parameter: name } })
}
