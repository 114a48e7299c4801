import { Tensor, combine, dot, norm, randn, type Prediction } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { fakeStepContext, fromEpsilon, guidekitErrorOf, startSession } from '@guidekit/core/testing'
import { apg, apgComfy, apgDiffusers, apgDirection, apgMomentumUpdate, diffusersEtaFromPaper, fromComfyApgCfg } from './index.js'

const shape = [2, 4, 4, 4]
const c = randn(shape, 11)
const u = combine([
  [0.8, c],
  [0.6, randn(shape, 12)],
])
const diff = combine([
  [1, c],
  [-1, u],
])

describe('apgDirection', () => {
  it('eta = 1 without threshold leaves the difference unchanged', () => {
    apgDirection(diff, c, { eta: 1 }).data.forEach((v, i) => expect(v).toBeCloseTo(diff.data[i] as number, 5))
  })

  it('eta = 0 keeps only the part orthogonal to cond (per sample)', () => {
    const g = apgDirection(diff, c, { eta: 0 })
    const d = dot(g, c)
    const nc = norm(c)
    const ng = norm(g)
    for (let b = 0; b < 2; b++) expect(Math.abs(d[b] as number) / ((nc[b] as number) * (ng[b] as number))).toBeLessThan(1e-6)
  })

  it('clamps the norm to the threshold, per sample, and leaves small differences alone', () => {
    const r = 0.5 * Math.min(...norm(diff))
    const g = apgDirection(diff, c, { eta: 1, normThreshold: r })
    for (const n of norm(g)) expect(n).toBeCloseTo(r, 4)
    const big = apgDirection(diff, c, { eta: 1, normThreshold: 1e6 })
    big.data.forEach((v, i) => expect(v).toBeCloseTo(diff.data[i] as number, 5))
    // |d| = 0 with a threshold: r / 0 = inf, min(1, inf) = 1, no NaN
    expect(apgDirection(Tensor.zeros(shape), c, { eta: 0, normThreshold: 2 }).data.every((v) => v === 0)).toBe(true)
  })

  it('normDim = 1 projects per sample and per spatial position (over channels only)', () => {
    const d = Tensor.from([1, 0, 0, 1, 3, 4, 4, 3], [1, 2, 2, 2])
    const cc = Tensor.from([1, 1, 0, 1, 0, 1, 1, 1], [1, 2, 2, 2])
    const g = apgDirection(d, cc, { eta: 0, normDim: 1 })
    // position p: vectors over the 2 channels, d_p = (d[p], d[4 + p]), c_p = (c[p], c[4 + p])
    for (let p = 0; p < 4; p++) {
      const dv = [d.data[p] as number, d.data[4 + p] as number]
      const cv = [cc.data[p] as number, cc.data[4 + p] as number]
      const cn2 = Math.max(Math.hypot(...cv), 1e-12) ** 2
      const k = (dv[0]! * cv[0]! + dv[1]! * cv[1]!) / cn2
      expect(g.data[p]).toBeCloseTo(dv[0]! - k * cv[0]!, 6)
      expect(g.data[4 + p]).toBeCloseTo(dv[1]! - k * cv[1]!, 6)
    }
  })

  it('momentum keeps a running average ra = d + beta ra', () => {
    const a = apgMomentumUpdate(null, diff, -0.5)
    expect([...a.data]).toEqual([...diff.data])
    const b = apgMomentumUpdate(a, diff, -0.5)
    b.data.forEach((v, i) => expect(v).toBeCloseTo(0.5 * (diff.data[i] as number), 6))
  })
})

describe('APG guiders', () => {
  const x = Tensor.zeros(shape)
  const predictions = (): Record<string, Prediction> => ({ positive: fromEpsilon(c), negative: fromEpsilon(u) })

  it('the paper form equals the diffusers form with eta_d = (1 + (w - 1) eta)/w when there is no momentum or threshold', async () => {
    const w = 6
    const eta = 0
    const paper = await startSession(apg({ scale: w, eta, momentum: 0 }), 10, shape).step(fakeStepContext({ x, predictions: predictions() }).ctx)
    const diffusers = await startSession(apgDiffusers({ scale: w, eta: diffusersEtaFromPaper(w, eta), normThreshold: 0 }), 10, shape).step(fakeStepContext({ x, predictions: predictions() }).ctx)
    paper.denoised.data.forEach((v, i) => expect(v).toBeCloseTo(diffusers.denoised.data[i] as number, 4))
  })

  it('the guider (difference made inside its reduction pass) equals the public helpers step by step, to float32 rounding', async () => {
    const w = 4
    const session = startSession(apg({ scale: w, eta: 0.3, momentum: -0.5, normThreshold: 2 }), 10, shape)
    let average: Tensor | null = null
    for (let step = 0; step < 3; step++) {
      const { ctx } = fakeStepContext({ x, predictions: predictions() })
      const guided = await session.step(ctx)
      const cd = fromEpsilon(c).denoised
      const ud = fromEpsilon(u).denoised
      average = apgMomentumUpdate(
        average,
        combine([
          [1, cd],
          [-1, ud],
        ]),
        -0.5,
      )
      const expected = combine([
        [1, cd],
        [w - 1, apgDirection(average, cd, { eta: 0.3, normThreshold: 2 })],
      ])
      // The helpers round the difference and the direction to float32 before combining them; the guider once.
      guided.denoised.data.forEach((v, i) => expect(Math.abs(v - (expected.data[i] as number))).toBeLessThan(2e-6 * (1 + Math.abs(v))))
    }
  })

  it('the diffusers original formulation is the paper rule with w = scale + 1, momentum and threshold included', async () => {
    const a = startSession(apg({ scale: 5, eta: 0.3, momentum: -0.5, normThreshold: 2 }), 10, shape)
    const b = startSession(apgDiffusers({ scale: 4, eta: 0.3, momentum: -0.5, normThreshold: 2, useOriginalFormulation: true }), 10, shape)
    for (let step = 0; step < 3; step++) {
      const cs = randn(shape, 20 + step)
      const us = combine([
        [0.9, cs],
        [0.4, randn(shape, 30 + step)],
      ])
      const p = { positive: fromEpsilon(cs), negative: fromEpsilon(us) }
      const ra = await a.step(fakeStepContext({ x, step, predictions: p }).ctx)
      const rb = await b.step(fakeStepContext({ x, step, predictions: p }).ctx)
      ra.denoised.data.forEach((v, i) => expect(v).toBeCloseTo(rb.denoised.data[i] as number, 4))
    }
  })

  it('apgComfy(cfg) is the paper rule with w = cfg + 1 and resets momentum when sigma increases', async () => {
    const comfy = startSession(apgComfy({ scale: 6, eta: 0, normThreshold: 5, momentum: -0.5 }), 10, shape)
    const paper = startSession(apg({ scale: fromComfyApgCfg(6), eta: 0, normThreshold: 5, momentum: -0.5 }), 10, shape)
    const sigmas = [5, 3, 1.5]
    for (const [step, sigma] of sigmas.entries()) {
      const p = predictions()
      const a = await comfy.step(fakeStepContext({ x, sigma, step, predictions: p }).ctx)
      const b = await paper.step(fakeStepContext({ x, sigma, step, predictions: p }).ctx)
      a.denoised.data.forEach((v, i) => expect(v).toBeCloseTo(b.denoised.data[i] as number, 5))
    }
    // sigma goes up again: a new trajectory, as if started fresh
    const fresh = startSession(apgComfy({ scale: 6, eta: 0, normThreshold: 5, momentum: -0.5 }), 10, shape)
    const again = await comfy.step(fakeStepContext({ x, sigma: 5, predictions: predictions() }).ctx)
    const first = await fresh.step(fakeStepContext({ x, sigma: 5, predictions: predictions() }).ctx)
    expect([...again.denoised.data]).toEqual([...first.denoised.data])
  })

  it('keeps momentum per session: interleaved trajectories do not share state', async () => {
    const guider = apg({ scale: 7, momentum: -0.5 })
    const s1 = startSession(guider, 10, shape)
    const s2 = startSession(guider, 10, shape)
    const solo = startSession(guider, 10, shape)
    for (let step = 0; step < 3; step++) {
      const p = predictions()
      const a = await s1.step(fakeStepContext({ x, step, predictions: p }).ctx)
      await s2.step(fakeStepContext({ x, step, predictions: { positive: p.negative!, negative: p.positive! } }).ctx)
      const b = await solo.step(fakeStepContext({ x, step, predictions: p }).ctx)
      expect([...a.denoised.data]).toEqual([...b.denoised.data])
    }
  })

  it('asks for the positive branch only when guidance is off', async () => {
    for (const guider of [apg({ scale: 1 }), apgDiffusers({ scale: 1 }), apgDiffusers({ scale: 0, useOriginalFormulation: true }), apgComfy({ scale: 1 })]) {
      const { ctx, calls } = fakeStepContext({ x, predictions: predictions() })
      const out = await startSession(guider, 10, shape).step(ctx)
      expect(calls).toEqual([[{ role: 'positive' }]])
      expect([...out.denoised.data]).toEqual([...predictions().positive!.denoised.data])
    }
  })

  it('rejects momentum <= -1, negative eta, NaN scale and negative thresholds, naming the parameter', () => {
    const cases: [() => unknown, string][] = [
      [() => apg({ scale: 5, momentum: -1 }), 'momentum'],
      [() => apg({ scale: 5, eta: -0.1 }), 'eta'],
      [() => apg({ scale: Number.NaN }), 'scale'],
      [() => apgDiffusers({ normThreshold: -1 }), 'normThreshold'],
      [() => apgComfy({ scale: 6, momentum: 1 }), 'momentum'],
    ]
    for (const [f, name] of cases) expect(guidekitErrorOf(f)?.message).toMatch(new RegExp(`^${name} must be`))
  })

  it('rejects mismatched branch shapes', async () => {
    const { ctx } = fakeStepContext({ x, predictions: { positive: fromEpsilon(c), negative: fromEpsilon(randn([1, 4, 4, 4], 3)) } })
    await expect(startSession(apg({ scale: 5 }), 10, shape).step(ctx)).rejects.toMatchObject({ code: 'SHAPE_MISMATCH' })
  })
})
