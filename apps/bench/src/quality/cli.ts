// pnpm bench:quality [--group class-conditional|text-to-image] [--quick] [--plan] [--images N] [--sweep N] [--steps 10,20]
//                    [--samplers ddim,dpm++2m] [--only REGEX] [--threads 2] [--batch 50] [--resamples 1000]
//                    [--out bench-results] [--fresh] [--no-draft] [--no-inversion] [--report-only]
//
// Every guidance strategy on the shipped generators, on the same seeds and classes (image i: class i mod 10,
// seed 1000000 + i), measured with @guidekit/eval, with 95% bootstrap intervals and a verdict per paper
// claim. Prints the plan (configurations x images x NFE) and an ETA before sampling (--plan: only that, after
// the AG threshold calibration, which the plan needs and which is cached).
// Groups: class-conditional (default: fashion-dit, fashion-unet) and text-to-image (fashion-sd); a run samples
// only its group, and the report covers every cached row of every generator present, so the two groups can
// run separately (in either order) into one quality.md.
// Each (configuration, size) is cached in bench-results/quality/cache/ as soon as it is measured: a rerun
// resumes, a larger size grows a cached row by sampling only the new seeds, and --report-only rebuilds the
// report from the cache. Default: the full run (10 steps, the rows a claim uses at 1000 images; about 25
// minutes on 2 idle cores; --sweep N adds the other sweep and curve points at N images); --quick: 100 images
// per claim row, 50 for the rest, 200 resamples, for development.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { cfg } from '@guidekit/cfg'
import { fashionMnistTestStatistics, fashionMnistTestReferencePath, loadEvaluator, readReferenceStatistics } from '@guidekit/eval'
import { prepareReference } from './bootstrap.js'
import { CALIBRATION_SEED, calibrate, similarityRecorder, type AgCalibration } from './calibration.js'
import { evaluateClaims, rowsUsedByClaims } from './claims.js'
import { buildConfigs, effectiveCfgScale, fullGrid, lambdaForScale, quickGrid, textToImageGrid, type Config, type Grid } from './configs.js'
import { inversionRoundTrip, type InversionResult } from './inversion.js'
import { loadGenerator, modelPath, type Generator, type GeneratorName } from './models.js'
import { describePlan, measureBootstrap, measureRate, planRows, type PlannedRow } from './plan.js'
import { writePlots } from './plots-quality.js'
import { markdownReport } from './report.js'
import { FIT_IMAGES, generate, readSizes, runConfig, SEED, type Row } from './runner.js'
import { loadTextToImageGenerator } from './text-to-image.js'

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    plan: { type: 'boolean', default: false },
    images: { type: 'string' },
    sweep: { type: 'string' },
    steps: { type: 'string' },
    samplers: { type: 'string' },
    only: { type: 'string' },
    group: { type: 'string', default: 'class-conditional' },
    threads: { type: 'string' },
    batch: { type: 'string', default: '50' },
    resamples: { type: 'string' },
    out: { type: 'string', default: 'bench-results' },
    fresh: { type: 'boolean', default: false },
    'no-draft': { type: 'boolean', default: false },
    'no-inversion': { type: 'boolean', default: false },
    'report-only': { type: 'boolean', default: false },
  },
})

const log = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`)
const quick = values.quick
const reportOnly = values['report-only']
const baseGrid: Grid = quick ? quickGrid : fullGrid
const images = values.images ? Number(values.images) : baseGrid.images
const grid: Grid = {
  ...baseGrid,
  images,
  decidingImages: Math.round((images * baseGrid.decidingImages) / baseGrid.images),
  sweepImages: Math.min(images, values.sweep ? Number(values.sweep) : baseGrid.sweepImages),
  ...(values.steps ? { steps: values.steps.split(',').map(Number) } : {}),
}
const threads = Number(values.threads ?? availableParallelism())
const batch = Number(values.batch)
const resamples = Number(values.resamples ?? (quick ? 200 : 1000))
const out = resolve(values.out)
const cacheDir = join(out, 'quality', 'cache')
const only = values.only ? new RegExp(values.only) : undefined
for (const [name, v] of [['--images', images], ['--batch', batch], ['--threads', threads], ['--resamples', resamples]] as const) {
  if (!Number.isInteger(v) || v < (name === '--images' ? 2 : 1)) throw new Error(`${name} must be a positive integer (images at least 2), got ${v}`)
}
if (!Number.isInteger(grid.sweepImages) || grid.sweepImages === 1 || grid.sweepImages < 0) throw new Error(`--sweep must be 0 (no sweep rows) or an image count of at least 2, got ${values.sweep}`)
const groups: Record<string, readonly GeneratorName[]> = { 'class-conditional': ['fashion-dit', 'fashion-unet'], 'text-to-image': ['fashion-sd'] }
const group = groups[values.group]
if (!group) throw new Error(`--group must be one of ${Object.keys(groups).join(', ')}, got '${values.group}'`)
mkdirSync(cacheDir, { recursive: true })

const evaluatorPath = modelPath('fashion-eval')
if (!evaluatorPath) throw new Error('fashion-eval is missing: the quality benchmark needs the evaluator (packages/models-fashion/models/fashion-eval.onnx)')
const evaluator = await loadEvaluator(evaluatorPath, { sessionOptions: { threads } })
const reference = fashionMnistTestStatistics({ evaluatorSha256: evaluator.sha256 })
const prepared = prepareReference(reference)
const floorTable = (readReferenceStatistics(fashionMnistTestReferencePath).header.data?.frechetFloor ?? {}) as Record<string, number>
const started = performance.now()
const skipped: string[] = []
const notes: { draft?: string; rl?: string } = {}

interface Loaded {
  readonly generator: Generator
  readonly grid: Grid
  readonly configs: Config[]
  readonly selected: Config[]
  readonly calibrations: AgCalibration[]
}
const loaded: Loaded[] = []

/** AG calibration of one setting: cached, or one CFG run of the calibration set recording the similarities. */
async function calibration(generator: Generator, g: Grid, sampler: string, steps: number, baseline: Config | undefined, sampling: boolean): Promise<AgCalibration | undefined> {
  const file = join(cacheDir, `ag-calibration__${generator.name}__${sampler}__${steps}__scale${g.agScale}__n${g.calibrationImages}.json`)
  const sha = baseline ? generator.sha(baseline) : undefined
  if (existsSync(file) && !values.fresh) {
    const c = JSON.parse(readFileSync(file, 'utf8')) as AgCalibration
    if (c.modelSha === sha) return calibrate(c, g.agSavings)
  }
  if (!baseline || !sampling || (only && !g.agSavings.some((s) => only.test(`${generator.name}__${sampler}__${steps}__ag-cfg__scale${g.agScale}_saving${s}`)))) return undefined
  const t0 = performance.now()
  const recorder = similarityRecorder(cfg({ scale: g.agScale }))
  await generate({ generator, batch }, baseline, recorder.guider, 0, g.calibrationImages, CALIBRATION_SEED)
  const c = calibrate({ generator: generator.name, sampler, steps, scale: g.agScale, images: g.calibrationImages, seed: CALIBRATION_SEED, modelSha: sha as string, similarities: recorder.similarities.map((r) => r.map((v) => Number(v.toFixed(7)))) }, g.agSavings)
  writeFileSync(file, `${JSON.stringify(c)}\n`)
  log(`calibrated AG ${generator.name} ${sampler} ${steps} steps on ${g.calibrationImages} images: ${Object.entries(c.thresholds).map(([s, t]) => `saving ${s}: threshold ${t} (NFE ${c.predictedNfe[s]?.toFixed(1)})`).join(', ')} (${((performance.now() - t0) / 1000).toFixed(0)} s)`)
  return c
}

for (const name of ['fashion-dit', 'fashion-unet', 'fashion-sd'] as const) {
  const sampling = !reportOnly && group.includes(name)
  const result = name === 'fashion-sd' ? await loadTextToImageGenerator(threads) : await loadGenerator(name, threads)
  if ('skipped' in result) {
    skipped.push(result.skipped)
    if (sampling) log(`skip ${result.skipped}`)
    if (name === 'fashion-dit') notes.rl = notes.draft = result.skipped
    continue
  }
  const generator = result
  const g = name === 'fashion-sd' ? textToImageGrid(grid) : grid
  const own = Object.keys(generator.samplers)
  const samplers = values.samplers ? values.samplers.split(',').filter((s) => own.includes(s)) : [generator.family === 'flow' ? 'euler' : 'ddim']
  if (name === 'fashion-dit' && !generator.rl) notes.rl = 'fashion-dit-rl is not trained yet'
  if (name === 'fashion-dit' && values['no-draft']) notes.draft = 'skipped with --no-draft'
  const options = { generator: name, samplers, grid: g, rl: generator.rl, draft: generator.draft && !values['no-draft'], plan: (s: number) => generator.plan(s) }
  const uncalibrated = buildConfigs({ ...options, calibration: () => undefined })
  const calibrations: AgCalibration[] = []
  for (const sampler of samplers) {
    for (const steps of g.steps) {
      const c = await calibration(generator, g, sampler, steps, uncalibrated.find((x) => x.sampler === sampler && x.steps === steps && x.strategy === 'cfg' && x.params.scale === g.agScale), sampling)
      if (c) calibrations.push(c)
    }
  }
  const configs = buildConfigs({ ...options, calibration: (sampler, steps) => calibrations.find((c) => c.sampler === sampler && c.steps === steps) })
  loaded.push({ generator, grid: g, configs, calibrations, selected: sampling ? configs.filter((c) => !only || only.test(c.id)) : [] })
}

// The plan and its ETA, from rates measured now.
const planned: PlannedRow[] = loaded.flatMap((l) => planRows(l.selected, cacheDir, (c) => l.generator.sha(c), values.fresh))
const runInversion = (l: Loaded) => l.generator.classDenoiser !== undefined && l.generator.family === 'flow' && !values['no-inversion'] && !reportOnly && group.includes(l.generator.name) && (!only || only.test('inversion'))
if (!reportOnly) {
  const rates = new Map<string, number>()
  for (const l of loaded) {
    for (const kind of ['base', 'draft'] as const) {
      const probe = l.selected.find((c) => c.denoiser === kind && planned.some((p) => p.config === c && p.action !== 'cached'))
      if (probe) rates.set(`${l.generator.name}/${kind}`, await measureRate(l.generator, probe, batch))
    }
  }
  const rate = (c: Config) => rates.get(`${c.generator}/${c.denoiser === 'draft' ? 'draft' : 'base'}`) ?? 0
  const extras = loaded.flatMap((l) => [
    ...planned.filter((p) => p.config.generator === l.generator.name && p.config.strategy === 'linear-ag' && p.action !== 'cached').map((p) => ({ what: `LinearAG fit for ${p.config.id}`, config: p.config, images: FIT_IMAGES, nfe: 2 * p.config.steps })),
    ...(runInversion(l) ? l.grid.steps.map((s) => ({ what: `inversion round trip ${l.generator.name} ${s} steps`, config: l.configs[0] as Config, images: l.grid.inversionImages, nfe: 20 * s })) : []),
  ])
  const plan = describePlan({ rows: planned, rate, bootstrapSeconds: measureBootstrap(prepared), resamples, extras })
  log(plan.text)
}

const inversions: (InversionResult & { group: string })[] = []
if (!values.plan) {
  for (const l of loaded) {
    for (const config of l.selected) {
      try {
        await runConfig({ generator: l.generator, evaluator, reference, prepared, batch, resamples, cacheDir, fresh: values.fresh, log }, config)
      } catch (error) {
        const reason = error instanceof Error ? error.message.split('\n')[0] : String(error)
        log(`FAILED ${config.id}: ${reason}`)
        if (config.strategy === 'draft-attention') notes.draft = `draft-attention failed on ${l.generator.name}: ${reason}`
        skipped.push(`${config.id}: ${reason}`)
      }
    }
    // CFG++ invertibility (flow models): CFG++ at the lambda matched to the AG scale vs CFG at its matched scale.
    const base = l.generator.classDenoiser
    for (const steps of base && l.generator.family === 'flow' ? l.grid.steps : []) {
      const plan = l.generator.plan(steps)
      const lambda = lambdaForScale(l.grid.agScale, plan)
      const n = l.grid.inversionImages
      const sha = l.generator.sha(l.configs[0] as Config)
      const file = join(cacheDir, `inversion__${l.generator.name}__${steps}__lambda${lambda}__n${n}.json`)
      let result = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as InversionResult & { modelSha?: string }) : undefined
      if (result && (result.modelSha !== sha || !result.perImageMse || values.fresh)) result = undefined
      if (!result && runInversion(l) && base) {
        const t0 = performance.now()
        const cfgScale = Number(effectiveCfgScale(lambda, plan).toFixed(3))
        result = { ...(await inversionRoundTrip({ denoiser: base.withClasses(Array.from({ length: n }, (_, i) => i % 10)), plan, lambda, cfgScale, shape: [n, 1, 28, 28], seed: SEED })), modelSha: sha }
        writeFileSync(file, `${JSON.stringify(result)}\n`)
        log(`done    inversion ${steps} steps: rmse cfg++ ${result.cfgPlusPlusRmse.toFixed(4)} cfg ${result.cfgRmse.toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`)
      }
      if (result) inversions.push({ ...result, group: `${l.generator.name} euler ${steps} steps` })
    }
  }
}

// Every cached size of every configuration of the grid (measured with the current weights) decides the claims.
const sizes = new Map<string, Row[]>()
for (const l of loaded) for (const c of l.configs) sizes.set(c.id, readSizes(cacheDir, c.id, l.generator.sha(c)))
const claims = evaluateClaims([...sizes.values()].flat(), inversions, notes)
const used = rowsUsedByClaims(claims)
const reportRows: Row[] = [...sizes.values()].flatMap((s) => s.filter((r, i) => i === s.length - 1 || used.has(`${r.id}@${r.images}`)).map((r) => ({ ...r, usedByClaims: used.has(`${r.id}@${r.images}`) })))
const plots = values.plan ? [] : await writePlots({ out, loaded: loaded.map((l) => ({ name: l.generator.name, grid: l.grid, rows: [...sizes.values()].flat().filter((r) => r.generator === l.generator.name) })) })
const calibrations = loaded.flatMap((l) => l.calibrations)
const meta = {
  mode: quick ? 'quick' : 'full',
  command: `pnpm bench:quality ${process.argv.slice(2).join(' ')}`.trim(),
  steps: grid.steps,
  seeds: `image i: class i mod 10, seed ${SEED} + i`,
  resamples,
  evaluator: 'fashion-eval',
  reference: 'Fashion-MNIST test set (10k), packages/eval/reference',
  frechetFloor: floorTable,
  threads,
  wallSeconds: Math.round((performance.now() - started) / 1000),
  skipped,
  generatedAt: new Date().toISOString(),
}
if (!values.plan) {
  const slim = reportRows.map(({ perImage: _p, bootstrap, ...r }) => ({ ...r, bootstrap: { seed: bootstrap.seed, resamples: bootstrap.resamples } }))
  const slimCalibrations = calibrations.map(({ similarities: _s, ...c }) => c)
  const slimInversions = inversions.map(({ perImageMse: _m, ...i }) => i)
  writeFileSync(join(out, 'quality.json'), `${JSON.stringify({ ...meta, rows: slim, calibrations: slimCalibrations, inversion: slimInversions, claims }, null, 2)}\n`)
  writeFileSync(join(out, 'quality.md'), markdownReport({ meta, rows: reportRows, claims, inversions, calibrations, reference: reference.header.data ?? {}, plots }))
  log(`wrote ${join(out, 'quality.md')} (${reportRows.length} rows, ${meta.wallSeconds} s)`)
  for (const c of claims) log(`claim ${c.paper}: ${c.verdict}`)
}
for (const l of loaded) await l.generator.dispose()
await evaluator.dispose()
