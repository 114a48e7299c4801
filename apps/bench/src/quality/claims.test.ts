import { RandomStream } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { evaluateClaims, rowsUsedByClaims, type Claim } from './claims.js'
import type { InversionResult } from './inversion.js'
import type { Row } from './runner.js'
import { above, allOf, below, pairedTest, single } from './verdicts.js'

const RESAMPLES = 1000
const normals = (seed: number, count: number) => {
  const s = new RandomStream(seed)
  return Array.from({ length: count }, () => s.nextNormal())
}
const common = normals(1, RESAMPLES)

/**
 * A synthetic row on the shared seeds: FD replicates = fd + 0.3 x (noise shared by every row, as the same
 * resample indices give) + spread x (the row's own noise); the first `hits` x n images are classified right.
 */
function row(strategy: string, params: Record<string, number>, o: { fd?: number; spread?: number; seed?: number; hits?: number; clip?: number; reward?: number; nfe?: number; images?: number; extra?: Record<string, number> } = {}): Row {
  const n = o.images ?? 400
  const fd = o.fd ?? 4
  const own = normals(o.seed ?? 2, RESAMPLES)
  const k = Math.round((o.hits ?? 0.9) * n)
  const pixels = 784
  return {
    format: 2,
    id: `${strategy}-${JSON.stringify(params)}`,
    generator: 'fashion-dit',
    strategy,
    label: `${strategy} ${JSON.stringify(params)}`,
    params,
    steps: 20,
    sampler: 'euler',
    images: n,
    nfe: o.nfe ?? 40,
    secondsPerImage: 0.1,
    accuracy: k / n,
    accuracyCi: [0, 1],
    frechetDistance: fd,
    frechetDistanceCi: [fd - 1, fd + 1],
    frechetDistanceBias: 0,
    meanIntensity: 0.3,
    contrast: 0.3,
    clippedFraction: o.clip ?? 0.3,
    whiteFraction: 0.01,
    reward: o.reward ?? -600,
    diversity: 5,
    guidance: {},
    extra: o.extra ?? {},
    modelSha: 'test',
    measuredAt: '',
    pixelsPerImage: pixels,
    featureDim: 256,
    classes: 10,
    perImage: {
      correct: Array.from({ length: n }, (_, i) => (i < k ? '1' : '0')).join(''),
      clippedPixels: Array.from({ length: n }, (_, i) => Math.round((o.clip ?? 0.3) * pixels) + (i % 5) - 2),
      whitePixels: new Array<number>(n).fill(8),
      contrast: new Array<number>(n).fill(0.3),
      meanIntensity: new Array<number>(n).fill(0.3),
      reward: Array.from({ length: n }, (_, i) => (o.reward ?? -600) + 40 * ((i % 7) - 3)),
    },
    bootstrap: { seed: 0, resamples: RESAMPLES, frechetDistance: common.map((c, r) => fd + 0.3 * c + (o.spread ?? 0.02) * (own[r] as number)) },
  }
}
const verdictOf = (rows: Row[], paper: string, inversions: (InversionResult & { group: string })[] = []) => evaluateClaims(rows, inversions, {}).find((c) => c.paper.startsWith(paper)) as Claim

describe('decision rules', () => {
  it('below / above: supported beyond the bound, refuted on the wrong side, otherwise inconclusive', () => {
    expect(below([-0.3, -0.1], 0)).toBe('supported')
    expect(below([0.1, 0.3], 0)).toBe('refuted')
    expect(below([-0.1, 0.1], 0)).toBe('inconclusive')
    expect(above([-0.005, 0.02], -0.01)).toBe('supported')
    expect(above([-0.05, -0.02], -0.01)).toBe('refuted')
    expect(allOf(['supported', 'supported'])).toBe('supported')
    expect(allOf(['supported', 'inconclusive'])).toBe('inconclusive')
    expect(allOf(['supported', 'inconclusive', 'refuted'])).toBe('refuted')
    expect(allOf([])).toBe('inconclusive')
  })

  it('pairs only rows of the same size', () => {
    const a = row('cfg', { scale: 3 })
    const b = row('apg', { scale: 3 }, { images: 800 })
    expect(() => pairedTest({ a: single('a', a), b: single('b', b), metric: 'accuracy', name: 'acc', bound: 0, direction: 'above' })).toThrow(/same n/)
  })
})

describe('claims', () => {
  const cfg5 = row('cfg', { scale: 5 }, { clip: 0.3 })
  it('APG: supported with FD within 5% and fewer clipped pixels; refuted when it clips more; inconclusive when FD is too noisy', () => {
    expect(verdictOf([cfg5, row('apg', { scale: 5 }, { fd: 4.05, clip: 0.2, seed: 3 })], 'APG').verdict).toBe('supported')
    expect(verdictOf([cfg5, row('apg', { scale: 5 }, { fd: 4.05, clip: 0.4, seed: 3 })], 'APG').verdict).toBe('refuted')
    expect(verdictOf([cfg5, row('apg', { scale: 5 }, { fd: 4.2, clip: 0.2, spread: 0.5, seed: 3 })], 'APG').verdict).toBe('inconclusive')
    // Scales below 5 are not judged; nothing judged is inconclusive, with the reason.
    const none = verdictOf([row('cfg', { scale: 3 }), row('apg', { scale: 3 }, { clip: 0.1 })], 'APG')
    expect(none.verdict).toBe('inconclusive')
    expect(none.units).toHaveLength(0)
    expect(none.evidence).toMatch(/^not measured/)
  })

  it('compares rows at the largest image count both have', () => {
    const small = row('cfg', { scale: 5 }, { clip: 0.3 })
    const large = row('cfg', { scale: 5 }, { clip: 0.3, images: 800 })
    const apg400 = row('apg', { scale: 5 }, { fd: 4.05, clip: 0.2, seed: 3 })
    expect(verdictOf([small, large, apg400], 'APG').units[0]?.tests[0]?.images).toBe(400)
    const apg800 = row('apg', { scale: 5 }, { fd: 4.05, clip: 0.2, seed: 3, images: 800 })
    const claims = evaluateClaims([small, large, apg400, apg800], [], {})
    expect(claims[0]?.units[0]?.tests[0]?.images).toBe(800)
    expect([...rowsUsedByClaims(claims)].sort()).toEqual([`${apg800.id}@800`, `${large.id}@800`].sort())
  })

  it('AG: needs >= 20% fewer NFE, FD within 5% and accuracy within 1 point of CFG', () => {
    const cfg3 = row('cfg', { scale: 3 }, { nfe: 40 })
    const ag = (o: Parameters<typeof row>[2]) => row('ag-cfg', { scale: 3, saving: 0.25, threshold: 0.998 }, { nfe: 30, fd: 4.05, seed: 4, ...o })
    expect(verdictOf([cfg3, ag({})], 'Adaptive').verdict).toBe('supported')
    expect(verdictOf([cfg3, ag({ nfe: 36 })], 'Adaptive').verdict).toBe('inconclusive')
    expect(verdictOf([cfg3, ag({ hits: 0.85 })], 'Adaptive').verdict).toBe('refuted')
    expect(verdictOf([cfg3, ag({ fd: 5 })], 'Adaptive').verdict).toBe('refuted')
    // Curve points at other savings are reported, not judged.
    const curve = verdictOf([cfg3, ag({}), row('ag-cfg', { scale: 3, saving: 0.35, threshold: 0.99 }, { nfe: 26, fd: 6, seed: 5 })], 'Adaptive')
    expect(curve.verdict).toBe('supported')
    expect(curve.evidence).toContain('NFE 26.0')
    // LinearAG is judged the same way, as its own setting.
    const lin = row('linear-ag', { scale: 3, saving: 0.25 }, { nfe: 30, fd: 4.6, spread: 0.3, seed: 6 })
    const both = verdictOf([cfg3, ag({}), lin], 'Adaptive')
    expect(both.units.map((u) => u.verdict)).toEqual(['supported', 'inconclusive'])
    expect(both.verdict).toBe('inconclusive')
  })

  it('CFG++: FD against CFG interpolated at the matched scale, and best against best', () => {
    const cfgs = [row('cfg', { scale: 2 }, { fd: 5, seed: 7 }), row('cfg', { scale: 3 }, { fd: 4.4, seed: 8 })]
    const pp = (fd: number) => row('cfg++', { matched: 2.5, lambda: 0.8 }, { fd, seed: 9, extra: { effectiveCfgScale: 2.5 } })
    const good = verdictOf([...cfgs, pp(4.2)], 'CFG++ (Chung')
    expect(good.verdict).toBe('supported')
    expect(good.units[0]?.tests[0]?.quantity).toContain('interpolated')
    expect(good.units[0]?.tests[0]?.estimate).toBeCloseTo(4.2 - 4.7, 10)
    expect(verdictOf([...cfgs, pp(5.2)], 'CFG++ (Chung').verdict).toBe('refuted')
    // A rounded lambda lands just beside the scale it was matched to (2.999 for 3): compared at that scale.
    const near = row('cfg++', { matched: 2, lambda: 0.6 }, { fd: 4.8, seed: 9, extra: { effectiveCfgScale: 1.999 } })
    const test = verdictOf([...cfgs, near], 'CFG++ (Chung').units[0]?.tests[0]
    expect(test?.quantity).not.toContain('interpolated')
    expect(test?.estimate).toBeCloseTo(4.8 - 5, 10)
  })

  it('RLG: the reward must rise between every consecutive pair of weights', () => {
    const rl = [0, 0.5, 1].map((w, i) => row('rlg', { scale: 3, weight: w }, { reward: -600 + 20 * i }))
    expect(verdictOf(rl, 'RLG').verdict).toBe('supported')
    const dip = rl.map((r, i) => (i === 2 ? row('rlg', { scale: 3, weight: 1 }, { reward: -620 }) : r))
    expect(verdictOf(dip, 'RLG').verdict).toBe('refuted')
  })

  it('DraftAttention: supported within the margins, with the reason when not measured', () => {
    const dense = row('cfg', { scale: 3 })
    expect(verdictOf([dense, row('draft-attention', { scale: 3, keep: 0.5 }, { fd: 4.1, seed: 10 })], 'DraftAttention').verdict).toBe('supported')
    const none = evaluateClaims([], [], { draft: 'the DiT is not trained yet' }).find((c) => c.paper.startsWith('DraftAttention')) as Claim
    expect(none.verdict).toBe('inconclusive')
    expect(none.evidence).toContain('not trained yet')
  })

  it('DDIM inversion: paired bootstrap of the per-image round-trip errors', () => {
    const n = 100
    const base = normals(40, n).map((v) => 0.04 + 0.01 * Math.abs(v))
    const inversion = (shift: number) => [{ group: 'g', images: n, steps: 10, lambda: 1, cfgScale: 3, cfgPlusPlusRmse: Math.sqrt(base.reduce((s, v) => s + v + shift, 0) / n), cfgPlusPlusFixedPointRmse: 0, cfgRmse: Math.sqrt(base.reduce((s, v) => s + v, 0) / n), perImageMse: { cfgPlusPlus: base.map((v) => v + shift), cfgPlusPlusFixedPoint: base, cfg: base } }]
    expect(verdictOf([], 'CFG++ (Chung et al., arXiv 2406.08070), DDIM', inversion(-0.005)).verdict).toBe('supported')
    expect(verdictOf([], 'CFG++ (Chung et al., arXiv 2406.08070), DDIM', inversion(0.005)).verdict).toBe('refuted')
  })
})
