import { Tensor } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { localQK, maxAbsDiff, randn, relL2, rng } from './__fixtures__/data.js'
import { draftGeometry } from './layout.js'
import {
  blockSparseAttention,
  denseAttention,
  draftAttentionReference,
  draftAttentionMap,
  poolDraftTokens,
  selectBlocks,
} from './reference.js'
import { globalPercentileEntries, rowTopkBlocks } from './selection.js'

const t3 = (data: Float32Array, H: number, L: number, D: number) => new Tensor(data, [H, L, D])

describe('poolDraftTokens', () => {
  it('averages each window per frame and channel, counting only real tokens at a padded border (avg_pool2d ceil_mode)', () => {
    // 1 head, 1 channel, grid 1 x 3 x 3 holding 0..8, window 2 x 2, one prefix token (ignored).
    const x = t3(Float32Array.from([100, 0, 1, 2, 3, 4, 5, 6, 7, 8]), 1, 10, 1)
    const d = poolDraftTokens(x, { grid: { frames: 1, height: 3, width: 3 }, window: { height: 2, width: 2 }, prefixTokens: 1 })
    expect(d.shape).toEqual([1, 4, 1])
    expect([...d.data]).toEqual([(0 + 1 + 3 + 4) / 4, (2 + 5) / 2, (6 + 7) / 2, 8])
  })
})

describe('selectBlocks', () => {
  const S = 10
  const H = 3
  const map = draftAttentionMap(t3(randn(H * S * 4, 1), H, S, 4), t3(randn(H * S * 4, 2), H, S, 4))

  it('row-topk keeps round(keep * S) best key blocks in every row', () => {
    const mask = selectBlocks(map, { keep: 0.3, selection: 'row-topk' })
    expect(rowTopkBlocks(0.3, S)).toBe(3)
    for (let r = 0; r < H * S; r++) {
      const row = [...map.data.subarray(r * S, (r + 1) * S)]
      const kept = row.filter((_, j) => mask[r * S + j])
      expect(kept.length).toBe(3)
      expect(Math.min(...kept)).toBeGreaterThanOrEqual(Math.max(...row.filter((_, j) => !mask[r * S + j])))
    }
  })

  it('global-percentile is per head over all S^2 pairs, with the upstream count S^2 - int((1 - keep) S^2) + 1', () => {
    const keep = 0.2
    const mask = selectBlocks(map, { keep, selection: 'global-percentile' })
    const expected = globalPercentileEntries(keep, S)
    expect(expected).toBe(100 - 80 + 1)
    for (let h = 0; h < H; h++) {
      const head = mask.subarray(h * S * S, (h + 1) * S * S)
      expect(head.reduce((a, b) => a + b, 0)).toBe(expected)
      const values = [...map.data.subarray(h * S * S, (h + 1) * S * S)]
      const kept = values.filter((_, i) => head[i])
      expect(Math.min(...kept)).toBeGreaterThanOrEqual(Math.max(...values.filter((_, i) => !head[i])))
    }
    // The number of blocks per row varies (this is not per-row top-k).
    const perRow = Array.from({ length: H * S }, (_, r) => mask.subarray(r * S, (r + 1) * S).reduce((a, b) => a + b, 0))
    expect(new Set(perRow).size).toBeGreaterThan(1)
  })

  it('capped global-percentile (the in-graph rule) is a subset of the exact rule plus row maxima', () => {
    const exact = selectBlocks(map, { keep: 0.2, selection: 'global-percentile' })
    const capped = selectBlocks(map, { keep: 0.2, selection: 'global-percentile', maxBlocksPerRow: 3 })
    for (let r = 0; r < H * S; r++) {
      const row = [...map.data.subarray(r * S, (r + 1) * S)]
      const best = row.indexOf(Math.max(...row))
      let n = 0
      for (let j = 0; j < S; j++) {
        if (!capped[r * S + j]) continue
        n++
        expect(exact[r * S + j] === 1 || j === best).toBe(true)
      }
      expect(n).toBeGreaterThanOrEqual(1)
      expect(n).toBeLessThanOrEqual(3)
    }
  })
})

describe('draftAttentionReference', () => {
  const H = 2
  const D = 8
  it.each([
    ['divisible grid', { grid: { frames: 2, height: 4, width: 4 }, window: { height: 2, width: 2 } }],
    ['padded grid with prefix and suffix tokens', { grid: { frames: 1, height: 7, width: 7 }, window: { height: 2, width: 2 }, prefixTokens: 3, suffixTokens: 2 }],
  ])('with every block kept equals dense attention (%s)', (_, layout) => {
    const L = draftGeometry(layout).sequenceLength
    const [q, k, v] = [1, 2, 3].map((s) => t3(randn(H * L * D, s), H, L, D)) as [Tensor, Tensor, Tensor]
    for (const selection of ['row-topk', 'global-percentile'] as const) {
      const { output, keptFraction } = draftAttentionReference(q, k, v, { layout, keep: 1, selection })
      expect(keptFraction).toBe(1)
      expect(maxAbsDiff(output.data, denseAttention(q, k, v).data)).toBeLessThan(1e-5)
    }
  })

  it('keeps text/prefix tokens dense: prefix queries equal dense attention, grid queries see prefix keys', () => {
    const layout = { grid: { frames: 1, height: 4, width: 4 }, window: { height: 2, width: 2 }, prefixTokens: 2 }
    const L = 18
    const [q, k, v] = [4, 5, 6].map((s) => t3(randn(H * L * D, s), H, L, D)) as [Tensor, Tensor, Tensor]
    const dense = denseAttention(q, k, v)
    const { output } = draftAttentionReference(q, k, v, { layout, keep: 0.25, selection: 'row-topk' })
    for (let h = 0; h < H; h++) {
      const a = output.data.subarray(h * L * D, (h * L + 2) * D)
      const b = dense.data.subarray(h * L * D, (h * L + 2) * D)
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-6)
    }
    // With no grid block at all a grid query would attend to the prefix tokens only.
    const none = new Uint8Array(H * 4 * 4)
    const prefixOnly = blockSparseAttention(q, k, v, none, layout)
    const qs = t3(q.data.slice(), H, L, D)
    const expected = denseAttention(
      qs,
      t3(Float32Array.from({ length: H * 2 * D }, (_, i) => k.data[Math.floor(i / (2 * D)) * L * D + (i % (2 * D))]!), H, 2, D),
      t3(Float32Array.from({ length: H * 2 * D }, (_, i) => v.data[Math.floor(i / (2 * D)) * L * D + (i % (2 * D))]!), H, 2, D),
    )
    expect(maxAbsDiff(prefixOnly.data.subarray(2 * D, 3 * D), expected.data.subarray(2 * D, 3 * D))).toBeLessThan(1e-6)
  })

  it('pooling ignores padded slots at the bottom/right border', () => {
    const layout = { grid: { frames: 1, height: 5, width: 3 }, window: { height: 2, width: 2 } }
    const x = t3(Float32Array.from({ length: 15 }, (_, i) => i), 1, 15, 1)
    const d = poolDraftTokens(x, layout).data
    expect(d[4]).toBe((12 + 13) / 2) // last strip, first window: row 4, columns 0-1
    expect(d[5]).toBe(14) // last strip, second window: a single real token
  })

  it('on spatially local data, draft selection beats random block selection by a wide margin', () => {
    const grid = { frames: 2, height: 8, width: 8 }
    const layout = { grid, window: { height: 2, width: 2 } }
    const L = 128
    const qk = t3(localQK(H, grid, 16, { temperature: 3, seed: 9 }), H, L, 16)
    const v = t3(randn(H * L * 16, 10), H, L, 16)
    const dense = denseAttention(qk, qk, v)
    const draft = draftAttentionReference(qk, qk, v, { layout, keep: 0.125, selection: 'row-topk' })
    const S = 32
    const r = rng(3)
    const random = new Uint8Array(H * S * S)
    for (let row = 0; row < H * S; row++) {
      const picks = new Set<number>()
      while (picks.size < 4) picks.add(Math.floor(r() * S))
      for (const j of picks) random[row * S + j] = 1
    }
    const randomOut = blockSparseAttention(qk, qk, v, random, layout)
    const errDraft = relL2(draft.output.data, dense.data)
    const errRandom = relL2(randomOut.data, dense.data)
    expect(errDraft).toBeLessThan(0.5 * errRandom)
  })
})
