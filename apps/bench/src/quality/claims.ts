// Each paper's headline claim, decided from paired bootstrap intervals over images (verdicts.ts). A claim is
// judged per setting (generator, sampler, steps, and scale or keep ratio where it has several), always
// between rows on the same seeds and classes at the largest image count they share; the claim is supported
// when every setting supports it, refuted when any setting refutes it, and inconclusive otherwise.
import { meanReplicates, percentileInterval, differenceReplicates, resampleCounts, RESAMPLES } from './bootstrap.js'
import { CLAIM_SAVING } from './configs.js'
import type { InversionResult } from './inversion.js'
import { TEXT_TO_IMAGE } from './models.js'
import type { Row } from './runner.js'
import { allOf, atCommonSize, below, pairedTest, requirement, single, type Test, type Verdict } from './verdicts.js'

/** FD may be this much worse (relative to the baseline's FD at the compared size) and still count as "no worse". */
export const FD_MARGIN = 0.05
/** Accuracy may be this much lower (absolute) and still count as unchanged. */
export const ACCURACY_MARGIN = 0.01
/** The NFE saving an AG/LinearAG row must reach to be judged as "about 25% fewer NFE". */
export const MIN_SAVING = 0.2

export interface ClaimUnit {
  /** The setting, e.g. `fashion-dit euler 20 steps, w=5`. */
  readonly setting: string
  readonly verdict: Verdict
  readonly tests: readonly Test[]
}

export interface Claim {
  readonly paper: string
  readonly claim: string
  /** The decision rule, as applied. */
  readonly rule: string
  readonly verdict: Verdict
  readonly units: readonly ClaimUnit[]
  /** What else was measured (curves, counts) or why nothing was. */
  readonly evidence: string
}

type Inversion = InversionResult & { group: string }

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a')

/** Rows grouped by setting, then by configuration id (every cached size of it, ascending). */
function settings(rows: readonly Row[]): Map<string, Map<string, Row[]>> {
  const out = new Map<string, Map<string, Row[]>>()
  for (const r of rows) {
    const k = `${r.generator} ${r.sampler} ${r.steps} steps`
    const g = out.get(k) ?? new Map<string, Row[]>()
    g.set(r.id, [...(g.get(r.id) ?? []), r].sort((a, b) => a.images - b.images))
    out.set(k, g)
  }
  return out
}
const matches = (sizes: readonly Row[], strategy: string, params: Record<string, number>) => {
  const r = sizes[0]
  return r !== undefined && r.strategy === strategy && Object.entries(params).every(([k, v]) => r.params[k] === v)
}
const find = (g: Map<string, Row[]>, strategy: string, params: Record<string, number> = {}) => [...g.values()].filter((s) => matches(s, strategy, params))

function claim(paper: string, text: string, rule: string, units: ClaimUnit[], evidence: string[], notMeasured: string): Claim {
  return { paper, claim: text, rule, verdict: allOf(units.map((u) => u.verdict)), units, evidence: units.length ? evidence.join('; ') : `not measured: ${notMeasured}` }
}
const unit = (setting: string, tests: Test[]): ClaimUnit => ({ setting, verdict: allOf(tests.map((t) => t.verdict)), tests })

/** FD no worse than `baseline` (within FD_MARGIN) and, when asked, accuracy within ACCURACY_MARGIN. */
function sameQuality(x: Row, baseline: Row, withAccuracy: boolean): Test[] {
  const tests = [pairedTest({ a: single(x.label, x), b: single(baseline.label, baseline), metric: 'frechetDistance', name: 'FD', bound: FD_MARGIN * baseline.frechetDistance, direction: 'below' })]
  if (withAccuracy) tests.push(pairedTest({ a: single(x.label, x), b: single(baseline.label, baseline), metric: 'accuracy', name: 'acc', bound: -ACCURACY_MARGIN, direction: 'above' }))
  return tests
}

function apgClaim(groups: Map<string, Map<string, Row[]>>): Claim {
  const units: ClaimUnit[] = []
  const evidence: string[] = []
  for (const [k, g] of groups) {
    for (const apgSizes of find(g, 'apg')) {
      const w = (apgSizes[0] as Row).params.scale as number
      const pair = w >= 5 ? atCommonSize([apgSizes, find(g, 'cfg', { scale: w })[0] ?? []]) : undefined
      if (!pair) continue
      const [a, c] = pair as [Row, Row]
      const saturation = TEXT_TO_IMAGE.has(a.generator) ? ('whiteFraction' as const) : ('clippedFraction' as const)
      units.push(
        unit(`${k}, w=${w}`, [
          ...sameQuality(a, c, false),
          pairedTest({ a: single(a.label, a), b: single(c.label, c), metric: saturation, name: saturation === 'whiteFraction' ? 'white' : 'clip', bound: 0, direction: 'below' }),
        ]),
      )
      evidence.push(`${k}, w=${w} (n=${a.images}): contrast ${f(c.contrast, 3)} (CFG) vs ${f(a.contrast, 3)} (APG), white ${f(c.whiteFraction * 100)}% vs ${f(a.whiteFraction * 100)}%`)
    }
  }
  return claim(
    'APG (Sadat et al., arXiv 2410.02416)',
    'At high guidance scales APG oversaturates less than CFG (fewer clipped pixels) with FD no worse.',
    `Per setting and scale w >= 5: supported if the 95% paired interval of FD(APG) - FD(CFG) lies below +${FD_MARGIN * 100}% of FD(CFG) and that of clipped fraction(APG) - clipped fraction(CFG) lies below 0 (text-to-image: the white-pixel fraction, as the VAE decode clamps); refuted if either interval lies entirely above its bound; otherwise inconclusive.`,
    units,
    evidence,
    'no setting has CFG and APG at a scale >= 5',
  )
}

/** Relative distance within which CFG++'s matched scale counts as a measured CFG scale. */
const MATCH_TOLERANCE = 0.005

function cfgPlusPlusClaim(groups: Map<string, Map<string, Row[]>>): Claim {
  const units: ClaimUnit[] = []
  const evidence: string[] = []
  for (const [k, g] of groups) {
    const pps = find(g, 'cfg++')
    const cfgs = find(g, 'cfg').sort((a, b) => (a[0]?.params.scale as number) - (b[0]?.params.scale as number))
    if (!pps.length || !cfgs.length) continue
    const tests: Test[] = []
    for (const pp of pps) {
      // lambda is rounded, so its matched scale lands near, not on, the scale it was chosen for (2.999 for
      // 3): within MATCH_TOLERANCE of a measured scale it is compared at that scale.
      const w = Number(pp[0]?.extra.effectiveCfgScale)
      const tol = MATCH_TOLERANCE * w
      const lo = [...cfgs].reverse().find((s) => (s[0]?.params.scale as number) <= w + tol)
      const hi = cfgs.find((s) => (s[0]?.params.scale as number) >= w - tol)
      const rows = lo && hi ? atCommonSize([pp, lo, hi]) : undefined
      if (!rows) {
        evidence.push(`${k}: ${pp[0]?.label} (matched w ${f(w)}) is outside the CFG sweep or has no common size`)
        continue
      }
      const [p, c0, c1] = rows as [Row, Row, Row]
      const x0 = c0.params.scale as number
      const x1 = c1.params.scale as number
      const t = x1 > x0 ? (w - x0) / (x1 - x0) : 0
      const mix = { label: x1 > x0 ? `cfg w=${f(w)} (interpolated)` : c0.label, parts: x1 > x0 ? ([[1 - t, c0], [t, c1]] as const) : ([[1, c0]] as const) }
      tests.push(pairedTest({ a: single(`${p.label} (~w ${f(w)})`, p), b: mix, metric: 'frechetDistance', name: 'FD', bound: 0, direction: 'below' }))
    }
    const sweep = atCommonSize([...pps, ...cfgs.filter((s) => (s[0]?.params.scale as number) > 1)])
    if (sweep) {
      // The best of each sweep by point estimate, then a paired test between those two rows.
      const bestOf = (rows: readonly Row[]) => rows.reduce((m, r) => (r.frechetDistance < m.frechetDistance ? r : m))
      const a = bestOf(sweep.slice(0, pps.length))
      const b = bestOf(sweep.slice(pps.length))
      tests.push(pairedTest({ a: single(`best CFG++: ${a.label}`, a), b: single(`best CFG: ${b.label}`, b), metric: 'frechetDistance', name: 'FD', bound: FD_MARGIN * b.frechetDistance, direction: 'below' }))
    }
    if (tests.length) units.push(unit(k, tests))
  }
  return claim(
    'CFG++ (Chung et al., arXiv 2406.08070)',
    'Better FD than CFG at matched guidance strength, and the best FD over the sweep no worse.',
    `Per setting: CFG++ runs at the lambdas whose first-order matched CFG scale (mean over the plan of lambda sigma_i / (sigma_i - sigma_{i+1})) is a measured CFG scale; supported if at every such point the 95% paired interval of FD(CFG++) - FD(CFG at the matched scale, linearly interpolated between measured scales; within ${MATCH_TOLERANCE * 100}% of a measured scale, that scale) lies below 0 and that of FD(best CFG++) - FD(best CFG, w > 1) (the rows with the lowest FD of each sweep) lies below +${FD_MARGIN * 100}% of the best CFG FD; refuted if any of these intervals lies entirely above its bound; otherwise inconclusive.`,
    units,
    evidence,
    'no setting has CFG++ and CFG rows',
  )
}

function inversionClaim(inversions: readonly Inversion[]): Claim {
  const units: ClaimUnit[] = []
  for (const i of inversions) {
    const n = i.images
    const counts = resampleCounts(n, { resamples: RESAMPLES })
    const rmse = (v: readonly number[]) => meanReplicates(v, counts).map(Math.sqrt)
    const interval = percentileInterval(differenceReplicates(rmse(i.perImageMse.cfgPlusPlus), rmse(i.perImageMse.cfg)))
    const test: Test = { quantity: `RMSE(cfg++ lambda=${i.lambda}) - RMSE(cfg w=${f(i.cfgScale)})`, rows: [`inversion ${i.group}`], images: n, estimate: i.cfgPlusPlusRmse - i.cfgRmse, interval, bound: 0, verdict: below(interval, 0) }
    units.push(unit(i.group, [test]))
  }
  return claim(
    'CFG++ (Chung et al., arXiv 2406.08070), DDIM inversion',
    'Better DDIM invertibility than CFG: generate, invert with plain DDIM inversion, regenerate; lower round-trip RMSE than CFG at the matched scale.',
    'Per setting: supported if the 95% paired interval (bootstrap over images) of RMSE(CFG++) - RMSE(CFG) lies below 0; refuted if it lies above 0; otherwise inconclusive.',
    units,
    inversions.map((i) => `${i.group}: with fixed-point refinement CFG++ reaches RMSE ${f(i.cfgPlusPlusFixedPointRmse, 4)} over ${i.images} images`),
    'no inversion round trip with per-image errors',
  )
}

function agClaim(groups: Map<string, Map<string, Row[]>>): Claim {
  const units: ClaimUnit[] = []
  const evidence: string[] = []
  for (const [k, g] of groups) {
    for (const strategy of ['ag-cfg', 'linear-ag'] as const) {
      const curve = find(g, strategy).sort((a, b) => (a[0]?.params.saving as number) - (b[0]?.params.saving as number))
      for (const sizes of curve) {
        const first = sizes[0] as Row
        const pair = atCommonSize([sizes, find(g, 'cfg', { scale: first.params.scale as number })[0] ?? []])
        if (!pair) continue
        const [x, c] = pair as [Row, Row]
        const saving = 1 - x.nfe / c.nfe
        if (first.params.saving === CLAIM_SAVING) {
          units.push(
            unit(`${k}, ${strategy === 'ag-cfg' ? 'AG' : 'LinearAG'}`, [
              requirement({ quantity: `NFE saving of ${x.label} vs ${c.label}`, rows: [x, c], estimate: saving, bound: MIN_SAVING, holds: saving >= MIN_SAVING }),
              ...sameQuality(x, c, true),
            ]),
          )
        }
        evidence.push(`${k} ${x.label} (n=${x.images}): NFE ${f(x.nfe, 1)} vs ${f(c.nfe, 1)} (-${f(saving * 100, 0)}%), FD ${f(x.frechetDistance)} [${f(x.frechetDistanceCi[0])}, ${f(x.frechetDistanceCi[1])}] vs ${f(c.frechetDistance)}, acc ${f(x.accuracy, 3)} vs ${f(c.accuracy, 3)}`)
      }
    }
  }
  return claim(
    'Adaptive Guidance (Castillo et al., arXiv 2312.12487)',
    'About 25% fewer NFE than CFG at essentially unchanged quality (AG, and LinearAG).',
    `Protocol: AG's threshold is the one whose NFE on a calibration set (own seeds) is closest to ${(1 - CLAIM_SAVING) * 100}% of CFG's at the same scale; LinearAG predicts every other step (${CLAIM_SAVING * 100}% fewer NFE). Per setting and method: supported if the measured NFE saving is >= ${MIN_SAVING * 100}%, the 95% paired interval of FD - FD(CFG) lies below +${FD_MARGIN * 100}% of FD(CFG) and that of accuracy - accuracy(CFG) lies above -${ACCURACY_MARGIN * 100} points; refuted if either interval lies entirely beyond its bound; otherwise inconclusive.`,
    units,
    evidence,
    'no setting has calibrated AG or LinearAG rows with their CFG baseline',
  )
}

function rlgClaim(groups: Map<string, Map<string, Row[]>>, note: string | undefined): Claim {
  const units: ClaimUnit[] = []
  const evidence: string[] = []
  for (const [k, g] of groups) {
    const byWeight = find(g, 'rlg').sort((a, b) => (a[0]?.params.weight as number) - (b[0]?.params.weight as number))
    const rows = byWeight.length >= 3 ? atCommonSize(byWeight) : undefined
    if (!rows) continue
    const tests = rows.slice(1).map((r, i) => pairedTest({ a: single(`w=${r.params.weight}`, r), b: single(`w=${(rows[i] as Row).params.weight}`, rows[i] as Row), metric: 'reward', name: 'reward', bound: 0, direction: 'above' }))
    units.push(unit(k, tests))
    evidence.push(`${k}: ` + rows.map((r) => `w=${r.params.weight}: FD ${f(r.frechetDistance)}, acc ${f(r.accuracy, 3)}`).join(', '))
  }
  return claim(
    'RLG (Reinforcement-learning guidance, jinluo12345/Reinforcement-learning-guidance)',
    'The reward follows w: strictly increasing over the measured weights (interpolating below 1, extrapolating above).',
    'Per setting: supported if for every consecutive pair of weights the 95% paired interval of reward(w_next) - reward(w) lies above 0; refuted if any lies entirely below 0; otherwise inconclusive.',
    units,
    evidence,
    note ?? 'no RLG rows',
  )
}

function draftClaim(groups: Map<string, Map<string, Row[]>>, note: string | undefined): Claim {
  const units: ClaimUnit[] = []
  for (const [k, g] of groups) {
    for (const sizes of find(g, 'draft-attention')) {
      const first = sizes[0] as Row
      const pair = atCommonSize([sizes, find(g, 'cfg', { scale: first.params.scale as number })[0] ?? []])
      if (pair) units.push(unit(`${k}, keep ${first.params.keep}`, sameQuality(pair[0] as Row, pair[1] as Row, true)))
    }
  }
  return claim(
    'DraftAttention (arXiv 2505.14708)',
    'Quality is preserved at the tested keep ratios.',
    `Per setting and keep ratio: supported if the 95% paired interval of FD(draft) - FD(dense) lies below +${FD_MARGIN * 100}% of FD(dense) and that of accuracy(draft) - accuracy(dense) above -${ACCURACY_MARGIN * 100} points; refuted if either lies entirely beyond its bound; otherwise inconclusive.`,
    units,
    [],
    note ?? 'no draft-attention rows',
  )
}

/** Every claim with its verdict, from every cached size of every configuration (and the inversion round trips). */
export function evaluateClaims(rows: readonly Row[], inversions: readonly Inversion[], notes: { draft?: string; rl?: string }): Claim[] {
  const groups = settings(rows)
  return [apgClaim(groups), cfgPlusPlusClaim(groups), inversionClaim(inversions), agClaim(groups), rlgClaim(groups, notes.rl), draftClaim(groups, notes.draft)]
}

/** `id@n` of every row a claim's test uses. */
export function rowsUsedByClaims(claims: readonly Claim[]): Set<string> {
  const used = new Set<string>()
  for (const c of claims) for (const u of c.units) for (const t of u.tests) for (const id of t.rows) used.add(`${id}@${t.images}`)
  return used
}
