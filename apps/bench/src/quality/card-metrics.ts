// pnpm bench:card-metrics --model fashion-dit|fashion-unet|fashion-sd [--scales 1,2,3,5] [--images 1000]
//                         [--steps 30] [--threads 2] [--batch 50] [--write] [--plan] [--out bench-results]
//
// A model card's metrics measured through guidekit (ORT, the card's own plan, spacing and default sampler;
// @guidekit/eval with fashion-eval): per CFG scale, accuracy and Frechet distance with 95% bootstrap intervals
// over images (1000 resamples; the FD interval bias-corrected, see bootstrap.ts), on the quality benchmark's
// seeds (image i: class i mod 10, seed 1000000 + i) and through its cache, so an interrupted run resumes.
// fashion-sd (prompts: the card's class prompts, "a photo of a {class}"), at the most accurate scale, also: the
// brightness change with the negative prompt "dark" (paired over the same seeds) and the accuracy of the
// held-out paraphrases the card's captions list. Prints the plan and an ETA, then the metrics as JSON;
// --write merges them into the card's `metrics` (other keys of `metrics` are kept).
import { readFileSync, writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { cfg } from '@guidekit/cfg'
import { fashionMnistTestStatistics, loadEvaluator } from '@guidekit/eval'
import { biasCorrectedInterval, meanReplicates, percentileInterval, prepareReference, resampleCounts, RESAMPLES, type Interval } from './bootstrap.js'
import type { Config } from './configs.js'
import { loadGenerator, modelPath, type Generator } from './models.js'
import { describePlan, measureBootstrap, measureRate, planRows } from './plan.js'
import { runConfig, SEED, type Row } from './runner.js'
import { loadTextToImageGenerator, textToImageCard, textToImageCardPath } from './text-to-image.js'

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    scales: { type: 'string' },
    images: { type: 'string', default: '1000' },
    steps: { type: 'string' },
    threads: { type: 'string' },
    batch: { type: 'string', default: '50' },
    out: { type: 'string', default: 'bench-results' },
    write: { type: 'boolean', default: false },
    plan: { type: 'boolean', default: false },
  },
})

const log = (line: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${line}\n`)
const name = values.model
if (name !== 'fashion-dit' && name !== 'fashion-unet' && name !== 'fashion-sd') throw new Error(`--model must be fashion-dit, fashion-unet or fashion-sd, got '${name ?? ''}'`)
const images = Number(values.images)
const threads = Number(values.threads ?? availableParallelism())
const batch = Number(values.batch)
for (const [flag, v] of [['--images', images], ['--threads', threads], ['--batch', batch]] as const) {
  if (!Number.isInteger(v) || v < (flag === '--images' ? 10 : 1)) throw new Error(`${flag} must be a positive integer (images at least 10), got ${v}`)
}

type Card = Record<string, unknown> & { metrics?: Record<string, unknown>; defaults?: { steps?: number; sampler?: string } }
const cardPath = name === 'fashion-sd' ? textToImageCardPath() : (modelPath(name) ?? '').replace(/\.onnx$/, '.card.json')
const card: Card | undefined = name === 'fashion-sd' ? (textToImageCard()) : modelPath(name) ? (JSON.parse(readFileSync(cardPath, 'utf8')) as Card) : undefined
if (!card) throw new Error(`${name} has no card at ${cardPath}: train and export it first`)
const cardScales = ((card.metrics?.byScale ?? []) as { cfgScale?: number }[]).map((r) => r.cfgScale).filter((w): w is number => typeof w === 'number')
const scales = values.scales ? values.scales.split(',').map(Number) : cardScales
if (!scales.length || scales.some((w) => !(w >= 1))) throw new Error(`--scales: give CFG scales >= 1 (the card lists none in metrics.byScale), got '${values.scales ?? ''}'`)
const steps = Number(values.steps ?? card.defaults?.steps ?? 30)
if (!Number.isInteger(steps) || steps < 1) throw new Error(`--steps must be a positive integer, got ${values.steps}`)

const loaded = name === 'fashion-sd' ? await loadTextToImageGenerator(threads) : await loadGenerator(name, threads)
if ('skipped' in loaded) throw new Error(loaded.skipped)
const generator: Generator = loaded
const sampler = name === 'fashion-sd' ? 'ddim' : (card.defaults?.sampler ?? Object.keys(generator.samplers)[0] ?? '').split(':')[0] ?? ''
if (!generator.samplers[sampler]) throw new Error(`the card's sampler '${sampler}' is not one of ${Object.keys(generator.samplers).join(', ')}`)

const cacheDir = join(resolve(values.out), 'quality', 'cache')
const config = (w: number, prompts?: Config['prompts']): Config => ({
  id: `${name}__${sampler}__${steps}__cfg__scale${w}${prompts ? `__${prompts.kind}${prompts.negative ? `-neg-${prompts.negative}` : ''}` : ''}`,
  generator: name,
  strategy: 'cfg',
  label: `cfg w=${w}${prompts?.kind === 'paraphrase' ? ' (paraphrases)' : ''}${prompts?.negative ? ` negative "${prompts.negative}"` : ''}`,
  params: { scale: w },
  steps,
  sampler,
  denoiser: 'base',
  ...(prompts ? { prompts } : {}),
  sizes: [images],
  expectedNfe: w === 1 ? steps : 2 * steps,
  guider: () => Promise.resolve(cfg({ scale: w })),
})

const evaluatorPath = modelPath('fashion-eval')
if (!evaluatorPath) throw new Error('fashion-eval is missing (packages/models-fashion/models/fashion-eval.onnx): the metrics need the evaluator')
const evaluator = await loadEvaluator(evaluatorPath, { sessionOptions: { threads } })
const reference = fashionMnistTestStatistics({ evaluatorSha256: evaluator.sha256 })
const prepared = prepareReference(reference)
const deps = { generator, evaluator, reference, prepared, batch, resamples: RESAMPLES, cacheDir, fresh: false, log }

// The plan: the scale rows, and for fashion-sd two more rows at a scale chosen after them (counted at the largest).
const byScaleConfigs = scales.map((w) => config(w))
const extraSd = name === 'fashion-sd' ? [config(Math.max(...scales), { kind: 'class', negative: 'dark' }), config(Math.max(...scales), { kind: 'paraphrase', negative: '' })] : []
const rows = planRows([...byScaleConfigs, ...extraSd], cacheDir, (c) => generator.sha(c), false)
const probe = byScaleConfigs.find((c) => c.params.scale !== 1) ?? byScaleConfigs[0]
const rate = rows.some((r) => r.action !== 'cached') && probe ? await measureRate(generator, probe, batch) : 0
const plan = describePlan({ rows, rate: () => rate, bootstrapSeconds: measureBootstrap(prepared), resamples: RESAMPLES, extras: [] })
log(`${name}: ${images} images per row, ${steps} steps, ${sampler}, CFG ${scales.join('/')}, ${batch} per batch, ${threads} threads\n${plan.text}`)
if (values.plan) process.exit(0)

const round = (x: number, d = 4) => Number(x.toFixed(d))
const roundCi = (i: Interval, d = 4): [number, number] => [round(i[0], d), round(i[1], d)]
const fdCi = (r: Row) => biasCorrectedInterval(r.bootstrap.frechetDistance, r.frechetDistance)
const summary = (r: Row) => ({ accuracy: round(r.accuracy), accuracy95: roundCi(r.accuracyCi), frechetDistance: round(r.frechetDistance, 3), frechetDistance95: roundCi(fdCi(r), 3), samples: r.images })

const measured: Row[] = []
for (const c of byScaleConfigs) {
  const [row] = await runConfig(deps, c)
  if (row) measured.push(row)
}
const best = measured.reduce((m, r) => (r.accuracy > m.accuracy || (r.accuracy === m.accuracy && r.frechetDistance < m.frechetDistance) ? r : m))
const bestScale = best.params.scale as number
const metrics: Record<string, unknown> = {
  source: `guidekit: pnpm bench:card-metrics --model ${name} (onnxruntime-node, @guidekit/eval)`,
  evaluator: 'fashion-eval',
  samples: images,
  steps,
  sampler: `${sampler}, the card's plan (${name === 'fashion-sd' ? "the pipeline's scheduler config" : 'planFromCard: schedule and defaults.spacing'})`,
  seeds: `image i: class i mod 10, seed ${SEED} + i`,
  reference: 'Fashion-MNIST test set (10k), fashion-eval features',
  intervals: `95% bootstrap over images, ${RESAMPLES} resamples (seeded); accuracy: percentile interval; FD: percentile interval shifted by the bootstrap bias (FD is biased upwards at small n: compare only at equal n)`,
  byScale: measured.map((r) => ({ cfgScale: r.params.scale, ...summary(r) })),
  bestScale,
}
if (name === 'fashion-sd') {
  // Brightness (mean pixel intensity in [0, 1]) with the negative prompt "dark" vs "", paired over the same seeds.
  const [dark] = await runConfig(deps, config(bestScale, { kind: 'class', negative: 'dark' }))
  const [para] = await runConfig(deps, config(bestScale, { kind: 'paraphrase', negative: '' }))
  if (!dark || !para) throw new Error('the negative-prompt and paraphrase rows did not run')
  const d = dark.perImage.meanIntensity.map((v, i) => v - (best.perImage.meanIntensity[i] as number))
  const mean = (v: readonly number[]) => v.reduce((s, x) => s + x, 0) / v.length
  metrics.negativePrompt = {
    cfgScale: bestScale,
    prompt: 'the class prompts',
    negativePrompt: 'dark',
    samples: images,
    meanBrightness: round(mean(best.perImage.meanIntensity)),
    meanBrightnessNegativeDark: round(mean(dark.perImage.meanIntensity)),
    difference: round(mean(d)),
    difference95: roundCi(percentileInterval(meanReplicates(d, resampleCounts(images)))),
    brightness: 'mean pixel intensity in [0, 1]; paired bootstrap over the same seeds',
  }
  metrics.paraphrase = { cfgScale: bestScale, ...summary(para), prompts: "held-out templates x held-out synonyms of the card's captions, cycled per class" }
}
process.stdout.write(`${JSON.stringify(metrics, null, 2)}\n`)
if (values.write) {
  const current = JSON.parse(readFileSync(cardPath, 'utf8')) as Card
  writeFileSync(cardPath, `${JSON.stringify({ ...current, metrics: { ...(current.metrics ?? {}), ...metrics } }, null, 2)}\n`)
  log(`wrote metrics into ${cardPath}`)
}
await generator.dispose()
await evaluator.dispose()
