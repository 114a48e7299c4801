// The markdown report of the quality benchmark.
import type { AgCalibration } from './calibration.js'
import type { Claim } from './claims.js'
import type { InversionResult } from './inversion.js'
import type { Row } from './runner.js'
import type { Interval } from './bootstrap.js'

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a')
const ci = (i: Interval | null | undefined, d = 2) => (i ? `[${f(i[0], d)}, ${f(i[1], d)}]` : '')
const word = { supported: 'Supported', refuted: 'Refuted', inconclusive: 'Inconclusive' } as const

export interface ReportMeta {
  readonly mode: string
  readonly command: string
  readonly steps: readonly number[]
  readonly seeds: string
  readonly resamples: number
  readonly threads: number
  readonly wallSeconds: number
  readonly skipped: readonly string[]
  readonly generatedAt: string
  readonly frechetFloor: Record<string, number>
}

export function markdownReport(options: {
  meta: ReportMeta
  rows: readonly Row[]
  claims: readonly Claim[]
  inversions: readonly (InversionResult & { group: string })[]
  calibrations: readonly AgCalibration[]
  reference: Record<string, unknown>
  plots: readonly string[]
}): string {
  const { meta, rows, claims, inversions, calibrations, reference, plots } = options
  const sat = (reference.saturation ?? {}) as Record<string, number>
  const lines: string[] = [
    '# Quality benchmark',
    '',
    `Mode **${meta.mode}** (\`${meta.command}\`): steps ${meta.steps.join(', ')}, ${meta.threads} threads, generated ${meta.generatedAt} in ${meta.wallSeconds} s (cached rows are reused). ` +
      `Every configuration runs on the same images (${meta.seeds}); each is listed at its largest size, and again at any smaller size a claim compares it at.`,
    '',
    `Metrics by @guidekit/eval with fashion-eval: accuracy = evaluator argmax equals the requested class; FD = Frechet distance of evaluator features to the Fashion-MNIST test set; ` +
      `clip = values outside [-1, 1]; white = pixels at 255; contrast = mean per-image std in [0, 1]; reward = -PNG bytes (the RL reward); diversity = mean within-class feature distance. ` +
      `Seconds per image are wall-clock on a shared 2-core machine: compare them within one run only.`,
    '',
    `**Intervals.** [low, high] are 95% bootstrap intervals over images (${meta.resamples} resamples; resample r of every row of size n draws the same image indices, so rows on the same seeds are paired): percentile intervals for means (accuracy), ` +
      `and for FD the percentile interval shifted down by the bootstrap's own bias (mean of the resamples minus the estimate), because a resample repeats about a third of its images and its FD is inflated by that (its plain percentile interval would sit above the point estimate). ` +
      `FD is also biased upwards at small n: real test images score ${Object.entries(meta.frechetFloor)
        .map(([n, v]) => `${v} at n = ${n}`)
        .join(', ')}. Compare FD only between rows of the same n; the claims do so, on paired differences with the same bias correction.`,
    '',
    `Real test images: accuracy ${f(Number(reference.accuracy), 3)}, clip 0%, white ${f((sat.whiteFraction ?? Number.NaN) * 100)}%, contrast ${f(sat.contrast ?? Number.NaN, 3)}, reward ${f(Number(reference.reward), 1)}, diversity (100/class) ${f(Number(reference.diversity100PerClass))}.`,
    '',
    '| generator | sampler | steps | configuration | images | NFE | s/img | acc | acc 95% | FD | FD 95% | clip % | white % | contrast | reward | diversity | claims |',
    '| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | :---: |',
  ]
  for (const r of rows) {
    const label = r.strategy === 'cfg++' ? `${r.label} (~w ${f(Number(r.extra.effectiveCfgScale))})` : r.label
    lines.push(
      `| ${r.generator} | ${r.sampler} | ${r.steps} | ${label} | ${r.images} | ${f(r.nfe, 1)} | ${f(r.secondsPerImage, 3)} | ${f(r.accuracy, 3)} | ${ci(r.accuracyCi, 3)} | ${f(r.frechetDistance)} | ${ci(r.frechetDistanceCi)} | ${f(r.clippedFraction * 100)} | ${f(r.whiteFraction * 100)} | ${f(r.contrast, 3)} | ${f(r.reward, 1)} | ${f(r.diversity)} | ${r.usedByClaims ? 'yes' : ''} |`,
    )
  }
  if (calibrations.length) {
    lines.push('', '## Adaptive Guidance calibration', '', "AG's threshold per target saving, chosen on a calibration set with its own seeds (one CFG run: AG's NFE at any threshold follows from the recorded similarities), then measured on the evaluation images.", '')
    lines.push('| setting | CFG w | calibration images | target saving | threshold | predicted NFE | measured NFE |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
    for (const c of calibrations) {
      for (const [saving, t] of Object.entries(c.thresholds)) {
        const measured = rows.filter((r) => r.generator === c.generator && r.sampler === c.sampler && r.steps === c.steps && r.strategy === 'ag-cfg' && r.params.threshold === t)
        lines.push(`| ${c.generator} ${c.sampler} ${c.steps} steps | ${c.scale} | ${c.images} | ${Number(saving) * 100}% | ${t} | ${f(c.predictedNfe[saving] ?? Number.NaN, 1)} | ${measured.map((r) => `${f(r.nfe, 1)} (n=${r.images})`).join(', ')} |`)
      }
    }
  }
  if (inversions.length) {
    lines.push('', '## DDIM inversion round trip (generate, invert, regenerate)', '', '| setting | images | CFG++ lambda | RMSE CFG++ | RMSE CFG++ (fixed point x2) | CFG w (matched) | RMSE CFG |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
    for (const i of inversions) lines.push(`| ${i.group} | ${i.images} | ${i.lambda} | ${f(i.cfgPlusPlusRmse, 4)} | ${f(i.cfgPlusPlusFixedPointRmse, 4)} | ${f(i.cfgScale)} | ${f(i.cfgRmse, 4)} |`)
  }
  lines.push('', '## Claims', '', 'Each test is a 95% paired bootstrap interval of a difference between rows on the same seeds and classes, at the largest image count both rows have; every interval stands on its own (no multiplicity correction).', '')
  for (const c of claims) {
    lines.push(`### ${c.paper}: **${word[c.verdict]}**`, '', `*Claim.* ${c.claim}`, '', `*Rule.* ${c.rule}`, '')
    if (c.units.length) {
      lines.push('| setting | test | images | estimate | 95% interval | bound | outcome |', '| --- | --- | ---: | ---: | --- | ---: | --- |')
      for (const u of c.units) {
        for (const t of u.tests) lines.push(`| ${u.setting} | ${t.quantity} | ${t.images} | ${f(t.estimate, 4)} | ${ci(t.interval, 4)} | ${f(t.bound, 4)} | ${t.verdict} |`)
        lines.push(`| ${u.setting} | **setting** | | | | | **${u.verdict}** |`)
      }
      lines.push('')
    }
    if (c.evidence) lines.push(c.units.length ? `*Also measured.* ${c.evidence}` : `*${c.evidence}*`, '')
  }
  if (plots.length) lines.push('## Plots', '', ...plots.map((p) => `![${p}](${p})`), '')
  if (meta.skipped.length) lines.push('## Skipped', '', ...meta.skipped.map((s) => `- ${s}`), '')
  return `${lines.join('\n')}\n`
}
