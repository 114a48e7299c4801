// The contact sheet of `guidekit grid`: a title, one column per seed (seed and label on top), one row per
// strategy (its spec wrapped on the left with its NFE and seconds per image), images upscaled to the cell.
import { CHAR_WIDTH, Canvas, LINE_HEIGHT, fitText, wrapText } from './canvas.js'
import type { RawPixels } from './png.js'

export interface GridRow {
  readonly label: string
  /** One short line under the label, e.g. `NFE 60, 0.25 s/img`. */
  readonly stats: string
  readonly images: readonly RawPixels[]
}

export interface GridLayout {
  readonly title: string
  /** Per column: the seed and the class or prompt. */
  readonly columns: readonly { readonly seed: number; readonly label: string }[]
  readonly rows: readonly GridRow[]
  /** Minimum cell size in pixels; small images are upscaled by an integer factor. */
  readonly minCell: number
}

const GAP = 6
const MARGIN = 10
const GRAY: readonly [number, number, number] = [90, 90, 90]
const LIGHT: readonly [number, number, number] = [110, 110, 110]

/** Draws the grid. */
export function drawGrid(layout: GridLayout): Canvas {
  const { rows, columns } = layout
  const image = rows[0]?.images[0]
  if (!image) throw new Error('drawGrid needs at least one row with one image')
  const scale = Math.max(1, Math.ceil(layout.minCell / image.width))
  const cellW = image.width * scale
  const cellH = image.height * scale
  const labelChars = Math.min(36, Math.max(16, ...rows.map((r) => r.stats.length), ...rows.map((r) => Math.min(r.label.length, 36))))
  const labelW = labelChars * CHAR_WIDTH + 12
  const headerH = LINE_HEIGHT * 3 + 8
  const width = MARGIN * 2 + labelW + columns.length * cellW + (columns.length - 1) * GAP
  const rowH = Math.max(cellH, LINE_HEIGHT * 5)
  const height = MARGIN * 2 + headerH + rows.length * rowH + (rows.length - 1) * GAP
  const canvas = new Canvas(width, height)
  canvas.text(fitText(layout.title, Math.floor((width - 2 * MARGIN) / CHAR_WIDTH)), MARGIN, MARGIN)
  const colChars = Math.max(4, Math.floor(cellW / CHAR_WIDTH))
  columns.forEach((column, c) => {
    const x = MARGIN + labelW + c * (cellW + GAP)
    canvas.text(fitText(`seed ${column.seed}`, colChars), x, MARGIN + LINE_HEIGHT + 6)
    canvas.text(fitText(column.label, colChars), x, MARGIN + 2 * LINE_HEIGHT + 6, GRAY)
  })
  rows.forEach((row, r) => {
    const y = MARGIN + headerH + r * (rowH + GAP)
    const lines = wrapText(row.label, labelChars, 3)
    lines.forEach((line, k) => canvas.text(line, MARGIN, y + k * LINE_HEIGHT))
    canvas.text(row.stats, MARGIN, y + lines.length * LINE_HEIGHT + 4, LIGHT)
    row.images.forEach((img, c) => canvas.paste(img, MARGIN + labelW + c * (cellW + GAP), y, scale))
  })
  return canvas
}
