// pnpm bench:quality [--quick] [--images N] [--steps 10,20] [--only REGEX] [--generators fashion-dit,fashion-unet]
//                    [--threads 2] [--batch 50] [--out bench-results] [--fresh] [--no-draft] [--no-inversion] [--inversion-images N] [--report-only]
//
// Every guidance strategy on the shipped generators, on the same seeds and classes (image i: class i mod 10,
// seed 1000000 + i), measured with @guidekit/eval: NFE and seconds per image, class accuracy, Frechet
// distance to the Fashion-MNIST test set, saturation, the compressibility reward and diversity. Writes
// bench-results/quality.md, quality.json (rows + claims) and PNG plots. Each configuration's row is cached in
// bench-results/quality/cache/ as soon as it is measured: a rerun resumes, and --report-only rebuilds the
// report from the cache alone. --quick: 100 images per configuration, 10 steps and a smaller grid (< 10 min once the
// models exist on 2 free cores); the default is the full size (1000 images, 3 step counts).
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { fashionMnistTestStatistics, loadEvaluator, readReferenceStatistics, fashionMnistTestReferencePath } from '@guidekit/eval'
import { buildConfigs, effectiveCfgScale, fullGrid, quickGrid, type Config, type Grid } from './configs.js'
import { evaluateClaims, type Claim } from './claims.js'
import { draftAttention, type DraftAttentionDenoiser } from '@guidekit/draft-attention'
import { inversionRoundTrip, type InversionResult } from './inversion.js'
import { loadGenerator, modelPath, type Generator, type GeneratorName } from './models.js'
import { writeChartPng } from './plots.js'
import { markdownReport } from './report.js'
import { readBest, runConfig, shaFor, SEED, type Row } from './runner.js'

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    images: { type: 'string' },
    steps: { type: 'string' },
    only: { type: 'string' },
    generators: { type: 'string', default: 'fashion-dit,fashion-unet' },
    threads: { type: 'string' },
    batch: { type: 'string', default: '50' },
    out: { type: 'string', default: 'bench-results' },
    fresh: { type: 'boolean', default: false },
    'no-draft': { type: 'boolean', default: false },
    'no-inversion': { type: 'boolean', default: false },
    'report-only': { type: 'boolean', default: false },
    'inversion-images': { type: 'string' },
  },
})

const log = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`)
const quick = values.quick
const baseGrid: Grid = quick ? quickGrid : fullGrid
const grid: Grid = values.steps ? { ...baseGrid, steps: values.steps.split(',').map(Number) } : baseGrid
const images = Number(values.images ?? (quick ? 100 : 1000))
const threads = Number(values.threads ?? availableParallelism())
const batch = Number(values.batch)
const out = resolve(values.out)
const cacheDir = join(out, 'quality', 'cache')
const only = values.only ? new RegExp(values.only) : undefined
mkdirSync(cacheDir, { recursive: true })

const evaluatorPath = modelPath('fashion-eval')
if (!evaluatorPath) throw new Error('fashion-eval is missing: the quality benchmark needs the evaluator (packages/models-fashion/models/fashion-eval.onnx)')
const evaluator = await loadEvaluator(evaluatorPath, { sessionOptions: { threads } })
const reference = fashionMnistTestStatistics({ evaluatorSha256: evaluator.sha256 })
const floorTable = (readReferenceStatistics(fashionMnistTestReferencePath).header.data?.frechetFloor ?? {}) as Record<string, number>

const rows: Row[] = []
const skipped: string[] = []
const inversions: (InversionResult & { group: string })[] = []
const notes: { draft?: string; rl?: string } = {}
const started = performance.now()

for (const name of values.generators.split(',') as GeneratorName[]) {
  const loaded = values['report-only'] ? undefined : await loadGenerator(name, threads)
  if (loaded && 'skipped' in loaded) {
    skipped.push(loaded.skipped)
    log(`skip ${loaded.skipped}`)
    continue
  }
  const generator = loaded as Generator | undefined
  const family = generator?.model.family ?? (name === 'fashion-dit' ? 'flow' : 'vp')
  // Flow: Euler (= flow-matching Euler). VP: DDIM, plus DPM-Solver++(2M) outside quick mode.
  const samplers = family === 'flow' ? ['euler'] : quick ? ['ddim'] : ['ddim', 'dpm++2m']
  const rl = name === 'fashion-dit' && modelPath('fashion-dit-rl') !== undefined
  if (name === 'fashion-dit' && !rl) notes.rl = 'fashion-dit-rl is not trained yet'
  const draftOk = family === 'flow' && !values['no-draft']
  if (family === 'flow' && values['no-draft']) notes.draft = 'skipped with --no-draft'
  const allConfigs = buildConfigs({ generator: name, samplers, grid, rl, draft: draftOk })
  const configs = values['report-only'] || !generator ? [] : allConfigs.filter((c) => !only || only.test(c.id))
  const drafts = new Map<number, DraftAttentionDenoiser>()
  const extra = (c: Config): Record<string, number | string> => {
    if (c.strategy === 'cfg++' && generator) return { effectiveCfgScale: Number(effectiveCfgScale(c.params.lambda as number, generator.plan(c.steps)).toFixed(3)) }
    if (c.strategy === 'draft-attention') {
      const d = drafts.get(c.params.keep as number)
      return d?.sites.base !== undefined && d.windows.base ? { sites: d.sites.base, window: `${d.windows.base.height}x${d.windows.base.width}`, denseSteps: 0.3, selection: 'row-topk' } : {}
    }
    return {}
  }
  for (const config of configs) {
    if (!generator) break
    try {
      await runConfig(
        {
          generator,
          evaluator,
          reference,
          images,
          batch,
          cacheDir,
          fresh: values.fresh,
          log,
          extra,
          async denoiser(c, classes) {
            if (c.denoiser === 'rl') return (generator.rl as NonNullable<Generator['rl']>).withClasses(classes)
            if (c.denoiser === 'draft') {
              const keep = c.params.keep as number
              let d = drafts.get(keep)
              if (!d) {
                d = await draftAttention(generator.denoiser, { keep, denseSteps: 0.3, sessionOptions: { threads, interOpThreads: 1 } })
                drafts.set(keep, d)
              }
              return d.withClasses(classes)
            }
            return generator.denoiser.withClasses(classes)
          },
        },
        config,
      )
    } catch (error) {
      const reason = error instanceof Error ? error.message.split('\n')[0] : String(error)
      log(`FAILED ${config.id}: ${reason}`)
      if (config.strategy === 'draft-attention') notes.draft = `draft-attention failed on ${name}: ${reason}`
      skipped.push(`${config.id}: ${reason}`)
    }
  }
  // The report: every configuration of the grid at its largest measured size (this run's or cached).
  for (const config of allConfigs) {
    const row = readBest(cacheDir, config, generator ? shaFor(generator, config) : undefined)
    if (row) rows.push(row)
  }
  // CFG++ invertibility on the flow DiT: CFG++ at the grid's middle lambda vs CFG at its matched scale.
  if (family === 'flow') {
    const lambda = grid.lambdas[Math.floor(grid.lambdas.length / 2)] as number
    const prefix = (steps: number) => `inversion__${name}__${steps}__lambda${lambda}__n`
    for (const steps of grid.steps) {
      const n = Number(values['inversion-images'] ?? (quick ? 20 : 100))
      const file = join(cacheDir, `${prefix(steps)}${n}.json`)
      const runIt = generator && !values['no-inversion'] && (!only || only.test('inversion'))
      if (runIt) {
        const cachedInv = existsSync(file) && !values.fresh ? (JSON.parse(readFileSync(file, 'utf8')) as InversionResult & { modelSha?: string }) : undefined
        if (!cachedInv || cachedInv.modelSha !== generator.sha.base) {
          const plan = generator.plan(steps)
          const cfgScale = Number(effectiveCfgScale(lambda, plan).toFixed(2))
          const t0 = performance.now()
          const result = await inversionRoundTrip({ denoiser: generator.denoiser.withClasses(Array.from({ length: n }, (_, i) => i % 10)), plan, lambda, cfgScale, shape: [n, 1, 28, 28], seed: SEED })
          writeFileSync(file, `${JSON.stringify({ ...result, modelSha: generator.sha.base }, null, 2)}\n`)
          log(`done    inversion ${steps} steps: rmse cfg++ ${result.cfgPlusPlusRmse.toFixed(4)} cfg ${result.cfgRmse.toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`)
        }
      }
      // The report shows the largest round trip measured (with these weights, when the model is loaded).
      const best = readdirSync(cacheDir)
        .filter((f) => f.startsWith(prefix(steps)) && f.endsWith('.json'))
        .map((f) => JSON.parse(readFileSync(join(cacheDir, f), 'utf8')) as InversionResult & { modelSha?: string })
        .filter((r) => !generator || r.modelSha === generator.sha.base)
        .sort((a, b) => b.images - a.images)[0]
      if (best) inversions.push({ ...best, group: `${name} euler ${steps} steps` })
    }
  }
  for (const d of drafts.values()) await d.dispose()
  await generator?.dispose()
}
if (!rows.some((r) => r.strategy === 'draft-attention') && !notes.draft) notes.draft = 'no draft-attention rows (the flow DiT is not trained yet)'
await evaluator.dispose()

const claims: Claim[] = evaluateClaims(rows, grid, inversions, notes)
const meta = {
  mode: quick ? 'quick' : 'full',
  imagesPerConfiguration: images,
  steps: grid.steps,
  seeds: `image i: class i mod 10, seed ${SEED} + i`,
  evaluator: 'fashion-eval',
  reference: 'Fashion-MNIST test set (10k), packages/eval/reference',
  frechetFloor: floorTable,
  threads,
  wallSeconds: Math.round((performance.now() - started) / 1000),
  skipped,
  generatedAt: new Date().toISOString(),
}
writeFileSync(join(out, 'quality.json'), `${JSON.stringify({ ...meta, rows, inversion: inversions, claims }, null, 2)}\n`)
writeFileSync(join(out, 'quality.md'), markdownReport({ meta, rows, claims, inversions, reference: reference.header.data ?? {} }))

// Plots: per generator, at the largest step count measured.
for (const gen of new Set(rows.map((r) => r.generator))) {
  const rs = rows.filter((r) => r.generator === gen)
  const steps = Math.max(...rs.map((r) => r.steps))
  const sampler = rs.find((r) => r.steps === steps)?.sampler as string
  const at = rs.filter((r) => r.steps === steps && r.sampler === sampler)
  const pts = (strategy: string, x: (r: Row) => number) => at.filter((r) => r.strategy === strategy).map((r) => [x(r), r.frechetDistance] as const)
  await writeChartPng(join(out, `quality-${gen}-fd-vs-scale.png`), {
    title: `${gen}: FD vs guidance scale (${sampler}, ${steps} steps, ${images} images)`,
    xLabel: 'guidance scale w (CFG++: first-order matched w)',
    yLabel: 'Frechet distance (fashion-eval features)',
    series: [
      { name: 'CFG', points: pts('cfg', (r) => r.params.scale as number) },
      { name: 'APG', points: pts('apg', (r) => r.params.scale as number) },
      { name: 'CFG++', points: pts('cfg++', (r) => Number(r.extra.effectiveCfgScale)) },
    ].filter((s) => s.points.length),
  })
  const rlg = at.filter((r) => r.strategy === 'rlg')
  if (rlg.length) {
    await writeChartPng(join(out, `quality-${gen}-reward-vs-rlg-weight.png`), {
      title: `${gen}: compressibility reward vs RLG weight (${steps} steps)`,
      xLabel: 'RLG weight w (0 = base, 1 = RL model)',
      yLabel: 'mean reward (-PNG bytes)',
      series: [{ name: 'RLG (cfg w=3)', points: rlg.map((r) => [r.params.weight as number, r.reward] as const) }],
    })
  }
  const agSeries = [
    { name: 'CFG', strategy: 'cfg' },
    { name: 'AG(CFG)', strategy: 'ag-cfg' },
    { name: 'LinearAG', strategy: 'linear-ag' },
    { name: 'APG', strategy: 'apg' },
    { name: 'AG(APG)', strategy: 'ag-apg' },
  ]
  await writeChartPng(join(out, `quality-${gen}-ag-nfe-vs-fd.png`), {
    title: `${gen}: NFE vs FD, adaptive guidance (${sampler})`,
    xLabel: 'NFE per image',
    yLabel: 'Frechet distance',
    series: agSeries
      .map((s) => ({
        name: s.name,
        line: false,
        marker: s.strategy === 'cfg' || s.strategy === 'apg' ? ('ring' as const) : ('dot' as const),
        points: rs
          .filter((r) => r.sampler === sampler && r.strategy === s.strategy && (s.strategy === 'cfg' ? r.params.scale === grid.agScale : s.strategy === 'apg' ? r.params.scale === grid.agApgScale : true))
          .map((r) => [r.nfe, r.frechetDistance] as const),
      }))
      .filter((s) => s.points.length),
  })
}
log(`wrote ${join(out, 'quality.md')} (${rows.length} rows, ${meta.wallSeconds} s)`)
for (const c of claims) log(`claim ${c.paper}: ${c.supported === null ? 'not measured' : c.supported ? 'supported' : 'NOT supported'}`)
