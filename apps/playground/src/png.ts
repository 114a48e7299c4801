// PNG files in the browser: fast-png encodes the 8-bit pixels and writes the text chunks (tEXt).
import { encode } from 'fast-png'
import type { RawImage } from '@guidekit/onnx/web'

/**
 * Encodes an 8-bit image (1 to 4 interleaved channels, as `toRawImages` gives) as a PNG with `tEXt`
 * chunks. PNG `tEXt` holds Latin-1 only; the texts here are ASCII (the grammar's names and numbers).
 */
export function encodePng(image: RawImage, texts: Readonly<Record<string, string>>): Uint8Array {
  // eslint-disable-next-line no-control-regex
  const wide = Object.entries(texts).find(([, v]) => !/^[\x00-\xff]*$/.test(v))
  if (wide) throw new Error(`The PNG text "${wide[0]}" has characters outside Latin-1, which PNG tEXt chunks cannot hold.`)
  return encode({ width: image.width, height: image.height, channels: image.channels, depth: 8, data: image.data, text: { ...texts } })
}
