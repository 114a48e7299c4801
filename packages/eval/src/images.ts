import { GuidekitError } from '@guidekit/core'
import type { Tensor } from '@guidekit/core'

/** `[batch, channels, height, width]` of an image tensor, checked. */
export function imageShape(images: Tensor): { batch: number; channels: number; height: number; width: number; size: number } {
  if (images.shape.length !== 4) {
    throw new GuidekitError('SHAPE_MISMATCH', `images must have shape [batch, channels, height, width], got [${images.shape.join(', ')}].`, { details: { shape: images.shape } })
  }
  const [batch, channels, height, width] = images.shape as [number, number, number, number]
  return { batch, channels, height, width, size: channels * height * width }
}

/**
 * One value of an image in [-1, 1] as the 8-bit pixel a PNG stores: `round_half_even((clamp(x, -1, 1) + 1) * 127.5)`,
 * computed in float32 arithmetic as `torch` does (`tooling/train/common.py: to_uint8`), so the bytes, and
 * therefore the compressibility reward, match the training code exactly.
 */
export function toUint8Pixel(x: number): number {
  const c = x < -1 ? -1 : x > 1 ? 1 : Number.isNaN(x) ? -1 : x
  const v = Math.fround(Math.fround(Math.fround(c) + 1) * 127.5)
  const r = Math.round(v)
  // Half-to-even (torch.round); v - floor(v) === 0.5 is exact for float32 values in [0, 255].
  return v - Math.floor(v) === 0.5 && r % 2 !== 0 ? r - 1 : r
}

/** Images in [-1, 1] as 8-bit pixels, `batch * channels * height * width` bytes (see {@link toUint8Pixel}). */
export function toUint8(images: Tensor): Uint8Array {
  imageShape(images)
  const out = new Uint8Array(images.data.length)
  for (let i = 0; i < out.length; i++) out[i] = toUint8Pixel(images.data[i] as number)
  return out
}

/** Saturation and contrast statistics of a set of images (the concern of APG, arXiv 2410.02416). */
export interface SaturationStatistics {
  /** Images measured. */
  readonly count: number
  /** Mean pixel intensity in [0, 1] (after clamping to [-1, 1]). */
  readonly meanIntensity: number
  /** Mean over images of the per-image standard deviation of intensity in [0, 1] (contrast). */
  readonly contrast: number
  /** Fraction of values outside [-1, 1] before clamping (what a PNG writer clips away). */
  readonly clippedFraction: number
  /** Fraction of values above +1 (clipped to white); Fashion-MNIST objects are bright on black. */
  readonly clippedHighFraction: number
  /** Fraction of 8-bit pixels at full white (255). Comparable with real data, which is never out of range. */
  readonly whiteFraction: number
  /** Mean of |x| - 1 over values with |x| > 1 (0 when nothing is clipped): how far outside the range. */
  readonly meanOvershoot: number
}

/**
 * Saturation/contrast statistics of images in [-1, 1]. Oversaturation from high guidance scales shows as
 * values pushed past the range (clipped), more pure-white pixels and a higher per-image contrast than the data.
 *
 * @example
 * const s = saturationStatistics(result.samples)   // { meanIntensity, contrast, clippedFraction, ... }
 */
export function saturationStatistics(images: Tensor): SaturationStatistics {
  const { batch, size } = imageShape(images)
  const d = images.data
  let sum = 0
  let contrast = 0
  let clipped = 0
  let clippedHigh = 0
  let white = 0
  let overshoot = 0
  for (let b = 0; b < batch; b++) {
    let s = 0
    let s2 = 0
    for (let i = b * size; i < (b + 1) * size; i++) {
      const x = d[i] as number
      if (x > 1) {
        clipped++
        clippedHigh++
        overshoot += x - 1
      } else if (x < -1) {
        clipped++
        overshoot += -1 - x
      }
      if (toUint8Pixel(x) === 255) white++
      const u = (Math.min(1, Math.max(-1, x)) + 1) / 2
      s += u
      s2 += u * u
    }
    sum += s
    const m = s / size
    contrast += Math.sqrt(Math.max(0, s2 / size - m * m))
  }
  const total = batch * size
  return {
    count: batch,
    meanIntensity: total ? sum / total : 0,
    contrast: batch ? contrast / batch : 0,
    clippedFraction: total ? clipped / total : 0,
    clippedHighFraction: total ? clippedHigh / total : 0,
    whiteFraction: total ? white / total : 0,
    meanOvershoot: clipped ? overshoot / clipped : 0,
  }
}
