import { create, toBinary } from '@bufbuild/protobuf'
import { GuidekitError, check, type GuidekitErrorCode } from '@guidekit/core'
import {
  type ModelProto,
  ModelProtoSchema,
  type NodeProto,
  NodeProtoSchema,
  StringStringEntryProtoSchema,
  TensorProto_DataType,
  NodeEmitter,
  collectNames,
  graph,
  valueInfo,
  decodeModel,
} from '@guidekit/onnx/graph'
import { type DraftLayout, draftGeometry } from './layout.js'
import { type DraftSelection, checkSelection } from './selection.js'
import { emitDraftSite } from './internal/draft-branch.js'
import { matchSites } from './internal/match-sites.js'

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
  for (const n of [inputs.dense, inputs.blocks, inputs.globalBlocks]) {
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
    const draftOut = emitDraftSite(emitter, m, geometry, { selection, inputs, queryBlocksPerGroup, exactGlobal })
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
