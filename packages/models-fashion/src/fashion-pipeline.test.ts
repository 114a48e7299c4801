import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cfg } from '@guidekit/cfg'
import { GuidekitError, ddim, sample } from '@guidekit/core'
import { loadDiffusersPipeline, openSession } from '@guidekit/onnx'
import type { CardDefaults } from '@guidekit/onnx/card'
import { Tensor as OrtTensor } from 'onnxruntime-common'
import { fashionModel, fashionPipeline, fashionPipelineNames } from './index.js'
import type { FashionPipeline } from './index.js'
import { pipelineIn } from './fashion-pipeline.js'

const tmpDirs: string[] = []
afterAll(() => tmpDirs.forEach((d) => rmSync(d, { recursive: true, force: true })))

/** A models folder holding `fashion-sd/model_index.json` and the given card (registry logic only: no ONNX files). */
function modelsWith(card: Record<string, unknown> | undefined, withFolder = true): string {
  const dir = mkdtempSync(join(tmpdir(), 'guidekit-models-'))
  tmpDirs.push(dir)
  if (withFolder) {
    mkdirSync(join(dir, 'fashion-sd'))
    writeFileSync(join(dir, 'fashion-sd', 'model_index.json'), '{"_class_name": "OnnxStableDiffusionPipeline"}')
  }
  if (card) writeFileSync(join(dir, 'fashion-sd.card.json'), JSON.stringify(card))
  return dir
}
const card = { name: 'fashion-sd', cardVersion: 2, kind: 'text-to-image', folder: 'fashion-sd', defaults: { steps: 30, guidance: 'cfg:scale=3', sampler: 'ddim', spacing: 'leading' } }

describe('fashionPipeline: the registry', () => {
  it('names the folder, card and grid of a pipeline and parses its card', () => {
    expect(fashionPipelineNames).toEqual(['fashion-sd'])
    const dir = modelsWith(card)
    const p = pipelineIn(dir, 'fashion-sd')
    expect(p).toMatchObject({ name: 'fashion-sd', folder: join(dir, 'fashion-sd'), cardPath: join(dir, 'fashion-sd.card.json'), gridPath: join(dir, 'fashion-sd.grid.png') })
    expect(p.card.defaults).toEqual(card.defaults)
  })

  it.each([
    ['an unknown name', () => pipelineIn(modelsWith(card), 'fashion-xl' as 'fashion-sd'), 'INVALID_ARGUMENT', /Unknown pipeline 'fashion-xl'; expected one of fashion-sd/],
    ['a missing card', () => pipelineIn(modelsWith(undefined), 'fashion-sd'), 'MODEL_NOT_FOUND', /fashion-sd is not in this copy .*fashion-sd\.card\.json is missing/],
    ['a missing folder', () => pipelineIn(modelsWith(card, false), 'fashion-sd'), 'MODEL_NOT_FOUND', /fashion-sd[/]model_index\.json is missing/],
    ['a class-conditional card', () => pipelineIn(modelsWith({ ...card, kind: 'evaluator', onnx: { file: 'x.onnx', inputs: [{ name: 'image', dtype: 'float32', shape: [] }], outputs: [{ name: 'logits', dtype: 'float32', shape: [] }] }, image: { channels: 1, height: 28, width: 28 } }), 'fashion-sd'), 'MODEL_INVALID', /not the text-to-image card/],
    ['a card pointing at another folder', () => pipelineIn(modelsWith({ ...card, folder: '../elsewhere' }), 'fashion-sd'), 'MODEL_INVALID', /with folder 'fashion-sd'/],
    ['a card with bad defaults', () => pipelineIn(modelsWith({ ...card, defaults: { steps: 0 } }), 'fashion-sd'), 'MODEL_INVALID', /defaults\.steps/],
  ])('rejects %s with a stable code', (_label, call, code, message) => {
    expect(call).toThrow(message)
    try {
      call()
    } catch (error) {
      expect(GuidekitError.isInstance(error) && error.code).toBe(code)
    }
  })
})

// The shipped fashion-sd (or, with GUIDEKIT_FASHION_SD_DIR, the --out folder of a train_sd.py run): runs
// when the folder is present.
const shipped = fileURLToPath(new URL('../models/', import.meta.url))
const exportDir = process.env.GUIDEKIT_FASHION_SD_DIR ?? shipped
const present = existsSync(join(exportDir, 'fashion-sd.card.json')) && existsSync(join(exportDir, 'fashion-sd', 'model_index.json'))
if (!present) console.warn(`fashion-sd tests skipped: ${join(exportDir, 'fashion-sd')} is not there yet (tooling/train/train_sd.py writes it)`)

describe.runIf(present)('fashion-sd', () => {
  // vitest collects a skipped describe too: resolve the pipeline only when its tests run.
  let sd: FashionPipeline
  let defaults: CardDefaults | undefined
  beforeAll(() => {
    sd = exportDir === shipped ? fashionPipeline('fashion-sd') : pipelineIn(exportDir, 'fashion-sd')
    defaults = sd.card.defaults
  })

  it('has a text-to-image card with the defaults the CLI uses, and fits the size budget', () => {
    expect(sd.card).toMatchObject({ name: 'fashion-sd', cardVersion: 2, kind: 'text-to-image', folder: 'fashion-sd' })
    // the quick metrics' trajectory: the card's steps, DDIM, SD1.5's leading spacing, a CFG scale
    expect(Number.isInteger(defaults?.steps)).toBe(true)
    expect(defaults?.guidance).toMatch(/^cfg:scale=\d/)
    expect(defaults?.sampler).toBe('ddim')
    expect(defaults?.spacing).toBe('leading')
    const files = readdirSync(sd.folder, { recursive: true, encoding: 'utf8' }).filter((f) => statSync(join(sd.folder, f)).isFile())
    expect(files.reduce((a, f) => a + statSync(join(sd.folder, f)).size, 0)).toBeLessThan(25e6)
    expect(readFileSync(sd.gridPath).subarray(1, 4).toString('latin1')).toBe('PNG')
  })

  it('loads through loadDiffusersPipeline with its own VAE scaling, 1-channel 28 x 28 images and 4 x 7 x 7 latents', async () => {
    const pipeline = await loadDiffusersPipeline(sd.folder, { sessionOptions: { threads: 1 } })
    try {
      const vae = (sd.card.architecture as { vae: { scalingFactor: number } }).vae
      expect(pipeline.scalingFactor).toBe(vae.scalingFactor)
      expect(pipeline.scalingFactor).not.toBe(0.18215)
      expect(pipeline).toMatchObject({ vaeScaleFactor: 4, latentChannels: 4, imageChannels: 1, imageSize: { height: 28, width: 28 }, hasEncoder: true, parameterization: 'epsilon' })
      expect(pipeline.latentShape({ batch: 3 })).toEqual([3, 4, 7, 7])
      expect(pipeline.tokenizer.padTokenId).toBe(pipeline.tokenizer.eosTokenId)
    } finally {
      await pipeline.dispose()
    }
  })

  // What the card's metrics claim, in small: the default trajectory draws the classes it is asked for.
  it.runIf(exportDir === shipped)('draws the classes it is prompted for (shipped evaluator, the card defaults)', { timeout: 240_000 }, async () => {
    const pipeline = await loadDiffusersPipeline(sd.folder, { sessionOptions: { threads: 1 } })
    const evaluator = await openSession(fashionModel('fashion-eval').onnxPath, { threads: 1 })
    try {
      const classes = Array.from({ length: 20 }, (_, i) => i % 10)
      const names = sd.card.classes as string[]
      const denoiser = await pipeline.denoiser({ prompt: classes.map((c) => `a photo of a ${names[c]}`) })
      const scale = Number(/scale=([\d.]+)/.exec(defaults?.guidance ?? '')?.[1])
      const plan = pipeline.plan({ steps: defaults?.steps ?? 30, ...(defaults?.spacing ? { spacing: defaults.spacing } : {}) })
      const result = await sample({ denoiser, guider: cfg({ scale }), sampler: ddim(), plan, shape: pipeline.latentShape({ batch: 20 }), seed: 7 })
      const images = await pipeline.decode(result.samples)
      const { logits } = await evaluator.run({ image: new OrtTensor('float32', images.data.map((v) => 2 * v - 1), [20, 1, 28, 28]) })
      const scores = logits?.data as Float32Array
      const correct = classes.filter((c, i) => {
        const row = [...scores.subarray(i * 10, i * 10 + 10)]
        return row.indexOf(Math.max(...row)) === c
      }).length
      expect(correct).toBeGreaterThanOrEqual(16)
    } finally {
      await pipeline.dispose()
      await evaluator.release()
    }
  })
})

describe('package files', () => {
  it('publishes models/ (the pipeline folders and their cards)', () => {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { files: string[]; exports: Record<string, unknown> }
    expect(pkg.files).toContain('models')
    expect(pkg.exports['./models/*']).toBe('./models/*')
  })
})
