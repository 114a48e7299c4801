import { describe, expect, it } from 'vitest'
import type { Sampler } from './contracts.js'
import { ddim, dpmpp2m, euler, eulerAncestral, flowMatchEuler } from './samplers.js'
import { sample, unguided } from './sample.js'
import { flowPlan, vpPlan, vpSchedule, type SamplingPlan } from './schedules.js'
import { gaussianDenoiser } from './toy.js'

// Gaussian data x0 ~ N(mu, s^2 I) has an exact denoiser; sampling it must reproduce the data's mean and
// standard deviation up to discretisation error, which shrinks with the step count. Stated tolerances
// (measured errors in brackets, worst sampler): relative std error <= 25% at 25 steps [18%], <= 9% at
// 100 steps [6.6%], <= 3% at 400 steps [~1.5%]; |mean error| <= 0.05 everywhere [0.036: a VP schedule's
// finite sigma_max leaves the data mean in the starting noise, about mu s / sigma_max, plus the sample mean
// of the seeded noise]. 4 x 4096 independent elements per run.
const mu = 0.7
const s = 0.5

function stats(data: Float32Array): { mean: number; std: number } {
  let sum = 0
  for (const v of data) sum += v
  const mean = sum / data.length
  let sq = 0
  for (const v of data) sq += (v - mean) ** 2
  return { mean, std: Math.sqrt(sq / (data.length - 1)) }
}

const samplers: [string, () => Sampler, ('vp' | 'flow')[]][] = [
  ['euler', euler, ['vp', 'flow']],
  ['euler ancestral', () => eulerAncestral(), ['vp', 'flow']],
  ['ddim eta=0', () => ddim(), ['vp', 'flow']],
  ['ddim eta=1', () => ddim({ eta: 1 }), ['vp']],
  ['dpm++2m', dpmpp2m, ['vp', 'flow']],
  ['flow-match euler', flowMatchEuler, ['flow']],
]

describe.each(samplers)('%s on the analytic Gaussian toy', (_name, make, families) => {
  for (const family of families) {
    for (const [steps, tol] of [[25, 0.25], [100, 0.09], [400, 0.03]] as const) {
      it(`${family}, ${steps} steps reproduces mean and std`, async () => {
        const plan: SamplingPlan = family === 'vp' ? vpPlan(vpSchedule(), { steps, karras: true }) : flowPlan({ steps, shift: 3 })
        const denoiser = gaussianDenoiser({ family, means: { positive: mu }, std: s })
        const result = await sample({ denoiser, guider: unguided(), sampler: make(), plan, shape: [4, 4096], seed: 11 })
        const st = stats(result.samples.data)
        expect(Math.abs(st.mean - mu)).toBeLessThan(0.05)
        expect(Math.abs(st.std / s - 1)).toBeLessThan(tol)
        expect(result.modelCalls).toBe(steps)
        expect(result.nfe).toBe(steps)
      })
    }
  }
})

describe('sampler arguments', () => {
  it('rejects negative eta and wrong families', async () => {
    expect(() => eulerAncestral({ eta: -1 })).toThrowError(/eta must be a finite number >= 0/)
    expect(() => ddim({ eta: Number.NaN })).toThrowError(/eta/)
    const denoiser = gaussianDenoiser({ family: 'vp', means: { positive: 0 } })
    await expect(sample({ denoiser, guider: unguided(), sampler: flowMatchEuler(), plan: vpPlan(vpSchedule(), { steps: 3 }), shape: [1, 4] })).rejects.toThrowError(/needs a 'flow' model/)
  })
})
