import pako from 'pako'
import type { Tensor } from '@guidekit/core'
import { imageShape, toUint8 } from './images.js'

const SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]
let crcTable: Uint32Array | undefined

function crc32(bytes: Uint8Array, start: number, end: number): number {
  if (!crcTable) {
    crcTable = new Uint32Array(256)
    for (let n = 0; n < 256; n++) {
      let c = n
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
      crcTable[n] = c >>> 0
    }
  }
  let c = 0xffffffff
  for (let i = start; i < end; i++) c = (crcTable[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

/**
 * A minimal 8-bit grayscale PNG of one image: filter type 0 on every row, the IDAT stream compressed with
 * zlib at level 9 (default window and memory level), exactly as `tooling/train/common.py: png_bytes`.
 *
 * Compression uses pako (a line-by-line port of zlib's deflate) rather than `node:zlib`: Node bundles
 * Chromium's zlib fork, whose SIMD hashing emits different (equally valid) streams, so sizes would differ
 * from the Python zlib the RL model was trained with (1612 of 2200 test images differed by a few bytes;
 * pako matched all of them).
 */
export function pngBytes(pixels: Uint8Array, width: number, height: number): Uint8Array {
  const raw = new Uint8Array(height * (width + 1))
  for (let r = 0; r < height; r++) raw.set(pixels.subarray(r * width, (r + 1) * width), r * (width + 1) + 1)
  const idat = pako.deflate(raw, { level: 9 })
  const out = new Uint8Array(8 + 25 + 12 + idat.length + 12)
  const view = new DataView(out.buffer)
  out.set(SIGNATURE, 0)
  let o = 8
  const chunk = (tag: string, data: Uint8Array): void => {
    view.setUint32(o, data.length)
    for (let i = 0; i < 4; i++) out[o + 4 + i] = tag.charCodeAt(i)
    out.set(data, o + 8)
    view.setUint32(o + 8 + data.length, crc32(out, o + 4, o + 8 + data.length))
    o += 12 + data.length
  }
  const ihdr = new Uint8Array(13)
  const h = new DataView(ihdr.buffer)
  h.setUint32(0, width)
  h.setUint32(4, height)
  ihdr.set([8, 0, 0, 0, 0], 8) // bit depth 8, grayscale, deflate, filter method 0, no interlace
  chunk('IHDR', ihdr)
  chunk('IDAT', idat)
  chunk('IEND', new Uint8Array(0))
  return out
}

/** The reward's name, as written in the RL model's card. */
export const COMPRESSIBILITY_REWARD = 'compressibility: -(bytes of the 8-bit PNG, filter 0, zlib level 9) of the 28x28 sample'

/**
 * The compressibility reward the RL model (`fashion-dit-rl`) was fine-tuned on: minus the size in bytes of
 * each image encoded as an 8-bit grayscale PNG (see {@link pngBytes}); higher (smaller files) is better.
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
  for (let b = 0; b < batch; b++) out[b] = -pngBytes(bytes.subarray(b * size, (b + 1) * size), width, channels * height).length
  return out
}

/** Mean of a list of numbers (NaN for an empty list). */
export function mean(values: ArrayLike<number>): number {
  let s = 0
  for (let i = 0; i < values.length; i++) s += values[i] as number
  return values.length ? s / values.length : Number.NaN
}
