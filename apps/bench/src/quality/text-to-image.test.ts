import { fileURLToPath } from 'node:url'
import { cfg } from '@guidekit/cfg'
import { Tensor } from '@guidekit/core'
import { loadDiffusersPipeline } from '@guidekit/onnx'
import { describe, expect, it } from 'vitest'
import type { Config } from './configs.js'
import { generate } from './runner.js'
import { fillTemplate, paraphraseFor, promptFor, textToImageGenerator, toGrayscale } from './text-to-image.js'

// The random-weight SD miniature of @guidekit/onnx's tests: the same loader and layout as a real export.
const miniature = fileURLToPath(new URL('../../../../packages/onnx/src/__fixtures__/sd-miniature', import.meta.url))

describe('text-to-image group', () => {
  it('prompts "a photo of a {class}" with the class names', () => {
    expect(promptFor(['T-shirt/top', 'Trouser'], 1)).toBe('a photo of a trouser')
    expect(() => promptFor(['T-shirt/top'], 3)).toThrow(/no class name/)
  })

  it('fills caption templates as sd_captions.py (articles, plural phrases) and cycles the held-out paraphrases per class', () => {
    expect(fillTemplate('an image of {a}', 'short-sleeved tee')).toBe('an image of a short-sleeved tee')
    expect(fillTemplate('this is {a}', 'long pants')).toBe('this is long pants')
    expect(fillTemplate('there is {a} in this photo', 'ankle boot')).toBe('there is an ankle boot in this photo')
    expect(fillTemplate('a grayscale image of the {x}', 'winter jacket')).toBe('a grayscale image of the winter jacket')
    const captions = { heldOutTemplates: ['an image of {a}', 'this is {a}'], heldOutSynonyms: [['short-sleeved tee', 't-shirt top'], ['long pants', 'pair of long trousers'], ...Array.from({ length: 8 }, () => ['bag'])] }
    // Image i is class i mod 10 and takes combination floor(i / 10) of its class (templates x synonyms, template-major).
    expect([0, 10, 20, 30, 40].map((i) => paraphraseFor(captions, i))).toEqual(['an image of a short-sleeved tee', 'an image of a t-shirt top', 'this is a short-sleeved tee', 'this is a t-shirt top', 'an image of a short-sleeved tee'])
    expect(paraphraseFor(captions, 21)).toBe('this is long pants')
    expect(() => paraphraseFor({}, 0)).toThrow(/heldOutTemplates/)
  })

  it('turns decoded [0, 1] images (1 or 3 channels) into 28x28 grayscale in [-1, 1]', () => {
    const rgb = new Tensor(Float32Array.from({ length: 2 * 3 * 4 }, (_, i) => (i % 4 === 0 ? 1 : i % 4 === 1 ? 0 : 0.5)), [2, 3, 2, 2])
    expect(Array.from(toGrayscale(rgb, [2, 2]).data)).toEqual([1, -1, 0, 0, 1, -1, 0, 0])
    const gray = new Tensor(Float32Array.from([0, 0.25, 0.75, 1]), [1, 1, 2, 2])
    expect(Array.from(toGrayscale(gray, [2, 2]).data)).toEqual([-1, -0.5, 0.5, 1])
    expect(() => toGrayscale(gray, [28, 28])).toThrow(/fashion-eval scores 28x28/)
  })

  it('samples prompted latents through the pipeline and decodes them (SD miniature, 32x32)', async () => {
    const pipeline = await loadDiffusersPipeline(miniature, { sessionOptions: { threads: 1 } })
    try {
      const generator = textToImageGenerator({ pipeline, classNames: ['T-shirt/top', 'Trouser', 'Pullover'], size: [32, 32], sha: 'mini' })
      const config: Config = { id: 'mini', generator: 'fashion-sd', strategy: 'cfg', label: 'cfg w=5', params: { scale: 5 }, steps: 2, sampler: 'ddim', denoiser: 'base', sizes: [3], expectedNfe: 4, guider: () => Promise.resolve(cfg({ scale: 5 })) }
      const out = await generate({ generator, batch: 2 }, config, cfg({ scale: 5 }), 0, 3)
      expect(out.images.shape).toEqual([3, 1, 32, 32])
      expect(out.nfe).toBe(4)
      expect(Math.max(...out.images.data.map(Math.abs))).toBeLessThanOrEqual(1)
      const prompts = await Promise.all([0, 1, 2].map(async (c) => (await generator.denoiser(config, [c])) as unknown as { prompts: string[] }))
      expect(prompts.map((p) => p.prompts[0])).toEqual(['a photo of a t-shirt/top', 'a photo of a trouser', 'a photo of a pullover'])
    } finally {
      await pipeline.dispose()
    }
  })
})
