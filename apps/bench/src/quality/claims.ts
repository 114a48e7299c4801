// Each paper's headline claim, checked against the measured rows. A claim is "supported" only when it holds
// in every measured (generator, sampler, steps) group; the evidence string gives the numbers per group.
import type { Grid } from './configs.js'
import type { InversionResult } from './inversion.js'
import type { Row } from './runner.js'

export interface Claim {
  readonly paper: string
  readonly claim: string
  /** null: not measured (see evidence for why). */
  readonly supported: boolean | null
  /** The verdict per measured (generator, sampler, steps) group; `supported` is true only when all are. */
  readonly byGroup: Readonly<Record<string, boolean>>
  readonly evidence: string
}

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a')
const pct = (x: number, d = 2) => `${(x * 100).toFixed(d)}%`

/** Rows grouped by generator / sampler / steps. */
function groups(rows: readonly Row[]): Map<string, Row[]> {
  const out = new Map<string, Row[]>()
  for (const r of rows) {
    const k = `${r.generator} ${r.sampler} ${r.steps} steps`
    out.set(k, [...(out.get(k) ?? []), r])
  }
  return out
}
const find = (rows: readonly Row[], strategy: string, params: Record<string, number>) =>
  rows.find((r) => r.strategy === strategy && Object.entries(params).every(([k, v]) => r.params[k] === v))

/** "Essentially unchanged" quality: FD within 5% (+0.05 absolute) and accuracy within 1 point. */
export const sameQuality = (row: Row, base: Row) => row.frechetDistance <= base.frechetDistance * 1.05 + 0.05 && row.accuracy >= base.accuracy - 0.01

/** Linear interpolation of CFG's FD at scale w over the measured CFG scales (undefined outside the range). */
function cfgFdAt(rows: readonly Row[], w: number): number | undefined {
  const pts = rows
    .filter((r) => r.strategy === 'cfg')
    .map((r) => [r.params.scale as number, r.frechetDistance] as const)
    .sort((a, b) => a[0] - b[0])
  for (let i = 0; i + 1 < pts.length; i++) {
    const [x0, y0] = pts[i] as readonly [number, number]
    const [x1, y1] = pts[i + 1] as readonly [number, number]
    if (w >= x0 && w <= x1) return y0 + ((w - x0) / (x1 - x0)) * (y1 - y0)
  }
  return undefined
}

/** Records a group's verdict (a group is false once any of its checks fails). */
function mark(groups: Record<string, boolean>, key: string, ok: boolean): void {
  groups[key] = (groups[key] ?? true) && ok
}

export function evaluateClaims(rows: readonly Row[], grid: Grid, inversion: readonly (InversionResult & { group: string })[], notes: { draft?: string; rl?: string }): Claim[] {
  const g = groups(rows)
  const claims: Claim[] = []

  // APG (Sadat et al., arXiv 2410.02416)
  {
    const apgGroups: Record<string, boolean> = {}
    const ev: string[] = []
    let ok = true
    let any = false
    for (const [k, rs] of g) {
      for (const w of grid.apgScales.filter((s) => s >= 5)) {
        const c = find(rs, 'cfg', { scale: w })
        const a = find(rs, 'apg', { scale: w })
        if (!c || !a) continue
        any = true
        const less = a.clippedFraction < c.clippedFraction && a.contrast <= c.contrast
        const fdOk = a.frechetDistance <= c.frechetDistance * 1.05 + 0.05
        ok &&= less && fdOk
        mark(apgGroups, k, less && fdOk)
        ev.push(`${k}, w=${w} (n=${c.images}/${a.images}): clipped ${pct(c.clippedFraction)} (CFG) vs ${pct(a.clippedFraction)} (APG), contrast ${f(c.contrast, 3)} vs ${f(a.contrast, 3)}, white ${pct(c.whiteFraction)} vs ${pct(a.whiteFraction)}, FD ${f(c.frechetDistance)} vs ${f(a.frechetDistance)}`)
      }
    }
    claims.push({
      paper: 'APG (Sadat et al., arXiv 2410.02416)',
      claim: 'At high guidance scales APG oversaturates less than CFG (fewer clipped pixels, lower contrast) with FD no worse (within 5%).',
      supported: any ? ok : null,
      byGroup: apgGroups,
      evidence: any ? ev.join('; ') : 'not measured: no group has CFG and APG at a scale >= 5',
    })
  }

  // CFG++ (Chung et al., arXiv 2406.08070)
  {
    const ev: string[] = []
    let wins = 0
    let total = 0
    let bestOk = true
    const ppGroups: Record<string, boolean> = {}
    for (const [k, rs] of g) {
      const pp = rs.filter((r) => r.strategy === 'cfg++')
      const cf = rs.filter((r) => r.strategy === 'cfg')
      if (!pp.length || !cf.length) continue
      for (const r of pp) {
        const w = Number(r.extra.effectiveCfgScale)
        const ref = cfgFdAt(rs, w)
        if (ref === undefined) {
          ev.push(`${k}, lambda=${r.params.lambda} (~w ${f(w)}): FD ${f(r.frechetDistance)}, outside the CFG sweep`)
          continue
        }
        total++
        if (r.frechetDistance < ref) wins++
        mark(ppGroups, k, r.frechetDistance < ref)
        ev.push(`${k}, lambda=${r.params.lambda} (n=${r.images}, matched w ${f(w)}): FD ${f(r.frechetDistance)} vs CFG ${f(ref)} (interpolated)`)
      }
      const bestPP = Math.min(...pp.map((r) => r.frechetDistance))
      const bestCfg = Math.min(...cf.filter((r) => r.params.scale !== 1).map((r) => r.frechetDistance))
      bestOk &&= bestPP <= bestCfg
      mark(ppGroups, k, bestPP <= bestCfg)
      ev.push(`${k}: best FD CFG++ ${f(bestPP)} vs CFG ${f(bestCfg)}`)
    }
    const fdOk = total > 0 && wins > total / 2 && bestOk
    claims.push({
      paper: 'CFG++ (Chung et al., arXiv 2406.08070)',
      claim: 'Better FD than CFG at matched guidance strength (CFG++ lambda mapped to the mean first-order equivalent CFG scale over the plan; CFG interpolated between measured scales), and the best FD over the sweep no worse.',
      supported: total === 0 ? null : fdOk,
      byGroup: ppGroups,
      evidence: `CFG++ lower at ${wins}/${total} matched points; ${ev.join('; ')}`,
    })
    const inv = inversion.map((i) => `${i.group}: round-trip RMSE CFG++ (lambda ${i.lambda}) ${f(i.cfgPlusPlusRmse, 4)} (with fixed-point refinement ${f(i.cfgPlusPlusFixedPointRmse, 4)}) vs CFG (w ${f(i.cfgScale)}) ${f(i.cfgRmse, 4)} over ${i.images} images`)
    claims.push({
      paper: 'CFG++ (Chung et al., arXiv 2406.08070), DDIM inversion',
      claim: 'Better DDIM invertibility than CFG: generate, invert with plain DDIM inversion, regenerate; lower round-trip RMSE than CFG at the matched scale.',
      supported: inversion.length === 0 ? null : inversion.every((i) => i.cfgPlusPlusRmse < i.cfgRmse),
      byGroup: Object.fromEntries(inversion.map((i) => [i.group, i.cfgPlusPlusRmse < i.cfgRmse])),
      evidence: inv.join('; ') || 'not measured',
    })
  }

  // Adaptive guidance (Castillo et al., arXiv 2312.12487)
  {
    const agGroups: Record<string, boolean> = {}
    const ev: string[] = []
    let ok = true
    let any = false
    for (const [k, rs] of g) {
      for (const [strategy, inner, scale] of [
        ['ag-cfg', 'cfg', grid.agScale],
        ['ag-apg', 'apg', grid.agApgScale],
      ] as const) {
        const base = find(rs, inner, { scale })
        const ags = rs.filter((r) => r.strategy === strategy)
        if (!base || !ags.length) continue
        any = true
        const good = ags.filter((r) => sameQuality(r, base) && 1 - r.nfe / base.nfe >= 0.2)
        ok &&= good.length > 0
        mark(agGroups, `${k} ${strategy}`, good.length > 0)
        ev.push(
          `${k} ${inner} w=${scale} (n=${base.images}; NFE ${f(base.nfe, 1)}, FD ${f(base.frechetDistance)}, acc ${f(base.accuracy, 3)}): ` +
            ags.map((r) => `t=${r.params.threshold} (n=${r.images}): NFE ${f(r.nfe, 1)} (-${pct(1 - r.nfe / base.nfe, 0)}), FD ${f(r.frechetDistance)}, acc ${f(r.accuracy, 3)}`).join(', '),
        )
        const lin = find(rs, 'linear-ag', { scale })
        if (lin && inner === 'cfg') ev.push(`${k} LinearAG: NFE ${f(lin.nfe, 1)} (-${pct(1 - lin.nfe / base.nfe, 0)}), FD ${f(lin.frechetDistance)}, acc ${f(lin.accuracy, 3)}`)
      }
    }
    claims.push({
      paper: 'Adaptive Guidance (Castillo et al., arXiv 2312.12487)',
      claim: 'About 25% fewer NFE at essentially unchanged quality (here: >= 20% fewer NFE with FD within 5% and accuracy within 1 point, for some threshold).',
      supported: any ? ok : null,
      byGroup: agGroups,
      evidence: any ? ev.join('; ') : 'not measured',
    })
  }

  // RLG
  {
    const rlGroups: Record<string, boolean> = {}
    const ev: string[] = []
    let ok = true
    let any = false
    for (const [k, rs] of g) {
      const pts = rs.filter((r) => r.strategy === 'rlg').sort((a, b) => (a.params.weight as number) - (b.params.weight as number))
      if (pts.length < 3) continue
      any = true
      const monotone = pts.every((r, i) => i === 0 || r.reward > (pts[i - 1] as Row).reward)
      ok &&= monotone
      rlGroups[k] = monotone
      ev.push(`${k}: ` + pts.map((r) => `w=${r.params.weight} (n=${r.images}): reward ${f(r.reward, 1)} (FD ${f(r.frechetDistance)}, acc ${f(r.accuracy, 3)})`).join(', '))
    }
    claims.push({
      paper: 'RLG (Reinforcement-learning guidance, jinluo12345/Reinforcement-learning-guidance)',
      claim: 'The reward follows w: strictly increasing over w in {0, 0.5, 1, 1.5, 2} (interpolating below 1, extrapolating above).',
      supported: any ? ok : null,
      byGroup: rlGroups,
      evidence: any ? ev.join('; ') : `not measured: ${notes.rl ?? 'no RLG rows'}`,
    })
  }

  // DraftAttention
  {
    const draftGroups: Record<string, boolean> = {}
    const ev: string[] = []
    let ok = true
    let any = false
    for (const [k, rs] of g) {
      const base = find(rs, 'cfg', { scale: grid.draftScale })
      const ds = rs.filter((r) => r.strategy === 'draft-attention')
      if (!base || !ds.length) continue
      any = true
      ok &&= ds.every((r) => sameQuality(r, base))
      for (const r of ds) draftGroups[`${k} keep ${r.params.keep}`] = sameQuality(r, base)
      ev.push(`${k} dense cfg w=${grid.draftScale} (n=${base.images}): FD ${f(base.frechetDistance)}, acc ${f(base.accuracy, 3)}; ` + ds.map((r) => `keep ${r.params.keep} (n=${r.images}): FD ${f(r.frechetDistance)}, acc ${f(r.accuracy, 3)}`).join(', '))
    }
    claims.push({
      paper: 'DraftAttention (arXiv 2505.14708)',
      claim: 'Quality is preserved at the tested keep ratios (FD within 5% and accuracy within 1 point of dense attention).',
      supported: any ? ok : null,
      byGroup: draftGroups,
      evidence: any ? ev.join('; ') : `not measured: ${notes.draft ?? 'no draft-attention rows'}`,
    })
  }
  return claims
}
