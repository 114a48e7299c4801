// Runs only where @guidekit/models-fashion's trained models exist in the working tree (they are optional for
// this package's tests): their cards must load and their sessions must match the cards.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Tensor } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { loadClassConditionalDenoiser, loadClassConditionalModel } from './node/load.js'

const models = (name: string) => fileURLToPath(new URL(`../../models-fashion/models/${name}`, import.meta.url))
const generators = ['fashion-dit.onnx', 'fashion-unet.onnx', 'fashion-dit-rl.onnx'].map(models)

describe('shipped @guidekit/models-fashion models', () => {
  for (const path of generators) {
    it.skipIf(!existsSync(path) || !existsSync(path.replace(/\.onnx$/, '.card.json')))(`${path.split('/').pop()} matches its card and predicts finite values`, async () => {
      const d = await loadClassConditionalDenoiser({ model: path, classes: [7, 0], sessionOptions: { threads: 1 } })
      try {
        const { channels, height, width } = d.card.image
        const x = Tensor.full([2, channels, height, width], 0.5)
        const sigma = d.family === 'flow' ? 0.5 : 1
        const preds = await d.predict({ step: 0, steps: 1, x, sigma, timestep: 500, branches: [{ role: 'positive' }, { role: 'negative' }] })
        expect(d.modelCalls).toBe(1)
        for (const p of preds) expect(p.denoised.data.every(Number.isFinite)).toBe(true)
      } finally {
        await d.dispose()
      }
    })
  }

  it.skipIf(!existsSync(models('fashion-eval.onnx')))('refuses the evaluator as a generator', async () => {
    await expect(loadClassConditionalModel(models('fashion-eval.onnx'))).rejects.toThrow(/'kind' is 'evaluator', not 'generator'/)
  })
})
