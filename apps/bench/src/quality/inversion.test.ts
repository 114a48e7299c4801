import { euler, flowPlan, gaussianDenoiser, sample } from '@guidekit/core'
import { cfg } from '@guidekit/cfg'
import { describe, expect, it } from 'vitest'
import { invertCfg, inversionRoundTrip } from './inversion.js'

describe('inversion round trip', () => {
  it('CFG inversion of the exact Gaussian denoiser comes back close to the original with many steps', async () => {
    const denoiser = gaussianDenoiser({ family: 'flow', means: { positive: 1, negative: -0.5 }, std: 0.5 })
    const plan = flowPlan({ steps: 400 })
    const a = await sample({ denoiser, guider: cfg({ scale: 2 }), sampler: euler(), plan, shape: [2, 1, 4, 4], seed: 3 })
    const latents = await invertCfg(denoiser, a.latents, plan, 2)
    const b = await sample({ denoiser, guider: cfg({ scale: 2 }), sampler: euler(), plan, latents })
    const err = Math.max(...a.samples.data.map((v, i) => Math.abs(v - (b.samples.data[i] as number))))
    expect(err).toBeLessThan(0.1) // first-order inversion: ~0.06 at 200 steps, shrinking with the step size
  })

  it('reports both errors; coarser plans invert worse', async () => {
    const denoiser = gaussianDenoiser({ family: 'flow', means: { positive: 1, negative: -0.5 }, std: 0.5 })
    const fine = await inversionRoundTrip({ denoiser, plan: flowPlan({ steps: 50 }), lambda: 0.5, cfgScale: 2, shape: [2, 1, 4, 4], seed: 1 })
    const coarse = await inversionRoundTrip({ denoiser, plan: flowPlan({ steps: 5 }), lambda: 0.5, cfgScale: 2, shape: [2, 1, 4, 4], seed: 1 })
    expect(fine.cfgRmse).toBeLessThan(coarse.cfgRmse)
    expect(fine.cfgPlusPlusFixedPointRmse).toBeLessThan(coarse.cfgPlusPlusFixedPointRmse)
    expect(fine.cfgPlusPlusFixedPointRmse).toBeLessThan(fine.cfgPlusPlusRmse)
    expect(fine.images).toBe(2)
  })
})
