// The markdown report of the quality benchmark.
import type { Claim } from './claims.js'
import type { InversionResult } from './inversion.js'
import type { Row } from './runner.js'

const f = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a')

export function markdownReport(options: {
  meta: { mode: string; imagesPerConfiguration: number; steps: readonly number[]; seeds: string; threads: number; wallSeconds: number; skipped: readonly string[]; generatedAt: string; frechetFloor: Record<string, number> }
  rows: readonly Row[]
  claims: readonly Claim[]
  inversions: readonly (InversionResult & { group: string })[]
  reference: Record<string, unknown>
}): string {
  const { meta, rows, claims, inversions, reference } = options
  const sat = (reference.saturation ?? {}) as Record<string, number>
  const lines: string[] = [
    '# Quality benchmark',
    '',
    `Mode **${meta.mode}**: ${meta.imagesPerConfiguration} images per configuration in this run; each row shows its configuration at the largest size measured (column images; ${meta.seeds}), steps ${meta.steps.join(', ')}, ` +
      `${meta.threads} threads, generated ${meta.generatedAt} in ${meta.wallSeconds} s (cached rows are reused). ` +
      'Command: `pnpm bench:quality' + (meta.mode === 'quick' ? ' --quick' : '') + '`.',
    '',
    `Metrics by @guidekit/eval with fashion-eval: accuracy = evaluator argmax equals the requested class; FD = Frechet distance of ` +
      `evaluator features to the Fashion-MNIST test set; it is biased upwards at small n: real test images score ` +
      `${Object.entries(meta.frechetFloor).map(([n, v]) => `${v} at n = ${n}`).join(', ')}, so compare rows of the same size only); clip = values outside [-1, 1]; white = pixels at 255; ` +
      `contrast = mean per-image std in [0, 1]; reward = -PNG bytes (the RL reward); diversity = mean within-class feature distance. ` +
      `Seconds per image are wall-clock on a shared 2-core machine: compare them within one run only.`,
    '',
    `Real test images: accuracy ${f(Number(reference.accuracy), 3)}, clip 0%, white ${f((sat.whiteFraction ?? Number.NaN) * 100)}%, ` +
      `contrast ${f(sat.contrast ?? Number.NaN, 3)}, reward ${f(Number(reference.reward), 1)}, diversity (100/class) ${f(Number(reference.diversity100PerClass))}.`,
    '',
    '| generator | sampler | steps | configuration | images | NFE | s/img | acc | FD | clip % | white % | contrast | reward | diversity |',
    '| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const r of rows) {
    const label = r.strategy === 'cfg++' ? `${r.label} (~w ${f(Number(r.extra.effectiveCfgScale))})` : r.label
    lines.push(
      `| ${r.generator} | ${r.sampler} | ${r.steps} | ${label} | ${r.images} | ${f(r.nfe, 1)} | ${f(r.secondsPerImage, 3)} | ${f(r.accuracy, 3)} | ${f(r.frechetDistance)} | ${f(r.clippedFraction * 100)} | ${f(r.whiteFraction * 100)} | ${f(r.contrast, 3)} | ${f(r.reward, 1)} | ${f(r.diversity)} |`,
    )
  }
  if (inversions.length) {
    lines.push('', '## DDIM inversion round trip (generate, invert, regenerate)', '', '| setting | images | CFG++ lambda | RMSE CFG++ | RMSE CFG++ (fixed point x2) | CFG w (matched) | RMSE CFG |', '| --- | ---: | ---: | ---: | ---: | ---: | ---: |')
    for (const i of inversions) lines.push(`| ${i.group} | ${i.images} | ${i.lambda} | ${f(i.cfgPlusPlusRmse, 4)} | ${f(i.cfgPlusPlusFixedPointRmse, 4)} | ${f(i.cfgScale)} | ${f(i.cfgRmse, 4)} |`)
  }
  lines.push('', '## Claims', '')
  for (const c of claims) {
    const groups = Object.entries(c.byGroup)
      .map(([g, ok]) => `${g}: ${ok ? 'yes' : 'no'}`)
      .join('; ')
    lines.push(`- **${c.paper}** — ${c.claim} **${c.supported === null ? 'Not measured' : c.supported ? 'Supported' : 'Not supported'}**${groups ? ` (by setting: ${groups})` : ''}. ${c.evidence}`)
  }
  if (meta.skipped.length) lines.push('', '## Skipped', '', ...meta.skipped.map((s) => `- ${s}`))
  return `${lines.join('\n')}\n`
}
