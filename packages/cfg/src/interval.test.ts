import { euler, gaussianDenoiser, sample, vpPlan, vpSchedule, type Guider } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { cfg, interval } from './index.js'

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

  it('equals cfg with the same sigma interval', async () => {
    const window = { min: plan.sigmas[7] as number, max: plan.sigmas[1] as number }
    const a = await sample({ denoiser, guider: interval(cfg({ scale: 4 }), { sigma: [window.min, window.max] }), sampler: euler(), plan, shape: [2, 4], seed: 9 })
    const b = await sample({ denoiser, guider: cfg({ scale: 4, sigmaInterval: window }), sampler: euler(), plan, shape: [2, 4], seed: 9 })
    expect([...a.samples.data]).toEqual([...b.samples.data])
  })

  it('rejects a non-guider and malformed windows', () => {
    expect(() => interval({} as Guider, { steps: [0, 1] })).toThrow(/inner/)
    expect(() => interval(cfg({ scale: 2 }), { sigma: [2, 1] })).toThrow(/window.sigma/)
    expect(() => interval(cfg({ scale: 2 }), { steps: [3, 1] })).toThrow(/window.steps stop/)
    expect(() => interval(cfg({ scale: 2 }), {} as never)).toThrow(/window/)
  })
})
