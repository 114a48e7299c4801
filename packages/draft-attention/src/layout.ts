import { GuidekitError, check } from '@guidekit/core'

/** The latent token grid of a video/image DiT: tokens are frame-major, then row-major inside a frame. */
export interface TokenGrid {
  readonly frames: number
  readonly height: number
  readonly width: number
}

/** A pooling window in tokens: `height x width` tokens become one draft token and one attention block. */
export interface DraftWindow {
  readonly height: number
  readonly width: number
}

/**
 * Where the grid tokens sit in the attention sequence. Text / prefix tokens (class tokens, registers,
 * text for joint attention) are always attended densely, as in the official code: their queries see
 * every key and every grid query sees all of them.
 */
export interface DraftLayout {
  readonly grid: TokenGrid
  readonly window: DraftWindow
  /** Non-grid tokens before the grid tokens (default 0). */
  readonly prefixTokens?: number
  /** Non-grid tokens after the grid tokens (default 0; HunyuanVideo puts its 256 text tokens here). */
  readonly suffixTokens?: number
}

/**
 * Derived sizes of a layout. Grids that the window does not divide are padded at the bottom/right of each
 * frame to `paddedHeight x paddedWidth`; padded tokens are masked as keys and dropped as queries.
 */
export interface DraftGeometry {
  readonly frames: number
  readonly height: number
  readonly width: number
  readonly windowHeight: number
  readonly windowWidth: number
  readonly paddedHeight: number
  readonly paddedWidth: number
  /** Windows per frame vertically / horizontally. */
  readonly blocksHigh: number
  readonly blocksWide: number
  /** Draft tokens = attention blocks: `frames * blocksHigh * blocksWide`. */
  readonly blocks: number
  /** Tokens per block: `windowHeight * windowWidth` (padding included). */
  readonly blockSize: number
  /** Real grid tokens: `frames * height * width`. */
  readonly gridTokens: number
  /** Grid tokens after padding: `blocks * blockSize`. */
  readonly paddedGridTokens: number
  readonly prefixTokens: number
  readonly suffixTokens: number
  /** Whole sequence length: `prefixTokens + gridTokens + suffixTokens`. */
  readonly sequenceLength: number
  readonly padded: boolean
}

function positiveInt(value: unknown): boolean {
  return typeof value === 'number' && Number.isInteger(value) && value > 0
}

/**
 * Validates a layout and computes its geometry.
 *
 * @example
 * draftGeometry({ grid: { frames: 1, height: 7, width: 7 }, window: { height: 2, width: 2 } }).blocks // 16
 */
export function draftGeometry(layout: DraftLayout): DraftGeometry {
  check(typeof layout === 'object' && layout !== null, 'layout', layout, 'an object { grid, window, prefixTokens? }')
  const { grid, window } = layout
  check(
    typeof grid === 'object' && grid !== null && positiveInt(grid.frames) && positiveInt(grid.height) && positiveInt(grid.width),
    'layout.grid',
    grid,
    'positive integers { frames, height, width } (take them from the model card: architecture.tokenGrid)',
  )
  check(
    typeof window === 'object' && window !== null && positiveInt(window.height) && positiveInt(window.width),
    'layout.window',
    window,
    'positive integers { height, width } in tokens',
  )
  const prefixTokens = layout.prefixTokens ?? 0
  const suffixTokens = layout.suffixTokens ?? 0
  check(Number.isInteger(prefixTokens) && prefixTokens >= 0, 'layout.prefixTokens', prefixTokens, 'a non-negative integer')
  check(Number.isInteger(suffixTokens) && suffixTokens >= 0, 'layout.suffixTokens', suffixTokens, 'a non-negative integer')
  if (window.height > grid.height || window.width > grid.width) {
    throw new GuidekitError(
      'INVALID_ARGUMENT',
      `layout.window ${window.height}x${window.width} is larger than the ${grid.height}x${grid.width} token grid; choose a window no larger than a frame.`,
      { details: { grid, window } },
    )
  }
  const blocksHigh = Math.ceil(grid.height / window.height)
  const blocksWide = Math.ceil(grid.width / window.width)
  const paddedHeight = blocksHigh * window.height
  const paddedWidth = blocksWide * window.width
  const blocks = grid.frames * blocksHigh * blocksWide
  const blockSize = window.height * window.width
  const gridTokens = grid.frames * grid.height * grid.width
  return {
    frames: grid.frames,
    height: grid.height,
    width: grid.width,
    windowHeight: window.height,
    windowWidth: window.width,
    paddedHeight,
    paddedWidth,
    blocksHigh,
    blocksWide,
    blocks,
    blockSize,
    gridTokens,
    paddedGridTokens: blocks * blockSize,
    prefixTokens,
    suffixTokens,
    sequenceLength: prefixTokens + gridTokens + suffixTokens,
    padded: paddedHeight !== grid.height || paddedWidth !== grid.width,
  }
}

/**
 * The reorder permutation: position `p` of the block-contiguous order holds grid token `reorder[p]`
 * (frame-major, row-major index), or -1 for a padding slot. Block `s` occupies positions
 * `[s * blockSize, (s + 1) * blockSize)` and blocks are ordered (frame, window row, window column), the
 * order of the draft tokens. Mathematically a transpose `[F, SH, ph, SW, pw] -> [F, SH, SW, ph, pw]`; for
 * grids the window divides it equals the official `reorg_idx` (`draft_attention.py::generate_reorg_indices`).
 */
export function reorderIndices(geometry: DraftGeometry): Int32Array {
  const g = geometry
  const out = new Int32Array(g.paddedGridTokens)
  let p = 0
  for (let f = 0; f < g.frames; f++) {
    for (let sh = 0; sh < g.blocksHigh; sh++) {
      for (let sw = 0; sw < g.blocksWide; sw++) {
        for (let y = 0; y < g.windowHeight; y++) {
          for (let x = 0; x < g.windowWidth; x++) {
            const row = sh * g.windowHeight + y
            const col = sw * g.windowWidth + x
            out[p++] = row < g.height && col < g.width ? (f * g.height + row) * g.width + col : -1
          }
        }
      }
    }
  }
  return out
}

/** The inverse of {@link reorderIndices}: grid token `t` sits at position `restore[t]` of the block order. */
export function restoreIndices(geometry: DraftGeometry): Int32Array {
  const reorder = reorderIndices(geometry)
  const out = new Int32Array(geometry.gridTokens)
  for (let p = 0; p < reorder.length; p++) {
    const t = reorder[p]!
    if (t >= 0) out[t] = p
  }
  return out
}

/** Number of real (non-padding) tokens in each block. */
export function validTokensPerBlock(geometry: DraftGeometry): Int32Array {
  const reorder = reorderIndices(geometry)
  const out = new Int32Array(geometry.blocks)
  for (let p = 0; p < reorder.length; p++) if (reorder[p]! >= 0) out[Math.floor(p / geometry.blockSize)]!++
  return out
}
