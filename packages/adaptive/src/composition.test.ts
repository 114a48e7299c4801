// Guidance strategies mix in code without glue: these tests compose the real packages on the Gaussian toy.
import { apg, apgDiffusers } from '@guidekit/apg'
import { cfg } from '@guidekit/cfg'
import { cfgPlusPlus } from '@guidekit/cfg-pp'
import { type Tensor, interval, ddim, dpmpp2m, euler, eulerAncestral, flowMatchEuler, flowPlan, gaussianDenoiser, sample, vpPlan, vpSchedule, type Guider, type Sampler } from '@guidekit/core'
import { rlg } from '@guidekit/rlg'
import { describe, expect, it } from 'vitest'
import { adaptive } from './index.js'

const n = 16
const pattern = (shift: number, amp: number) => Float32Array.from({ length: n }, (_, i) => amp * Math.sin(i) + shift)
const vp = gaussianDenoiser({ family: 'vp', means: { positive: pattern(0.4, 1), negative: pattern(0, 1) } })
const vpPlan20 = vpPlan(vpSchedule(), { steps: 20, karras: true })
const mean = (t: Tensor) => t.data.reduce((s, v) => s + v, 0) / t.size
const maxAbsDiff = (a: Tensor, b: Tensor) => a.data.reduce((m, v, i) => Math.max(m, Math.abs(v - (b.data[i] as number))), 0)

describe('composition', () => {
  it('adaptive(apg): per-sample APG sessions (own momentum) equal batched APG until the switch, then save evaluations', async () => {
    const inner = apg({ scale: 5, eta: 0, momentum: -0.5, normThreshold: 2 })
    const plain = await sample({ denoiser: vp, guider: inner, sampler: euler(), plan: vpPlan20, shape: [3, n], seed: 2 })
    const never = await sample({ denoiser: vp, guider: adaptive(inner, { threshold: 1, space: 'x0' }), sampler: euler(), plan: vpPlan20, shape: [3, n], seed: 2 })
    expect(maxAbsDiff(never.samples, plain.samples)).toBeLessThan(1e-5)
    expect(never.modelCalls).toBe(20)
    const ag = await sample({ denoiser: vp, guider: adaptive(inner, { threshold: 0.995, space: 'x0' }), sampler: euler(), plan: vpPlan20, shape: [3, n], seed: 2 })
    expect(ag.guidance.savedNfe).toBeGreaterThan(0)
    expect(ag.nfe).toBeLessThan(40)
    expect(maxAbsDiff(ag.samples, plain.samples)).toBeLessThan(0.5)
  })

  it('rlg over apg: each model runs its own APG session; one predict call with four branches per step', async () => {
    const models = { base: { positive: pattern(0.4, 1), negative: pattern(0, 1) }, tuned: { positive: pattern(0.8, 1.2), negative: pattern(0, 1) } }
    const denoiser = gaussianDenoiser({ family: 'flow', means: { positive: 0, negative: 0 }, models })
    const plan = flowPlan({ steps: 12, shift: 3 })
    const inner = apg({ scale: 4, momentum: -0.5 })
    const r = await sample({ denoiser, guider: rlg({ scale: 1.5, inner }), sampler: flowMatchEuler(), plan, shape: [2, n], seed: 1 })
    expect(r.modelCalls).toBe(24)
    expect(r.branchEvaluations).toBe(48)
    // w = 1 is APG on the tuned model alone
    const tunedOnly = gaussianDenoiser({ family: 'flow', means: models.tuned })
    const a = await sample({ denoiser, guider: rlg({ scale: 1, inner }), sampler: flowMatchEuler(), plan, shape: [2, n], seed: 1 })
    const b = await sample({ denoiser: tunedOnly, guider: inner, sampler: flowMatchEuler(), plan, shape: [2, n], seed: 1 })
    expect(maxAbsDiff(a.samples, b.samples)).toBeLessThan(1e-5)
    // extrapolating past the RL model moves further along the same direction
    const base = await sample({ denoiser, guider: rlg({ scale: 0, inner }), sampler: flowMatchEuler(), plan, shape: [2, n], seed: 1 })
    expect(mean(r.samples) - mean(a.samples)).toBeCloseTo(0.5 * (mean(a.samples) - mean(base.samples)), 1)
  })

  const samplers: [string, () => Sampler, 'vp' | 'flow'][] = [
    ['euler', euler, 'vp'],
    ['eulerAncestral', () => eulerAncestral(), 'vp'],
    ['ddim', () => ddim({ eta: 0.5 }), 'vp'],
    ['dpmpp2m', dpmpp2m, 'vp'],
    ['flowMatchEuler', flowMatchEuler, 'flow'],
  ]
  for (const [name, make, family] of samplers) {
    it(`cfg-pp with ${name}: lambda = 0 is unconditional sampling, lambda > 0 moves towards the condition`, async () => {
      const denoiser = gaussianDenoiser({ family, means: { positive: 1, negative: 0 } })
      const plan = family === 'flow' ? flowPlan({ steps: 20, shift: 3 }) : vpPlan20
      const run = (guider: Guider) => sample({ denoiser, guider, sampler: make(), plan, shape: [64, n], seed: 3 })
      const off = await run(cfgPlusPlus({ scale: 0 }))
      const on = await run(cfgPlusPlus({ scale: 0.3 }))
      expect(Math.abs(mean(off.samples))).toBeLessThan(0.15)
      expect(mean(on.samples)).toBeGreaterThan(0.5)
      expect(on.samples.data.every(Number.isFinite)).toBe(true)
      expect(on.branchEvaluations).toBe(40)
    })
  }

  it('a sigma-interval window around any guider (cfg-pp, adaptive(apg), apgDiffusers): guided inside, one branch outside', async () => {
    const lo = vpPlan20.sigmas[12] as number
    const hi = vpPlan20.sigmas[4] as number
    for (const inner of [cfgPlusPlus({ scale: 0.5 }), adaptive(apg({ scale: 4 }), { threshold: 1 }), apgDiffusers({ scale: 4 }), cfg({ scale: 3, rescale: 0.7 })]) {
      const r = await sample({ denoiser: vp, guider: interval(inner, { sigma: [lo, hi] }), sampler: dpmpp2m(), plan: vpPlan20, shape: [2, n], seed: 5 })
      expect(r.nfe).toBe(20 + 8)
      expect(r.guidance.intervalSkippedSteps).toBe(12)
      expect(r.samples.data.every(Number.isFinite)).toBe(true)
    }
  })
})
