import { GuidekitError } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { draftGeometry, reorderIndices, restoreIndices, validTokensPerBlock } from './layout.js'

/**
 * The official permutation, re-expressed from its description (`draft_attention.py::generate_reorg_indices`
 * with part_size = latent_w * pool_h, block_size = latent_w, sub_block_size = pool_w): inside each strip
 * of pool_h rows, for each window column, for each row of the strip, take pool_w tokens.
 */
function officialReorg(totalLen: number, latentW: number, poolH: number, poolW: number): number[] {
  const partSize = latentW * poolH
  const blockSize = latentW
  const subBlockSize = poolW
  const pattern: number[] = []
  for (let c = 0; c < blockSize / subBlockSize; c++) {
    for (let b = 0; b < partSize / blockSize; b++) {
      const start = b * blockSize + c * subBlockSize
      for (let i = 0; i < subBlockSize; i++) pattern.push(start + i)
    }
  }
  const out: number[] = []
  for (let p = 0; p < totalLen / partSize; p++) for (const i of pattern) out.push(p * partSize + i)
  return out
}

describe('reorderIndices', () => {
  it.each([
    [{ frames: 1, height: 4, width: 4 }, { height: 2, width: 2 }],
    [{ frames: 3, height: 8, width: 12 }, { height: 4, width: 3 }],
    [{ frames: 2, height: 16, width: 32 }, { height: 8, width: 16 }],
    [{ frames: 1, height: 6, width: 10 }, { height: 6, width: 5 }],
  ])('equals the official reorg_idx on grid %o, window %o', (grid, window) => {
    const g = draftGeometry({ grid, window })
    expect(g.padded).toBe(false)
    expect([...reorderIndices(g)]).toEqual(officialReorg(g.gridTokens, grid.width, window.height, window.width))
  })

  it('makes each window contiguous, in draft-token order (frame, window row, window column)', () => {
    const g = draftGeometry({ grid: { frames: 2, height: 4, width: 6 }, window: { height: 2, width: 3 } })
    const r = reorderIndices(g)
    // Block 1 of frame 0 = rows 0-1, columns 3-5.
    expect([...r.subarray(6, 12)]).toEqual([3, 4, 5, 9, 10, 11])
    // Block 4 = frame 1, first window.
    expect([...r.subarray(24, 30)]).toEqual([24, 25, 26, 30, 31, 32])
  })

  it('pads grids the window does not divide, and restore is its inverse', () => {
    const g = draftGeometry({ grid: { frames: 2, height: 7, width: 7 }, window: { height: 2, width: 2 } })
    expect(g).toMatchObject({ paddedHeight: 8, paddedWidth: 8, blocks: 32, blockSize: 4, padded: true })
    const r = reorderIndices(g)
    const restore = restoreIndices(g)
    expect(r.filter((t) => t < 0).length).toBe(2 * (64 - 49))
    for (let t = 0; t < g.gridTokens; t++) expect(r[restore[t]!]).toBe(t)
    const real = [...r].filter((t) => t >= 0).sort((a, b) => a - b)
    expect(real).toEqual(Array.from({ length: g.gridTokens }, (_, i) => i))
    const valid = validTokensPerBlock(g)
    expect(valid[0]).toBe(4)
    expect(valid[3]).toBe(2) // the last window column of the first strip covers column 6 only
    expect(valid[15]).toBe(1) // bottom-right corner
  })

  it('rejects windows larger than the grid and invalid grids with a clear error', () => {
    expect(() => draftGeometry({ grid: { frames: 1, height: 4, width: 4 }, window: { height: 8, width: 8 } })).toThrow(/larger than/)
    try {
      draftGeometry({ grid: { frames: 0, height: 4, width: 4 }, window: { height: 2, width: 2 } })
      expect.unreachable()
    } catch (e) {
      expect(GuidekitError.isInstance(e) && e.code).toBe('INVALID_ARGUMENT')
    }
  })
})
