import { euler, sample, type Tensor, type Guider, type Prediction } from '@guidekit/core'
import { referenceCfg } from '@guidekit/core/testing'
import { fashionModel } from '@guidekit/models-fashion'
import { loadClassConditionalDenoiser, planFromCard, type ClassConditionalDenoiser } from '@guidekit/onnx'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { draftAttention } from './denoiser.js'

const maxAbsDiff = (a: Tensor, b: Tensor) => a.data.reduce((m, v, i) => Math.max(m, Math.abs(v - (b.data[i] as number))), 0)

describe('draftAttention(denoiser) on the shipped fashion DiT', () => {
  let dense: ClassConditionalDenoiser
  beforeAll(async () => {
    dense = await loadClassConditionalDenoiser({ model: fashionModel('fashion-dit').onnxPath, classes: [7, 2], sessionOptions: { threads: 1 } })
  })
  afterAll(() => dense.dispose())

  const plan = () => planFromCard(dense.card, { steps: 4 })
  const run = (denoiser: ClassConditionalDenoiser, guider: Guider = referenceCfg(3)) => sample({ denoiser, guider, sampler: euler(), plan: plan(), shape: [2, 1, 28, 28], seed: 5 })

  it('keeping every block is the dense model', async () => {
    const draft = await draftAttention(dense, { keep: 1, denseSteps: 0 })
    try {
      expect(draft.sites).toEqual({ base: 6 })
      expect(maxAbsDiff((await run(draft)).samples, (await run(dense)).samples)).toBeLessThan(1e-4)
      expect(draft.runs).toEqual({ dense: 0, sparse: 4 })
    } finally {
      await draft.dispose()
    }
  })

  it('runs the first denseSteps of each trajectory dense (from the request step) and the rest sparse', async () => {
    const draft = await draftAttention(dense, { keep: 0.25, denseSteps: 0.5 })
    try {
      // Record the guided x0 estimate of every step with both denoisers.
      const recorder = (into: Tensor[]): Guider => ({
        specificationVersion: 'v1',
        name: 'record',
        start: () => ({
          async step(ctx) {
            const [p] = (await ctx.predict([{ role: 'positive' }])) as [Prediction]
            into.push(p.denoised)
            return { denoised: p.denoised, renoise: p.denoised }
          },
        }),
      })
      const a: Tensor[] = []
      const b: Tensor[] = []
      await run(draft, recorder(a))
      await run(dense, recorder(b))
      expect(draft.runs).toEqual({ dense: 2, sparse: 2 })
      expect(maxAbsDiff(a[0] as Tensor, b[0] as Tensor)).toBeLessThan(1e-5)
      expect(maxAbsDiff(a[1] as Tensor, b[1] as Tensor)).toBeLessThan(1e-5)
      expect(maxAbsDiff(a[2] as Tensor, b[2] as Tensor)).toBeGreaterThan(1e-3)
      // withClasses keeps the schedule and the counters
      const other = draft.withClasses([0, 0])
      await run(other, recorder([]))
      expect(draft.runs).toEqual({ dense: 4, sparse: 4 })
      expect(other.sites).toEqual(draft.sites)
    } finally {
      await draft.dispose()
      await draft.dispose() // idempotent
    }
  })

  it('refuses models without a token grid (the UNet) and a bad keep ratio', async () => {
    const unet = await loadClassConditionalDenoiser({ model: fashionModel('fashion-unet').onnxPath, classes: [1], sessionOptions: { threads: 1 } })
    try {
      await expect(draftAttention(unet, { keep: 0.5 })).rejects.toMatchObject({ code: 'UNSUPPORTED', message: expect.stringContaining('tokenGrid') })
    } finally {
      await unet.dispose()
    }
    await expect(draftAttention(dense, { keep: 0 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    await expect(draftAttention(dense, { denseSteps: 2 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    // more dense layers than the model has attention sites: say how many there are, once
    await expect(draftAttention(dense, { denseLayers: 99 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'denseLayers is 99, but fashion-dit has 6 attention sites, so none would use draft attention; pass denseLayers from 0 to 5.',
    })
  })
})
