import { GuidekitError, Tensor, euler, gaussianDenoiser, guidanceRescale, randn, sample, std, vpPlan, vpSchedule, type Branch, type Guider, type Prediction, type StepContext } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { fakeStepContext, startSession as start } from '@guidekit/core/testing'
import { cfg, cfgCombine, fromDiffusersScale, toDiffusersScale } from './index.js'


const c = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3])
const u = Tensor.from([0, 1, 1, 2, 2, 2], [2, 3])
/** Predictions whose model output (epsilon, vp) is m, at x = 0 and sigma = 1: denoised = -m. */
const pred = (m: Tensor): Prediction => ({ noise: m, denoised: Tensor.from(m.data.map((v) => -v), m.shape) })

describe('cfgCombine', () => {
  it('is u + w (c - u), returns c at w = 1 and u at w = 0', () => {
    expect([...cfgCombine(c, u, 3).data]).toEqual([3, 4, 7, 8, 11, 14])
    expect([...cfgCombine(c, u, 1).data]).toEqual([...c.data])
    expect([...cfgCombine(c, u, 0).data]).toEqual([...u.data])
  })

  it('converts the diffusers scale conventions', () => {
    expect(fromDiffusersScale(6.5, { useOriginalFormulation: true })).toBe(7.5)
    expect(fromDiffusersScale(7.5)).toBe(7.5)
    expect(toDiffusersScale(7.5, { useOriginalFormulation: true })).toBe(6.5)
  })
})

describe('cfg guider', () => {
  const x = Tensor.zeros([2, 3])
  it('asks for both branches in one call and combines them', async () => {
    const { ctx, calls } = fakeStepContext({ x, predictions: { positive: pred(c), negative: pred(u) } })
    const out = await start(cfg({ scale: 3 })).step(ctx)
    expect(calls).toEqual([[{ role: 'positive' }, { role: 'negative' }]])
    expect([...out.denoised.data]).toEqual([-3, -4, -7, -8, -11, -14])
    expect(out.renoise).toBe(out.denoised)
  })

  it('asks for the positive branch only at w = 1', async () => {
    const { ctx, calls } = fakeStepContext({ x, predictions: { positive: pred(c), negative: pred(u) } })
    const out = await start(cfg({ scale: 1 })).step(ctx)
    expect(calls).toEqual([[{ role: 'positive' }]])
    expect([...out.denoised.data]).toEqual([...pred(c).denoised.data])
  })

  it('applies guidance rescale in epsilon space by default and in x0 space on request', async () => {
    const sigma = 2
    const xs = Tensor.from([0.5, -1, 2, 0, 1, 3], [2, 3])
    // denoised = x - sigma * eps
    const mk = (m: Tensor): Prediction => ({ noise: m, denoised: Tensor.from(m.data.map((v, i) => (xs.data[i] as number) - sigma * v), m.shape) })
    const { ctx } = fakeStepContext({ x: xs, sigma, predictions: { positive: mk(c), negative: mk(u) } })
    const eps = await start(cfg({ scale: 5, rescale: 0.7 })).step(ctx)
    const expectedEps = guidanceRescale(cfgCombine(c, u, 5), c, 0.7)
    eps.denoised.data.forEach((v, i) => expect(v).toBeCloseTo((xs.data[i] as number) - sigma * (expectedEps.data[i] as number), 5))
    const x0 = await start(cfg({ scale: 5, rescale: 0.7, space: 'x0' })).step(ctx)
    const expectedX0 = guidanceRescale(cfgCombine(mk(c).denoised, mk(u).denoised, 5), mk(c).denoised, 0.7)
    x0.denoised.data.forEach((v, i) => expect(v).toBeCloseTo(expectedX0.data[i] as number, 5))
  })

  it('samples the Gaussian toy: w = 1 is the conditional model at one evaluation per step; w > 1 overshoots the mean', async () => {
    const denoiser = gaussianDenoiser({ family: 'vp', means: { positive: 1, negative: 0 } })
    const plan = vpPlan(vpSchedule(), { steps: 20, karras: true })
    const shape = [64, 16]
    const off = await sample({ denoiser, guider: cfg({ scale: 1 }), sampler: euler(), plan, shape, seed: 3 })
    const on = await sample({ denoiser, guider: cfg({ scale: 3 }), sampler: euler(), plan, shape, seed: 3 })
    const mean = (t: Tensor) => t.data.reduce((a, b) => a + b, 0) / t.size
    expect(off.branchEvaluations).toBe(20)
    expect(on.branchEvaluations).toBe(40)
    expect(on.modelCalls).toBe(20)
    expect(mean(off.samples)).toBeGreaterThan(0.9)
    expect(mean(off.samples)).toBeLessThan(1.1)
    expect(mean(on.samples)).toBeGreaterThan(1.5)
  })

  it('rejects bad parameters with the parameter name and its range', () => {
    const fails = (f: () => unknown, name: string) => {
      try {
        f()
      } catch (e) {
        expect(GuidekitError.isInstance(e)).toBe(true)
        expect((e as GuidekitError).code).toBe('INVALID_ARGUMENT')
        expect((e as Error).message).toContain(name)
        return
      }
      throw new Error(`expected ${name} to be rejected`)
    }
    fails(() => cfg({ scale: Number.NaN }), 'scale')
    fails(() => cfg({ scale: 3, rescale: 1.5 }), 'rescale')
    fails(() => cfg({ scale: 3, rescale: 0.5, space: 'pixels' as never }), 'space')
  })

  it('rejects branch predictions whose shape does not match x', async () => {
    const { ctx } = fakeStepContext({ x, predictions: { positive: pred(c), negative: pred(randn([1, 3], 1)) } })
    await expect(start(cfg({ scale: 3 })).step(ctx)).rejects.toMatchObject({ code: 'SHAPE_MISMATCH' })
  })
})
