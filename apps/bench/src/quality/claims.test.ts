import { describe, expect, it } from 'vitest'
import { evaluateClaims, sameQuality } from './claims.js'
import { quickGrid } from './configs.js'
import type { Row } from './runner.js'

const row = (strategy: string, params: Record<string, number>, m: Partial<Row>, extra: Record<string, number> = {}): Row => ({
  id: `${strategy}-${JSON.stringify(params)}`,
  generator: 'fashion-dit',
  strategy,
  label: strategy,
  params,
  steps: 10,
  sampler: 'euler',
  images: 100,
  nfe: 20,
  secondsPerImage: 0.1,
  accuracy: 0.9,
  frechetDistance: 10,
  meanIntensity: 0.3,
  contrast: 0.3,
  clippedFraction: 0.01,
  whiteFraction: 0.01,
  reward: -500,
  diversity: 5,
  guidance: {},
  extra,
  modelSha: '',
  measuredAt: '',
  ...m,
})
const verdict = (rows: Row[], paper: string, inversion = [] as Parameters<typeof evaluateClaims>[2]) =>
  evaluateClaims(rows, quickGrid, inversion, {}).find((c) => c.paper.startsWith(paper))

describe('quality claims', () => {
  it('APG: supported only with less clipping and FD no worse at high scales', () => {
    const base = [row('cfg', { scale: 5 }, { clippedFraction: 0.05, contrast: 0.4 }), row('cfg', { scale: 7.5 }, { clippedFraction: 0.08, contrast: 0.45, frechetDistance: 12 })]
    const good = [row('apg', { scale: 5 }, { clippedFraction: 0.02, contrast: 0.35 }), row('apg', { scale: 7.5 }, { clippedFraction: 0.03, contrast: 0.36, frechetDistance: 11 })]
    expect(verdict([...base, ...good], 'APG')?.supported).toBe(true)
    const worseFd = [good[0] as Row, { ...(good[1] as Row), frechetDistance: 14 }]
    expect(verdict([...base, ...worseFd], 'APG')?.supported).toBe(false)
    expect(verdict(base, 'APG')?.supported).toBeNull()
  })

  it('AG: needs >= 20% fewer NFE at unchanged FD and accuracy', () => {
    const cfg = row('cfg', { scale: 3 }, { nfe: 20 })
    const ag = row('ag-cfg', { scale: 3, threshold: 0.99 }, { nfe: 15, frechetDistance: 10.3 })
    expect(sameQuality(ag, cfg)).toBe(true)
    expect(verdict([cfg, ag], 'Adaptive')?.supported).toBe(true)
    expect(verdict([cfg, { ...ag, nfe: 18 }], 'Adaptive')?.supported).toBe(false)
    expect(verdict([cfg, { ...ag, accuracy: 0.85 }], 'Adaptive')?.supported).toBe(false)
  })

  it('RLG: the reward must increase strictly with w', () => {
    const rl = [0, 0.5, 1, 1.5, 2].map((w, i) => row('rlg', { scale: 3, weight: w }, { reward: -500 + 10 * i }))
    expect(verdict(rl, 'RLG')?.supported).toBe(true)
    const flat = rl.map((r, i) => (i === 4 ? { ...r, reward: -480 } : r))
    expect(verdict(flat, 'RLG')?.supported).toBe(false)
  })

  it('CFG++: compares FD at the matched CFG scale (interpolated) and the inversion error', () => {
    const cfgRows = [1, 3, 5].map((w) => row('cfg', { scale: w }, { frechetDistance: 10 + Math.abs(w - 3) }))
    const pp = row('cfg++', { lambda: 0.8 }, { frechetDistance: 9 }, { effectiveCfgScale: 2 })
    const inv = [{ group: 'g', images: 10, steps: 10, lambda: 0.8, cfgScale: 2, cfgPlusPlusRmse: 0.01, cfgPlusPlusFixedPointRmse: 0.001, cfgRmse: 0.05 }]
    const c = verdict([...cfgRows, pp], 'CFG++', inv)
    expect(c?.supported).toBe(true)
    expect(c?.evidence).toContain('vs CFG 11.00 (interpolated)')
    expect(verdict([...cfgRows, { ...pp, frechetDistance: 11.5 }], 'CFG++', inv)?.supported).toBe(false)
    const inversionClaim = (i: typeof inv) => evaluateClaims([...cfgRows, pp], quickGrid, i, {}).find((x) => x.paper.includes('DDIM inversion'))
    expect(inversionClaim(inv)?.supported).toBe(true)
    expect(inversionClaim([{ ...inv[0]!, cfgPlusPlusRmse: 0.1 }])?.supported).toBe(false)
    expect(inversionClaim([])?.supported).toBeNull()
  })

  it('DraftAttention: not measured without rows, with the reason', () => {
    const c = evaluateClaims([], quickGrid, [], { draft: 'the DiT is not trained yet' }).find((x) => x.paper.startsWith('DraftAttention'))
    expect(c?.supported).toBeNull()
    expect(c?.evidence).toContain('not trained yet')
  })
})
