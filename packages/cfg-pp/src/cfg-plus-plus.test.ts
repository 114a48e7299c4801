import { GuidekitError, Tensor, ddim, dpmpp2m, euler, eulerAncestral, flowMatchEuler, flowPlan, gaussianDenoiser, sample, unguided, vpPlan, vpSchedule, type Guider, type Prediction, type Sampler, type SamplingPlan } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { cfgPlusPlus, cfgScaleFromLambda, invert, lambdaFromCfgScale } from './index.js'

const vp = gaussianDenoiser({ family: 'vp', means: { positive: 1, negative: -0.5 } })
const flow = gaussianDenoiser({ family: 'flow', means: { positive: 1, negative: -0.5 } })
const vpPlan20 = vpPlan(vpSchedule(), { steps: 20, karras: true })
const flowPlan20 = flowPlan({ steps: 20, shift: 3 })

/** Plain CFG with a per-step scale omega_i (a test stand-in for "CFG at the equivalent scale"). */
function cfgWithSchedule(scaleAt: (sigma: number, sigmaNext: number) => number): Guider {
  return {
    specificationVersion: 'v1',
    name: 'cfg-schedule',
    start: () => ({
      async step(ctx) {
        const [c, u] = (await ctx.predict([{ role: 'positive' }, { role: 'negative' }])) as [Prediction, Prediction]
        const w = scaleAt(ctx.sigma, ctx.sigmaNext)
        const d = new Tensor(c.denoised.data.map((v, i) => (u.denoised.data[i] as number) + w * (v - (u.denoised.data[i] as number))), c.denoised.shape)
        return { denoised: d, renoise: d }
      },
    }),
  }
}

function maxAbsDiff(a: Tensor, b: Tensor): number {
  return a.data.reduce((m, v, i) => Math.max(m, Math.abs(v - (b.data[i] as number))), 0)
}

describe('cfgPlusPlus', () => {
  it('returns D_lambda as denoised and D_u as renoise, from one batched call', async () => {
    const x = Tensor.from([0.5, -1, 2, 3], [2, 2])
    const predictions = await vp.predict({ step: 0, steps: 1, x, sigma: 2, timestep: 0, branches: [{ role: 'positive' }, { role: 'negative' }] })
    const [c, u] = predictions as [Prediction, Prediction]
    const calls: number[] = []
    const out = await cfgPlusPlus({ scale: 0.6 })
      .start({ steps: 1, sigmas: new Float64Array([2, 0]), timesteps: new Float64Array([0]), family: 'vp', shape: x.shape })
      .step({ step: 0, steps: 1, sigma: 2, sigmaNext: 0, timestep: 0, family: 'vp', x, predict: (b) => (calls.push(b.length), Promise.resolve(predictions)) })
    expect(calls).toEqual([2])
    out.denoised.data.forEach((v, i) => expect(v).toBeCloseTo((u.denoised.data[i] as number) + 0.6 * ((c.denoised.data[i] as number) - (u.denoised.data[i] as number)), 6))
    expect(out.renoise).toBe(u.denoised)
  })

  it('lambda = 0 is the unconditional model at one branch per step', async () => {
    const a = await sample({ denoiser: vp, guider: cfgPlusPlus({ scale: 0 }), sampler: euler(), plan: vpPlan20, shape: [4, 8], seed: 1 })
    expect(a.branchEvaluations).toBe(20)
    const mean = a.samples.data.reduce((s, v) => s + v, 0) / a.samples.size
    expect(mean).toBeGreaterThan(-0.9)
    expect(mean).toBeLessThan(-0.1)
  })

  // CFG++ with lambda is exactly CFG with omega_i = lambda sigma_i / (sigma_i - sigma_next) on first-order
  // steps (reference notes §5.4), for every first-order sampler in core.
  const firstOrder: [string, () => Sampler, typeof vp, SamplingPlan][] = [
    ['euler', euler, vp, vpPlan20],
    ['ddim', () => ddim(), vp, vpPlan20],
    ['flowMatchEuler', flowMatchEuler, flow, flowPlan20],
  ]
  for (const [name, sampler, denoiser, plan] of firstOrder) {
    it(`with ${name} equals CFG at the first-order equivalent scale, over a whole trajectory`, async () => {
      const family = denoiser.family
      const a = await sample({ denoiser, guider: cfgPlusPlus({ scale: 0.6 }), sampler: sampler(), plan, shape: [4, 8], seed: 2 })
      const b = await sample({
        denoiser,
        guider: cfgWithSchedule((sigma, sigmaNext) => (sigmaNext === 0 ? 0.6 : cfgScaleFromLambda(0.6, { mapping: 'first-order', sigma, sigmaNext, family }))),
        sampler: sampler(),
        plan,
        shape: [4, 8],
        seed: 2,
      })
      expect(maxAbsDiff(a.latents, b.latents)).toBeLessThan(1e-4)
      expect(a.branchEvaluations).toBe(40)
    })
  }

  it('with eulerAncestral equals CFG at the scale of the deterministic part (sigma_next = sigma_down), noise included', async () => {
    const eta = 1
    const sigmaDown = (s: number, n: number) => {
      const up = Math.min(n, eta * n * Math.sqrt(1 - (n * n) / (s * s)))
      return Math.sqrt(n * n - up * up)
    }
    const a = await sample({ denoiser: vp, guider: cfgPlusPlus({ scale: 0.5 }), sampler: eulerAncestral({ eta }), plan: vpPlan20, shape: [4, 8], seed: 3 })
    const b = await sample({
      denoiser: vp,
      guider: cfgWithSchedule((s, n) => (n === 0 ? 0.5 : cfgScaleFromLambda(0.5, { mapping: 'first-order', sigma: s, sigmaNext: sigmaDown(s, n) }))),
      sampler: eulerAncestral({ eta }),
      plan: vpPlan20,
      shape: [4, 8],
      seed: 3,
    })
    expect(maxAbsDiff(a.latents, b.latents)).toBeLessThan(1e-4)
  })

  it('with dpmpp2m keeps the unconditional denoised in the multistep history (official CFG++ 2M)', async () => {
    const plan: SamplingPlan = { family: 'vp', sigmas: new Float64Array([3, 1.5, 0.7]), timesteps: new Float64Array([0, 0]) }
    const x0 = Tensor.from([0.3, -2, 4, 1], [2, 2])
    const lambda = 0.8
    const got = await sample({ denoiser: vp, guider: cfgPlusPlus({ scale: lambda }), sampler: dpmpp2m(), plan, latents: x0 })
    // By hand: x' = D_l - e^{-h} D_u - (e^{-h} - 1)(D_l - D_u,prev)/(2r) + e^{-h} x, t = -log sigma.
    const D = (x: number, s: number, mu: number) => (x + s * s * mu) / (1 + s * s)
    const expected = [...x0.data].map((x) => {
      const [s0, s1, s2] = [3, 1.5, 0.7]
      const h0 = Math.log(s0 / s1)
      const du0 = D(x, s0, -0.5)
      const dl0 = du0 + lambda * (D(x, s0, 1) - du0)
      const x1 = dl0 - Math.exp(-h0) * du0 + Math.exp(-h0) * x
      const h1 = Math.log(s1 / s2)
      const r = h0 / h1
      const du1 = D(x1, s1, -0.5)
      const dl1 = du1 + lambda * (D(x1, s1, 1) - du1)
      return dl1 - Math.exp(-h1) * du1 - ((Math.exp(-h1) - 1) * (dl1 - du0)) / (2 * r) + Math.exp(-h1) * x1
    })
    got.latents.data.forEach((v, i) => expect(v).toBeCloseTo(expected[i] as number, 5))
    // and it differs from 2M whose history holds the guided denoised
    const plain = await sample({ denoiser: vp, guider: cfgWithSchedule(() => lambda), sampler: dpmpp2m(), plan, latents: x0 })
    expect(maxAbsDiff(got.latents, plain.latents)).toBeGreaterThan(1e-2)
  })

  it('rejects a scale (lambda) < 0 and NaN', () => {
    for (const scale of [-0.1, Number.NaN]) {
      try {
        cfgPlusPlus({ scale })
        throw new Error('expected a rejection')
      } catch (e) {
        expect(GuidekitError.isInstance(e)).toBe(true)
        expect((e as Error).message).toMatch(/^scale must be a finite number >= 0/)
      }
    }
  })
})

describe('lambda <-> CFG scale', () => {
  it("A1111's mapping divides by 12.5", () => {
    expect(lambdaFromCfgScale(7.5, { mapping: 'a1111' })).toBeCloseTo(0.6, 12)
    expect(cfgScaleFromLambda(0.6, { mapping: 'a1111' })).toBeCloseTo(7.5, 12)
  })

  it('the first-order mapping is lambda = omega (sigma - sigmaNext)/sigma, VE-cast for flow, and round-trips', () => {
    expect(lambdaFromCfgScale(7.5, { mapping: 'first-order', sigma: 1, sigmaNext: 0.8 })).toBeCloseTo(1.5, 12)
    const how = { mapping: 'first-order', sigma: 0.6, sigmaNext: 0.4, family: 'flow' } as const
    // VE-cast sigmas 1.5 and 0.6667
    expect(lambdaFromCfgScale(3, how)).toBeCloseTo((3 * (1.5 - 2 / 3)) / 1.5, 12)
    expect(cfgScaleFromLambda(lambdaFromCfgScale(3, how), how)).toBeCloseTo(3, 12)
    expect(() => lambdaFromCfgScale(3, { mapping: 'first-order', sigma: 1, sigmaNext: 2 })).toThrow(/sigmaNext/)
  })
})

describe('invert (DDIM inversion with CFG++)', () => {
  const plan = vpPlan(vpSchedule(), { steps: 50, final: 'first-train-step' })
  const roundTrip = async (lambda: number, fixedPointIterations: number) => {
    const image = (await sample({ denoiser: vp, guider: unguided(), sampler: ddim(), plan, shape: [8, 16], seed: 5 })).latents
    const inverted = await invert({ denoiser: vp, image, plan, scale: lambda, fixedPointIterations })
    const back = await sample({ denoiser: vp, guider: cfgPlusPlus({ scale: lambda }), sampler: ddim(), plan, latents: inverted.latents })
    return { error: maxAbsDiff(back.latents, image), modelCalls: inverted.modelCalls }
  }

  it('reconstructs the image: plain DDIM inversion approximately, with fixed-point refinement to 1e-3', async () => {
    // Measured on this toy (50 leading steps, 8 x 16 samples), max abs error of the round trip:
    // lambda 0: 0.71 plain; lambda 0.6: 1.53 plain, 0.13 / 1.1e-2 / 9.4e-5 with 1 / 2 / 4 refinements.
    const plain = await roundTrip(0, 0)
    expect(plain.error).toBeGreaterThan(0.6)
    expect(plain.error).toBeLessThan(0.8)
    expect(plain.modelCalls).toBe(50)
    const refined = await roundTrip(0.6, 4)
    expect(refined.error).toBeLessThan(1e-3)
    expect(refined.modelCalls).toBe(250)
    const once = await roundTrip(0.6, 1)
    expect(once.error).toBeGreaterThan(refined.error)
  })

  it('checks its inputs', async () => {
    await expect(invert({ denoiser: vp, image: Tensor.zeros([1, 2]), plan, scale: -1 })).rejects.toThrow(/scale/)
    await expect(invert({ denoiser: vp, image: Tensor.zeros([1, 2]), plan: flowPlan20, scale: 1 })).rejects.toThrow(/plan.family/)
  })
})

describe('invert refuses plans it cannot walk back', () => {
  it('rejects a DDIM plan with per-step targets (UNSUPPORTED)', async () => {
    const plan = vpPlan(vpSchedule(), { steps: 7, spacing: 'trailing', ddim: true, final: 'first-train-step' })
    expect(plan.targets).toBeDefined()
    await expect(invert({ denoiser: vp, image: Tensor.zeros([1, 2]), plan, scale: 0.5 })).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringContaining('targets') as unknown })
  })
})
