import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { GuidekitError } from '@guidekit/core'

/** Stable Diffusion 1.x/2.x VAE latent scaling factor (`vae.config.scaling_factor`). */
export const SD_LATENT_SCALING_FACTOR = 0.18215

/** What a diffusers pipeline needs from its AutoencoderKL config (`vae_decoder/config.json`). */
export interface VaeConfig {
  /** The UNet works on `scalingFactor * (z - shiftFactor)`, z the VAE latent; decoding undoes it. */
  readonly scalingFactor: number
  /** 0 for SD1.x/2.x (`shift_factor: null`). */
  readonly shiftFactor: number
  /** Image pixels per latent pixel: `2^(len(block_out_channels) - 1)` (8 for SD). */
  readonly pixelsPerLatent: number
  /** `latent_channels` (4 for SD), when the config says. */
  readonly latentChannels: number | undefined
  /** `out_channels` of the decoder (3 for SD: RGB), when the config says. */
  readonly imageChannels: number | undefined
  /** `sample_size` as `[height, width]` (a number means a square), when the config says. */
  readonly sampleSize: readonly [number, number] | undefined
  /** The config file read, or `undefined` when the export ships none (SD1.x/2.x values are used). */
  readonly path: string | undefined
}

type Json = Record<string, unknown>

const positiveInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v > 0

/**
 * Reads the VAE geometry and latent scaling of a diffusers ONNX folder from `vae_decoder/config.json`, the
 * AutoencoderKL config that optimum's export writes (and that its ORT pipelines read with
 * `config.get("scaling_factor", 0.18215)`). diffusers' own convert script writes no config, and its
 * OnnxStableDiffusionPipeline assumes SD1.x's values: scaling factor 0.18215, 8 pixels per latent; a folder
 * without the file gets those. Pixels per latent is diffusers' `vae_scale_factor`,
 * `2^(len(block_out_channels) - 1)`. Latents are `scaling_factor * (z - shift_factor)` (LDM, arXiv:2112.10752
 * section 4.3.2 and appendix G; the shift is SD3's).
 *
 * @example
 * readVaeConfig('stable-diffusion-v1-5-onnx')   // { scalingFactor: 0.18215, shiftFactor: 0, pixelsPerLatent: 8, ... }
 */
export function readVaeConfig(directory: string): VaeConfig {
  const path = join(directory, 'vae_decoder', 'config.json')
  if (!existsSync(path)) {
    return { scalingFactor: SD_LATENT_SCALING_FACTOR, shiftFactor: 0, pixelsPerLatent: 8, latentChannels: undefined, imageChannels: undefined, sampleSize: undefined, path: undefined }
  }
  let c: Json
  try {
    c = JSON.parse(readFileSync(path, 'utf8')) as Json
  } catch (cause) {
    throw new GuidekitError('MODEL_INVALID', `${path} is not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}.`, { cause, details: { path } })
  }
  if (typeof c !== 'object' || c === null || Array.isArray(c)) throw new GuidekitError('MODEL_INVALID', `${path} must hold a JSON object (diffusers' AutoencoderKL config).`, { details: { path } })
  const bad = (field: string, expected: string): never => {
    throw new GuidekitError('MODEL_INVALID', `${path}: '${field}' must be ${expected}, got ${JSON.stringify(c[field])}. Fix the VAE config (diffusers' AutoencoderKL config.json) or re-export the model.`, {
      details: { file: path, field, value: c[field] },
    })
  }
  for (const field of ['latents_mean', 'latents_std']) {
    if (c[field] !== undefined && c[field] !== null) {
      throw new GuidekitError('UNSUPPORTED', `${path} sets '${field}' (per-channel latent normalization); guidekit's diffusers loader supports VAEs scaled by scaling_factor and shift_factor only.`, {
        details: { file: path, field },
      })
    }
  }
  const scalingFactor = c.scaling_factor ?? SD_LATENT_SCALING_FACTOR
  if (typeof scalingFactor !== 'number' || !Number.isFinite(scalingFactor) || scalingFactor <= 0) bad('scaling_factor', 'a finite number > 0 (0.18215 for SD1.x/2.x)')
  const shiftFactor = c.shift_factor ?? 0
  if (typeof shiftFactor !== 'number' || !Number.isFinite(shiftFactor)) bad('shift_factor', 'a finite number or null')
  const blocks = c.block_out_channels
  let pixelsPerLatent = 8
  if (blocks !== undefined) {
    if (!Array.isArray(blocks) || blocks.length === 0 || !blocks.every(positiveInt)) bad('block_out_channels', 'a non-empty list of channel counts, e.g. [128, 256, 512, 512]')
    pixelsPerLatent = 2 ** ((blocks as number[]).length - 1)
  }
  const optionalInt = (field: string): number | undefined => {
    if (c[field] === undefined || c[field] === null) return undefined
    return positiveInt(c[field]) ? c[field] : bad(field, 'a positive integer')
  }
  let sampleSize: readonly [number, number] | undefined
  const size = c.sample_size
  if (positiveInt(size)) sampleSize = [size, size]
  else if (Array.isArray(size) && size.length === 2 && size.every(positiveInt)) sampleSize = [size[0] as number, size[1] as number]
  else if (size !== undefined && size !== null) bad('sample_size', 'a positive integer or [height, width]')
  return {
    scalingFactor: scalingFactor as number,
    shiftFactor: shiftFactor as number,
    pixelsPerLatent,
    latentChannels: optionalInt('latent_channels'),
    imageChannels: optionalInt('out_channels'),
    sampleSize,
    path,
  }
}
