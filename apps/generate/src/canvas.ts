// A tiny RGB canvas for contact sheets: paste images (nearest-neighbour upscaled) and draw text with an
// embedded bitmap font, so labels look the same on machines without fonts (no SVG/fontconfig needed).
import { FONT_ALPHA_BASE64, FONT_CELL_HEIGHT, FONT_CELL_WIDTH, FONT_FIRST_CODE, FONT_LAST_CODE } from './internal/font-data.js'
import type { RawPixels } from './png.js'

const GLYPHS = Buffer.from(FONT_ALPHA_BASE64, 'base64')

export const CHAR_WIDTH = FONT_CELL_WIDTH
export const LINE_HEIGHT = FONT_CELL_HEIGHT

export type Rgb = readonly [number, number, number]

export class Canvas implements RawPixels {
  readonly data: Uint8Array
  readonly channels = 3 as const

  constructor(
    readonly width: number,
    readonly height: number,
    background: Rgb = [255, 255, 255],
  ) {
    this.data = new Uint8Array(width * height * 3)
    for (let i = 0; i < width * height; i++) this.data.set(background, i * 3)
  }

  /** Pastes an image at (x, y), each pixel repeated `scale` times in both directions; gray becomes RGB. */
  paste(image: RawPixels, x: number, y: number, scale = 1): void {
    for (let sy = 0; sy < image.height * scale; sy++) {
      const ty = y + sy
      if (ty < 0 || ty >= this.height) continue
      const row = Math.floor(sy / scale) * image.width
      for (let sx = 0; sx < image.width * scale; sx++) {
        const tx = x + sx
        if (tx < 0 || tx >= this.width) continue
        const src = (row + Math.floor(sx / scale)) * image.channels
        const dst = (ty * this.width + tx) * 3
        if (image.channels < 3) {
          const v = image.data[src] as number
          this.data[dst] = v
          this.data[dst + 1] = v
          this.data[dst + 2] = v
        } else {
          this.data[dst] = image.data[src] as number
          this.data[dst + 1] = image.data[src + 1] as number
          this.data[dst + 2] = image.data[src + 2] as number
        }
      }
    }
  }

  /** Draws one line of ASCII text with its top-left at (x, y); other characters draw as '?'. */
  text(value: string, x: number, y: number, color: Rgb = [32, 32, 32]): void {
    let cx = x
    for (const ch of value) {
      let code = ch.codePointAt(0) ?? 63
      if (code < FONT_FIRST_CODE || code > FONT_LAST_CODE) code = 63
      const glyph = (code - FONT_FIRST_CODE) * FONT_CELL_WIDTH * FONT_CELL_HEIGHT
      for (let gy = 0; gy < FONT_CELL_HEIGHT; gy++) {
        const ty = y + gy
        if (ty < 0 || ty >= this.height) continue
        for (let gx = 0; gx < FONT_CELL_WIDTH; gx++) {
          const tx = cx + gx
          if (tx < 0 || tx >= this.width) continue
          const a = (GLYPHS[glyph + gy * FONT_CELL_WIDTH + gx] as number) / 255
          if (a === 0) continue
          const dst = (ty * this.width + tx) * 3
          for (let c = 0; c < 3; c++) this.data[dst + c] = Math.round((this.data[dst + c] as number) * (1 - a) + (color[c] as number) * a)
        }
      }
      cx += FONT_CELL_WIDTH
    }
  }

  fill(x: number, y: number, w: number, h: number, color: Rgb): void {
    for (let ty = Math.max(0, y); ty < Math.min(this.height, y + h); ty++) {
      for (let tx = Math.max(0, x); tx < Math.min(this.width, x + w); tx++) this.data.set(color, (ty * this.width + tx) * 3)
    }
  }
}

/** Fits text into `maxChars`, cutting the middle ("apg(scale=8,...momentum=-0.5)"). */
export function fitText(value: string, maxChars: number): string {
  if (value.length <= maxChars) return value
  if (maxChars <= 3) return value.slice(0, maxChars)
  const head = Math.ceil((maxChars - 3) / 2)
  return `${value.slice(0, head)}...${value.slice(value.length - (maxChars - 3 - head))}`
}

/** Splits text into lines of at most `maxChars`, preferring breaks after ',', ':', ')' or spaces. */
export function wrapText(value: string, maxChars: number, maxLines: number): string[] {
  const lines: string[] = []
  let rest = value
  while (rest.length > 0 && lines.length < maxLines) {
    if (rest.length <= maxChars) {
      lines.push(rest)
      rest = ''
      break
    }
    let cut = -1
    for (let i = maxChars; i > maxChars / 2; i--) {
      if (/[,:) ;]/.test(rest[i - 1] as string)) {
        cut = i
        break
      }
    }
    if (cut < 0) cut = maxChars
    lines.push(rest.slice(0, cut).trimEnd())
    rest = rest.slice(cut).trimStart()
  }
  if (rest.length > 0) lines[lines.length - 1] = fitText(`${lines[lines.length - 1] ?? ''}${rest}`, maxChars)
  return lines
}
