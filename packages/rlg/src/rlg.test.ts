import { Tensor, flowMatchEuler, flowPlan, gaussianDenoiser, sample, type Branch, type Guider } from '@guidekit/core'
import { guidekitErrorOf, referenceCfg } from '@guidekit/core/testing'
import { describe, expect, it } from 'vitest'
import { rlg } from './index.js'


const models = { base: { positive: 1, negative: 0 }, tuned: { positive: 2, negative: 0.5 } }
const denoiser = gaussianDenoiser({ family: 'flow', means: { positive: 1, negative: 0 }, models })
const plan = flowPlan({ steps: 10, shift: 3 })

describe('rlg', () => {
  it('blends the two models guided by the inner guider: D = D_base + w (D_rl - D_base), in one predict call', async () => {
    const x = Tensor.from([0.3, -1.2, 0.8, 2.0], [2, 2])
    const sigma = 0.6
    const calls: Branch[][] = []
    const guider = rlg({ scale: 1.6, inner: referenceCfg(4.5) })
    const session = guider.start({ steps: 1, sigmas: new Float64Array([sigma, 0]), timesteps: new Float64Array([600]), family: 'flow', shape: x.shape })
    const out = await session.step({
      step: 0,
      steps: 1,
      sigma,
      sigmaNext: 0,
      timestep: 600,
      family: 'flow',
      x,
      predict: (branches) => (calls.push([...branches]), denoiser.predict({ step: 0, steps: 1, x, sigma, timestep: 600, branches })),
    })
    expect(calls).toHaveLength(1)
    expect(calls[0]).toEqual([
      { role: 'positive', model: 'base' },
      { role: 'negative', model: 'base' },
      { role: 'positive', model: 'tuned' },
      { role: 'negative', model: 'tuned' },
    ])
    // by hand: flow toy D(x; mu) = mu + k (x - a mu), a = 1 - sigma, k = a / (a^2 + sigma^2)
    const a = 1 - sigma
    const k = a / (a * a + sigma * sigma)
    const D = (xi: number, mu: number) => mu + k * (xi - a * mu)
    x.data.forEach((xi, i) => {
      const base = D(xi, 0) + 4.5 * (D(xi, 1) - D(xi, 0))
      const tuned = D(xi, 0.5) + 4.5 * (D(xi, 2) - D(xi, 0.5))
      expect(out.denoised.data[i]).toBeCloseTo(base + 1.6 * (tuned - base), 5)
    })
  })

  it('costs two model calls (one per model) and four branch evaluations per step', async () => {
    const r = await sample({ denoiser, guider: rlg({ scale: 2.4, inner: referenceCfg(3) }), sampler: flowMatchEuler(), plan, shape: [2, 8], seed: 1 })
    expect(r.modelCalls).toBe(20)
    expect(r.branchEvaluations).toBe(40)
  })

  it('w = 0 is the base model, w = 1 the RL model, each at one model call per step', async () => {
    const run = (guider: Guider) => sample({ denoiser, guider, sampler: flowMatchEuler(), plan, shape: [2, 8], seed: 4 })
    const base = await run(rlg({ scale: 0, inner: referenceCfg(3) }))
    const tuned = await run(rlg({ scale: 1, inner: referenceCfg(3) }))
    expect(base.modelCalls).toBe(10)
    expect(tuned.modelCalls).toBe(10)
    const mean = (t: Tensor) => t.data.reduce((s, v) => s + v, 0) / t.size
    // CFG at 3 pushes towards 3 * mu_c - 2 * mu_u: base 3, tuned 5
    expect(mean(base.samples)).toBeCloseTo(3, 0)
    expect(mean(tuned.samples)).toBeCloseTo(5, 0)
    const extrapolated = await run(rlg({ scale: 2, inner: referenceCfg(3) }))
    expect(mean(extrapolated.samples)).toBeGreaterThan(mean(tuned.samples))
  })

  it('zero-init steps use the RL model alone, as the reference pipeline', async () => {
    const r = await sample({ denoiser, guider: rlg({ scale: 1.5, inner: referenceCfg(3), tunedOnlySteps: 3 }), sampler: flowMatchEuler(), plan, shape: [2, 8], seed: 1 })
    expect(r.modelCalls).toBe(3 + 7 * 2)
  })

  it('uses custom model names and rejects bad options', async () => {
    const named = gaussianDenoiser({ family: 'flow', means: { positive: 1, negative: 0 }, models: { sd: models.base, grpo: models.tuned } })
    const r = await sample({ denoiser: named, guider: rlg({ scale: 1.5, inner: referenceCfg(3), models: { base: 'sd', tuned: 'grpo' } }), sampler: flowMatchEuler(), plan, shape: [1, 4] })
    expect(r.modelCalls).toBe(20)
    const fails = (f: () => unknown, name: RegExp) => expect(guidekitErrorOf(f)?.message).toMatch(name)
    fails(() => rlg({ scale: Number.NaN, inner: referenceCfg(3) }), /^scale must be a finite number/)
    fails(() => rlg({ scale: 1, inner: referenceCfg(3), tunedOnlySteps: 1.5 }), /^tunedOnlySteps must be an integer/)
    fails(() => rlg({ scale: 1, inner: referenceCfg(3), models: { base: 'a', tuned: 'a' } }), /^models must be two distinct/)
    fails(() => rlg({ scale: 1, inner: undefined as never }), /^inner must be a Guider/)
  })
})
