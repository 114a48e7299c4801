import { GuidekitError, Tensor, euler, gaussianDenoiser, randn, sample, std, vpPlan, vpSchedule, type Branch, type Guider, type Prediction, type StepContext } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { fakeContext, startSession as start } from './__fixtures__/context.js'
import { cfg, cfgCombine, fromDiffusersScale, rescaleNoiseCfg, toDiffusersScale } from './index.js'


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

describe('rescaleNoiseCfg', () => {
  it('with phi = 1 gives the conditional prediction its (unbiased) std, per sample', () => {
    const g = cfgCombine(c, u, 7.5)
    const out = rescaleNoiseCfg(g, c, 1)
    const sc = std(c)
    const so = std(out)
    expect(so[0]).toBeCloseTo(sc[0] as number, 5)
    expect(so[1]).toBeCloseTo(sc[1] as number, 5)
    // unbiased: std([1, 2, 3]) = 1
    expect(sc[0]).toBeCloseTo(1, 12)
  })

  it('leaves a constant prediction unchanged instead of dividing by std = 0', () => {
    const constant = Tensor.from([2, 2, 2, 5, 6, 7], [2, 3])
    const out = rescaleNoiseCfg(constant, c, 0.7)
    expect([...out.data.subarray(0, 3)]).toEqual([2, 2, 2])
    expect(out.data.every(Number.isFinite)).toBe(true)
  })
})

describe('cfg guider', () => {
  const x = Tensor.zeros([2, 3])
  it('asks for both branches in one call and combines them', async () => {
    const { ctx, calls } = fakeContext({ x, predictions: { positive: pred(c), negative: pred(u) } })
    const out = await start(cfg({ scale: 3 })).step(ctx)
    expect(calls).toEqual([[{ role: 'positive' }, { role: 'negative' }]])
    expect([...out.denoised.data]).toEqual([-3, -4, -7, -8, -11, -14])
    expect(out.renoise).toBe(out.denoised)
  })

  it('asks for the positive branch only at w = 1', async () => {
    const { ctx, calls } = fakeContext({ x, predictions: { positive: pred(c), negative: pred(u) } })
    const out = await start(cfg({ scale: 1 })).step(ctx)
    expect(calls).toEqual([[{ role: 'positive' }]])
    expect([...out.denoised.data]).toEqual([...pred(c).denoised.data])
  })

  it('applies guidance rescale in epsilon space by default and in x0 space on request', async () => {
    const sigma = 2
    const xs = Tensor.from([0.5, -1, 2, 0, 1, 3], [2, 3])
    // denoised = x - sigma * eps
    const mk = (m: Tensor): Prediction => ({ noise: m, denoised: Tensor.from(m.data.map((v, i) => (xs.data[i] as number) - sigma * v), m.shape) })
    const { ctx } = fakeContext({ x: xs, sigma, predictions: { positive: mk(c), negative: mk(u) } })
    const eps = await start(cfg({ scale: 5, rescale: 0.7 })).step(ctx)
    const expectedEps = rescaleNoiseCfg(cfgCombine(c, u, 5), c, 0.7)
    eps.denoised.data.forEach((v, i) => expect(v).toBeCloseTo((xs.data[i] as number) - sigma * (expectedEps.data[i] as number), 5))
    const x0 = await start(cfg({ scale: 5, rescale: 0.7, rescaleSpace: 'x0' })).step(ctx)
    const expectedX0 = rescaleNoiseCfg(cfgCombine(mk(c).denoised, mk(u).denoised, 5), mk(c).denoised, 0.7)
    x0.denoised.data.forEach((v, i) => expect(v).toBeCloseTo(expectedX0.data[i] as number, 5))
  })

  it("follows diffusers' int() truncation for step intervals", async () => {
    const cases: [number, number, number, number[]][] = [
      [0.2, 0.8, 10, [2, 3, 4, 5, 6, 7]],
      [0, 0.5, 7, [0, 1, 2]],
      [0.15, 1, 13, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]],
    ]
    for (const [startF, stopF, steps, enabled] of cases) {
      const session = start(cfg({ scale: 5, interval: { start: startF, stop: stopF } }), steps)
      const guided: number[] = []
      for (let step = 0; step < steps; step++) {
        const { ctx, calls } = fakeContext({ x, step, steps, predictions: { positive: pred(c), negative: pred(u) } })
        await session.step(ctx)
        if ((calls[0] as Branch[]).length === 2) guided.push(step)
      }
      expect(guided).toEqual(enabled)
    }
  })

  it('guides only inside a sigma interval (lo, hi]', async () => {
    const session = start(cfg({ scale: 5, sigmaInterval: { min: 0.28, max: 5.42 } }))
    const counts: number[] = []
    for (const sigma of [10, 5.42, 1, 0.28, 0.1]) {
      const { ctx, calls } = fakeContext({ x, sigma, predictions: { positive: pred(c), negative: pred(u) } })
      await session.step(ctx)
      counts.push((calls[0] as Branch[]).length)
    }
    expect(counts).toEqual([1, 2, 2, 1, 1])
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
    fails(() => cfg({ scale: 3, interval: { start: 0.5, stop: 0.2 } }), 'interval.stop')
    fails(() => cfg({ scale: 3, sigmaInterval: { min: 2, max: 1 } }), 'sigmaInterval')
  })

  it('rejects branch predictions whose shape does not match x', async () => {
    const { ctx } = fakeContext({ x, predictions: { positive: pred(c), negative: pred(randn([1, 3], 1)) } })
    await expect(start(cfg({ scale: 3 })).step(ctx)).rejects.toMatchObject({ code: 'SHAPE_MISMATCH' })
  })
})
