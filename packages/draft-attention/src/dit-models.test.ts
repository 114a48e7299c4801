import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import * as ort from 'onnxruntime-node'
import { describe, expect, it } from 'vitest'
import { maxAbsDiff, randn, relL2 } from './__fixtures__/data.js'
import { type DraftFeed, draftFeeds } from './feeds.js'
import { rewriteDraftAttention } from './rewrite.js'

// Real `torch.onnx.export` graphs (LayerNorm, fused qkv Linear, reshape/permute, MatMul -> Mul -> Softmax
// -> MatMul at opset 17), not graphs built by hand.

function ortFeeds(extra: Record<string, DraftFeed>): Record<string, ort.Tensor> {
  return Object.fromEntries(Object.entries(extra).map(([k, f]) => [k, new ort.Tensor(f.type, f.data as Uint8Array, [...f.dims])]))
}

interface Card {
  architecture: { tokenGrid: { frames: number; height: number; width: number }; prefixTokens?: number; depth?: number }
}

async function checkModel(path: string, sampleShape: number[], window: { height: number; width: number }) {
  const bytes = readFileSync(path)
  const card = JSON.parse(readFileSync(path.replace(/\.onnx$/, '.card.json'), 'utf8')) as Card
  const r = rewriteDraftAttention(bytes, { grid: card.architecture.tokenGrid, window, prefixTokens: card.architecture.prefixTokens ?? 0 })
  if (card.architecture.depth !== undefined) expect(r.sites).toBe(card.architecture.depth)
  expect(r.sites).toBeGreaterThan(0)
  const B = sampleShape[0]!
  const size = sampleShape.reduce((a, b) => a * b, 1)
  const inputs = {
    sample: new ort.Tensor('float32', randn(size, 1), sampleShape),
    timestep: new ort.Tensor('float32', new Float32Array(B).fill(0.5), [B]),
    class_labels: new ort.Tensor('int64', BigInt64Array.from({ length: B }, (_, i) => BigInt(i)), [B]),
  }
  const original = await ort.InferenceSession.create(bytes)
  const rewritten = await ort.InferenceSession.create(r.model)
  const outName = original.outputNames[0]!
  const expected = (await original.run(inputs))[outName]!.data as Float32Array
  const run = async (keep: number, dense = false) => (await rewritten.run({ ...inputs, ...ortFeeds(draftFeeds(r.info, { keep, dense })) }))[outName]!.data as Float32Array
  expect(maxAbsDiff(await run(0.25, true), expected)).toBeLessThan(1e-5)
  expect(maxAbsDiff(await run(1), expected)).toBeLessThan(1e-5)
  const errors: number[] = []
  for (const keep of [0.5, 0.25]) {
    const out = await run(keep)
    expect(out.every(Number.isFinite)).toBe(true)
    errors.push(relL2(out, expected))
  }
  // Keeping fewer blocks changes the output more.
  expect(errors[0]!).toBeGreaterThan(0)
  expect(errors[1]!).toBeGreaterThanOrEqual(errors[0]!)
  await original.release()
  await rewritten.release()
}

describe('rewrite of exported DiTs', () => {
  const tiny = fileURLToPath(new URL('./__fixtures__/tiny-dit-2x6x6.onnx', import.meta.url))
  it('tiny random-weight video DiT (2 frames x 6 x 6 tokens, 4x4 windows padded to 8x8)', async () => {
    await checkModel(tiny, [2, 1, 2, 24, 24], { height: 4, width: 4 })
  })

  // The shipped fashion DiT (7 x 7 tokens): 2x2 windows, padded to 8x8 = 16 blocks.
  const fashion = fileURLToPath(new URL('../../models-fashion/models/fashion-dit.onnx', import.meta.url))
  it.skipIf(!existsSync(fashion) || !existsSync(fashion.replace(/\.onnx$/, '.card.json')))('fashion DiT (7x7 tokens, 2x2 windows, padded)', async () => {
    await checkModel(fashion, [2, 1, 28, 28], { height: 2, width: 2 })
  })
})
