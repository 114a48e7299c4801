import { GuidekitError } from '@guidekit/core'
import type { Tensor } from '@guidekit/core'

/** An 8-bit image, interleaved HWC, ready for `sharp(data, { raw: { width, height, channels } })`. */
export interface RawImage {
  readonly data: Uint8Array
  readonly width: number
  readonly height: number
  readonly channels: number
}

/**
 * Converts an NCHW image tensor to one 8-bit HWC image per batch item: `round(255 * (v - lo) / (hi - lo))`,
 * clamped. Use `range: [-1, 1]` for the fashion models' samples and `[0, 1]` for
 * `DiffusersPipeline.decode` output.
 *
 * @example
 * const [image] = toRawImages(await sd.decode(result.samples), { range: [0, 1] })
 * await sharp(image.data, { raw: image }).png().toFile('out.png')
 */
export function toRawImages(images: Tensor, options: { readonly range?: readonly [number, number] } = {}): RawImage[] {
  const [lo, hi] = options.range ?? [-1, 1]
  if (images.shape.length !== 4) {
    throw new GuidekitError('INVALID_ARGUMENT', `toRawImages takes an image tensor [batch, channels, height, width], got [${images.shape.join(', ')}].`)
  }
  if (!(hi > lo)) throw new GuidekitError('INVALID_ARGUMENT', `range must be [low, high] with high > low, got [${lo}, ${hi}].`, { details: { parameter: 'range' } })
  const [batch, channels, height, width] = images.shape as [number, number, number, number]
  const plane = height * width
  const scale = 255 / (hi - lo)
  const out: RawImage[] = []
  for (let b = 0; b < batch; b++) {
    const data = new Uint8Array(plane * channels)
    const base = b * channels * plane
    for (let c = 0; c < channels; c++) {
      for (let p = 0; p < plane; p++) {
        const v = Math.round(((images.data[base + c * plane + p] as number) - lo) * scale)
        data[p * channels + c] = v < 0 ? 0 : v > 255 ? 255 : v
      }
    }
    out.push({ data, width, height, channels })
  }
  return out
}
