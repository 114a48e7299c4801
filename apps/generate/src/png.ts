// PNG output: sharp encodes, we add text chunks (A1111's `parameters` convention).
import type { RawImage } from '@guidekit/onnx'
import sharp from 'sharp'

/** An 8-bit interleaved image (`toRawImages` output or a composed grid). */
export type RawPixels = RawImage

const CRC_TABLE = (() => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff
  for (let i = 0; i < bytes.length; i++) c = (CRC_TABLE[(c ^ (bytes[i] as number)) & 0xff] as number) ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

function chunk(type: string, body: Uint8Array): Buffer {
  const head = Buffer.alloc(8)
  head.writeUInt32BE(body.length, 0)
  head.write(type, 4, 'latin1')
  const typed = Buffer.concat([head.subarray(4), body])
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(typed), 0)
  return Buffer.concat([head.subarray(0, 4), typed, crc])
}

/**
 * A PNG text chunk: `tEXt` when the text is Latin-1 (what A1111 and most readers expect), otherwise an
 * uncompressed UTF-8 `iTXt`.
 */
export function textChunk(keyword: string, text: string): Buffer {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\xff]*$/.test(text)) return chunk('tEXt', Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.of(0), Buffer.from(text, 'latin1')]))
  return chunk('iTXt', Buffer.concat([Buffer.from(keyword, 'latin1'), Buffer.of(0, 0, 0, 0, 0), Buffer.from(text, 'utf8')]))
}

/** Inserts text chunks right after IHDR (so readers that stop early still see them). */
export function withTextChunks(png: Buffer, texts: Readonly<Record<string, string>>): Buffer {
  const ihdrEnd = 8 + 8 + png.readUInt32BE(8) + 4
  return Buffer.concat([png.subarray(0, ihdrEnd), ...Object.entries(texts).map(([k, v]) => textChunk(k, v)), png.subarray(ihdrEnd)])
}

/** Encodes raw pixels as PNG (nearest-neighbour upscaled by an integer factor) with text chunks. */
export async function encodePng(image: RawPixels, texts: Readonly<Record<string, string>>, upscale = 1): Promise<Buffer> {
  let pipeline = sharp(image.data, { raw: image })
  if (upscale > 1) pipeline = pipeline.resize(image.width * upscale, image.height * upscale, { kernel: 'nearest' })
  const png = await pipeline.png({ compressionLevel: 9 }).toBuffer()
  return withTextChunks(png, texts)
}
