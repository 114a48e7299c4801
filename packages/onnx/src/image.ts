import { GuidekitError, findNonFinite } from '@guidekit/core'
import type { Tensor } from '@guidekit/core'

/** An 8-bit image, interleaved HWC, ready for `sharp(image.data, { raw: image })`. */
export interface RawImage {
  readonly data: Uint8Array
  readonly width: number
  readonly height: number
  /** 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA), as sharp's raw input takes. */
  readonly channels: 1 | 2 | 3 | 4
}

/**
 * Converts an NCHW image tensor to one 8-bit HWC image per batch item: `round(255 * (v - lo) / (hi - lo))`,
 * clamped. NaN or infinite values are `NON_FINITE` (never silently black or white); a range that is not two
 * finite numbers with high > low is `INVALID_ARGUMENT`. Use `range: [-1, 1]` for the fashion models' samples and `[0, 1]` for
 * `DiffusersPipeline.decode` output.
 *
 * @example
 * const [image] = toRawImages(await sd.decode(result.samples), { range: [0, 1] })
 * await sharp(image.data, { raw: image }).png().toFile('out.png')
 */
export function toRawImages(images: Tensor, options: { readonly range?: readonly [number, number] } = {}): RawImage[] {
  const range: unknown = options.range ?? [-1, 1]
  const [lo, hi] = Array.isArray(range) ? (range as unknown[]) : []
  if (typeof lo !== 'number' || typeof hi !== 'number' || !Number.isFinite(lo) || !Number.isFinite(hi) || !(hi > lo) || (range as unknown[]).length !== 2) {
    throw new GuidekitError('INVALID_ARGUMENT', `range must be two finite numbers [low, high] with high > low, e.g. [-1, 1], got ${JSON.stringify(range)}.`, { details: { parameter: 'range', value: range } })
  }
  if (images.shape.length !== 4) {
    throw new GuidekitError('INVALID_ARGUMENT', `toRawImages takes an image tensor [batch, channels, height, width], got [${images.shape.join(', ')}].`)
  }
  const [batch, channels, height, width] = images.shape as [number, number, number, number]
  if (channels < 1 || channels > 4) {
    throw new GuidekitError('INVALID_ARGUMENT', `toRawImages takes 1 to 4 channels (gray, gray + alpha, RGB, RGBA), got ${channels}.`, { details: { parameter: 'images', value: images.shape } })
  }
  const bad = findNonFinite(images)
  if (bad >= 0) {
    // Rounding would turn NaN into 0 (black): an image that hides a broken model or guider.
    throw new GuidekitError('NON_FINITE', `toRawImages: the images hold ${images.data[bad]} at element ${bad}; an image cannot show it. Check the model and the guidance scale.`, { details: { element: bad } })
  }
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
    out.push({ data, width, height, channels: channels as RawImage['channels'] })
  }
  return out
}
