import { describe, expect, it } from 'vitest'
import type { Guider } from './contracts.js'
import { interval } from './interval.js'
import { euler } from './samplers.js'
import { sample } from './sample.js'
import { vpPlan, vpSchedule } from './schedules.js'
import { gaussianDenoiser, referenceCfg } from './testing/index.js'

/** A guider that counts the steps its session sees and asks for both branches. */
function counting(): Guider & { seen: number[] } {
  const seen: number[] = []
  return {
    specificationVersion: 'v1',
    name: 'counting',
    seen,
    start: () => ({
      async step(ctx) {
        seen.push(ctx.step)
        const [c] = await ctx.predict([{ role: 'positive' }, { role: 'negative' }])
        return { denoised: c!.denoised, renoise: c!.denoised }
      },
    }),
  }
}

describe('interval()', () => {
  const denoiser = gaussianDenoiser({ family: 'vp', means: { positive: 1, negative: 0 } })
  const plan = vpPlan(vpSchedule(), { steps: 10, karras: true })

  it('runs any guider inside a sigma window and the positive branch alone outside', async () => {
    const inner = counting()
    const lo = plan.sigmas[6] as number
    const hi = plan.sigmas[2] as number
    const result = await sample({ denoiser, guider: interval(inner, { sigma: [lo, hi] }), sampler: euler(), plan, shape: [2, 4], seed: 1 })
    expect(inner.seen).toEqual([2, 3, 4, 5]) // sigma in (sigma_6, sigma_2]
    expect(result.branchEvaluations).toBe(4 * 2 + 6)
    expect(result.guidance.intervalSkippedSteps).toBe(6)
  })

  it('supports step indices and diffusers fractions', async () => {
    const a = counting()
    await sample({ denoiser, guider: interval(a, { steps: [3, 5] }), sampler: euler(), plan, shape: [1, 4] })
    expect(a.seen).toEqual([3, 4])
    const b = counting()
    await sample({ denoiser, guider: interval(b, { fraction: [0.2, 0.8] }), sampler: euler(), plan, shape: [1, 4] })
    expect(b.seen).toEqual([2, 3, 4, 5, 6, 7])
  })

  it("follows diffusers' int() truncation for step fractions", async () => {
    const cases: [number, number, number, number[]][] = [
      [0.2, 0.8, 10, [2, 3, 4, 5, 6, 7]],
      [0, 0.5, 7, [0, 1, 2]],
      [0.15, 1, 13, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]],
    ]
    for (const [start, stop, steps, inside] of cases) {
      const inner = counting()
      const p = vpPlan(vpSchedule(), { steps, karras: true })
      await sample({ denoiser, guider: interval(inner, { fraction: [start, stop] }), sampler: euler(), plan: p, shape: [1, 4] })
      expect(inner.seen).toEqual(inside)
    }
  })

  it('guides only inside a sigma window (lo, hi]: both ends checked on the plan sigmas', async () => {
    const lo = plan.sigmas[7] as number
    const hi = plan.sigmas[1] as number
    const windowed = await sample({ denoiser, guider: interval(referenceCfg(4), { sigma: [lo, hi] }), sampler: euler(), plan, shape: [2, 4], seed: 9 })
    // steps 1..6 have lo < sigma <= hi: 6 guided steps (2 branches) and 4 positive-only steps
    expect(windowed.branchEvaluations).toBe(6 * 2 + 4)
    const everywhere = await sample({ denoiser, guider: referenceCfg(4), sampler: euler(), plan, shape: [2, 4], seed: 9 })
    expect([...windowed.samples.data]).not.toEqual([...everywhere.samples.data])
  })

  it('rejects a non-guider and malformed windows', () => {
    expect(() => interval({} as Guider, { steps: [0, 1] })).toThrow(/inner/)
    expect(() => interval(referenceCfg(2), { sigma: [2, 1] })).toThrow(/window.sigma/)
    expect(() => interval(referenceCfg(2), { steps: [3, 1] })).toThrow(/window.steps stop/)
    expect(() => interval(referenceCfg(2), {} as never)).toThrow(/window/)
  })
})
