import { create, toBinary } from '@bufbuild/protobuf'
import { check } from '@guidekit/core'
import { ModelProtoSchema, NodeEmitter, OperatorSetIdProtoSchema, TensorProto_DataType, graph, valueInfo } from '@guidekit/onnx/graph'
import type { AttentionSiteKind } from './rewrite.js'

/** Options of {@link buildAttentionModel}. */
export interface AttentionModelOptions {
  readonly kind: AttentionSiteKind
  readonly batch?: number
  readonly heads: number
  readonly tokens: number
  readonly headDim: number
  /**
   * `'matmul-softmax'` only: how the scale is applied: `'mul'` (scores * s, default), `'div'`
   * (scores / sqrt(D)) or `'split'` (Q and K^T each times sqrt(s), the TorchScript SDPA export form).
   */
  readonly scaleForm?: 'mul' | 'div' | 'split'
  /** `'onnx-attention'` only: 3-D `[B, L, H*D]` inputs instead of 4-D `[B, H, L, D]`. */
  readonly packedHeads?: boolean
  /** Default-domain opset (default 17; 23 for `'onnx-attention'`). */
  readonly opset?: number
}

/**
 * Builds a standalone single-attention ONNX model with inputs `q`, `k`, `v` and output `out`, for tests
 * and benchmarks. `'matmul-softmax'` and 4-D `'onnx-attention'` take `[B, H, L, D]`;
 * `'multi-head-attention'` and packed `'onnx-attention'` take `[B, L, H*D]`.
 *
 * @example
 * const bytes = buildAttentionModel({ kind: 'matmul-softmax', heads: 8, tokens: 4096, headDim: 64 })
 */
export function buildAttentionModel(options: AttentionModelOptions): Uint8Array {
  const { kind, heads: H, tokens: L, headDim: D } = options
  const B = options.batch ?? 1
  check([H, L, D, B].every((x) => Number.isInteger(x) && x > 0), 'options', options, 'positive integer heads, tokens, headDim, batch')
  const names = new Set<string>(['q', 'k', 'v', 'out'])
  const inits: Parameters<typeof graph>[4] = []
  const e = new NodeEmitter(names, inits, 'attn')
  const scale = 1 / Math.sqrt(D)
  const packed = kind === 'multi-head-attention' || (kind === 'onnx-attention' && options.packedHeads === true)
  const dims = packed ? [B, L, H * D] : [B, H, L, D]
  let opset = options.opset ?? 17
  const opsets = [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) })]
  if (kind === 'matmul-softmax') {
    const form = options.scaleForm ?? 'mul'
    let q = 'q'
    let kT = e.op1('Transpose', ['k'], { perm: { ints: [0, 1, 3, 2] } })
    if (form === 'split') {
      const root = e.float([Math.sqrt(scale)], [], 'sqrt_scale')
      q = e.op1('Mul', [q, root])
      kT = e.op1('Mul', [kT, root])
    }
    let s = e.op1('MatMul', [q, kT], {}, 'scores')
    if (form === 'mul') s = e.op1('Mul', [s, e.float([scale], [], 'scale')])
    if (form === 'div') s = e.op1('Div', [s, e.float([Math.sqrt(D)], [], 'sqrt_d')])
    const p = e.op1('Softmax', [s], { axis: { i: -1 } })
    e.nodes.push(...[])
    const [last] = e.op('MatMul', [p, 'v'], {}, { hint: 'pv' })
    e.nodes[e.nodes.length - 1]!.output = ['out']
    void last
  } else if (kind === 'onnx-attention') {
    opset = Math.max(23, options.opset ?? 23)
    opsets[0] = create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(opset) })
    e.op('Attention', ['q', 'k', 'v'], packed ? { q_num_heads: { i: H }, kv_num_heads: { i: H } } : {})
    e.nodes[e.nodes.length - 1]!.output = ['out']
  } else {
    opsets.push(create(OperatorSetIdProtoSchema, { domain: 'com.microsoft', version: 1n }))
    e.op('MultiHeadAttention', ['q', 'k', 'v'], { num_heads: { i: H } }, { domain: 'com.microsoft' })
    e.nodes[e.nodes.length - 1]!.output = ['out']
  }
  const g = graph(
    `${kind}-attention`,
    e.nodes,
    ['q', 'k', 'v'].map((n) => valueInfo(n, TensorProto_DataType.FLOAT, dims)),
    [valueInfo('out', TensorProto_DataType.FLOAT, dims)],
    inits,
  )
  const model = create(ModelProtoSchema, {
    irVersion: BigInt(opset >= 23 ? 10 : 8),
    producerName: '@guidekit/draft-attention',
    opsetImport: opsets,
    graph: g,
  })
  return toBinary(ModelProtoSchema, model)
}
