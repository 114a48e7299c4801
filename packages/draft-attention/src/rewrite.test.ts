import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { create, fromBinary, toBinary } from '@bufbuild/protobuf'
import { GuidekitError, Tensor } from '@guidekit/core'
import * as ort from 'onnxruntime-node'
import { afterAll, describe, expect, it } from 'vitest'
import { maxAbsDiff, randn, toPacked } from './__fixtures__/data.js'
import { buildAttentionModel } from './attention-model.js'
import { type DraftFeed, draftFeeds } from './feeds.js'
import {
  ModelProtoSchema,
  NodeProtoSchema,
  StringStringEntryProtoSchema,
  TensorProto_DataLocation,
  TensorProto_DataType,
  TensorProtoSchema,
} from '@guidekit/onnx/graph'
import { draftAttentionReference } from './reference.js'
import { type RewriteDraftAttentionOptions, readDraftModelInfo, rewriteDraftAttention } from './rewrite.js'
import type { DraftSelection } from './selection.js'

// Tiny grids: 2 frames of 6x6 tokens, 4x4 windows (padded to 8x8 -> 8 blocks of 16), plus text tokens.
const grid = { frames: 2, height: 6, width: 6 }
const window = { height: 4, width: 4 }
const B = 2
const H = 2
const D = 8

function ortFeeds(extra: Record<string, DraftFeed>): Record<string, ort.Tensor> {
  return Object.fromEntries(Object.entries(extra).map(([k, f]) => [k, new ort.Tensor(f.type, f.data as Uint8Array, [...f.dims])]))
}

async function run(model: Uint8Array | string, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const session = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model)
  try {
    return (await session.run(feeds)).out!.data as Float32Array
  } finally {
    await session.release()
  }
}

interface Case {
  name: string
  kind: 'matmul-softmax' | 'onnx-attention' | 'multi-head-attention'
  scaleForm?: 'mul' | 'div' | 'split'
  packedHeads?: boolean
  opset?: number
  prefix: number
  suffix: number
}

const cases: Case[] = [
  { name: 'MatMul -> Mul -> Softmax -> MatMul, prefix + suffix text', kind: 'matmul-softmax', scaleForm: 'mul', prefix: 2, suffix: 1 },
  { name: 'MatMul -> Div -> Softmax -> MatMul', kind: 'matmul-softmax', scaleForm: 'div', prefix: 0, suffix: 0 },
  { name: 'MatMul -> Mul -> Softmax -> MatMul at opset 15 (capped global-percentile)', kind: 'matmul-softmax', opset: 15, prefix: 2, suffix: 0 },
  { name: 'SDPA export form (sqrt scale on Q and K^T)', kind: 'matmul-softmax', scaleForm: 'split', prefix: 3, suffix: 0 },
  { name: 'ONNX Attention (opset 23, 4-D)', kind: 'onnx-attention', prefix: 0, suffix: 2 },
  { name: 'ONNX Attention (opset 23, 3-D packed heads)', kind: 'onnx-attention', packedHeads: true, prefix: 1, suffix: 0 },
  { name: 'com.microsoft:MultiHeadAttention', kind: 'multi-head-attention', prefix: 1, suffix: 1 },
]

describe.each(cases)('rewriteDraftAttention: $name', (c) => {
  const L = c.prefix + grid.frames * grid.height * grid.width + c.suffix
  const packed = c.kind === 'multi-head-attention' || c.packedHeads === true
  const q = randn(B * H * L * D, 11)
  const k = randn(B * H * L * D, 12)
  const v = randn(B * H * L * D, 13)
  const dims = packed ? [B, L, H * D] : [B, H, L, D]
  const feed = (x: Float32Array) => new ort.Tensor('float32', packed ? toPacked(x, B, H, L, D) : x, dims)
  const inputs = { q: feed(q), k: feed(k), v: feed(v) }
  const original = buildAttentionModel({
    kind: c.kind,
    batch: B,
    heads: H,
    tokens: L,
    headDim: D,
    ...(c.scaleForm === undefined ? {} : { scaleForm: c.scaleForm }),
    ...(c.packedHeads === undefined ? {} : { packedHeads: c.packedHeads }),
    ...(c.opset === undefined ? {} : { opset: c.opset }),
  })
  const layout = { grid, window, prefixTokens: c.prefix, suffixTokens: c.suffix }

  it.each<DraftSelection>(['row-topk', 'global-percentile'])('matches the original (dense input, all blocks kept) and the TS reference (%s)', async (selection) => {
    // Groups of 3 query blocks (3 + 3 + 2): the grouped path; the model tests below use one group.
    const rewritten = rewriteDraftAttention(original, { ...layout, selection, queryBlocksPerGroup: 3 })
    expect(rewritten.sites).toBe(1)
    const expected = await run(original, inputs)
    const dense = await run(rewritten.model, { ...inputs, ...ortFeeds(draftFeeds(rewritten.info, { keep: 0.25, dense: true })) })
    // The dense branch is the original subgraph; ORT may fuse it differently inside the If.
    expect(maxAbsDiff(dense, expected)).toBeLessThan(1e-6)
    const all = await run(rewritten.model, { ...inputs, ...ortFeeds(draftFeeds(rewritten.info, { keep: 1 })) })
    expect(maxAbsDiff(all, expected)).toBeLessThan(1e-5)

    const sparse = await run(rewritten.model, { ...inputs, ...ortFeeds(draftFeeds(rewritten.info, { keep: 0.25 })) })
    // The reference's matching variant: capped (opset < 16) or exact with each row's best block kept.
    expect(rewritten.info.globalPercentile).toBe(selection === 'row-topk' ? undefined : (c.opset ?? 17) >= 16 ? 'exact' : 'capped')
    const variant = rewritten.info.globalPercentile === 'capped' ? { maxBlocksPerRow: 4 } : { keepRowBest: true }
    const ref = draftAttentionReference(new Tensor(q, [B * H, L, D]), new Tensor(k, [B * H, L, D]), new Tensor(v, [B * H, L, D]), {
      layout,
      keep: 0.25,
      selection,
      ...variant,
    })
    const refOut = packed ? toPacked(ref.output.data, B, H, L, D) : ref.output.data
    expect(maxAbsDiff(sparse, refOut)).toBeLessThan(1e-5)
    // And it really is sparse: far from dense attention on random data.
    expect(maxAbsDiff(sparse, expected)).toBeGreaterThan(0.05)
  })
})

describe('rewriteDraftAttention: model handling', () => {
  const L = 72
  const base = buildAttentionModel({ kind: 'matmul-softmax', heads: H, tokens: L, headDim: D })
  const options: RewriteDraftAttentionOptions = { grid, window }
  const dir = mkdtempSync(join(tmpdir(), 'draft-attention-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('keeps unknown fields (newer ONNX schema fields) on the model, graph and nodes', () => {
    // Field 99 (varint 42) is not in ONNX 1.12's onnx.proto (the generated bindings).
    const withUnknown = new Uint8Array([...base, 0x98, 0x06, 0x2a])
    const out = rewriteDraftAttention(withUnknown, options).model
    const tail = out.subarray(out.length - 3)
    const decoded = fromBinary(ModelProtoSchema, out)
    expect(decoded.$unknown?.some((u) => u.no === 99)).toBe(true)
    expect([...tail]).toContain(0x2a)
  })

  it('keeps unknown fields of the attention nodes it moves into the dense branch', () => {
    const m = fromBinary(ModelProtoSchema, base)
    const g = m.graph!
    const last = g.node.length - 1
    // Field 9 of NodeProto (metadata_props in ONNX >= 1.17) is unknown to the 1.12 schema of the generated bindings.
    g.node[last] = fromBinary(NodeProtoSchema, new Uint8Array([...toBinary(NodeProtoSchema, g.node[last]!), 0x4a, 0x02, 0x08, 0x01]))
    const out = fromBinary(ModelProtoSchema, rewriteDraftAttention(toBinary(ModelProtoSchema, m), options).model)
    const ifNode = out.graph!.node.find((n) => n.opType === 'If')!
    const dense = ifNode.attribute.find((a) => a.name === 'then_branch')!.g!
    const moved = dense.node.find((n) => n.name === 'attn/pv')!
    expect(moved.$unknown?.some((u) => u.no === 9)).toBe(true)
  })

  it('stores the runtime facts in the model metadata and refuses a second rewrite', () => {
    const { model, info } = rewriteDraftAttention(base, options)
    expect(readDraftModelInfo(model)).toEqual(info)
    expect(readDraftModelInfo(base)).toBeUndefined()
    expect(() => rewriteDraftAttention(model, options)).toThrow(/already rewritten/)
  })

  it('leaves the first denseLayers sites alone and reports them', () => {
    const r = rewriteDraftAttention(base, { ...options, denseLayers: 1 })
    expect(r.sites).toBe(0)
    expect(r.found).toEqual([expect.objectContaining({ rewritten: false, keptDense: true, reason: expect.stringContaining('denseLayers') as unknown })])
  })

  it('skips attention whose sequence length does not match the layout (e.g. cross-attention)', () => {
    const other = buildAttentionModel({ kind: 'matmul-softmax', heads: H, tokens: 50, headDim: D })
    const r = rewriteDraftAttention(other, options)
    expect(r.sites).toBe(0)
    expect(r.found[0]?.reason).toMatch(/sequence length 50/)
  })

  it('rejects bytes that are not a model, and models below opset 13', () => {
    expect(() => rewriteDraftAttention(new Uint8Array([0xff, 0xff, 0xff]), options)).toThrow(GuidekitError)
    const m = fromBinary(ModelProtoSchema, base)
    m.opsetImport[0]!.version = 11n
    try {
      rewriteDraftAttention(toBinary(ModelProtoSchema, m), options)
      expect.unreachable()
    } catch (e) {
      expect(GuidekitError.isInstance(e) && e.code).toBe('UNSUPPORTED')
    }
  })

  it('works on a model whose weights are external data', async () => {
    // v = MatMul(v_in, W) with W (D x D) stored in weights.bin next to the model.
    const m = fromBinary(ModelProtoSchema, base)
    const g = m.graph!
    const w = randn(D * D, 5)
    writeFileSync(join(dir, 'weights.bin'), new Uint8Array(w.buffer))
    g.initializer.push(
      create(TensorProtoSchema, {
        name: 'W',
        dims: [BigInt(D), BigInt(D)],
        dataType: TensorProto_DataType.FLOAT,
        dataLocation: TensorProto_DataLocation.EXTERNAL,
        externalData: [
          create(StringStringEntryProtoSchema, { key: 'location', value: 'weights.bin' }),
          create(StringStringEntryProtoSchema, { key: 'offset', value: '0' }),
          create(StringStringEntryProtoSchema, { key: 'length', value: String(D * D * 4) }),
        ],
      }),
    )
    g.input[2]!.name = 'v_in'
    g.node.unshift(create(NodeProtoSchema, { name: 'proj', opType: 'MatMul', input: ['v_in', 'W'], output: ['v'] }))
    const originalPath = join(dir, 'model.onnx')
    writeFileSync(originalPath, toBinary(ModelProtoSchema, m))
    const r = rewriteDraftAttention(readFileSync(originalPath), options)
    expect(r.sites).toBe(1)
    const rewrittenPath = join(dir, 'model.draft.onnx')
    writeFileSync(rewrittenPath, r.model)
    const dims = [1, H, L, D]
    const inputs = {
      q: new ort.Tensor('float32', randn(H * L * D, 1), dims),
      k: new ort.Tensor('float32', randn(H * L * D, 2), dims),
      v_in: new ort.Tensor('float32', randn(H * L * D, 3), dims),
    }
    const expected = await run(originalPath, inputs)
    const all = await run(rewrittenPath, { ...inputs, ...ortFeeds(draftFeeds(r.info, { keep: 1 })) })
    expect(maxAbsDiff(all, expected)).toBeLessThan(1e-5)
  })
})
