import {
  type GraphProto,
  type NodeProto,
  TensorProto_DataType,
  findValueInfo,
  floatAttribute,
  getAttribute,
  intAttribute,
  intsAttribute,
  tensorValues,
} from '@guidekit/onnx/graph'
import type { DraftGeometry } from '../layout.js'
import type { AttentionSite, AttentionSiteKind } from '../rewrite.js'

/** One attention subgraph the rewriter can replace. */
export interface Matched {
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

/** The graph facts every matcher asks about. */
interface GraphIndex {
  readonly g: GraphProto
  readonly producers: Map<string, NodeProto>
  readonly consumers: Map<string, NodeProto[]>
  /** The layout's sequence length L. */
  readonly L: number
  /** True when `consumer` is the only reader of `value` (and it is not a graph output). */
  readonly exclusive: (value: string, consumer: NodeProto) => boolean
  /** The known sequence length of `name` when it is not L (axis counted from the end), else undefined. */
  readonly lengthMismatch: (name: string, axisFromEnd: number) => number | undefined
  /** False when `name` is known to be other than float32. */
  readonly isFloat: (name: string) => boolean
  /** Records a matched site that stays dense, with the reason. */
  readonly skip: (kind: AttentionSiteKind, node: NodeProto, reason: string) => void
}

/**
 * Finds the attention sites of `g` that can be rewritten for `geo`, in graph order; sites that match
 * an attention pattern but cannot be rewritten are appended to `found` with the reason.
 */
export function matchSites(g: GraphProto, geo: DraftGeometry, found: AttentionSite[]): Matched[] {
  const index = indexGraph(g, geo, found)
  const out: Matched[] = []
  for (const node of g.node) {
    let m: Matched | undefined
    if (node.opType === 'Softmax' && node.domain === '') m = matchSoftmax(index, node)
    else if (node.opType === 'Attention' && (node.domain === '' || node.domain === 'ai.onnx')) m = matchOnnxAttention(index, node)
    else if (node.opType === 'MultiHeadAttention' && node.domain === 'com.microsoft') m = matchMultiHeadAttention(index, node)
    if (m !== undefined) out.push(m)
  }
  return out
}

function indexGraph(g: GraphProto, geo: DraftGeometry, found: AttentionSite[]): GraphIndex {
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
  const L = geo.sequenceLength
  return {
    g,
    producers,
    consumers,
    L,
    exclusive: (value, consumer) => !graphOutputs.has(value) && (consumers.get(value) ?? []).every((c) => c === consumer),
    lengthMismatch: (name, axisFromEnd) => {
      const dims = findValueInfo(g, name)?.dims
      const d = dims?.[dims.length - axisFromEnd]
      return d !== undefined && d > 0 && d !== L ? d : undefined
    },
    isFloat: (name) => {
      const t = findValueInfo(g, name)?.elemType
      return t === undefined || t === (TensorProto_DataType.FLOAT as number)
    },
    skip: (kind, node, reason) => {
      found.push({ kind, node: node.name, output: node.output[0] ?? '', rewritten: false, reason })
    },
  }
}

function constantValues(index: GraphIndex, name: string): number[] | undefined {
  const init = index.g.initializer.find((t) => t.name === name)
  if (init !== undefined) return tensorValues(init)
  const p = index.producers.get(name)
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

/** `MatMul(Q, K^T) -> [Mul|Div scale] -> Softmax(-1) -> MatMul(., V)`, found from its Softmax. */
function matchSoftmax(index: GraphIndex, node: NodeProto): Matched | undefined {
  const { g, producers, consumers, exclusive } = index
  const kind = 'matmul-softmax'
  const axis = intAttribute(node, 'axis') ?? -1
  const rank = findValueInfo(g, node.input[0]!)?.dims?.length
  if (!(axis === -1 || (rank !== undefined && axis === rank - 1))) return undefined
  const pv = (consumers.get(node.output[0]!) ?? [])[0]
  if (pv === undefined || pv.opType !== 'MatMul' || pv.input[0] !== node.output[0] || !exclusive(node.output[0]!, pv)) return undefined
  let scoresNode = producers.get(node.input[0]!)
  let scale: Matched['scale'] = 1
  const nodes: NodeProto[] = []
  if (scoresNode !== undefined && (scoresNode.opType === 'Mul' || scoresNode.opType === 'Div') && exclusive(scoresNode.output[0]!, node)) {
    const scaleNode = scoresNode
    const idx = scaleNode.input.findIndex((i) => producers.get(i)?.opType === 'MatMul')
    if (idx < 0 || (scaleNode.opType === 'Div' && idx !== 0)) return undefined
    const other = scaleNode.input[1 - idx]!
    const c = constantValues(index, other)
    if (c !== undefined && c.length === 1) scale = scaleNode.opType === 'Div' ? 1 / c[0]! : c[0]!
    else if (c !== undefined) return undefined
    else scale = { tensor: other, reciprocal: scaleNode.opType === 'Div' }
    nodes.push(scaleNode)
    scoresNode = producers.get(scaleNode.input[idx]!)
    if (scoresNode === undefined || !exclusive(scoresNode.output[0]!, scaleNode)) return undefined
  } else if (scoresNode !== undefined && !exclusive(scoresNode.output[0]!, node)) return undefined
  if (scoresNode === undefined || scoresNode.opType !== 'MatMul') return undefined
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
    index.skip(kind, pv, `cross-attention (${sq} queries x ${sk} keys) stays dense`)
    return undefined
  }
  const bad = index.lengthMismatch(q, 2)
  if (bad !== undefined) {
    index.skip(kind, pv, `sequence length ${bad} differs from the layout's ${index.L}`)
    return undefined
  }
  if (!index.isFloat(q)) {
    index.skip(kind, pv, 'only float32 attention is rewritten')
    return undefined
  }
  return { kind, nodes, output: pv.output[0]!, q, k, v: pv.input[1]!, kTransposed, layout: 'bhld', scale }
}

/** The ONNX `Attention` op (opset 23+), 4-D or 3-D inputs, without mask, past, causal or softcap. */
function matchOnnxAttention(index: GraphIndex, node: NodeProto): Matched | undefined {
  const kind = 'onnx-attention'
  const extraInputs = node.input.slice(3).some((i) => i !== '')
  const extraOutputs = node.output.slice(1).some((o) => o !== '')
  if (extraInputs || extraOutputs) {
    index.skip(kind, node, 'attn_mask / past / present / qk output present')
    return undefined
  }
  if ((intAttribute(node, 'is_causal') ?? 0) !== 0 || (floatAttribute(node, 'softcap') ?? 0) !== 0) {
    index.skip(kind, node, 'causal or softcapped attention stays dense')
    return undefined
  }
  const qh = intAttribute(node, 'q_num_heads')
  const kvh = intAttribute(node, 'kv_num_heads')
  if (qh !== kvh) {
    index.skip(kind, node, 'grouped-query attention (q_num_heads != kv_num_heads) is not supported')
    return undefined
  }
  // 3-D [B, L, H*D] inputs need q_num_heads; 4-D [B, H, L, D] inputs may carry it too.
  const qRank = findValueInfo(index.g, node.input[0]!)?.dims?.length
  const threeD = qRank !== undefined ? qRank === 3 : qh !== undefined
  if (threeD && qh === undefined) {
    index.skip(kind, node, '3-D inputs without q_num_heads')
    return undefined
  }
  if (index.lengthMismatch(node.input[0]!, 2) !== undefined || index.lengthMismatch(node.input[1]!, 2) !== undefined) {
    index.skip(kind, node, `sequence length differs from the layout's ${index.L} (cross-attention stays dense)`)
    return undefined
  }
  return fusedSite(kind, node, threeD ? 'blhd' : 'bhld', threeD ? qh : undefined, floatAttribute(node, 'scale'))
}

/** `com.microsoft:MultiHeadAttention` with 3-D Q/K/V and no bias, mask or past. */
function matchMultiHeadAttention(index: GraphIndex, node: NodeProto): Matched | undefined {
  const kind = 'multi-head-attention'
  if (node.input.length < 3 || node.input.slice(3).some((i) => i !== '') || node.output.slice(1).some((o) => o !== '')) {
    index.skip(kind, node, 'packed QKV, bias, masks or past/present are not supported')
    return undefined
  }
  if ((intAttribute(node, 'unidirectional') ?? 0) !== 0) {
    index.skip(kind, node, 'causal attention stays dense')
    return undefined
  }
  const kDims = findValueInfo(index.g, node.input[1]!)?.dims
  if (kDims !== undefined && kDims.length !== 3) {
    index.skip(kind, node, 'only 3-D key/value inputs are supported')
    return undefined
  }
  if (index.lengthMismatch(node.input[0]!, 2) !== undefined || index.lengthMismatch(node.input[1]!, 2) !== undefined) {
    index.skip(kind, node, `sequence length differs from the layout's ${index.L} (cross-attention stays dense)`)
    return undefined
  }
  const s = floatAttribute(node, 'scale')
  return fusedSite(kind, node, 'blhd', intAttribute(node, 'num_heads'), s === 0 ? undefined : s)
}

/** A site that is one fused node taking (Q, K, V) as its first three inputs. */
function fusedSite(kind: AttentionSiteKind, node: NodeProto, layout: Matched['layout'], heads: number | undefined, scale: number | undefined): Matched {
  return {
    kind,
    nodes: [node],
    output: node.output[0]!,
    q: node.input[0]!,
    k: node.input[1]!,
    v: node.input[2]!,
    kTransposed: false,
    layout,
    ...(heads === undefined ? {} : { heads }),
    scale,
  }
}
