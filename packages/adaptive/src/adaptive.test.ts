import { GuidekitError, Tensor, euler, gaussianDenoiser, sample, vpPlan, vpSchedule, type Guider, type Prediction } from '@guidekit/core'
import { referenceCfg } from '@guidekit/core/testing'
import { describe, expect, it } from 'vitest'
import { adaptive } from './index.js'


// Means that differ a little: the x0 predictions agree more and more as sigma falls. (In epsilon space both
// branches are close to x / sigma at high noise, so on this toy epsilon-space AG switches at the first step.)
const n = 16
const mu = (shift: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i) + shift)
const denoiser = gaussianDenoiser({ family: 'vp', means: { positive: mu(0.3), negative: mu(0) } })
const plan = vpPlan(vpSchedule(), { steps: 20, karras: true })

describe('adaptive guidance', () => {
  it('is the inner guider until the threshold is met, then the positive branch alone', async () => {
    const full = await sample({ denoiser, guider: referenceCfg(4), sampler: euler(), plan, shape: [4, n], seed: 1 })
    const never = await sample({ denoiser, guider: adaptive(referenceCfg(4), { threshold: 1 }), sampler: euler(), plan, shape: [4, n], seed: 1 })
    expect([...never.samples.data]).toEqual([...full.samples.data])
    expect(never.guidance.savedNfe).toBe(0)

    const ag = await sample({ denoiser, guider: adaptive(referenceCfg(4), { threshold: 0.99, space: 'x0' }), sampler: euler(), plan, shape: [4, n], seed: 1 })
    expect(ag.guidance.switchedSamples).toBe(4)
    expect(ag.guidance.firstSwitchStep).toBeGreaterThan(0)
    expect(ag.guidance.savedNfe).toBeGreaterThan(0)
    expect(ag.nfe).toBe(40 - (ag.guidance.savedNfe as number))
    // one batched model call per step even when samples are split into per-sample sessions
    expect(ag.modelCalls).toBe(20)
    // late steps without guidance change the result only slightly
    const diff = ag.samples.data.reduce((m, v, i) => Math.max(m, Math.abs(v - (full.samples.data[i] as number))), 0)
    expect(diff).toBeGreaterThan(0)
    expect(diff).toBeLessThan(0.5)
  })

  it('per-sample granularity switches each image on its own and costs switched images one branch', async () => {
    // image 0 starts far out, where x0 follows the latent in both branches (they agree at once); image 1 starts near
    // 0, where each branch's x0 sits near its own mean (+1 vs -1) until the noise is low
    const twoWay = gaussianDenoiser({ family: 'vp', means: { positive: 1, negative: -1 } })
    const calls: { role: string; samples?: readonly number[] }[][] = []
    const spy = { ...twoWay, predict: (r: Parameters<typeof twoWay.predict>[0]) => (calls.push(r.branches.map((b) => ({ role: b.role, ...(b.samples ? { samples: b.samples } : {}) }))), twoWay.predict(r)) }
    const latents = Tensor.from([...Array.from({ length: n }, () => 30), ...Array.from({ length: n }, (_, i) => (i % 2 ? 1 : -1) * 0.01)], [2, n])
    const r = await sample({ denoiser: spy, guider: adaptive(referenceCfg(3), { threshold: 0.999, space: 'x0' }), sampler: euler(), plan, latents })
    // every step is one predict call
    expect(calls).toHaveLength(20)
    const negatives = calls.map((c) => c.filter((b) => b.role === 'negative').map((b) => b.samples ?? 'all'))
    // first both images are guided, then only image 1 (image 0 switched on its own), and image 1 never before image 0
    expect(negatives[0]).toEqual([[0, 1]])
    const alone = negatives.findIndex((n) => JSON.stringify(n) === '[[1]]')
    expect(alone).toBeGreaterThan(0)
    expect(negatives.some((n) => JSON.stringify(n) === '[[0]]')).toBe(false)
    // a switched image costs one branch per step: NFE counts branch evaluations per image
    const evaluations = calls.reduce((s, c) => s + c.reduce((t, b) => t + (b.samples?.length ?? 2), 0), 0)
    expect(r.nfe * 2).toBe(evaluations)
    expect(r.guidance.switchedSamples).toBeGreaterThanOrEqual(1)
    // each image's own NFE: 20 positive evaluations plus its unconditional ones until it switched; image 0 first
    expect(r.imageNfe).toHaveLength(2)
    for (const v of r.imageNfe) expect(v > 20 && v < 40).toBe(true)
    expect(r.imageNfe[0]).toBeLessThan(r.imageNfe[1] as number)
    expect(r.imageNfe.reduce((a, v) => a + (40 - v), 0)).toBe(r.guidance.savedBranchEvaluations)
    expect(((r.imageNfe[0] as number) + (r.imageNfe[1] as number)) / 2).toBe(r.nfe)
  })

  it('batch granularity switches the whole batch together', async () => {
    const r = await sample({ denoiser, guider: adaptive(referenceCfg(4), { threshold: 0.99, space: 'x0', granularity: 'batch' }), sampler: euler(), plan, shape: [4, n], seed: 1 })
    // all four images switch at the same step, so every saved step saves one branch for each of them
    expect(r.guidance.switchedSamples).toBe(4)
    expect(r.guidance.savedNfe).toBeGreaterThan(0)
    expect(r.guidance.savedBranchEvaluations).toBe((r.guidance.savedNfe as number) * 4)
  })

  it('rejects a threshold outside (0, 1], unknown options and non-guiders', () => {
    for (const threshold of [0, 1.5, Number.NaN]) {
      try {
        adaptive(referenceCfg(3), { threshold })
        throw new Error('expected a rejection')
      } catch (e) {
        expect(GuidekitError.isInstance(e)).toBe(true)
        expect((e as Error).message).toMatch(/^threshold must be a finite number > 0 and <= 1/)
      }
    }
    expect(() => adaptive(referenceCfg(3), { space: 'v' as never })).toThrow(/space/)
    expect(() => adaptive(referenceCfg(3), { granularity: 'pixel' as never })).toThrow(/granularity/)
    expect(() => adaptive(null as never)).toThrow(/inner/)
  })
})
