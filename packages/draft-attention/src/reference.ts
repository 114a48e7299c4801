import { GuidekitError, Tensor, check } from '@guidekit/core'
import { type DraftGeometry, type DraftLayout, draftGeometry, reorderIndices } from './layout.js'
import {
  type DraftSelection,
  checkSelection,
  globalPercentileEntries,
  rowTopkBlocks,
} from './selection.js'

// The TypeScript reference of every stage. It favours clarity over speed (float64 accumulation, plain
// loops) and is what the ONNX subgraph is tested against. Tensors are [H, L, D]: heads (batch folded in,
// so every (batch, head) pair gets its own draft map, as in the CFG variant upstream), sequence, channels.

function dims3(name: string, t: Tensor): [number, number, number] {
  // Checked at runtime for JavaScript callers, on an unknown copy (narrowing t.shape would make it any[]).
  const shape: unknown = t instanceof Object ? t.shape : undefined
  check(Array.isArray(shape) && shape.length === 3, name, shape, 'a Tensor of shape [heads, tokens, headDim]')
  return [t.shape[0]!, t.shape[1]!, t.shape[2]!]
}

function checkSequence(name: string, t: Tensor, g: DraftGeometry): [number, number, number] {
  const d = dims3(name, t)
  if (d[1] !== g.sequenceLength) {
    throw new GuidekitError(
      'SHAPE_MISMATCH',
      `${name} has ${d[1]} tokens but the layout needs ${g.sequenceLength} (prefix ${g.prefixTokens} + grid ${g.frames}x${g.height}x${g.width} + suffix ${g.suffixTokens}); check the grid and prefix/suffix tokens.`,
      { details: { tokens: d[1], expected: g.sequenceLength } },
    )
  }
  return d
}

/**
 * Stage 1, draft tokens: per frame, the mean of the grid tokens in each window (padding slots do not
 * count, which is what `avg_pool2d(ceil_mode=True)` does at the border). Only grid tokens are pooled.
 * Returns `[H, S, D]` with draft tokens in (frame, window row, window column) order.
 */
export function poolDraftTokens(x: Tensor, layout: DraftLayout): Tensor {
  const g = draftGeometry(layout)
  const [H, L, D] = checkSequence('x', x, g)
  const reorder = reorderIndices(g)
  const out = new Float32Array(H * g.blocks * D)
  const acc = new Float64Array(D)
  for (let h = 0; h < H; h++) {
    for (let s = 0; s < g.blocks; s++) {
      acc.fill(0)
      let count = 0
      for (let j = 0; j < g.blockSize; j++) {
        const t = reorder[s * g.blockSize + j]!
        if (t < 0) continue
        const base = (h * L + g.prefixTokens + t) * D
        for (let c = 0; c < D; c++) acc[c]! += x.data[base + c]!
        count++
      }
      for (let c = 0; c < D; c++) out[(h * g.blocks + s) * D + c] = acc[c]! / count
    }
  }
  return new Tensor(out, [H, g.blocks, D])
}

/** Stage 2, draft map: per head `softmax(Qd Kd^T * scale)` over the last axis, `[H, S, S]`. */
export function draftAttentionMap(queries: Tensor, keys: Tensor, options: { scale?: number } = {}): Tensor {
  const [H, S, D] = dims3('queries', queries)
  const [H2, S2, D2] = dims3('keys', keys)
  check(H === H2 && S === S2 && D === D2, 'keys.shape', keys.shape, `equal to queries.shape [${H}, ${S}, ${D}]`)
  const scale = options.scale ?? 1 / Math.sqrt(D)
  const out = new Float32Array(H * S * S)
  const row = new Float64Array(S)
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < S; i++) {
      const sum = exponentiatedScores(row, queries.data, (h * S + i) * D, keys.data, h * S, D, scale)
      for (let j = 0; j < S; j++) out[(h * S + i) * S + j] = row[j]! / sum
    }
  }
  return new Tensor(out, [H, S, S])
}

/** Options of {@link selectBlocks}. */
export interface SelectBlocksOptions {
  /** Fraction of block pairs kept, in (0, 1]. */
  readonly keep: number
  readonly selection: DraftSelection
  /**
   * `'global-percentile'` only: cap the kept blocks of each row at its `maxBlocksPerRow` best and always
   * keep each row's best block. This is what the ONNX graph computes (it needs a static per-row count).
   * Omit for the paper's exact rule.
   */
  readonly maxBlocksPerRow?: number
  /**
   * `'global-percentile'` without a cap: also keep each row's best block (what the exact ONNX graph
   * does, so that no row is empty). Default false: the paper's rule as is.
   */
  readonly keepRowBest?: boolean
}

/** Row indices sorted by value, descending; ties by lower index first (as ONNX TopK). */
function sortedRow(map: Float32Array, offset: number, S: number): number[] {
  const idx = Array.from({ length: S }, (_, j) => j)
  idx.sort((a, b) => map[offset + b]! - map[offset + a]! || a - b)
  return idx
}

/**
 * Stage 3, block selection. Returns a `[H, S, S]` mask (1 = attend from query block i to key block j).
 * See {@link DraftSelection} for the two rules.
 */
export function selectBlocks(map: Tensor, options: SelectBlocksOptions): Uint8Array {
  const [H, S, S2] = dims3('map', map)
  check(S === S2, 'map.shape', map.shape, 'a square [H, S, S] draft map')
  const selection = checkSelection(options.selection)
  const mask = new Uint8Array(H * S * S)
  if (selection === 'row-topk') {
    const kb = rowTopkBlocks(options.keep, S)
    for (let h = 0; h < H; h++) {
      for (let i = 0; i < S; i++) {
        const order = sortedRow(map.data, (h * S + i) * S, S)
        for (let r = 0; r < kb; r++) mask[(h * S + i) * S + order[r]!] = 1
      }
    }
    return mask
  }
  const kept = globalPercentileEntries(options.keep, S)
  const cap = options.maxBlocksPerRow
  if (cap !== undefined) check(Number.isInteger(cap) && cap >= 1 && cap <= S, 'maxBlocksPerRow', cap, `an integer in [1, ${S}]`)
  for (let h = 0; h < H; h++) {
    const head = Array.from(map.data.subarray(h * S * S, (h + 1) * S * S))
    head.sort((a, b) => b - a)
    const threshold = head[kept - 1]!
    for (let i = 0; i < S; i++) {
      const off = (h * S + i) * S
      if (cap === undefined) {
        for (let j = 0; j < S; j++) if (map.data[off + j]! >= threshold) mask[off + j] = 1
        if (options.keepRowBest === true) mask[off + sortedRow(map.data, off, S)[0]!] = 1
      } else {
        const order = sortedRow(map.data, off, S)
        // Comparing with min(threshold, row max) keeps the row's best block even when the head threshold
        // is above it, so no row is left without keys (upstream would leave such a row empty).
        const rowThreshold = Math.min(threshold, map.data[off + order[0]!]!)
        for (let r = 0; r < cap; r++) if (map.data[off + order[r]!]! >= rowThreshold) mask[off + order[r]!] = 1
      }
    }
  }
  return mask
}

/**
 * One softmax row before normalisation: `row[j] = exp(s_j - max s)` with `s_j = scale <q, k_j>` for the
 * `row.length` keys starting at key `firstKey`, in float64; returns `sum_j row[j]`.
 */
function exponentiatedScores(row: Float64Array, q: Float32Array, qOffset: number, k: Float32Array, firstKey: number, D: number, scale: number): number {
  let max = -Infinity
  for (let j = 0; j < row.length; j++) {
    let dot = 0
    for (let c = 0; c < D; c++) dot += q[qOffset + c]! * k[(firstKey + j) * D + c]!
    row[j] = dot * scale
    if (row[j]! > max) max = row[j]!
  }
  let sum = 0
  for (let j = 0; j < row.length; j++) sum += row[j] = Math.exp(row[j]! - max)
  return sum
}

/** Options of the attention functions. */
export interface AttentionOptions {
  /** Softmax scale; default `1 / sqrt(headDim)`. */
  readonly scale?: number
}

/** Plain softmax attention `softmax(Q K^T * scale) V` per head, `[H, L, D]` (the dense baseline). */
export function denseAttention(q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions = {}): Tensor {
  const [H, L, D] = dims3('q', q)
  const [, Lk] = dims3('k', k)
  const [, , Dv] = dims3('v', v)
  const scale = options.scale ?? 1 / Math.sqrt(D)
  const out = new Float32Array(H * L * Dv)
  const row = new Float64Array(Lk)
  for (let h = 0; h < H; h++) {
    for (let i = 0; i < L; i++) {
      const sum = exponentiatedScores(row, q.data, (h * L + i) * D, k.data, h * Lk, D, scale)
      for (let c = 0; c < Dv; c++) {
        let o = 0
        for (let j = 0; j < Lk; j++) o += row[j]! * v.data[(h * Lk + j) * Dv + c]!
        out[(h * L + i) * Dv + c] = o / sum
      }
    }
  }
  return new Tensor(out, [H, L, Dv])
}

/**
 * Stages 4-6: reorder grid tokens into blocks, attend block-sparsely, restore the order. Grid query block
 * i attends to the grid tokens of the key blocks j with `mask[h, i, j] = 1` plus every prefix/suffix token;
 * prefix/suffix queries attend to every token. Padding slots are never keys. A grid query with no key
 * at all (only possible with the paper's exact rule and no prefix/suffix tokens) outputs zeros, as the
 * block-sparse kernel does.
 */
export function blockSparseAttention(q: Tensor, k: Tensor, v: Tensor, mask: Uint8Array, layout: DraftLayout, options: AttentionOptions = {}): Tensor {
  const g = draftGeometry(layout)
  const [H, L, D] = checkSequence('q', q, g)
  checkSequence('k', k, g)
  const [, , Dv] = checkSequence('v', v, g)
  const S = g.blocks
  check(mask instanceof Uint8Array && mask.length === H * S * S, 'mask.length', mask?.length, `${H * S * S} (= heads x blocks x blocks)`)
  const scale = options.scale ?? 1 / Math.sqrt(D)
  const reorder = reorderIndices(g)
  const textTokens: number[] = []
  for (let t = 0; t < g.prefixTokens; t++) textTokens.push(t)
  for (let t = g.prefixTokens + g.gridTokens; t < L; t++) textTokens.push(t)
  // Prefix/suffix queries: dense over the whole sequence.
  const dense = denseAttention(q, k, v, { scale })
  const out = new Float32Array(H * L * Dv)
  for (let h = 0; h < H; h++) {
    for (const t of textTokens) out.set(dense.data.subarray((h * L + t) * Dv, (h * L + t + 1) * Dv), (h * L + t) * Dv)
    for (let i = 0; i < S; i++) {
      const keys: number[] = [...textTokens]
      for (let j = 0; j < S; j++) {
        if (!mask[(h * S + i) * S + j]) continue
        for (let x = 0; x < g.blockSize; x++) {
          const t = reorder[j * g.blockSize + x]!
          if (t >= 0) keys.push(g.prefixTokens + t)
        }
      }
      const row = new Float64Array(keys.length)
      for (let y = 0; y < g.blockSize; y++) {
        const tq = reorder[i * g.blockSize + y]!
        if (tq < 0) continue
        const qi = g.prefixTokens + tq
        let max = -Infinity
        for (let r = 0; r < keys.length; r++) {
          let dot = 0
          for (let c = 0; c < D; c++) dot += q.data[(h * L + qi) * D + c]! * k.data[(h * L + keys[r]!) * D + c]!
          row[r] = dot * scale
          if (row[r]! > max) max = row[r]!
        }
        let sum = 0
        for (let r = 0; r < keys.length; r++) sum += row[r] = Math.exp(row[r]! - max)
        for (let c = 0; c < Dv; c++) {
          let o = 0
          for (let r = 0; r < keys.length; r++) o += row[r]! * v.data[(h * L + keys[r]!) * Dv + c]!
          out[(h * L + qi) * Dv + c] = keys.length === 0 ? 0 : o / sum
        }
      }
    }
  }
  return new Tensor(out, [H, L, Dv])
}

/** Options of {@link draftAttentionReference}. */
export interface DraftAttentionReferenceOptions extends AttentionOptions, SelectBlocksOptions {
  readonly layout: DraftLayout
}

/** The result of {@link draftAttentionReference}: the output and the intermediate stages, for inspection. */
export interface DraftAttentionReferenceResult {
  readonly output: Tensor
  readonly draftQueries: Tensor
  readonly draftKeys: Tensor
  /** `[H, S, S]` softmax draft map. */
  readonly map: Tensor
  /** `[H, S, S]` kept-block mask. */
  readonly mask: Uint8Array
  /** Fraction of block pairs kept (over all heads). */
  readonly keptFraction: number
}

/**
 * DraftAttention end to end (arXiv 2505.14708): pool Q and K per window, draft map
 * `softmax(Qd Kd^T / sqrt(D))`, select blocks, block-sparse attention at full resolution.
 * Inputs are `[H, L, D]` with the layout's prefix tokens, grid tokens (frame-major, row-major), suffix
 * tokens. `scale` (default `1 / sqrt(D)`, upstream's only choice) is used for both the draft map and the
 * full attention, so a model whose logit scale is not `1 / sqrt(D)` gets a draft of its real attention.
 *
 * @example
 * const { output } = draftAttentionReference(q, k, v, {
 *   layout: { grid: { frames: 4, height: 32, width: 32 }, window: { height: 8, width: 8 } },
 *   keep: 0.1, selection: 'global-percentile',
 * })
 */
export function draftAttentionReference(q: Tensor, k: Tensor, v: Tensor, options: DraftAttentionReferenceOptions): DraftAttentionReferenceResult {
  const draftQueries = poolDraftTokens(q, options.layout)
  const draftKeys = poolDraftTokens(k, options.layout)
  const map = draftAttentionMap(draftQueries, draftKeys, options.scale === undefined ? {} : { scale: options.scale })
  const mask = selectBlocks(map, options)
  const output = blockSparseAttention(q, k, v, mask, options.layout, options.scale === undefined ? {} : { scale: options.scale })
  let kept = 0
  for (const m of mask) kept += m
  return { output, draftQueries, draftKeys, map, mask, keptFraction: kept / mask.length }
}
