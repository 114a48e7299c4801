import { create, fromBinary, toBinary } from '@bufbuild/protobuf'
import { GuidekitError, check, type GuidekitErrorCode } from '@guidekit/core'
import {
  type GraphProto,
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  NodeProtoSchema,
  StringStringEntryProtoSchema,
  TensorProto_DataType,
  NodeEmitter,
  collectNames,
  floatTensor,
  findValueInfo,
  floatAttribute,
  getAttribute,
  graph,
  intAttribute,
  intsAttribute,
  tensorValues,
  valueInfo,
  decodeModel,
} from '@guidekit/onnx/graph'
import { type DraftGeometry, type DraftLayout, draftGeometry, reorderIndices } from './layout.js'
import { type DraftSelection, checkSelection } from './selection.js'

/** The kinds of attention subgraphs the rewriter recognises. */
export type AttentionSiteKind = 'matmul-softmax' | 'onnx-attention' | 'multi-head-attention'

/** Names of the extra graph inputs a rewritten model takes (see {@link draftFeeds}). */
export interface DraftInputNames {
  /** bool `[1]`: true runs the original dense attention at every rewritten site. */
  readonly dense: string
  /** int64 `[1]`: key blocks gathered per query block (the TopK `k`). */
  readonly blocks: string
  /** int64 `[1]`: block pairs kept per head (`'global-percentile'` only). */
  readonly globalBlocks: string
}

export const defaultDraftInputNames: DraftInputNames = {
  dense: 'draft_dense',
  blocks: 'draft_blocks',
  globalBlocks: 'draft_global_blocks',
}

/** Options of {@link rewriteDraftAttention}. */
export interface RewriteDraftAttentionOptions extends DraftLayout {
  /** Block selection rule; default `'row-topk'` (fixed cost per row). `'global-percentile'` is the paper's. */
  readonly selection?: DraftSelection
  /**
   * Leave the first `denseLayers` matched sites (in graph order) untouched: the paper keeps the first
   * 1-2 blocks dense. Default 0.
   */
  readonly denseLayers?: number
  /** Override the names of the extra inputs. */
  readonly inputNames?: Partial<DraftInputNames>
  /**
   * Query blocks attended per group (default 32): the block-sparse attention runs group after group, so
   * only one group's gathered K/V and scores are in memory at a time. Smaller = less memory, more nodes.
   */
  readonly queryBlocksPerGroup?: number
}

/** One attention site found in the graph. */
export interface AttentionSite {
  readonly kind: AttentionSiteKind
  /** Name of the node whose output is the attention output. */
  readonly node: string
  readonly output: string
  readonly rewritten: boolean
  /** Why the site was left alone, when it was. */
  readonly reason?: string
  /** A matched site left dense because it is one of the first `denseLayers`. */
  readonly keptDense?: boolean
}

/** What {@link rewriteDraftAttention} returns; `info` is also stored in the model's metadata. */
export interface RewriteDraftAttentionResult {
  /** The rewritten model (same external-data references as the input). */
  readonly model: Uint8Array
  /** Number of rewritten sites. */
  readonly sites: number
  /** Every site found, rewritten or not. */
  readonly found: readonly AttentionSite[]
  readonly info: DraftModelInfo
}

/** The facts a caller needs to feed a rewritten model; stored as metadata `guidekit.draft_attention`. */
export interface DraftModelInfo {
  readonly version: 1
  readonly layout: Required<DraftLayout>
  readonly selection: DraftSelection
  /**
   * How `'global-percentile'` runs: `'exact'` (opset >= 16: the kept pairs as a flat list, cost ∝ keep) or
   * `'capped'` (older opsets: per-row top-`maxBlocksPerRow` blocks masked by the threshold).
   */
  readonly globalPercentile?: 'exact' | 'capped'
  /** Attention blocks S (= draft tokens) per (batch, head). */
  readonly blocks: number
  readonly blockSize: number
  readonly inputs: DraftInputNames
  readonly sites: number
}

export const draftMetadataKey = 'guidekit.draft_attention'

const INT64_MAX = Number.MAX_SAFE_INTEGER
const MASKED = -1e9

interface Matched {
  kind: AttentionSiteKind
  /** Nodes moved into the dense branch (the last one produces `output`). */
  nodes: NodeProto[]
  output: string
  /** Tensors feeding the draft branch and how to bring them to [H', L, D]. */
  q: string
  k: string
  v: string
  kTransposed: boolean
  /** 'bhld': [..., L, D]; 'bl(hd)': [B, L, H*D] with `heads`. */
  layout: 'bhld' | 'blhd'
  heads?: number
  /** Logit scale: a number, a tensor name (Mul) or the reciprocal of a tensor (Div); undefined = 1/sqrt(D). */
  scale: number | { tensor: string; reciprocal: boolean } | undefined
}

function fail(code: GuidekitErrorCode, message: string, details: Record<string, unknown> = {}): never {
  throw new GuidekitError(code, message, { details })
}

/** Decodes an ONNX model, with a clear error for bytes that are not one. */
function decodeBytes(bytes: Uint8Array): ModelProto {
  check(bytes instanceof Uint8Array, 'modelBytes', typeof bytes, 'a Uint8Array with the .onnx file contents')
  return decodeModel(bytes)
}

/** Reads the draft-attention facts stored in a rewritten model, or undefined for other models. */
export function readDraftModelInfo(modelBytes: Uint8Array): DraftModelInfo | undefined {
  const entry = decodeBytes(modelBytes).metadataProps.find((p) => p.key === draftMetadataKey)
  return entry === undefined ? undefined : (JSON.parse(entry.value) as DraftModelInfo)
}

function constantValues(g: GraphProto, producers: Map<string, NodeProto>, name: string): number[] | undefined {
  const init = g.initializer.find((t) => t.name === name)
  if (init !== undefined) return tensorValues(init)
  const p = producers.get(name)
  if (p?.opType === 'Constant') {
    const t = getAttribute(p, 'value')?.t
    if (t !== undefined) return tensorValues(t)
    const f = floatAttribute(p, 'value_float')
    if (f !== undefined) return [f]
  }
  return undefined
}

function isSwapLastTwo(perm: number[] | undefined): boolean {
  if (perm === undefined || perm.length < 2) return false
  const r = perm.length
  return perm.every((p, i) => (i < r - 2 ? p === i : i === r - 2 ? p === r - 1 : p === r - 2))
}

/**
 * Rewrites every matched self-attention site of an ONNX DiT into DraftAttention (arXiv 2505.14708) made
 * of standard ONNX ops, wrapped in `If(dense)` whose dense branch is the original subgraph.
 *
 * Matched: `MatMul(Q, K^T) -> [Mul|Div scale] -> Softmax(-1) -> MatMul(., V)` (what `torch.onnx.export`
 * emits for hand-written attention and for SDPA below opset 23), the ONNX `Attention` op (opset 23+,
 * 4-D or 3-D inputs, no mask/past/causal) and `com.microsoft:MultiHeadAttention` (3-D Q/K/V, no
 * bias/mask/past). The token layout comes from the caller (or the model card): it cannot be inferred.
 *
 * The model's graph is decoded with protobuf-es, which keeps unknown fields; initializers stored as
 * external data are not touched, so save the result next to the original's data files.
 *
 * @example
 * const { model, sites, info } = rewriteDraftAttention(bytes, {
 *   grid: { frames: 1, height: 7, width: 7 }, window: { height: 2, width: 2 }, selection: 'row-topk',
 * })
 * const session = await ort.InferenceSession.create(model)
 * const feeds: Record<string, ort.Tensor> = { ...inputs }
 * for (const [name, f] of Object.entries(draftFeeds(info, { keep: 0.25 }))) feeds[name] = new ort.Tensor(f.type, f.data, f.dims)
 * const out = await session.run(feeds)
 */
export function rewriteDraftAttention(modelBytes: Uint8Array, options: RewriteDraftAttentionOptions): RewriteDraftAttentionResult {
  const geometry = draftGeometry(options)
  const selection = checkSelection(options.selection ?? 'row-topk')
  const denseLayers = options.denseLayers ?? 0
  check(Number.isInteger(denseLayers) && denseLayers >= 0, 'denseLayers', denseLayers, 'a non-negative integer')
  const inputs: DraftInputNames = { ...defaultDraftInputNames, ...options.inputNames }
  const queryBlocksPerGroup = options.queryBlocksPerGroup ?? 32
  check(Number.isInteger(queryBlocksPerGroup) && queryBlocksPerGroup >= 1, 'queryBlocksPerGroup', queryBlocksPerGroup, 'a positive integer')

  const model = decodeBytes(modelBytes)
  const g = model.graph!
  if (model.metadataProps.some((p) => p.key === draftMetadataKey)) {
    fail('INVALID_ARGUMENT', 'This model was already rewritten for draft attention; rewrite the original model instead.')
  }
  const opset = Number(model.opsetImport.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? 0n)
  if (opset < 13) {
    fail('UNSUPPORTED', `The model uses ONNX opset ${opset}; draft attention needs opset 13 or newer. Re-export with opset_version >= 13 or convert it with onnx.version_converter.`, { opset })
  }

  // The paper's rule at a cost proportional to keep needs ScatterND(reduction='add'), i.e. opset 16.
  const exactGlobal = selection === 'global-percentile' && opset >= 16
  const names = collectNames(g)
  for (const n of Object.values(inputs)) {
    if (names.has(n)) fail('INVALID_ARGUMENT', `The model already has a value named "${n}"; choose other names with options.inputNames.`, { name: n })
  }

  const found: AttentionSite[] = []
  const matches = matchSites(g, geometry, found)
  const initializers: typeof g.initializer = []
  const replaced = new Map<NodeProto, NodeProto | null>() // node -> If node (at the site's last node) or null (removed)
  let rewritten = 0
  let candidate = 0
  for (const m of matches) {
    const index = candidate++
    const last = m.nodes[m.nodes.length - 1]!
    if (index < denseLayers) {
      found.push({ kind: m.kind, node: last.name, output: m.output, rewritten: false, keptDense: true, reason: `one of the first ${denseLayers} sites (denseLayers)` })
      continue
    }
    const prefix = `draft_attention/site${index}`
    const emitter = new NodeEmitter(names, initializers, prefix)
    const draftOut = emitDraftSite(emitter, m, geometry, selection, inputs, queryBlocksPerGroup, exactGlobal)
    const denseOut = emitter.fresh('dense_out')
    const denseNodes = m.nodes.map((n) => (n === last ? create(NodeProtoSchema, { ...n, output: n.output.map((o) => (o === m.output ? denseOut : o)) }) : n))
    const elemType = TensorProto_DataType.FLOAT
    const ifNode = new NodeEmitter(names, initializers, prefix)
    ifNode.op(
      'If',
      [inputs.dense],
      {
        then_branch: { g: graph(`${prefix}/dense`, denseNodes, [], [valueInfo(denseOut, elemType)]) },
        else_branch: { g: graph(`${prefix}/draft`, emitter.nodes, [], [valueInfo(draftOut, elemType)]) },
      },
      { hint: 'If' },
    )
    const ifProto = ifNode.nodes[0]!
    ifProto.output = [m.output]
    for (const n of m.nodes) replaced.set(n, n === last ? ifProto : null)
    found.push({ kind: m.kind, node: last.name, output: m.output, rewritten: true })
    rewritten++
  }

  g.node = g.node.flatMap((n) => {
    if (!replaced.has(n)) return [n]
    const r = replaced.get(n)
    return r ? [r] : []
  })
  g.initializer.push(...initializers)
  if (rewritten > 0) {
    g.input.push(valueInfo(inputs.dense, TensorProto_DataType.BOOL, [1]))
    if (!exactGlobal) g.input.push(valueInfo(inputs.blocks, TensorProto_DataType.INT64, [1]))
    if (selection === 'global-percentile') g.input.push(valueInfo(inputs.globalBlocks, TensorProto_DataType.INT64, [1]))
  }
  const info: DraftModelInfo = {
    version: 1,
    layout: {
      grid: { ...options.grid },
      window: { ...options.window },
      prefixTokens: geometry.prefixTokens,
      suffixTokens: geometry.suffixTokens,
    },
    selection,
    ...(selection === 'global-percentile' ? { globalPercentile: exactGlobal ? ('exact' as const) : ('capped' as const) } : {}),
    blocks: geometry.blocks,
    blockSize: geometry.blockSize,
    inputs,
    sites: rewritten,
  }
  if (rewritten > 0) model.metadataProps.push(create(StringStringEntryProtoSchema, { key: draftMetadataKey, value: JSON.stringify(info) }))
  return { model: toBinary(ModelProtoSchema, model), sites: rewritten, found, info }
}


function matchSites(g: GraphProto, geo: DraftGeometry, found: AttentionSite[]): Matched[] {
  const producers = new Map<string, NodeProto>()
  const consumers = new Map<string, NodeProto[]>()
  for (const n of g.node) {
    for (const o of n.output) producers.set(o, n)
    for (const i of n.input) {
      if (i === '') continue
      const list = consumers.get(i) ?? []
      list.push(n)
      consumers.set(i, list)
    }
  }
  const graphOutputs = new Set(g.output.map((o) => o.name))
  const exclusive = (value: string, consumer: NodeProto) => !graphOutputs.has(value) && (consumers.get(value) ?? []).every((c) => c === consumer)
  const L = geo.sequenceLength
  const out: Matched[] = []
  const skip = (kind: AttentionSiteKind, node: NodeProto, reason: string) => {
    found.push({ kind, node: node.name, output: node.output[0] ?? '', rewritten: false, reason })
  }
  const lengthMismatch = (name: string, axisFromEnd: number): number | undefined => {
    const dims = findValueInfo(g, name)?.dims
    const d = dims?.[dims.length - axisFromEnd]
    return d !== undefined && d > 0 && d !== L ? d : undefined
  }
  const checkFloat = (name: string): boolean => {
    const t = findValueInfo(g, name)?.elemType
    return t === undefined || t === TensorProto_DataType.FLOAT
  }

  for (const node of g.node) {
    if (node.opType === 'Softmax' && node.domain === '') {
      const kind = 'matmul-softmax'
      const axis = intAttribute(node, 'axis') ?? -1
      const rank = findValueInfo(g, node.input[0]!)?.dims?.length
      if (!(axis === -1 || (rank !== undefined && axis === rank - 1))) continue
      const pv = (consumers.get(node.output[0]!) ?? [])[0]
      if (pv === undefined || pv.opType !== 'MatMul' || pv.input[0] !== node.output[0] || !exclusive(node.output[0]!, pv)) continue
      let scoresNode = producers.get(node.input[0]!)
      let scale: Matched['scale'] = 1
      const nodes: NodeProto[] = []
      if (scoresNode !== undefined && (scoresNode.opType === 'Mul' || scoresNode.opType === 'Div') && exclusive(scoresNode.output[0]!, node)) {
        const scaleNode = scoresNode
        const idx = scaleNode.input.findIndex((i) => producers.get(i)?.opType === 'MatMul')
        if (idx < 0 || (scaleNode.opType === 'Div' && idx !== 0)) continue
        const other = scaleNode.input[1 - idx]!
        const c = constantValues(g, producers, other)
        if (c !== undefined && c.length === 1) scale = scaleNode.opType === 'Div' ? 1 / c[0]! : c[0]!
        else if (c !== undefined) continue
        else scale = { tensor: other, reciprocal: scaleNode.opType === 'Div' }
        nodes.push(scaleNode)
        scoresNode = producers.get(scaleNode.input[idx]!)
        if (scoresNode === undefined || !exclusive(scoresNode.output[0]!, scaleNode)) continue
      } else if (scoresNode !== undefined && !exclusive(scoresNode.output[0]!, node)) continue
      if (scoresNode === undefined || scoresNode.opType !== 'MatMul') continue
      nodes.unshift(scoresNode)
      nodes.push(node, pv)
      const q = scoresNode.input[0]!
      let k = scoresNode.input[1]!
      let kTransposed = true
      const tr = producers.get(k)
      if (tr?.opType === 'Transpose' && isSwapLastTwo(intsAttribute(tr, 'perm'))) {
        if (exclusive(k, scoresNode)) nodes.unshift(tr)
        k = tr.input[0]!
        kTransposed = false
      }
      const scoreDims = findValueInfo(g, scoresNode.output[0]!)?.dims
      const sq = scoreDims?.[scoreDims.length - 2]
      const sk = scoreDims?.[scoreDims.length - 1]
      if (sq !== undefined && sk !== undefined && sq > 0 && sk > 0 && sq !== sk) {
        skip(kind, pv, `cross-attention (${sq} queries x ${sk} keys) stays dense`)
        continue
      }
      const bad = lengthMismatch(q, 2)
      if (bad !== undefined) {
        skip(kind, pv, `sequence length ${bad} differs from the layout's ${L}`)
        continue
      }
      if (!checkFloat(q)) {
        skip(kind, pv, 'only float32 attention is rewritten')
        continue
      }
      out.push({ kind, nodes, output: pv.output[0]!, q, k, v: pv.input[1]!, kTransposed, layout: 'bhld', scale })
    } else if (node.opType === 'Attention' && (node.domain === '' || node.domain === 'ai.onnx')) {
      const kind = 'onnx-attention'
      const extraInputs = node.input.slice(3).some((i) => i !== '')
      const extraOutputs = node.output.slice(1).some((o) => o !== '')
      if (extraInputs || extraOutputs) {
        skip(kind, node, 'attn_mask / past / present / qk output present')
        continue
      }
      if ((intAttribute(node, 'is_causal') ?? 0) !== 0 || (floatAttribute(node, 'softcap') ?? 0) !== 0) {
        skip(kind, node, 'causal or softcapped attention stays dense')
        continue
      }
      const qh = intAttribute(node, 'q_num_heads')
      const kvh = intAttribute(node, 'kv_num_heads')
      if (qh !== kvh) {
        skip(kind, node, 'grouped-query attention (q_num_heads != kv_num_heads) is not supported')
        continue
      }
      // 3-D [B, L, H*D] inputs need q_num_heads; 4-D [B, H, L, D] inputs may carry it too.
      const qRank = findValueInfo(g, node.input[0]!)?.dims?.length
      const threeD = qRank !== undefined ? qRank === 3 : qh !== undefined
      if (threeD && qh === undefined) {
        skip(kind, node, '3-D inputs without q_num_heads')
        continue
      }
      const bad = lengthMismatch(node.input[0]!, 2)
      if (bad !== undefined || lengthMismatch(node.input[1]!, 2) !== undefined) {
        skip(kind, node, `sequence length differs from the layout's ${L} (cross-attention stays dense)`)
        continue
      }
      const s = floatAttribute(node, 'scale')
      out.push({
        kind,
        nodes: [node],
        output: node.output[0]!,
        q: node.input[0]!,
        k: node.input[1]!,
        v: node.input[2]!,
        kTransposed: false,
        layout: threeD ? 'blhd' : 'bhld',
        ...(threeD && qh !== undefined ? { heads: qh } : {}),
        scale: s,
      })
    } else if (node.opType === 'MultiHeadAttention' && node.domain === 'com.microsoft') {
      const kind = 'multi-head-attention'
      if (node.input.length < 3 || node.input.slice(3).some((i) => i !== '') || node.output.slice(1).some((o) => o !== '')) {
        skip(kind, node, 'packed QKV, bias, masks or past/present are not supported')
        continue
      }
      if ((intAttribute(node, 'unidirectional') ?? 0) !== 0) {
        skip(kind, node, 'causal attention stays dense')
        continue
      }
      const kDims = findValueInfo(g, node.input[1]!)?.dims
      if (kDims !== undefined && kDims.length !== 3) {
        skip(kind, node, 'only 3-D key/value inputs are supported')
        continue
      }
      if (lengthMismatch(node.input[0]!, 2) !== undefined || lengthMismatch(node.input[1]!, 2) !== undefined) {
        skip(kind, node, `sequence length differs from the layout's ${L} (cross-attention stays dense)`)
        continue
      }
      const s = floatAttribute(node, 'scale')
      out.push({
        kind,
        nodes: [node],
        output: node.output[0]!,
        q: node.input[0]!,
        k: node.input[1]!,
        v: node.input[2]!,
        kTransposed: false,
        layout: 'blhd',
        heads: intAttribute(node, 'num_heads')!,
        scale: s === undefined || s === 0 ? undefined : s,
      })
    }
  }
  return out
}

/** Emits the draft branch for one site; returns the name of its output (same shape as the site's). */
function emitDraftSite(e: NodeEmitter, m: Matched, geo: DraftGeometry, selection: DraftSelection, inputs: DraftInputNames, queryBlocksPerGroup: number, exactGlobal: boolean): string {
  const L = geo.sequenceLength
  const i64 = (values: number[], hint = 'shape') => e.int64(values, hint)
  const concat = (parts: string[], hint = 'shape') => e.op1('Concat', parts, { axis: { i: 0 } }, hint)
  const lastDim = (x: string) => e.op1('Slice', [e.op1('Shape', [x]), i64([-1]), i64([INT64_MAX])], {}, 'lastdim')

  // 1. Bring Q, K, V to [H', L, D] (H' = batch x heads: every (batch, head) gets its own draft map).
  let q3: string
  let k3: string
  let v3: string
  let d: string
  let dv: string
  let restoreOutput: (o3: string) => string
  if (m.layout === 'bhld') {
    d = lastDim(m.q)
    dv = lastDim(m.v)
    q3 = e.op1('Reshape', [m.q, concat([i64([-1, L]), d])], {}, 'q3')
    if (m.kTransposed) {
      const kt3 = e.op1('Reshape', [m.k, concat([i64([-1]), d, i64([L])])], {}, 'kt3')
      k3 = e.op1('Transpose', [kt3], { perm: { ints: [0, 2, 1] } }, 'k3')
    } else {
      k3 = e.op1('Reshape', [m.k, concat([i64([-1, L]), d])], {}, 'k3')
    }
    v3 = e.op1('Reshape', [m.v, concat([i64([-1, L]), dv])], {}, 'v3')
    const qShape = e.op1('Shape', [m.q])
    const lead = e.op1('Slice', [qShape, i64([0]), i64([-1])], {}, 'lead')
    restoreOutput = (o3) => e.op1('Reshape', [o3, concat([lead, dv])], {}, 'out')
  } else {
    const heads = m.heads!
    const to3 = (x: string, hint: string) => {
      const x4 = e.op1('Reshape', [x, i64([0, 0, heads, -1])], {}, `${hint}4`)
      return e.op1('Transpose', [x4], { perm: { ints: [0, 2, 1, 3] } }, `${hint}bhld`)
    }
    const q4 = to3(m.q, 'q')
    const k4 = to3(m.k, 'k')
    const v4 = to3(m.v, 'v')
    d = lastDim(q4)
    dv = lastDim(v4)
    q3 = e.op1('Reshape', [q4, concat([i64([-1, L]), d])], {}, 'q3')
    k3 = e.op1('Reshape', [k4, concat([i64([-1, L]), d])], {}, 'k3')
    v3 = e.op1('Reshape', [v4, concat([i64([-1, L]), dv])], {}, 'v3')
    restoreOutput = (o3) => {
      const o4 = e.op1('Reshape', [o3, concat([i64([-1, heads, L]), dv])], {}, 'o4')
      const ot = e.op1('Transpose', [o4], { perm: { ints: [0, 2, 1, 3] } }, 'oblhd')
      return e.op1('Reshape', [ot, i64([0, 0, -1])], {}, 'out')
    }
  }

  // Logit scale as a scalar tensor.
  let scale: string
  if (typeof m.scale === 'number') scale = e.float([m.scale], [], 'scale')
  else if (m.scale === undefined) {
    const df = e.op1('Cast', [d], { to: { i: TensorProto_DataType.FLOAT } })
    scale = e.op1('Reciprocal', [e.op1('Sqrt', [df])], {}, 'scale')
  } else scale = m.scale.reciprocal ? e.op1('Reciprocal', [m.scale.tensor], {}, 'scale') : m.scale.tensor
  const attention = (q: string, kT: string, v: string, bias?: string) => {
    let s = e.op1('Mul', [e.op1('MatMul', [q, kT], {}, 'scores'), scale], {}, 'scaled')
    if (bias !== undefined) s = e.op1('Add', [s, bias], {}, 'masked')
    return e.op1('MatMul', [e.op1('Softmax', [s], { axis: { i: -1 } }), v], {}, 'attn')
  }

  // 2. Split grid tokens from prefix/suffix (text) tokens.
  const { prefixTokens: P, suffixTokens: T2, gridTokens: N, blocks: S, blockSize: b } = geo
  const hasText = P + T2 > 0
  const slice1 = (x: string, start: number, end: number) => e.op1('Slice', [x, i64([start]), i64([end]), i64([1])], {}, 'slice')
  const gridPart = (x: string) => (hasText ? slice1(x, P, P + N) : x)
  const textPart = (x: string) => {
    const parts: string[] = []
    if (P > 0) parts.push(slice1(x, 0, P))
    if (T2 > 0) parts.push(slice1(x, P + N, L))
    return parts.length === 1 ? parts[0]! : e.op1('Concat', parts, { axis: { i: 1 } }, 'text')
  }

  // 3. Reorder: [H', F, Hs, Ws, D] -> pad -> [H', F, SH, ph, SW, pw, D] -> [H', F, SH, SW, ph, pw, D].
  const blocked = (x: string, dim: string, hint: string) => {
    let g = e.op1('Reshape', [gridPart(x), concat([i64([-1, geo.frames, geo.height, geo.width]), dim])], {}, `${hint}grid`)
    if (geo.padded) {
      const pads = i64([0, 0, 0, 0, 0, 0, 0, geo.paddedHeight - geo.height, geo.paddedWidth - geo.width, 0], 'pads')
      g = e.op1('Pad', [g, pads], {}, `${hint}pad`)
    }
    const g7 = e.op1('Reshape', [g, concat([i64([-1, geo.frames, geo.blocksHigh, geo.windowHeight, geo.blocksWide, geo.windowWidth]), dim])], {}, `${hint}7`)
    return e.op1('Transpose', [g7], { perm: { ints: [0, 1, 2, 4, 3, 5, 6] } }, `${hint}reorder`)
  }
  const qr = blocked(q3, d, 'q')
  const kr = blocked(k3, d, 'k')
  const vr = blocked(v3, dv, 'v')
  const qb = e.op1('Reshape', [qr, concat([i64([-1, S, b]), d])], {}, 'qblocks') // [H', S, b, D]
  const kb = e.op1('Reshape', [kr, concat([i64([-1, S, b]), d])], {}, 'kblocks')
  const kf = e.op1('Reshape', [kr, concat([i64([-1, b]), d])], {}, 'kflat') // [H' S, b, D]
  const vf = e.op1('Reshape', [vr, concat([i64([-1, b]), dv])], {}, 'vflat')

  // 4. Draft tokens: per-block mean over real tokens, as a [S, 1, b] x [H', S, b, D] MatMul (opset-stable,
  //    and padding slots get weight 0, like avg_pool2d(ceil_mode=True) at the border).
  const reorder = reorderIndices(geo)
  const poolWeights = new Float32Array(S * b)
  for (let s = 0; s < S; s++) {
    let valid = 0
    for (let j = 0; j < b; j++) if (reorder[s * b + j]! >= 0) valid++
    for (let j = 0; j < b; j++) poolWeights[s * b + j] = reorder[s * b + j]! >= 0 ? 1 / valid : 0
  }
  const pool = e.float(poolWeights, [S, 1, b], 'pool_weights')
  const qd = e.op1('Reshape', [e.op1('MatMul', [pool, qb]), concat([i64([-1, S]), d])], {}, 'qdraft')
  const kd = e.op1('Reshape', [e.op1('MatMul', [pool, kb]), concat([i64([-1, S]), d])], {}, 'kdraft')
  const kdT = e.op1('Transpose', [kd], { perm: { ints: [0, 2, 1] } })
  const map = e.op1('Softmax', [e.op1('Mul', [e.op1('MatMul', [qd, kdT]), scale])], { axis: { i: -1 } }, 'draft_map') // [H', S, S]

  // Head offsets: block j of (batch, head) h is row h * S + j of the flat [H' S, b, D] tensors.
  const hCount = e.op1('Reshape', [e.op1('Slice', [e.op1('Shape', [q3]), i64([0]), i64([1])]), e.int64([], 'scalar', [0])], {}, 'heads')
  const range = e.op1('Range', [e.int64([0], 'zero', []), hCount, e.int64([1], 'one', [])])
  const offsets = e.op1('Reshape', [e.op1('Mul', [range, e.int64([S], 'blocks', [])]), i64([-1, 1, 1])], {}, 'head_offsets')
  let qt: string | undefined
  let ktext: string | undefined
  let vtext: string | undefined
  const T = P + T2
  if (hasText) {
    // Text keys/values are appended to every block's key set (always dense).
    ktext = e.op1('Reshape', [textPart(k3), concat([i64([-1, 1, T]), d])], {}, 'ktext')
    vtext = e.op1('Reshape', [textPart(v3), concat([i64([-1, 1, T]), dv])], {}, 'vtext')
    qt = textPart(q3)
  }
  const padBias = new Float32Array(S * b)
  for (let p = 0; p < S * b; p++) padBias[p] = reorder[p]! < 0 ? MASKED : 0

  let ob: string
  if (exactGlobal) {
    ob = emitExactGlobal()
  } else {
    // 5. Selection.
    const [values, indices] = e.op('TopK', [map, inputs.blocks], { axis: { i: -1 }, largest: { i: 1 }, sorted: { i: 1 } }, { outputs: 2, hint: 'row_topk' }) as [string, string]
    let bias: string | undefined
    if (selection === 'global-percentile') {
      const flat = e.op1('Reshape', [map, i64([0, -1])], {}, 'map_flat')
      const [globalValues] = e.op('TopK', [flat, inputs.globalBlocks], { axis: { i: -1 }, largest: { i: 1 }, sorted: { i: 1 } }, { outputs: 2, hint: 'global_topk' })
      const threshold = e.op1('Reshape', [e.op1('Slice', [globalValues!, i64([-1]), i64([INT64_MAX]), i64([1])]), i64([-1, 1, 1])], {}, 'threshold')
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
      const pb = e.op1('Gather', [e.float(padBias, [S, b], 'pad_bias'), indices], { axis: { i: 0 } })
      const pb4 = e.op1('Reshape', [pb, i64([0, 0, 1, -1])], {}, 'pad_bias')
      bias = bias === undefined ? pb4 : e.op1('Add', [bias, pb4], {}, 'bias')
    }

    const flatIndices = e.op1('Add', [indices, offsets], {}, 'block_index')
    // 7. Block-sparse attention: every query block against its gathered keys, in static groups of query
    //    blocks so that the gathered K/V and the scores of only one group are alive at a time (peak memory
    //    divided by the number of groups at large N; ORT runs the groups one after the other).
    const groupSize = Math.min(S, queryBlocksPerGroup)
    const outputs: string[] = []
    for (let s0 = 0; s0 < S; s0 += groupSize) {
      const s1 = Math.min(S, s0 + groupSize)
      const whole = s0 === 0 && s1 === S
      const part = (x: string) => (whole ? x : e.op1('Slice', [x, i64([s0]), i64([s1]), i64([1])], {}, 'group'))
      const gidx = part(flatIndices)
      let kg = e.op1('Reshape', [e.op1('Gather', [kf, gidx], { axis: { i: 0 } }), concat([i64([0, 0, -1]), d])], {}, 'kgathered') // [H', Sg, KB b, D]
      let vg = e.op1('Reshape', [e.op1('Gather', [vf, gidx], { axis: { i: 0 } }), concat([i64([0, 0, -1]), dv])], {}, 'vgathered')
      let gbias = bias === undefined ? undefined : part(bias)
      if (ktext !== undefined && vtext !== undefined) {
        const expand = i64([1, s1 - s0, 1, 1])
        kg = e.op1('Concat', [kg, e.op1('Expand', [ktext, expand])], { axis: { i: 2 } }, 'kgathered')
        vg = e.op1('Concat', [vg, e.op1('Expand', [vtext, expand])], { axis: { i: 2 } }, 'vgathered')
        if (gbias !== undefined) gbias = e.op1('Pad', [gbias, i64([0, 0, 0, 0, 0, 0, 0, T], 'pads')], {}, 'bias')
      }
      const kgT = e.op1('Transpose', [kg], { perm: { ints: [0, 1, 3, 2] } })
      outputs.push(attention(part(qb), kgT, vg, gbias)) // [H', Sg, b, Dv]
    }
    ob = outputs.length === 1 ? outputs[0]! : e.op1('Concat', outputs, { axis: { i: 1 } }, 'oblocks')
  }

  /**
   * The paper's rule exactly, at a cost proportional to `keep`: the kept block pairs of each head are one
   * flat list (TopK over the S x S map), attended pair by pair and merged per query block with
   * ScatterND(add) (opset 16). Each pair's exponentials use the row maximum of the query block's best
   * block as stabilizer (the best block is always attended: it is added as an extra pair, weight 0 when
   * the global threshold already kept it); exponents are clamped at 80, which only matters for logits
   * more than 80 above that block's maximum.
   */
  function emitExactGlobal(): string {
    const flat = e.op1('Reshape', [map, i64([0, -1])], {}, 'map_flat')
    const [globalValues, globalIndices] = e.op('TopK', [flat, inputs.globalBlocks], { axis: { i: -1 }, largest: { i: 1 }, sorted: { i: 1 } }, { outputs: 2, hint: 'global_topk' }) as [string, string]
    const threshold = e.op1('Slice', [globalValues, i64([-1]), i64([INT64_MAX]), i64([1])], {}, 'threshold') // [H', 1]
    const [bestValue, bestIndex] = e.op('TopK', [map, i64([1], 'one')], { axis: { i: -1 }, largest: { i: 1 }, sorted: { i: 1 } }, { outputs: 2, hint: 'row_best' }) as [string, string]
    const blocksConst = e.int64([S], 'blocks', [])
    const rowsOfPairs = e.op1('Div', [globalIndices, blocksConst], {}, 'pair_query_block') // [H', Kg]
    const colsOfPairs = e.op1('Mod', [globalIndices, blocksConst], {}, 'pair_key_block')
    const headsBySize = concat([e.op1('Reshape', [hCount, i64([1])]), i64([S])])
    const allRows = e.op1('Expand', [e.int64(Array.from({ length: S }, (_, i) => i), 'block_ids', [1, S]), headsBySize], {}, 'best_query_block') // [H', S]
    const bestCols = e.op1('Reshape', [bestIndex, i64([0, -1])], {}, 'best_key_block')
    const bestWeight = e.op1('Cast', [e.op1('Less', [e.op1('Reshape', [bestValue, i64([0, -1])]), threshold])], { to: { i: TensorProto_DataType.FLOAT } }, 'best_weight')
    const globalWeight = e.op1('ConstantOfShape', [e.op1('Shape', [globalValues])], { value: { t: floatTensor('one', [1], [1]) } }, 'pair_weight')
    const pairRows = e.op1('Concat', [rowsOfPairs, allRows], { axis: { i: 1 } }, 'pair_rows') // [H', Kg + S]
    const pairCols = e.op1('Concat', [colsOfPairs, bestCols], { axis: { i: 1 } }, 'pair_cols')
    const pairWeight = e.op1('Reshape', [e.op1('Concat', [globalWeight, bestWeight], { axis: { i: 1 } }), i64([0, -1, 1, 1])], {}, 'pair_weight')
    const off2 = e.op1('Reshape', [offsets, i64([-1, 1])], {}, 'head_offsets2')
    const rowIndex = e.op1('Add', [pairRows, off2], {}, 'pair_row_index')
    const colIndex = e.op1('Add', [pairCols, off2], {}, 'pair_col_index')
    const qf = e.op1('Reshape', [qb, concat([i64([-1, b]), d])], {}, 'qflat')
    const padTable = geo.padded ? e.float(padBias, [S, b], 'pad_bias') : undefined
    const clampAt = e.float([80], [], 'exp_clamp')
    // Stabilizer: row maxima of each query block's best block, [H' S, b, 1] (a small separate product).
    const kBest = e.op1('Gather', [kf, e.op1('Add', [bestCols, off2])], { axis: { i: 0 } }, 'kbest') // [H', S, b, D]
    let bestScores = e.op1('MatMul', [qb, e.op1('Transpose', [kBest], { perm: { ints: [0, 1, 3, 2] } })], {}, 'best_scores')
    if (padTable !== undefined) {
      bestScores = e.op1('Add', [bestScores, e.op1('Reshape', [e.op1('Gather', [padTable, bestCols], { axis: { i: 0 } }), i64([0, 0, 1, -1])])], {}, 'best_scores')
    }
    const [rowMax] = e.op('TopK', [bestScores, i64([1], 'one')], { axis: { i: -1 }, largest: { i: 1 }, sorted: { i: 1 } }, { outputs: 2, hint: 'row_max' })
    const rowMaxFlat = e.op1('Reshape', [e.op1('Mul', [rowMax!, scale]), i64([-1, b, 1])], {}, 'row_max_flat')
    const hs = e.op1('Mul', [e.op1('Reshape', [hCount, i64([1])]), i64([S], 'blocks1')], {}, 'hs')
    let numerator = e.op1('ConstantOfShape', [concat([hs, i64([b]), dv])], { value: { t: floatTensor('zero', [1], [0]) } }, 'zeros_out')
    let denominator = e.op1('ConstantOfShape', [concat([hs, i64([b, 1])])], { value: { t: floatTensor('zero', [1], [0]) } }, 'zeros_sum')
    // The pair list in G static groups with dynamic bounds (their length is a runtime input), so that
    // only one group's gathered blocks and scores are alive at a time.
    const groups = Math.max(1, Math.ceil(S / queryBlocksPerGroup))
    const pairCount = e.op1('Slice', [e.op1('Shape', [rowIndex]), i64([1]), i64([2])], {}, 'pair_count')
    for (let gi = 0; gi < groups; gi++) {
      let gRows = rowIndex
      let gCols = colIndex
      let gKeyBlocks = pairCols
      let gWeight = pairWeight
      if (groups > 1) {
        const bound = (k: number) => e.op1('Div', [e.op1('Mul', [pairCount, i64([k], 'k')]), i64([groups], 'groups')], {}, 'bound')
        const lo = bound(gi)
        const hi = bound(gi + 1)
        const cut = (x: string) => e.op1('Slice', [x, lo, hi, i64([1])], {}, 'pair_group')
        gRows = cut(rowIndex)
        gCols = cut(colIndex)
        gKeyBlocks = cut(pairCols)
        gWeight = cut(pairWeight)
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
    if (ktext !== undefined && vtext !== undefined) {
      // Text keys for every query block, with the same stabilizer.
      const qbFlat = e.op1('Reshape', [qb, concat([i64([0, -1]), d])], {}, 'qgrid') // [H', S b, D]
      const kT = e.op1('Transpose', [e.op1('Reshape', [ktext, concat([i64([-1, T]), d])])], { perm: { ints: [0, 2, 1] } })
      const ts = e.op1('Mul', [e.op1('MatMul', [qbFlat, kT]), scale], {}, 'text_scores') // [H', S b, T]
      const tMax = e.op1('Reshape', [rowMaxFlat, i64([-1, S * b, 1])])
      const te = e.op1('Exp', [e.op1('Min', [e.op1('Sub', [ts, tMax]), clampAt])], {}, 'text_exp')
      const vt = e.op1('Reshape', [vtext, concat([i64([-1, T]), dv])])
      numerator = e.op1('Add', [numerator, e.op1('Reshape', [e.op1('MatMul', [te, vt]), concat([i64([-1, b]), dv])])], {}, 'numerator')
      denominator = e.op1('Add', [denominator, e.op1('Reshape', [e.op1('ReduceSum', [te, i64([-1], 'axes')], { keepdims: { i: 1 } }), i64([-1, b, 1])])], {}, 'denominator')
    }
    const out = e.op1('Div', [numerator, denominator], {}, 'oblocks')
    return e.op1('Reshape', [out, concat([i64([-1, S, b]), dv])], {}, 'oblocks')
  }

  // 8. Restore the token order and drop padding.
  const o7 = e.op1('Reshape', [ob, concat([i64([-1, geo.frames, geo.blocksHigh, geo.blocksWide, geo.windowHeight, geo.windowWidth]), dv])])
  const ot = e.op1('Transpose', [o7], { perm: { ints: [0, 1, 2, 4, 3, 5, 6] } }, 'restore')
  let og = e.op1('Reshape', [ot, concat([i64([-1, geo.frames, geo.paddedHeight, geo.paddedWidth]), dv])])
  if (geo.padded) og = e.op1('Slice', [og, i64([0, 0]), i64([geo.height, geo.width]), i64([2, 3])], {}, 'unpad')
  let o3 = e.op1('Reshape', [og, concat([i64([-1, N]), dv])], {}, 'ogrid')

  // 9. Text queries attend densely to the whole sequence.
  if (qt !== undefined) {
    const otext = attention(qt, e.op1('Transpose', [k3], { perm: { ints: [0, 2, 1] } }), v3)
    const parts: string[] = []
    if (P > 0) parts.push(P + T2 === P ? otext : slice1(otext, 0, P))
    parts.push(o3)
    if (T2 > 0) parts.push(P === 0 ? otext : slice1(otext, P, P + T2))
    o3 = e.op1('Concat', parts, { axis: { i: 1 } }, 'o3')
  }
  return restoreOutput(o3)
}
