import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { Tensor } from '@guidekit/core'
import { detInput, fixture, golden, summarize } from '../__fixtures__/helpers.js'
import type { Summary } from '../__fixtures__/helpers.js'
import { loadDiffusersPipeline } from './pipeline.js'
import type { DiffusersPipeline } from './pipeline.js'
import { readVaeConfig, SD_LATENT_SCALING_FACTOR } from './vae-config.js'

const miniature = fixture('sd-miniature')
/** The VAE decoder's output for the raw latent detInput([1, 4, 8, 8], 1) (tooling/sd-miniature). */
const vaeGolden = (golden as { vaeDecoder: { sample: Summary } }).vaeDecoder.sample
const tmpDirs: string[] = []
const pipelines: DiffusersPipeline[] = []
afterAll(async () => {
  for (const p of pipelines) await p.dispose()
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true })
})

/** The miniature with a `vae_decoder/config.json` (diffusers' AutoencoderKL config, as optimum writes it). */
function withVaeConfig(config: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'guidekit-sd-vae-'))
  tmpDirs.push(dir)
  cpSync(miniature, dir, { recursive: true })
  writeFileSync(join(dir, 'vae_decoder', 'config.json'), JSON.stringify({ _class_name: 'AutoencoderKL', ...config }))
  return dir
}

async function load(dir: string): Promise<DiffusersPipeline> {
  const p = await loadDiffusersPipeline(dir, { sessionOptions: { threads: 1 } })
  pipelines.push(p)
  return p
}

// SD1.5's vae/config.json values that matter here.
const SD15_VAE = { block_out_channels: [128, 256, 512, 512], latent_channels: 4, in_channels: 3, out_channels: 3, sample_size: 512, scaling_factor: 0.18215 }

describe('readVaeConfig', () => {
  it("uses SD1.x's values when the export ships no VAE config (diffusers' convert script)", () => {
    expect(readVaeConfig(miniature)).toEqual({ scalingFactor: SD_LATENT_SCALING_FACTOR, shiftFactor: 0, pixelsPerLatent: 8, latentChannels: undefined, imageChannels: undefined, sampleSize: undefined, path: undefined })
  })

  it('reads scaling, shift, pixels per latent (2^(blocks - 1)), channels and size', () => {
    const dir = withVaeConfig({ ...SD15_VAE, block_out_channels: [32, 64, 64], out_channels: 1, sample_size: [28, 28], scaling_factor: 1.2345, shift_factor: null })
    expect(readVaeConfig(dir)).toMatchObject({ scalingFactor: 1.2345, shiftFactor: 0, pixelsPerLatent: 4, latentChannels: 4, imageChannels: 1, sampleSize: [28, 28] })
    expect(readVaeConfig(withVaeConfig({ scaling_factor: 1.5305, shift_factor: 0.0609 }))).toMatchObject({ scalingFactor: 1.5305, shiftFactor: 0.0609, pixelsPerLatent: 8 })
  })

  it.each([
    [{ scaling_factor: 0 }, /'scaling_factor' must be a finite number > 0/],
    [{ scaling_factor: '0.18215' }, /'scaling_factor' must be a finite number > 0/],
    [{ block_out_channels: [] }, /'block_out_channels' must be a non-empty list/],
    [{ out_channels: 2.5 }, /'out_channels' must be a positive integer/],
    [{ sample_size: [512] }, /'sample_size' must be a positive integer or \[height, width\]/],
  ])('rejects %j as MODEL_INVALID', (config, message) => {
    expect(() => readVaeConfig(withVaeConfig(config))).toThrow(message)
    expect(() => readVaeConfig(withVaeConfig(config))).toThrow(expect.objectContaining({ code: 'MODEL_INVALID' }))
  })

  it('refuses per-channel latent normalization it would otherwise ignore', () => {
    expect(() => readVaeConfig(withVaeConfig({ latents_mean: [0, 0, 0, 0], latents_std: [1, 1, 1, 1] }))).toThrow(expect.objectContaining({ code: 'UNSUPPORTED' }))
  })

  it('rejects a config that is not JSON', () => {
    const dir = withVaeConfig({})
    writeFileSync(join(dir, 'vae_decoder', 'config.json'), '{ nope')
    expect(() => readVaeConfig(dir)).toThrow(expect.objectContaining({ code: 'MODEL_INVALID' }))
  })
})

describe('loadDiffusersPipeline: the VAE config drives decoding', () => {
  it("decodes with the config's scaling factor (the decoder sees latents / scaling_factor)", async () => {
    const sd = await load(withVaeConfig({ ...SD15_VAE, scaling_factor: 0.5 }))
    expect(sd.scalingFactor).toBe(0.5)
    expect(sd.vae.path).toBe(join(sd.directory, 'vae_decoder', 'config.json'))
    const latents = detInput([1, 4, 8, 8], 1)
    const rgb = await sd.decode(new Tensor(latents.data.map((v) => v * 0.5), latents.shape))
    const s = summarize(Float32Array.from(rgb.data, (v) => 2 * v - 1))
    expect(Math.abs(s.absSum - vaeGolden.absSum) / vaeGolden.absSum).toBeLessThan(1e-3)
    // the same latents under the default factor decode to something else
    const other = await (await load(miniature)).decode(new Tensor(latents.data.map((v) => v * 0.5), latents.shape))
    expect(Math.abs(summarize(other.data).absSum - summarize(rgb.data).absSum)).toBeGreaterThan(1)
  })

  it('adds shift_factor after unscaling (SD3-style VAEs)', async () => {
    const sd = await load(withVaeConfig({ ...SD15_VAE, scaling_factor: 2, shift_factor: 0.25 }))
    const latents = detInput([1, 4, 8, 8], 1)
    // z = latents / 2 + 0.25 = raw  =>  latents = 2 (raw - 0.25)
    const rgb = await sd.decode(new Tensor(latents.data.map((v) => 2 * (v - 0.25)), latents.shape))
    const s = summarize(Float32Array.from(rgb.data, (v) => 2 * v - 1))
    expect(Math.abs(s.absSum - vaeGolden.absSum) / vaeGolden.absSum).toBeLessThan(1e-3)
  })

  it('an explicit scalingFactor option wins over the config', async () => {
    const p = await loadDiffusersPipeline(withVaeConfig({ ...SD15_VAE, scaling_factor: 0.5 }), { sessionOptions: { threads: 1 }, scalingFactor: 0.25 })
    pipelines.push(p)
    expect(p.scalingFactor).toBe(0.25)
    await expect(loadDiffusersPipeline(miniature, { scalingFactor: -1 })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
  })

  it('takes pixels per latent from block_out_channels', async () => {
    const sd = await load(withVaeConfig({ ...SD15_VAE, block_out_channels: [64, 64, 64, 64, 64] }))
    expect(sd.vaeScaleFactor).toBe(16)
    expect(sd.latentShape({ batch: 1, height: 64, width: 32 })).toEqual([1, 4, 4, 2])
    expect(() => sd.latentShape({ batch: 1, height: 56, width: 32 })).toThrow(/multiple of 16/)
  })

  it('rejects configs that contradict the graphs', async () => {
    await expect(loadDiffusersPipeline(withVaeConfig({ ...SD15_VAE, out_channels: 1 }))).rejects.toThrow(/outputs 3-channel images, but .*config.json says out_channels 1/)
    await expect(loadDiffusersPipeline(withVaeConfig({ ...SD15_VAE, latent_channels: 16 }))).rejects.toThrow(/4-channel latents, but .*config.json says latent_channels 16/)
  })

  it('says clearly that an export without vae_encoder cannot encode', async () => {
    const sd = await load(miniature)
    expect(sd.hasEncoder).toBe(false)
    await expect(sd.encode(Tensor.zeros([1, 3, 64, 64]))).rejects.toMatchObject({ code: 'UNSUPPORTED' })
    await expect(sd.encode(Tensor.zeros([1, 3, 64, 64]))).rejects.toThrow(/has no vae_encoder\/model.onnx/)
  })

  it('opens vae_encoder on first use and checks its interface', async () => {
    const dir = withVaeConfig(SD15_VAE)
    mkdirSync(join(dir, 'vae_encoder'))
    // a graph with the wrong interface: the error names the file and the missing input
    cpSync(join(miniature, 'vae_decoder', 'model.onnx'), join(dir, 'vae_encoder', 'model.onnx'))
    const sd = await load(dir)
    expect(sd.hasEncoder).toBe(true)
    await expect(sd.encode(Tensor.zeros([1, 3, 64, 64]))).rejects.toThrow(/vae_encoder\/model.onnx has no input named 'sample'/)
    await expect(sd.encode(Tensor.zeros([1, 1, 64, 64]))).rejects.toMatchObject({ code: 'INPUT_MISMATCH' })
  })
})
