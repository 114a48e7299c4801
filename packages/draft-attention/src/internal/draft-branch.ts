import { type NodeEmitter, TensorProto_DataType } from '@guidekit/onnx/graph'
import { type DraftGeometry, reorderIndices } from '../layout.js'
import type { DraftInputNames } from '../rewrite.js'
import type { DraftSelection } from '../selection.js'
import type { Matched } from './match-sites.js'
import { type Blocks, type HeadOffsets, INT64_MAX, MASKED, type Site, type SiteOps, type TextTokens, site, siteOps } from './site-ops.js'
import { type SparseInputs, exactGlobalAttention, selectedBlockAttention } from './sparse-attention.js'

/** How the draft branches of a model are built (the same for every site). */
export interface DraftBranchOptions {
  readonly selection: DraftSelection
  readonly inputs: DraftInputNames
  readonly queryBlocksPerGroup: number
  /** `'global-percentile'` as a flat list of kept pairs (opset >= 16) instead of capped row TopK. */
  readonly exactGlobal: boolean
}

/**
 * Emits the draft branch for one site; returns the name of its output (same shape as the site's).
 * Stages: Q/K/V to [H', L, D] and the logit scale; grid tokens reordered into blocks; the draft map
 * from block-mean tokens; block selection and block-sparse attention (./sparse-attention.ts); token
 * order restored, with dense attention for the text queries.
 */
export function emitDraftSite(e: NodeEmitter, m: Matched, geo: DraftGeometry, options: DraftBranchOptions): string {
  const ops = siteOps(e, geo)
  const heads = toHeadMajor(ops, m)
  const s = site(ops, heads.d, heads.dv, logitScale(ops, m, heads.d))
  const blocks = toBlocks(s, heads)
  const reorder = reorderIndices(geo)
  const map = draftMap(s, blocks, reorder)
  const offsets = headOffsets(s, heads.q3)
  const text = geo.prefixTokens + geo.suffixTokens > 0 ? textTokens(s, heads) : undefined
  const sparse: SparseInputs = { ...options, map, blocks, heads: offsets, text, padBias: padBias(geo, reorder) }
  const ob = options.exactGlobal ? exactGlobalAttention(s, sparse) : selectedBlockAttention(s, sparse)
  return heads.restoreOutput(restoreTokens(s, ob, heads, text))
}

/** Q, K, V as [H', L, D] (H' = batch x heads), and the way back to the site's output layout. */
interface HeadMajor {
  readonly q3: string
  readonly k3: string
  readonly v3: string
  readonly d: string
  readonly dv: string
  readonly restoreOutput: (o3: string) => string
}

/** 1. Brings Q, K, V to [H', L, D]: every (batch, head) gets its own draft map. */
function toHeadMajor(ops: SiteOps, m: Matched): HeadMajor {
  const { e, i64, concat } = ops
  const L = ops.geo.sequenceLength
  const lastDim = (x: string) => e.op1('Slice', [e.op1('Shape', [x]), i64([-1]), i64([INT64_MAX])], {}, 'lastdim')
  if (m.layout === 'bhld') {
    const d = lastDim(m.q)
    const dv = lastDim(m.v)
    const q3 = e.op1('Reshape', [m.q, concat([i64([-1, L]), d])], {}, 'q3')
    let k3: string
    if (m.kTransposed) {
      const kt3 = e.op1('Reshape', [m.k, concat([i64([-1]), d, i64([L])])], {}, 'kt3')
      k3 = e.op1('Transpose', [kt3], { perm: { ints: [0, 2, 1] } }, 'k3')
    } else {
      k3 = e.op1('Reshape', [m.k, concat([i64([-1, L]), d])], {}, 'k3')
    }
    const v3 = e.op1('Reshape', [m.v, concat([i64([-1, L]), dv])], {}, 'v3')
    const qShape = e.op1('Shape', [m.q])
    const lead = e.op1('Slice', [qShape, i64([0]), i64([-1])], {}, 'lead')
    return { q3, k3, v3, d, dv, restoreOutput: (o3) => e.op1('Reshape', [o3, concat([lead, dv])], {}, 'out') }
  }
  const heads = m.heads!
  const to4 = (x: string, hint: string) => {
    const x4 = e.op1('Reshape', [x, i64([0, 0, heads, -1])], {}, `${hint}4`)
    return e.op1('Transpose', [x4], { perm: { ints: [0, 2, 1, 3] } }, `${hint}bhld`)
  }
  const q4 = to4(m.q, 'q')
  const k4 = to4(m.k, 'k')
  const v4 = to4(m.v, 'v')
  const d = lastDim(q4)
  const dv = lastDim(v4)
  return {
    q3: e.op1('Reshape', [q4, concat([i64([-1, L]), d])], {}, 'q3'),
    k3: e.op1('Reshape', [k4, concat([i64([-1, L]), d])], {}, 'k3'),
    v3: e.op1('Reshape', [v4, concat([i64([-1, L]), dv])], {}, 'v3'),
    d,
    dv,
    restoreOutput: (o3) => {
      const o4 = e.op1('Reshape', [o3, concat([i64([-1, heads, L]), dv])], {}, 'o4')
      const ot = e.op1('Transpose', [o4], { perm: { ints: [0, 2, 1, 3] } }, 'oblhd')
      return e.op1('Reshape', [ot, i64([0, 0, -1])], {}, 'out')
    },
  }
}

/** The site's logit scale as a scalar tensor (1/sqrt(D) when the site has none). */
function logitScale({ e }: SiteOps, m: Matched, d: string): string {
  if (typeof m.scale === 'number') return e.float([m.scale], [], 'scale')
  if (m.scale === undefined) {
    const df = e.op1('Cast', [d], { to: { i: TensorProto_DataType.FLOAT } })
    return e.op1('Reciprocal', [e.op1('Sqrt', [df])], {}, 'scale')
  }
  return m.scale.reciprocal ? e.op1('Reciprocal', [m.scale.tensor], {}, 'scale') : m.scale.tensor
}

/**
 * 2-3. Splits the grid tokens from the prefix/suffix (text) tokens and reorders them into blocks:
 * [H', F, Hs, Ws, D] -> pad -> [H', F, SH, ph, SW, pw, D] -> [H', F, SH, SW, ph, pw, D].
 */
function toBlocks(s: Site, heads: HeadMajor): Blocks {
  const { e, geo, i64, concat, d, dv } = s
  const { prefixTokens: P, gridTokens: N, blocks: S, blockSize: b } = geo
  const gridPart = (x: string) => (P + geo.suffixTokens > 0 ? s.slice1(x, P, P + N) : x)
  const blocked = (x: string, dim: string, hint: string) => {
    let g = e.op1('Reshape', [gridPart(x), concat([i64([-1, geo.frames, geo.height, geo.width]), dim])], {}, `${hint}grid`)
    if (geo.padded) {
      const pads = i64([0, 0, 0, 0, 0, 0, 0, geo.paddedHeight - geo.height, geo.paddedWidth - geo.width, 0], 'pads')
      g = e.op1('Pad', [g, pads], {}, `${hint}pad`)
    }
    const g7 = e.op1('Reshape', [g, concat([i64([-1, geo.frames, geo.blocksHigh, geo.windowHeight, geo.blocksWide, geo.windowWidth]), dim])], {}, `${hint}7`)
    return e.op1('Transpose', [g7], { perm: { ints: [0, 1, 2, 4, 3, 5, 6] } }, `${hint}reorder`)
  }
  const qr = blocked(heads.q3, d, 'q')
  const kr = blocked(heads.k3, d, 'k')
  const vr = blocked(heads.v3, dv, 'v')
  return {
    qb: e.op1('Reshape', [qr, concat([i64([-1, S, b]), d])], {}, 'qblocks'), // [H', S, b, D]
    kb: e.op1('Reshape', [kr, concat([i64([-1, S, b]), d])], {}, 'kblocks'),
    kf: e.op1('Reshape', [kr, concat([i64([-1, b]), d])], {}, 'kflat'), // [H' S, b, D]
    vf: e.op1('Reshape', [vr, concat([i64([-1, b]), dv])], {}, 'vflat'),
  }
}

/**
 * 4. The draft map softmax(qd kd^T * scale), [H', S, S], from draft tokens: the per-block mean over
 * real tokens, as a [S, 1, b] x [H', S, b, D] MatMul (opset-stable, and padding slots get weight 0,
 * like avg_pool2d(ceil_mode=True) at the border).
 */
function draftMap(s: Site, blocks: Blocks, reorder: ArrayLike<number>): string {
  const { e, i64, concat, d } = s
  const { blocks: S, blockSize: b } = s.geo
  const poolWeights = new Float32Array(S * b)
  for (let block = 0; block < S; block++) {
    let valid = 0
    for (let j = 0; j < b; j++) if (reorder[block * b + j]! >= 0) valid++
    for (let j = 0; j < b; j++) poolWeights[block * b + j] = reorder[block * b + j]! >= 0 ? 1 / valid : 0
  }
  const pool = e.float(poolWeights, [S, 1, b], 'pool_weights')
  const qd = e.op1('Reshape', [e.op1('MatMul', [pool, blocks.qb]), concat([i64([-1, S]), d])], {}, 'qdraft')
  const kd = e.op1('Reshape', [e.op1('MatMul', [pool, blocks.kb]), concat([i64([-1, S]), d])], {}, 'kdraft')
  const kdT = e.op1('Transpose', [kd], { perm: { ints: [0, 2, 1] } })
  return e.op1('Softmax', [e.op1('Mul', [e.op1('MatMul', [qd, kdT]), s.scale])], { axis: { i: -1 } }, 'draft_map')
}

/** Head offsets: block j of (batch, head) h is row h * S + j of the flat [H' S, b, D] tensors. */
function headOffsets({ e, i64, geo }: Site, q3: string): HeadOffsets {
  const hCount = e.op1('Reshape', [e.op1('Slice', [e.op1('Shape', [q3]), i64([0]), i64([1])]), e.int64([], 'scalar', [0])], {}, 'heads')
  const range = e.op1('Range', [e.int64([0], 'zero', []), hCount, e.int64([1], 'one', [])])
  const offsets = e.op1('Reshape', [e.op1('Mul', [range, e.int64([geo.blocks], 'blocks', [])]), i64([-1, 1, 1])], {}, 'head_offsets')
  return { hCount, offsets }
}

/** The text tokens: their keys/values are appended to every block's key set (always dense). */
function textTokens(s: Site, heads: HeadMajor): TextTokens {
  const { e, geo, i64, concat, slice1 } = s
  const { prefixTokens: P, suffixTokens: T2, gridTokens: N, sequenceLength: L } = geo
  const T = P + T2
  const textPart = (x: string) => {
    const parts: string[] = []
    if (P > 0) parts.push(slice1(x, 0, P))
    if (T2 > 0) parts.push(slice1(x, P + N, L))
    return parts.length === 1 ? parts[0]! : e.op1('Concat', parts, { axis: { i: 1 } }, 'text')
  }
  const ktext = e.op1('Reshape', [textPart(heads.k3), concat([i64([-1, 1, T]), s.d])], {}, 'ktext')
  const vtext = e.op1('Reshape', [textPart(heads.v3), concat([i64([-1, 1, T]), s.dv])], {}, 'vtext')
  return { qt: textPart(heads.q3), ktext, vtext, count: T }
}

/** Additive bias per (block, slot), [S b]: 0 for real tokens, MASKED for padding slots. */
function padBias(geo: DraftGeometry, reorder: ArrayLike<number>): Float32Array {
  const bias = new Float32Array(geo.blocks * geo.blockSize)
  for (let p = 0; p < bias.length; p++) bias[p] = reorder[p]! < 0 ? MASKED : 0
  return bias
}

/** 8-9. Restores the token order, drops padding, and puts back the text queries (dense over all keys). */
function restoreTokens(s: Site, ob: string, heads: HeadMajor, text: TextTokens | undefined): string {
  const { e, geo, i64, concat, dv, slice1 } = s
  const { prefixTokens: P, suffixTokens: T2, gridTokens: N } = geo
  const o7 = e.op1('Reshape', [ob, concat([i64([-1, geo.frames, geo.blocksHigh, geo.blocksWide, geo.windowHeight, geo.windowWidth]), dv])])
  const ot = e.op1('Transpose', [o7], { perm: { ints: [0, 1, 2, 4, 3, 5, 6] } }, 'restore')
  let og = e.op1('Reshape', [ot, concat([i64([-1, geo.frames, geo.paddedHeight, geo.paddedWidth]), dv])])
  if (geo.padded) og = e.op1('Slice', [og, i64([0, 0]), i64([geo.height, geo.width]), i64([2, 3])], {}, 'unpad')
  const o3 = e.op1('Reshape', [og, concat([i64([-1, N]), dv])], {}, 'ogrid')
  if (text === undefined) return o3
  const otext = s.attention(text.qt, e.op1('Transpose', [heads.k3], { perm: { ints: [0, 2, 1] } }), heads.v3)
  const parts: string[] = []
  if (P > 0) parts.push(T2 === 0 ? otext : slice1(otext, 0, P))
  parts.push(o3)
  if (T2 > 0) parts.push(P === 0 ? otext : slice1(otext, P, P + T2))
  return e.op1('Concat', parts, { axis: { i: 1 } }, 'o3')
}
