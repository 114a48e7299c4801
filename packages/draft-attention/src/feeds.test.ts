import { GuidekitError } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { defaultWindow, draftFeeds, isDenseStep, parseDraftAttentionSpec } from './feeds.js'
import { defaultDraftInputNames } from './rewrite.js'

describe('parseDraftAttentionSpec', () => {
  it('parses the CLI form with defaults', () => {
    expect(parseDraftAttentionSpec('draft')).toEqual({ keep: 0.1, denseSteps: 0.3, denseLayers: 0, selection: 'row-topk' })
    expect(parseDraftAttentionSpec('draft:keep=0.25,dense-steps=0.5,dense-layers=1,window=2x2,selection=global-percentile')).toEqual({
      keep: 0.25,
      denseSteps: 0.5,
      denseLayers: 1,
      window: { height: 2, width: 2 },
      selection: 'global-percentile',
    })
    expect(parseDraftAttentionSpec('dense')).toBeUndefined()
  })

  it.each(['sparse:keep=0.1', 'draft:keep=0', 'draft:keep=2', 'draft:window=8', 'draft:speed=3', 'draft:selection=topk'])('rejects %s with INVALID_ARGUMENT', (spec) => {
    try {
      parseDraftAttentionSpec(spec)
      expect.unreachable()
    } catch (e) {
      expect(GuidekitError.isInstance(e) && e.code).toBe('INVALID_ARGUMENT')
    }
  })
})

describe('draftFeeds', () => {
  const info = { blocks: 64, inputs: defaultDraftInputNames }
  it('row-topk: dense flag and round(keep * S) blocks', () => {
    const f = draftFeeds({ ...info, selection: 'row-topk' }, { keep: 0.1, dense: true })
    expect(f.draft_dense).toEqual({ type: 'bool', data: Uint8Array.of(1), dims: [1] })
    expect(f.draft_blocks?.data).toEqual(BigInt64Array.of(6n))
    expect(f.draft_global_blocks).toBeUndefined()
  })
  it('global-percentile: per-head count and the per-row cap', () => {
    const f = draftFeeds({ ...info, selection: 'global-percentile' }, { keep: 0.1 })
    expect(f.draft_dense?.data).toEqual(Uint8Array.of(0))
    expect(f.draft_blocks?.data).toEqual(BigInt64Array.of(13n)) // ceil(2 * 0.1 * 64)
    expect(f.draft_global_blocks?.data).toEqual(BigInt64Array.of(BigInt(4096 - Math.floor(0.9 * 4096) + 1)))
    expect(() => draftFeeds({ ...info, selection: 'global-percentile' }, { keep: 0.1, maxBlocksPerRow: 65 })).toThrow(GuidekitError)
  })
})

describe('schedule helpers', () => {
  it('isDenseStep runs the first round(denseSteps * steps) steps dense', () => {
    expect(Array.from({ length: 10 }, (_, i) => isDenseStep(i, 10, 0.3))).toEqual([true, true, true, false, false, false, false, false, false, false])
  })
  it('defaultWindow picks a square window with at least 16 blocks per frame', () => {
    expect(defaultWindow({ height: 32, width: 32 })).toEqual({ height: 8, width: 8 })
    expect(defaultWindow({ height: 7, width: 7 })).toEqual({ height: 2, width: 2 }) // padded to 8x8
  })
})
