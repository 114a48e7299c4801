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
    // image 0 sees means far apart (never switches at 0.9999), image 1 identical means (switches at once)
    const twoWay = gaussianDenoiser({ family: 'vp', means: { positive: 1, negative: 0 } })
    const calls: { role: string; samples?: readonly number[] }[][] = []
    const spy = { ...twoWay, predict: (r: Parameters<typeof twoWay.predict>[0]) => (calls.push(r.branches.map((b) => ({ role: b.role, ...(b.samples ? { samples: b.samples } : {}) }))), twoWay.predict(r)) }
    const latents = Tensor.from([...Array.from({ length: n }, () => 30), ...Array.from({ length: n }, (_, i) => (i % 2 ? 1 : -1) * 0.01)], [2, n])
    const r = await sample({ denoiser: spy, guider: adaptive(referenceCfg(3), { threshold: 0.999, space: 'x0' }), sampler: euler(), plan, latents })
    expect(r.guidance.switchedSamples).toBeGreaterThanOrEqual(1)
    // every step is one predict call
    expect(calls).toHaveLength(20)
    const last = calls.at(-1) ?? []
    const evaluations = last.reduce((s, b) => s + (b.samples?.length ?? 2), 0)
    expect(evaluations).toBeLessThan(4)
  })

  it('batch granularity switches the whole batch together', async () => {
    const r = await sample({ denoiser, guider: adaptive(referenceCfg(4), { threshold: 0.99, space: 'x0', granularity: 'batch' }), sampler: euler(), plan, shape: [4, n], seed: 1 })
    expect([0, 4]).toContain(r.guidance.switchedSamples)
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
