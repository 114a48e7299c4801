import pako from 'pako'
import type { Tensor } from '@guidekit/core'
import { imageShape, toUint8 } from './images.js'

/**
 * The size in bytes of a minimal 8-bit grayscale PNG of one image, as `tooling/train/common.py: png_bytes`
 * writes it: signature (8) + IHDR chunk (25) + one IDAT chunk (12 + the zlib stream) + IEND (12), where the
 * IDAT stream is the rows, each prefixed with filter type 0, compressed with zlib at level 9 (default window
 * and memory level). Only the zlib stream varies, so the size is computed without writing the file.
 *
 * Compression uses pako (a line-by-line port of zlib's deflate) rather than `node:zlib`: Node bundles
 * Chromium's zlib fork, whose SIMD hashing emits different (equally valid) streams, so sizes would differ
 * from the Python zlib the RL model was trained with (1612 of 2200 test images differed by a few bytes;
 * pako matched all of them).
 */
function pngSize(pixels: Uint8Array, width: number, height: number): number {
  const raw = new Uint8Array(height * (width + 1))
  for (let r = 0; r < height; r++) raw.set(pixels.subarray(r * width, (r + 1) * width), r * (width + 1) + 1)
  return 8 + 25 + 12 + pako.deflate(raw, { level: 9 }).length + 12
}

/** The reward's name, as written in the RL model's card. */
export const COMPRESSIBILITY_REWARD = 'compressibility: -(bytes of the 8-bit PNG, filter 0, zlib level 9) of the 28x28 sample'

/**
 * The compressibility reward the RL model (`fashion-dit-rl`) was fine-tuned on: minus the size in bytes of
 * each image encoded as an 8-bit grayscale PNG (see `pngSize`); higher (smaller files) is better.
 * Images in [-1, 1], single channel. Matches `tooling/train/common.py: compressibility` byte for byte.
 *
 * @example
 * const rewards = compressibility(result.samples)   // Float64Array, e.g. [-312, -298, ...]
 */
export function compressibility(images: Tensor): Float64Array {
  const { batch, channels, height, width } = imageShape(images)
  const bytes = toUint8(images)
  const size = channels * height * width
  const out = new Float64Array(batch)
  // One channel per PNG row layout, as the training code (grayscale); more channels stack as taller images.
  for (let b = 0; b < batch; b++) out[b] = -pngSize(bytes.subarray(b * size, (b + 1) * size), width, channels * height)
  return out
}
