import { TensorProto_DataType, floatTensor } from '@guidekit/onnx/graph'
import type { DraftInputNames } from '../rewrite.js'
import type { DraftSelection } from '../selection.js'
import { type Blocks, type HeadOffsets, INT64_MAX, MASKED, type Site, type TextTokens } from './site-ops.js'

/** What the selection and block-sparse attention stages of one site work on. */
export interface SparseInputs {
  readonly selection: DraftSelection
  readonly inputs: DraftInputNames
  readonly queryBlocksPerGroup: number
  /** The draft map, [H', S, S]. */
  readonly map: string
  readonly blocks: Blocks
  readonly heads: HeadOffsets
  readonly text: TextTokens | undefined
  /** Additive bias of each (block, slot), [S b]: MASKED on padding slots. */
  readonly padBias: Float32Array
}

/** TopK over the last axis, largest first: [values, indices]. */
function topK({ e }: Site, x: string, k: string, hint: string): [string, string] {
  return e.op('TopK', [x, k], { axis: { i: -1 }, largest: { i: 1 }, sorted: { i: 1 } }, { outputs: 2, hint }) as [string, string]
}

/** The `globalBlocks` most probable block pairs of each head: TopK over the flattened S x S map. */
function globalTopK(s: Site, x: SparseInputs): [string, string] {
  const flat = s.e.op1('Reshape', [x.map, s.i64([0, -1])], {}, 'map_flat')
  return topK(s, flat, x.inputs.globalBlocks, 'global_topk')
}

/**
 * 5-7. Row selection and block-sparse attention at a fixed cost per row: each query block attends to
 * its `blocks` most probable key blocks (TopK per row of the draft map). With `'global-percentile'`
 * (opsets below 16) those blocks are also masked by the head's global threshold, each row keeping at
 * least its best block. Returns the block outputs, [H', S, b, Dv].
 */
export function selectedBlockAttention(s: Site, x: SparseInputs): string {
  const { e, geo, i64 } = s
  const b = geo.blockSize
  const [values, indices] = topK(s, x.map, x.inputs.blocks, 'row_topk')
  let bias: string | undefined
  if (x.selection === 'global-percentile') {
    const [globalValues] = globalTopK(s, x)
    const threshold = e.op1('Reshape', [e.op1('Slice', [globalValues, i64([-1]), i64([INT64_MAX]), i64([1])]), i64([-1, 1, 1])], {}, 'threshold')
    const rowMax = e.op1('Slice', [values, i64([0]), i64([1]), i64([2])], {}, 'row_max')
    // min(threshold, row max): each row keeps at least its best block.
    const rowThreshold = e.op1('Min', [threshold, rowMax], {}, 'row_threshold')
    const keepMask = e.op1('Not', [e.op1('Less', [values, rowThreshold])], {}, 'kept')
    const blockBias = e.op1('Where', [keepMask, e.float([0], [], 'zero'), e.float([MASKED], [], 'masked')], {}, 'block_bias')
    const b5 = e.op1('Reshape', [blockBias, i64([0, 0, 1, -1, 1])])
    const expanded = e.op1('Expand', [b5, i64([1, 1, 1, 1, b])])
    bias = e.op1('Reshape', [expanded, i64([0, 0, 1, -1])], {}, 'bias')
  }
  if (geo.padded) {
    const pb = e.op1('Gather', [e.float(x.padBias, [geo.blocks, b], 'pad_bias'), indices], { axis: { i: 0 } })
    const pb4 = e.op1('Reshape', [pb, i64([0, 0, 1, -1])], {}, 'pad_bias')
    bias = bias === undefined ? pb4 : e.op1('Add', [bias, pb4], {}, 'bias')
  }
  const flatIndices = e.op1('Add', [indices, x.heads.offsets], {}, 'block_index')
  return groupedBlockAttention(s, x, flatIndices, bias)
}

/**
 * 7. Block-sparse attention: every query block against its gathered keys, in static groups of query
 * blocks so that the gathered K/V and the scores of only one group are alive at a time (peak memory
 * divided by the number of groups at large N; ORT runs the groups one after the other).
 */
function groupedBlockAttention(s: Site, x: SparseInputs, flatIndices: string, bias: string | undefined): string {
  const { e, i64, concat, d, dv } = s
  const S = s.geo.blocks
  const { kf, vf, qb } = x.blocks
  const groupSize = Math.min(S, x.queryBlocksPerGroup)
  const outputs: string[] = []
  for (let s0 = 0; s0 < S; s0 += groupSize) {
    const s1 = Math.min(S, s0 + groupSize)
    const whole = s0 === 0 && s1 === S
    const part = (t: string) => (whole ? t : e.op1('Slice', [t, i64([s0]), i64([s1]), i64([1])], {}, 'group'))
    const gidx = part(flatIndices)
    let kg = e.op1('Reshape', [e.op1('Gather', [kf, gidx], { axis: { i: 0 } }), concat([i64([0, 0, -1]), d])], {}, 'kgathered') // [H', Sg, KB b, D]
    let vg = e.op1('Reshape', [e.op1('Gather', [vf, gidx], { axis: { i: 0 } }), concat([i64([0, 0, -1]), dv])], {}, 'vgathered')
    let gbias = bias === undefined ? undefined : part(bias)
    if (x.text !== undefined) {
      const expand = i64([1, s1 - s0, 1, 1])
      kg = e.op1('Concat', [kg, e.op1('Expand', [x.text.ktext, expand])], { axis: { i: 2 } }, 'kgathered')
      vg = e.op1('Concat', [vg, e.op1('Expand', [x.text.vtext, expand])], { axis: { i: 2 } }, 'vgathered')
      if (gbias !== undefined) gbias = e.op1('Pad', [gbias, i64([0, 0, 0, 0, 0, 0, 0, x.text.count], 'pads')], {}, 'bias')
    }
    const kgT = e.op1('Transpose', [kg], { perm: { ints: [0, 1, 3, 2] } })
    outputs.push(s.attention(part(qb), kgT, vg, gbias)) // [H', Sg, b, Dv]
  }
  return outputs.length === 1 ? outputs[0]! : e.op1('Concat', outputs, { axis: { i: 1 } }, 'oblocks')
}

/** The kept block pairs of every head as one list: (query block, key block) rows and their weights. */
interface KeptPairs {
  /** Flat row indices (h S + query block) and column indices (h S + key block), [H', P]. */
  readonly rowIndex: string
  readonly colIndex: string
  /** Key block of each pair (without the head offset), [H', P]. */
  readonly keyBlocks: string
  /** 1 for a pair the threshold keeps, 0 for a best block it already kept, [H', P, 1, 1]. */
  readonly weight: string
  /** Best key block of each query block, [H', S], and the head offsets as [H', 1]. */
  readonly bestCols: string
  readonly offsets: string
}

/**
 * The pairs the paper's global threshold keeps (TopK over the S x S map), plus the best block of every
 * query block (always attended; weight 0 when the threshold already kept it).
 */
function keptPairs(s: Site, x: SparseInputs): KeptPairs {
  const { e, i64, concat } = s
  const S = s.geo.blocks
  const [globalValues, globalIndices] = globalTopK(s, x)
  const threshold = e.op1('Slice', [globalValues, i64([-1]), i64([INT64_MAX]), i64([1])], {}, 'threshold') // [H', 1]
  const [bestValue, bestIndex] = topK(s, x.map, i64([1], 'one'), 'row_best')
  const blocksConst = e.int64([S], 'blocks', [])
  const rowsOfPairs = e.op1('Div', [globalIndices, blocksConst], {}, 'pair_query_block') // [H', Kg]
  const colsOfPairs = e.op1('Mod', [globalIndices, blocksConst], {}, 'pair_key_block')
  const headsBySize = concat([e.op1('Reshape', [x.heads.hCount, i64([1])]), i64([S])])
  const allRows = e.op1('Expand', [e.int64(Array.from({ length: S }, (_, i) => i), 'block_ids', [1, S]), headsBySize], {}, 'best_query_block') // [H', S]
  const bestCols = e.op1('Reshape', [bestIndex, i64([0, -1])], {}, 'best_key_block')
  const bestWeight = e.op1('Cast', [e.op1('Less', [e.op1('Reshape', [bestValue, i64([0, -1])]), threshold])], { to: { i: TensorProto_DataType.FLOAT } }, 'best_weight')
  const globalWeight = e.op1('ConstantOfShape', [e.op1('Shape', [globalValues])], { value: { t: floatTensor('one', [1], [1]) } }, 'pair_weight')
  const pairRows = e.op1('Concat', [rowsOfPairs, allRows], { axis: { i: 1 } }, 'pair_rows') // [H', Kg + S]
  const keyBlocks = e.op1('Concat', [colsOfPairs, bestCols], { axis: { i: 1 } }, 'pair_cols')
  const weight = e.op1('Reshape', [e.op1('Concat', [globalWeight, bestWeight], { axis: { i: 1 } }), i64([0, -1, 1, 1])], {}, 'pair_weight')
  const offsets = e.op1('Reshape', [x.heads.offsets, i64([-1, 1])], {}, 'head_offsets2')
  const rowIndex = e.op1('Add', [pairRows, offsets], {}, 'pair_row_index')
  const colIndex = e.op1('Add', [keyBlocks, offsets], {}, 'pair_col_index')
  return { rowIndex, colIndex, keyBlocks, weight, bestCols, offsets }
}

/**
 * 5-7, the paper's rule exactly, at a cost proportional to `keep`: the kept block pairs of each head
 * are one flat list, attended pair by pair and merged per query block with ScatterND(add) (opset 16).
 * Each pair's exponentials use the row maximum of the query block's best block as stabilizer;
 * exponents are clamped at 80, which only matters for logits more than 80 above that block's maximum.
 * Returns the block outputs, [H', S, b, Dv].
 */
export function exactGlobalAttention(s: Site, x: SparseInputs): string {
  const { e, geo, i64, concat, d, dv, scale } = s
  const { blocks: S, blockSize: b } = geo
  const { qb, kf, vf } = x.blocks
  const pairs = keptPairs(s, x)
  const qf = e.op1('Reshape', [qb, concat([i64([-1, b]), d])], {}, 'qflat')
  const padTable = geo.padded ? e.float(x.padBias, [S, b], 'pad_bias') : undefined
  const clampAt = e.float([80], [], 'exp_clamp')
  // Stabilizer: row maxima of each query block's best block, [H' S, b, 1] (a small separate product).
  const kBest = e.op1('Gather', [kf, e.op1('Add', [pairs.bestCols, pairs.offsets])], { axis: { i: 0 } }, 'kbest') // [H', S, b, D]
  let bestScores = e.op1('MatMul', [qb, e.op1('Transpose', [kBest], { perm: { ints: [0, 1, 3, 2] } })], {}, 'best_scores')
  if (padTable !== undefined) {
    bestScores = e.op1('Add', [bestScores, e.op1('Reshape', [e.op1('Gather', [padTable, pairs.bestCols], { axis: { i: 0 } }), i64([0, 0, 1, -1])])], {}, 'best_scores')
  }
  const [rowMax] = topK(s, bestScores, i64([1], 'one'), 'row_max')
  const rowMaxFlat = e.op1('Reshape', [e.op1('Mul', [rowMax, scale]), i64([-1, b, 1])], {}, 'row_max_flat')
  const hs = e.op1('Mul', [e.op1('Reshape', [x.heads.hCount, i64([1])]), i64([S], 'blocks1')], {}, 'hs')
  let numerator = e.op1('ConstantOfShape', [concat([hs, i64([b]), dv])], { value: { t: floatTensor('zero', [1], [0]) } }, 'zeros_out')
  let denominator = e.op1('ConstantOfShape', [concat([hs, i64([b, 1])])], { value: { t: floatTensor('zero', [1], [0]) } }, 'zeros_sum')
  // The pair list in G static groups with dynamic bounds (their length is a runtime input), so that
  // only one group's gathered blocks and scores are alive at a time.
  const groups = Math.max(1, Math.ceil(S / x.queryBlocksPerGroup))
  const pairCount = e.op1('Slice', [e.op1('Shape', [pairs.rowIndex]), i64([1]), i64([2])], {}, 'pair_count')
  for (let gi = 0; gi < groups; gi++) {
    let gRows = pairs.rowIndex
    let gCols = pairs.colIndex
    let gKeyBlocks = pairs.keyBlocks
    let gWeight = pairs.weight
    if (groups > 1) {
      const bound = (k: number) => e.op1('Div', [e.op1('Mul', [pairCount, i64([k], 'k')]), i64([groups], 'groups')], {}, 'bound')
      const lo = bound(gi)
      const hi = bound(gi + 1)
      const cut = (t: string) => e.op1('Slice', [t, lo, hi, i64([1])], {}, 'pair_group')
      gRows = cut(pairs.rowIndex)
      gCols = cut(pairs.colIndex)
      gKeyBlocks = cut(pairs.keyBlocks)
      gWeight = cut(pairs.weight)
    }
    const qg = e.op1('Gather', [qf, gRows], { axis: { i: 0 } }, 'qpairs') // [H', Pg, b, D]
    const kg = e.op1('Gather', [kf, gCols], { axis: { i: 0 } }, 'kpairs')
    const vg = e.op1('Gather', [vf, gCols], { axis: { i: 0 } }, 'vpairs')
    let scores = e.op1('Mul', [e.op1('MatMul', [qg, e.op1('Transpose', [kg], { perm: { ints: [0, 1, 3, 2] } })]), scale], {}, 'pair_scores') // [H', Pg, b, b]
    if (padTable !== undefined) {
      const pb = e.op1('Reshape', [e.op1('Gather', [padTable, gKeyBlocks], { axis: { i: 0 } }), i64([0, 0, 1, -1])], {}, 'pad_bias')
      scores = e.op1('Add', [scores, pb], {}, 'pair_scores')
    }
    const pairMax = e.op1('Gather', [rowMaxFlat, gRows], { axis: { i: 0 } }, 'pair_max') // [H', Pg, b, 1]
    const expScores = e.op1('Mul', [e.op1('Exp', [e.op1('Min', [e.op1('Sub', [scores, pairMax]), clampAt])]), gWeight], {}, 'pair_exp')
    const pairSums = e.op1('ReduceSum', [expScores, i64([-1], 'axes')], { keepdims: { i: 1 } }, 'pair_sum') // [H', Pg, b, 1]
    const pairOut = e.op1('MatMul', [expScores, vg], {}, 'pair_out') // [H', Pg, b, Dv]
    const flatRows = e.op1('Reshape', [gRows, i64([0, -1, 1])], {}, 'scatter_index') // [H', Pg, 1]
    numerator = e.op1('ScatterND', [numerator, flatRows, pairOut], { reduction: { s: 'add' } }, 'numerator') // [H' S, b, Dv]
    denominator = e.op1('ScatterND', [denominator, flatRows, pairSums], { reduction: { s: 'add' } }, 'denominator') // [H' S, b, 1]
  }
  if (x.text !== undefined) {
    // Text keys for every query block, with the same stabilizer.
    const T = x.text.count
    const qbFlat = e.op1('Reshape', [qb, concat([i64([0, -1]), d])], {}, 'qgrid') // [H', S b, D]
    const kT = e.op1('Transpose', [e.op1('Reshape', [x.text.ktext, concat([i64([-1, T]), d])])], { perm: { ints: [0, 2, 1] } })
    const ts = e.op1('Mul', [e.op1('MatMul', [qbFlat, kT]), scale], {}, 'text_scores') // [H', S b, T]
    const tMax = e.op1('Reshape', [rowMaxFlat, i64([-1, S * b, 1])])
    const te = e.op1('Exp', [e.op1('Min', [e.op1('Sub', [ts, tMax]), clampAt])], {}, 'text_exp')
    const vt = e.op1('Reshape', [x.text.vtext, concat([i64([-1, T]), dv])])
    numerator = e.op1('Add', [numerator, e.op1('Reshape', [e.op1('MatMul', [te, vt]), concat([i64([-1, b]), dv])])], {}, 'numerator')
    denominator = e.op1('Add', [denominator, e.op1('Reshape', [e.op1('ReduceSum', [te, i64([-1], 'axes')], { keepdims: { i: 1 } }), i64([-1, b, 1])])], {}, 'denominator')
  }
  const out = e.op1('Div', [numerator, denominator], {}, 'oblocks')
  return e.op1('Reshape', [out, concat([i64([-1, S, b]), dv])], {}, 'oblocks')
}
