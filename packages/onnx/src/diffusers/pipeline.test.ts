import { cpSync, copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GuidekitError, Tensor, euler, sample } from '@guidekit/core'
import type { Guider } from '@guidekit/core'
import { afterAll, describe, expect, it } from 'vitest'
import { detInput, fixture, golden, summarize } from '../__fixtures__/helpers.js'
import type { Summary } from '../__fixtures__/helpers.js'
import { toRawImages } from '../image.js'
import { loadDiffusersPipeline } from './pipeline.js'
import type { DiffusersPipeline } from './pipeline.js'

const dir = fixture('sd-miniature')
const pipelines: DiffusersPipeline[] = []
const tmpDirs: string[] = []
afterAll(async () => {
  for (const p of pipelines) await p.dispose()
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true })
})

async function load(path = dir, options = {}): Promise<DiffusersPipeline> {
  const p = await loadDiffusersPipeline(path, { sessionOptions: { threads: 1 }, ...options })
  pipelines.push(p)
  return p
}

/** A copy of the miniature with one file replaced (other timestep conventions, broken parts). */
function variant(replace: Record<string, string | null>): string {
  const tmp = mkdtempSync(join(tmpdir(), 'guidekit-sd-'))
  tmpDirs.push(tmp)
  cpSync(dir, tmp, { recursive: true })
  for (const [file, source] of Object.entries(replace)) {
    if (source === null) rmSync(join(tmp, file), { recursive: true, force: true })
    else if (source.startsWith('{')) writeFileSync(join(tmp, file), source)
    else copyFileSync(source, join(tmp, file))
  }
  return tmp
}

/** The miniature with `file` (from __fixtures__/unet-variants) as its UNet, and that UNet's noise prediction for the golden input. */
async function unetVariantNoise(file: string): Promise<{ sd: DiffusersPipeline; noise: Float32Array }> {
  const sd = await load(variant({ 'unet/model.onnx': fixture('unet-variants', file) }))
  const d = await sd.denoiser({ prompt: 'a photo of a cat' })
  const x = new Tensor(detInput([2, 4, 8, 8]).batchSlice(0).data.slice(), [1, 4, 8, 8])
  const [p] = await d.predict({ step: 0, steps: 1, x, sigma: 0, timestep: golden.unet.timestep, branches: [{ role: 'positive' }] })
  return { sd, noise: p!.noise.data }
}

function expectSummary(data: ArrayLike<number>, expected: Summary, tolerance = 1e-4): void {
  const s = summarize(data)
  expect(Math.abs(s.absSum - expected.absSum) / expected.absSum).toBeLessThan(tolerance)
  s.first.forEach((v, i) => expect(Math.abs(v - (expected.first[i] as number))).toBeLessThan(1e-4))
}

/** Plain CFG written inline (the guidance packages are not dependencies of @guidekit/onnx). */
const cfg = (scale: number): Guider => ({
  specificationVersion: 'v1',
  name: `cfg(${scale})`,
  start: () => ({
    async step(ctx) {
      const [c, u] = await ctx.predict([{ role: 'positive' }, { role: 'negative' }])
      const d = new Tensor(
        u!.denoised.data.map((v, i) => v + scale * ((c!.denoised.data[i] as number) - v)),
        u!.denoised.shape,
      )
      return { denoised: d, renoise: d }
    },
  }),
})

describe('loadDiffusersPipeline (SD1.5 ONNX layout miniature)', () => {
  it('reads the layout, scheduler config and session interfaces', async () => {
    const sd = await load()
    expect(sd.className).toBe('OnnxStableDiffusionPipeline')
    expect(sd.family).toBe('vp')
    expect(sd.parameterization).toBe('epsilon')
    expect(sd.scheduler).toMatchObject({ className: 'PNDMScheduler', betaSchedule: 'scaled_linear', betaStart: 0.00085, betaEnd: 0.012, stepsOffset: 1, timestepSpacing: 'leading' })
    // SD1.5's sigma range
    expect(sd.schedule.sigmaMax).toBeCloseTo(14.6146, 3)
    expect(sd.plan({ steps: 20 }).timesteps[0]).toBe(951)
    expect(sd.latentChannels).toBe(4)
    expect(sd.latentShape({ batch: 2, height: 64, width: 48 })).toEqual([2, 4, 8, 6])
    expect(() => sd.latentShape({ batch: 1, height: 60, width: 64 })).toThrow(/multiple of 8/)
    // no vae_decoder/config.json (diffusers' convert script): SD1.x's VAE values; RGB from the decoder graph
    expect(sd.vae.path).toBeUndefined()
    expect(sd.scalingFactor).toBe(0.18215)
    expect(sd.vaeScaleFactor).toBe(8)
    expect(sd.imageChannels).toBe(3)
    expect(sd.imageSize).toEqual({ height: 512, width: 512 })
    expect(sd.latentShape({ batch: 1 })).toEqual([1, 4, 64, 64])
    expect(sd.io.textEncoder.inputs.get('input_ids')?.dtype).toBe('int32')
    expect(sd.io.unet.inputs.get('timestep')).toMatchObject({ dtype: 'float32', shape: ['batch'] })
  })

  it('encodes prompts with the text encoder as PyTorch does', async () => {
    const sd = await load()
    const emb = await sd.encodePrompts(golden.textEncoder.prompts)
    expect(emb.shape).toEqual(golden.textEncoder.lastHiddenState.shape)
    expectSummary(emb.data, golden.textEncoder.lastHiddenState)
  })

  it('batches positive and negative prompts into one UNet run and matches PyTorch', async () => {
    const sd = await load()
    const d = await sd.denoiser({ prompt: 'a photo of a cat', negativePrompt: '' })
    // golden UNet input: x_vp = detInput([2,4,8,8]) with contexts [prompt, ''] at t = 981; one batch item here
    const xVp = detInput([2, 4, 8, 8])
    const sigma = 3
    const scale = Math.sqrt(1 + sigma * sigma)
    const x0 = new Tensor(xVp.batchSlice(0).data.map((v) => v * scale), [1, 4, 8, 8])
    const [pos, neg] = await d.predict({ step: 0, steps: 1, x: x0, sigma, timestep: golden.unet.timestep, branches: [{ role: 'positive' }, { role: 'negative' }] })
    expect(d.modelCalls).toBe(1)
    const eps = new Float32Array(2 * 256)
    eps.set(pos!.noise.data, 0)
    // the golden's second item has x_vp = detInput item 1 with the '' context: evaluate it as the negative branch
    const x1 = new Tensor(xVp.batchSlice(1).data.map((v) => v * scale), [1, 4, 8, 8])
    const [neg1] = await d.predict({ step: 0, steps: 1, x: x1, sigma, timestep: golden.unet.timestep, branches: [{ role: 'negative' }] })
    eps.set(neg1!.noise.data, 256)
    expectSummary(eps, golden.unet.outSample)
    // epsilon -> x0 in the VE cast
    expect(pos!.denoised.data[7]).toBeCloseTo((x0.data[7] as number) - sigma * (pos!.noise.data[7] as number), 4)
    expect(neg!.noise.data[0]).not.toBeCloseTo(pos!.noise.data[0] as number, 4)
  })

  it.each([
    ['int64 [batch] timestep (older diffusers script / optimum)', 'unet-timestep-int64.onnx', 'int64'],
    ['float32 scalar timestep (recent optimum)', 'unet-timestep-scalar.onnx', 'float32'],
  ])('feeds a %s as the model declares', async (_label, file, dtype) => {
    const { sd, noise } = await unetVariantNoise(file)
    expect(sd.io.unet.inputs.get('timestep')?.dtype).toBe(dtype)
    noise.slice(0, 8).forEach((v, i) => expect(Math.abs(v - (golden.unet.outSample.first[i] as number))).toBeLessThan(1e-4))
  })

  it('runs float16 UNet exports (--fp16) through conversion at the edge', async () => {
    const { sd, noise } = await unetVariantNoise('unet-fp16.onnx')
    expect(sd.io.unet.inputs.get('encoder_hidden_states')?.dtype).toBe('float16')
    // outputs are ~0.03: fp16 (11-bit mantissa) keeps them to ~1e-4
    noise.slice(0, 8).forEach((v, i) => expect(Math.abs(v - (golden.unet.outSample.first[i] as number))).toBeLessThan(5e-4))
  })

  it('reads int64 input_ids text encoders', async () => {
    const sd = await load(variant({ 'text_encoder/model.onnx': fixture('unet-variants', 'text-encoder-int64.onnx') }))
    expect(sd.io.textEncoder.inputs.get('input_ids')?.dtype).toBe('int64')
    const emb = await sd.encodePrompts(golden.textEncoder.prompts)
    expectSummary(emb.data, golden.textEncoder.lastHiddenState)
  })

  it('disposes idempotently', async () => {
    const sd = await loadDiffusersPipeline(dir, { sessionOptions: { threads: 1 } })
    await sd.dispose()
    await expect(sd.dispose()).resolves.toBeUndefined()
  })

  it('decodes latents with the VAE to RGB in [0, 1]', async () => {
    const sd = await load()
    const latents = detInput([1, 4, 8, 8], 1)
    // decode divides by the scaling factor: pre-multiply so the VAE sees the golden input
    const scaled = new Tensor(latents.data.map((v) => v * sd.scalingFactor), latents.shape)
    const rgb = await sd.decode(scaled)
    expect(rgb.shape).toEqual([1, 3, 64, 64])
    const vae = Float32Array.from(rgb.data, (v) => 2 * v - 1)
    expectSummary(vae, golden.vaeDecoder.sample, 1e-3)
    const [image] = toRawImages(rgb, { range: [0, 1] })
    expect(image).toMatchObject({ width: 64, height: 64, channels: 3 })
    expect(image!.data[0]).toBe(Math.round(255 * (rgb.data[0] as number)))
  })

  it('generates end to end: prompt + negative prompt, CFG, Euler, VAE decode', async () => {
    const sd = await load()
    const denoiser = await sd.denoiser({ prompt: ['a photo of a cat', 'a horse'], negativePrompt: 'blurry' })
    const result = await sample({ denoiser, guider: cfg(7.5), sampler: euler(), plan: sd.plan({ steps: 4 }), shape: sd.latentShape({ batch: 2, height: 64, width: 64 }), seed: 1 })
    expect(denoiser.modelCalls).toBe(4) // both branches of a step in one UNet run
    const rgb = await sd.decode(result.samples)
    expect(rgb.shape).toEqual([2, 3, 64, 64])
    expect(rgb.data.every((v) => Number.isFinite(v) && v >= 0 && v <= 1)).toBe(true)
    // same seed, same bytes
    const again = await sample({ denoiser, guider: cfg(7.5), sampler: euler(), plan: sd.plan({ steps: 4 }), shape: [2, 4, 8, 8], seed: 1 })
    expect(Array.from(again.samples.data)).toEqual(Array.from(result.samples.data))
  })

  it('warns once per prompt that exceeds 77 tokens', async () => {
    const warnings: string[] = []
    const sd = await load(dir, { onWarning: (m: string) => warnings.push(m) })
    await sd.denoiser({ prompt: golden.tokenizer.longPrompt })
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatch(/token\(s\) were dropped/)
  })

  it('gives clear errors for folders that are not SD ONNX exports', async () => {
    await expect(loadDiffusersPipeline(join(dir, 'nope'))).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' })
    await expect(loadDiffusersPipeline(fixture('class-conditional'))).rejects.toThrow(/no model_index.json/)
    await expect(loadDiffusersPipeline(variant({ 'unet/model.onnx': null }))).rejects.toThrow(/Model file not found: .*unet\/model.onnx/)
    await expect(loadDiffusersPipeline(variant({ 'unet/model.onnx': fixture('class-conditional', 'tiny-dit.onnx') }))).rejects.toThrow(
      /unet\/model.onnx has no input named 'encoder_hidden_states'/,
    )
    const corrupt = variant({ 'vae_decoder/model.onnx': fixture('sd-miniature', 'model_index.json') })
    const error = await loadDiffusersPipeline(corrupt).catch((e: unknown) => e)
    expect(GuidekitError.isInstance(error) && error.code).toBe('MODEL_INVALID')
    await expect(loadDiffusersPipeline(variant({ 'model_index.json': '{"_class_name": "StableDiffusionXLPipeline", "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"]}' }))).rejects.toMatchObject({
      code: 'UNSUPPORTED',
    })
    const sd = await load()
    const d = await sd.denoiser({ prompt: 'a cat', batch: 2 })
    await expect(d.predict({ step: 0, steps: 1, x: Tensor.zeros([1, 4, 8, 8]), sigma: 1, timestep: 500, branches: [{ role: 'positive' }] })).rejects.toMatchObject({ code: 'INPUT_MISMATCH' })
    await expect(d.predict({ step: 0, steps: 1, x: Tensor.zeros([2, 4, 8, 8]), sigma: 1, timestep: 500, branches: [{ role: 'positive', model: 'tuned' }] })).rejects.toThrow(/one UNet/)
  })
})
