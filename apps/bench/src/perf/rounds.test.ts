import { describe, expect, it } from 'vitest'
import { median } from '../timing.js'
import { roundSpeedup, stillTimed } from './rounds.js'

describe('bench:perf rounds', () => {
  it('median of odd and even counts', () => {
    expect(median([3, 1, 2])).toBe(2)
    expect(median([4, 1, 3, 2])).toBe(2.5)
  })

  it('keeps every guidekit contender and the torch modes within 2x of the fastest torch mode', () => {
    const kept = stillTimed([
      { torch: true, median: 460 },
      { torch: true, median: 900 },
      { torch: true, median: 5000 },
      { torch: false, median: 210 },
      { torch: false, median: 4000 },
    ])
    expect(kept).toEqual([0, 1, 3, 4])
  })

  it('gives the ratio of medians with a reproducible interval around it', () => {
    const torch = [458, 474, 568, 413, 473, 520, 440, 495]
    const ours = [300, 308, 217, 211, 211, 240, 230, 215]
    const a = roundSpeedup(torch, ours, 8)
    expect(a).not.toBeNull()
    expect(a?.rounds).toBe(8)
    expect(a?.speedup).toBeCloseTo(median(torch) / median(ours), 12)
    expect(a?.interval[0]).toBeLessThanOrEqual(a?.speedup as number)
    expect(a?.interval[1]).toBeGreaterThanOrEqual(a?.speedup as number)
    expect(roundSpeedup(torch, ours, 8)).toEqual(a)
    expect(roundSpeedup(torch, ours, 64)?.interval).not.toEqual(a?.interval)
  })

  it('pairs the rounds: a drift both sides share does not widen the interval', () => {
    const drift = [1, 1.5, 1, 1.5, 1, 1.5, 1, 1.5, 1, 1.5]
    const paired = roundSpeedup(drift.map((d) => 400 * d), drift.map((d) => 200 * d), 8)
    expect(paired?.interval[0]).toBeCloseTo(2, 12)
    expect(paired?.interval[1]).toBeCloseTo(2, 12)
    // the same times with the guidekit rounds shifted against the torch ones: the drift no longer cancels
    const unpaired = roundSpeedup(drift.map((d) => 400 * d), [...drift.slice(1), drift[0] as number].map((d) => 200 * d), 8)
    expect((unpaired?.interval[1] as number) - (unpaired?.interval[0] as number)).toBeGreaterThan(0.5)
  })

  it('uses only the rounds both sides ran and needs two of them', () => {
    expect(roundSpeedup([400, 410, 420], [200, 205], 8)?.rounds).toBe(2)
    expect(roundSpeedup([400], [200], 8)).toBeNull()
  })
})
