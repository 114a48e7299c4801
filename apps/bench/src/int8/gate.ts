// pnpm bench:int8-gate [--model fashion-dit] [--images 1000] [--steps 30] [--scale 3] [--batch 50]
//                      [--threads 2] [--write-card] [--out bench-results] [--from <gate result .json>]
//
// The quality gate a reduced-precision model must pass to ship (issue 12): sample the same images with the
// fp32 model and its int8 model through guidekit (CFG 3, 30 steps, image i of class i mod 10 from seed
// 1_000_000 + batch start, the quality benchmark's seeds), score both with @guidekit/eval (fashion-eval
// accuracy and Frechet distance to the Fashion-MNIST test set), and pass when
//   FD_int8 <= 1.05 FD_fp32   and   accuracy_int8 >= accuracy_fp32 - 0.01.
// Writes bench-results/int8-gate/<model>.json (the cached gate result bench:perf reads); --write-card also
// records the int8 model's metrics, msPerImage and the verdict (`metrics.qualityGate`) in
// `<model>-int8.card.json` and msPerImage in `<model>.card.json`; --from writes a saved result to the cards
// without sampling again. Prints one JSON object.
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { cfg } from '@guidekit/cfg'
import { GuidekitError, Tensor, checkNumber, ddim, euler, sample } from '@guidekit/core'
import { evaluateQuality, fashionMnistTestStatistics, loadEvaluator } from '@guidekit/eval'
import { fashionModelNames, type FashionModelName } from '@guidekit/models-fashion'
import { classConditionalDenoiser, loadClassConditionalModel, parseGeneratorCard, planFromCard, type ClassConditionalDenoiser, type ClassConditionalModel } from '@guidekit/onnx'
import { modelPath } from '../quality/models.js'
import { SEED, classesFor } from '../quality/runner.js'
import { precisionPair } from './models.js'

/** The gate's criteria (issue 12). */
export const GATE = { fdRatio: 1.05, accuracyDrop: 0.01 } as const

export interface GateSide {
  readonly accuracy: number
  readonly frechetDistance: number
  readonly secondsPerImage: number
  readonly sha256: string
}

export interface GateResult {
  readonly model: string
  readonly images: number
  readonly steps: number
  readonly cfgScale: number
  readonly batch: number
  readonly threads: number
  readonly sampler: string
  readonly fp32: GateSide
  readonly int8: GateSide
  readonly passed: boolean
  readonly criteria: string
  readonly measuredAt: string
  /** 1-minute load average when the gate finished (the timings are only comparable within one run). */
  readonly loadAverage: number
}

/** The verdict for two measurements (exported for the unit test of the criteria). */
export function gateVerdict(fp32: Pick<GateSide, 'accuracy' | 'frechetDistance'>, int8: Pick<GateSide, 'accuracy' | 'frechetDistance'>): boolean {
  return int8.frechetDistance <= GATE.fdRatio * fp32.frechetDistance && int8.accuracy >= fp32.accuracy - GATE.accuracyDrop
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')

type Loaded = { model: ClassConditionalModel; denoiser: ClassConditionalDenoiser; data: Float32Array; ms: number }

/**
 * Samples the same images with both models, batch by batch in alternating order (fp32 first on even batches),
 * so that a shared, loaded machine slows both alike; `secondsPerImage` is each model's sampling time only.
 */
async function sampleBoth(paths: { fp32: string; int8: string }, o: { images: number; steps: number; scale: number; batch: number; threads: number; log: (s: string) => void }): Promise<{ fp32: Loaded; int8: Loaded }> {
  const load = async (path: string): Promise<Loaded> => {
    // As the sample app runs it: one single-threaded session per thread, each call's rows split into runs.
    const model = await loadClassConditionalModel(path, { sessionOptions: { workers: o.threads, threads: 1, interOpThreads: 1, graphOptimizationLevel: 'all' } })
    return { model, denoiser: classConditionalDenoiser({ model, classes: [0] }), data: new Float32Array(o.images * 784), ms: 0 }
  }
  const fp32 = await load(paths.fp32)
  const int8 = await load(paths.int8)
  const plan = planFromCard(fp32.model.card, { steps: o.steps })
  for (let done = 0, k = 0; done < o.images; done += o.batch, k++) {
    const n = Math.min(o.batch, o.images - done)
    for (const side of k % 2 === 0 ? [fp32, int8] : [int8, fp32]) {
      const t0 = performance.now()
      const r = await sample({ denoiser: side.denoiser.withClasses(classesFor(done, n)), guider: cfg({ scale: o.scale }), sampler: side.model.family === 'flow' ? euler() : ddim(), plan, shape: [n, 1, 28, 28], seed: SEED + done })
      side.ms += performance.now() - t0
      side.data.set(r.samples.data, done * 784)
    }
    o.log(`[gate] ${fp32.model.card.name} fp32 and int8: ${done + n}/${o.images}`)
  }
  for (const side of [fp32, int8]) {
    await side.denoiser.dispose()
    await side.model.dispose()
  }
  return { fp32, int8 }
}

export async function runGate(options: { model: FashionModelName; images: number; steps: number; scale: number; batch: number; threads: number; log: (s: string) => void }): Promise<GateResult> {
  const pair = precisionPair(options.model)
  if (!pair) throw new GuidekitError('MODEL_NOT_FOUND', `${options.model} is not in packages/models-fashion/models (or GUIDEKIT_MODELS_DIR).`)
  if (!pair.int8) throw new GuidekitError('MODEL_NOT_FOUND', `${options.model}-int8.onnx is missing next to ${pair.fp32}. Make it first: pnpm quantize ${pair.fp32}`)
  const evaluatorPath = modelPath('fashion-eval')
  if (!evaluatorPath) throw new GuidekitError('MODEL_NOT_FOUND', 'fashion-eval is missing: the gate scores images with it (packages/models-fashion/models/fashion-eval.onnx).')
  const sampled = await sampleBoth({ fp32: pair.fp32, int8: pair.int8 }, options)
  const evaluator = await loadEvaluator(evaluatorPath, { sessionOptions: { threads: options.threads } })
  try {
    const score = async (side: Loaded, path: string): Promise<GateSide> => {
      const m = await evaluateQuality({ images: new Tensor(side.data, [options.images, 1, 28, 28]), labels: classesFor(0, options.images), evaluator, reference: fashionMnistTestStatistics({ evaluatorSha256: evaluator.sha256 }) })
      return { accuracy: m.accuracy, frechetDistance: m.frechetDistance, secondsPerImage: side.ms / 1000 / options.images, sha256: sha256(path) }
    }
    const fp32 = await score(sampled.fp32, pair.fp32)
    const int8 = await score(sampled.int8, pair.int8)
    const card = JSON.parse(readFileSync(pair.fp32.replace(/\.onnx$/, '.card.json'), 'utf8')) as { schedule: { family: string } }
    return {
      model: options.model,
      images: options.images,
      steps: options.steps,
      cfgScale: options.scale,
      batch: options.batch,
      threads: options.threads,
      sampler: card.schedule.family === 'flow' ? 'euler (flow), uniform t from 1 to 0' : 'ddim (eta 0), linspace timesteps 999..0',
      fp32,
      int8,
      passed: gateVerdict(fp32, int8),
      criteria: `FD_int8 <= ${GATE.fdRatio} FD_fp32 and accuracy_int8 >= accuracy_fp32 - ${GATE.accuracyDrop}`,
      measuredAt: new Date().toISOString(),
      loadAverage: loadavg()[0] as number,
    }
  } finally {
    await evaluator.dispose()
  }
}

/**
 * Records the gate in the cards, in @guidekit/onnx's schema (validated before writing): the int8 card gets its
 * own metrics at the gate's scale (`byScale`), `msPerImage` and `qualityGate` (verdict, criteria, both sides);
 * the fp32 card gets `metrics.msPerImage` from the same run (the CLI's default precision compares the two, so
 * both must come from one measurement: the card's default trajectory, CFG 3 and 30 steps, batches alternating).
 */
export function writeGateToCards(pair: { fp32: string; int8: string }, gate: GateResult): { fp32Card: string; int8Card: string } {
  const int8CardPath = pair.int8.replace(/\.onnx$/, '.card.json')
  const fp32CardPath = pair.fp32.replace(/\.onnx$/, '.card.json')
  const card = JSON.parse(readFileSync(int8CardPath, 'utf8')) as Record<string, unknown>
  const madeFrom = (card.quantization as { fp32?: { sha256?: string } } | undefined)?.fp32?.sha256
  if (madeFrom !== gate.fp32.sha256 || sha256(pair.fp32) !== gate.fp32.sha256 || sha256(pair.int8) !== gate.int8.sha256) {
    throw new GuidekitError('MODEL_INVALID', `The gate measured fp32 ${gate.fp32.sha256.slice(0, 12)} / int8 ${gate.int8.sha256.slice(0, 12)}, but ${int8CardPath} was made from ${String(madeFrom).slice(0, 12)} or the files changed since. Re-run pnpm quantize ${pair.fp32}, then the gate.`)
  }
  const ms = (side: GateSide) => Math.round(side.secondsPerImage * 1e5) / 100
  const measuredHow = `bench:int8-gate: ${gate.images} images, ${gate.steps} steps, CFG ${gate.cfgScale}, batch ${gate.batch}, ${gate.threads} threads (one single-threaded session each, in worker threads), fp32 and int8 batches alternating; load average ${gate.loadAverage.toFixed(1)} at the end`
  card.metrics = {
    evaluator: 'fashion-eval',
    samples: gate.images,
    steps: gate.steps,
    sampler: gate.sampler,
    reference: 'Fashion-MNIST test set (10k), fashion-eval features',
    byScale: [{ cfgScale: gate.cfgScale, accuracy: gate.int8.accuracy, frechetDistance: gate.int8.frechetDistance }],
    msPerImage: ms(gate.int8),
    msPerImageMeasured: measuredHow,
    qualityGate: {
      passed: gate.passed,
      criteria: gate.criteria,
      images: gate.images,
      cfgScale: gate.cfgScale,
      fp32: { accuracy: gate.fp32.accuracy, frechetDistance: gate.fp32.frechetDistance, msPerImage: ms(gate.fp32) },
      int8: { accuracy: gate.int8.accuracy, frechetDistance: gate.int8.frechetDistance, msPerImage: ms(gate.int8) },
      int8Sha256: gate.int8.sha256,
      command: `pnpm bench:int8-gate --model ${gate.model} --images ${gate.images} --write-card`,
      measuredAt: gate.measuredAt,
    },
  }
  const fp32Card = JSON.parse(readFileSync(fp32CardPath, 'utf8')) as { metrics?: Record<string, unknown> }
  fp32Card.metrics = { ...fp32Card.metrics, msPerImage: ms(gate.fp32), msPerImageMeasured: measuredHow }
  parseGeneratorCard(card, int8CardPath)
  parseGeneratorCard(fp32Card, fp32CardPath)
  writeFileSync(int8CardPath, `${JSON.stringify(card, null, 2)}\n`)
  writeFileSync(fp32CardPath, `${JSON.stringify(fp32Card, null, 2)}\n`)
  return { fp32Card: fp32CardPath, int8Card: int8CardPath }
}

/** Reads a gate result written by this command (`--from` re-applies one to the cards without sampling again). */
export function readGateResult(path: string): GateResult {
  if (!existsSync(path)) throw new GuidekitError('MODEL_NOT_FOUND', `No gate result at ${path}: run pnpm bench:int8-gate first.`)
  return JSON.parse(readFileSync(path, 'utf8')) as GateResult
}

if (process.argv[1]?.endsWith('gate.ts')) {
  const { values } = parseArgs({
    options: {
      model: { type: 'string', default: 'fashion-dit' },
      images: { type: 'string', default: '1000' },
      steps: { type: 'string', default: '30' },
      scale: { type: 'string', default: '3' },
      batch: { type: 'string', default: '50' },
      threads: { type: 'string', default: '2' },
      'write-card': { type: 'boolean', default: false },
      from: { type: 'string' },
      out: { type: 'string', default: 'bench-results' },
    },
  })
  const log = (s: string) => process.stderr.write(`${s}\n`)
  try {
    const model = values.model as FashionModelName
    if (!(fashionModelNames as readonly string[]).includes(model) || model === 'fashion-eval') throw new GuidekitError('INVALID_ARGUMENT', `--model must be a shipped generator (${fashionModelNames.filter((n) => n !== 'fashion-eval').join(', ')}), got ${JSON.stringify(values.model)}.`)
    const images = checkNumber('--images', Number(values.images), { min: 10, max: 100_000, integer: true })
    if (images % 10 !== 0) throw new GuidekitError('INVALID_ARGUMENT', `--images must be a multiple of 10 (the same number per class), got ${images}.`)
    const pair = precisionPair(model)
    const gate = values.from
      ? readGateResult(resolve(values.from))
      : await runGate({
          model,
          images,
          steps: checkNumber('--steps', Number(values.steps), { min: 1, max: 1000, integer: true }),
          scale: checkNumber('--scale', Number(values.scale), { min: 1 }),
          batch: checkNumber('--batch', Number(values.batch), { min: 1, max: 1000, integer: true }),
          threads: checkNumber('--threads', Number(values.threads), { min: 1, max: 64, integer: true }),
          log,
        })
    if (gate.model !== model) throw new GuidekitError('INVALID_ARGUMENT', `--from ${values.from} is the gate of ${gate.model}, not ${model}.`)
    if (!values.from) {
      const dir = join(resolve(values.out), 'int8-gate')
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, `${model}.json`), `${JSON.stringify(gate, null, 2)}\n`)
    }
    if (values['write-card']) {
      if (!pair?.int8) throw new GuidekitError('MODEL_NOT_FOUND', `${model}-int8.onnx is missing: run pnpm quantize first.`)
      const written = writeGateToCards({ fp32: pair.fp32, int8: pair.int8 }, gate)
      log(`[gate] wrote metrics to ${written.int8Card} and msPerImage to ${written.fp32Card}`)
    }
    log(`[gate] ${model} at ${gate.images} images: fp32 FD ${gate.fp32.frechetDistance.toFixed(3)} acc ${gate.fp32.accuracy.toFixed(3)} | int8 FD ${gate.int8.frechetDistance.toFixed(3)} acc ${gate.int8.accuracy.toFixed(3)} -> ${gate.passed ? 'PASS' : 'FAIL'}`)
    console.log(JSON.stringify(gate))
  } catch (e) {
    if (!GuidekitError.isInstance(e)) throw e
    log(`error ${e.code}: ${e.message}`)
    process.exit(2)
  }
}
