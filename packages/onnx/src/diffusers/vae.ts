// The VAE side of a diffusers pipeline: its geometry (read from the VAE config, checked against the graphs),
// decoding, and an encoder session opened on first use.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { GuidekitError, Tensor } from '@guidekit/core'
import type * as ort from 'onnxruntime-node'
import { checkIo, floatFeed, readFloat, runSession, throwIfAborted } from '../internal/io.js'
import type { IoInfo } from '../internal/io.js'
import { readVaeConfig } from './vae-config.js'
import type { VaeConfig } from './vae-config.js'

/** An opened component session with its discovered interface. */
export interface ComponentSession {
  readonly session: ort.InferenceSession
  readonly inputs: Map<string, IoInfo>
  readonly outputs: Map<string, IoInfo>
  /** e.g. `'vae_decoder/model.onnx'`, for messages. */
  readonly name: string
}

/** The VAE of a loaded pipeline. */
export interface PipelineVae {
  readonly config: VaeConfig
  readonly scalingFactor: number
  readonly pixelsPerLatent: number
  readonly imageChannels: number
  readonly imageSize: { readonly height: number; readonly width: number }
  readonly hasEncoder: boolean
  decode(latents: Tensor, signal?: AbortSignal): Promise<Tensor>
  encode(images: Tensor, signal?: AbortSignal): Promise<Tensor>
}

const SOURCE = 'the diffusers Stable Diffusion ONNX export'
const FLOATS = ['float32', 'float16']

/** A fixed (positive) dimension of a session input/output, else `undefined`. */
export const fixedDim = (info: IoInfo | undefined, axis: number): number | undefined => {
  const d = info?.shape[axis]
  return typeof d === 'number' && d > 0 ? d : undefined
}

function invalid(message: string, details: Record<string, unknown>): never {
  throw new GuidekitError('MODEL_INVALID', `${message} Re-export the VAE or fix vae_decoder/config.json.`, { details })
}

/**
 * Resolves the VAE of the pipeline in `directory` from its config and its decoder's interface: a number
 * stated in both (pixels per latent, latent and image channels) must agree.
 */
export function pipelineVae(args: {
  readonly directory: string
  readonly decoder: ComponentSession
  /** The UNet's `sample` input: its fixed latent size, if any, sets the default image size. */
  readonly unetSample: IoInfo
  readonly latentChannels: number
  /** Overrides the config's scaling factor. */
  readonly scalingFactor: number | undefined
  /** Opens a component session that the pipeline releases on dispose (`undefined` once disposed). */
  readonly open: (component: string) => Promise<ComponentSession> | undefined
}): PipelineVae {
  const { directory, decoder, unetSample, latentChannels } = args
  const config = readVaeConfig(directory)
  const from = config.path ?? `${directory} (no vae_decoder/config.json: SD1.x values)`
  checkIo(decoder.name, 'input', decoder.inputs, [{ name: 'latent_sample', dtypes: FLOATS, ranks: [4] }], SOURCE)
  checkIo(decoder.name, 'output', decoder.outputs, [{ name: 'sample', dtypes: FLOATS, ranks: [4] }], SOURCE)
  const latentIn = decoder.inputs.get('latent_sample') as IoInfo
  const imageOut = decoder.outputs.get('sample') as IoInfo

  const scalingFactor = args.scalingFactor ?? config.scalingFactor
  if (!Number.isFinite(scalingFactor) || scalingFactor <= 0) {
    throw new GuidekitError('INVALID_ARGUMENT', `scalingFactor must be a finite number > 0, got ${scalingFactor}.`, { details: { parameter: 'scalingFactor', value: scalingFactor } })
  }
  const f = config.pixelsPerLatent
  for (const axis of [2, 3]) {
    const [zIn, xOut] = [fixedDim(latentIn, axis), fixedDim(imageOut, axis)]
    if (zIn !== undefined && xOut !== undefined && xOut !== zIn * f) {
      invalid(`${decoder.name} maps ${zIn} latent pixels to ${xOut} image pixels, but ${from} gives ${f} pixels per latent (2^(len(block_out_channels) - 1)).`, { expected: zIn * f, actual: xOut })
    }
  }
  const graphChannels = fixedDim(imageOut, 1)
  if (graphChannels !== undefined && config.imageChannels !== undefined && graphChannels !== config.imageChannels) {
    invalid(`${decoder.name} outputs ${graphChannels}-channel images, but ${from} says out_channels ${config.imageChannels}.`, { expected: config.imageChannels, actual: graphChannels })
  }
  if (config.latentChannels !== undefined && config.latentChannels !== latentChannels) {
    invalid(`The UNet and VAE decoder take ${latentChannels}-channel latents, but ${from} says latent_channels ${config.latentChannels}.`, { expected: config.latentChannels, actual: latentChannels })
  }
  const imageChannels = graphChannels ?? config.imageChannels ?? 3
  // diffusers' default size: unet.config.sample_size * vae_scale_factor (512 for SD1.x); an ONNX UNet
  // exported at a fixed size states it in its graph.
  const [h = config.sampleSize?.[0] ?? 512, w = config.sampleSize?.[1] ?? 512] = [2, 3].map((a) => {
    const d = fixedDim(unetSample, a)
    return d === undefined ? undefined : d * f
  })
  const hasEncoder = existsSync(join(directory, 'vae_encoder', 'model.onnx'))

  let encoder: Promise<ComponentSession> | undefined
  const openEncoder = (): Promise<ComponentSession> => {
    encoder ??= (async () => {
      const opened = args.open('vae_encoder')
      if (opened === undefined) throw new GuidekitError('INVALID_ARGUMENT', 'encode() was called after dispose(); load the pipeline again.')
      const e = await opened
      checkIo(e.name, 'input', e.inputs, [{ name: 'sample', dtypes: FLOATS, ranks: [4] }], SOURCE)
      checkIo(e.name, 'output', e.outputs, [{ name: 'latent_sample', dtypes: FLOATS, ranks: [4] }], SOURCE)
      return e
    })()
    encoder.catch(() => (encoder = undefined))
    return encoder
  }

  return {
    config,
    scalingFactor,
    pixelsPerLatent: f,
    imageChannels,
    imageSize: { height: h, width: w },
    hasEncoder,
    async decode(latents, signal) {
      throwIfAborted(signal)
      if (latents.shape.length !== 4 || latents.shape[1] !== latentChannels) {
        throw new GuidekitError('INPUT_MISMATCH', `decode() takes latents [batch, ${latentChannels}, h, w], got [${latents.shape.join(', ')}].`, { details: { actual: latents.shape } })
      }
      const z = new Float32Array(latents.size)
      for (let i = 0; i < z.length; i++) z[i] = (latents.data[i] as number) / scalingFactor + config.shiftFactor
      const out = await runSession(decoder.session, { latent_sample: floatFeed(z, latents.shape, latentIn.dtype) }, decoder.name, signal)
      const { data, shape } = readFloat(out.sample, decoder.name, 'sample')
      // The decoder's images are in [-1, 1]; diffusers' image processor maps them to [0, 1] and clamps.
      const images = new Float32Array(data.length)
      for (let i = 0; i < images.length; i++) images[i] = Math.min(1, Math.max(0, (data[i] as number) * 0.5 + 0.5))
      return new Tensor(images, shape)
    },
    async encode(images, signal) {
      throwIfAborted(signal)
      if (!hasEncoder) {
        throw new GuidekitError('UNSUPPORTED', `${directory} has no vae_encoder/model.onnx, so images cannot be encoded; export the pipeline with its VAE encoder.`, { details: { directory } })
      }
      const [, c, height = 0, width = 0] = images.shape
      if (images.shape.length !== 4 || c !== imageChannels || height % f !== 0 || width % f !== 0) {
        throw new GuidekitError(
          'INPUT_MISMATCH',
          `encode() takes images [batch, ${imageChannels}, H, W] in [0, 1] with H and W multiples of ${f}, got [${images.shape.join(', ')}].`,
          { details: { actual: images.shape } },
        )
      }
      const e = await openEncoder()
      const x = Float32Array.from(images.data, (v) => 2 * v - 1)
      const out = await runSession(e.session, { sample: floatFeed(x, images.shape, (e.inputs.get('sample') as IoInfo).dtype) }, e.name, signal)
      const { data, shape } = readFloat(out.latent_sample, e.name, 'latent_sample')
      const latents = new Float32Array(data.length)
      for (let i = 0; i < latents.length; i++) latents[i] = scalingFactor * ((data[i] as number) - config.shiftFactor)
      return new Tensor(latents, shape)
    },
  }
}
