// pnpm bench:int8-gate [--model fashion-dit] [--images 1000] [--steps 30] [--scale 3] [--batch 50]
//                      [--threads 2] [--write-card] [--out bench-results]
//
// The quality gate a reduced-precision model must pass to ship (issue 12): sample the same images with the
// fp32 model and its int8 model through guidekit (CFG 3, 30 steps, image i of class i mod 10 from seed
// 1_000_000 + batch start, the quality benchmark's seeds), score both with @guidekit/eval (fashion-eval
// accuracy and Frechet distance to the Fashion-MNIST test set), and pass when
//   FD_int8 <= 1.05 FD_fp32   and   accuracy_int8 >= accuracy_fp32 - 0.01.
// Writes bench-results/int8-gate/<model>.json (the cached gate result bench:perf reads); --write-card also
// records the int8 model's metrics and the verdict in `<model>-int8.card.json`. Prints one JSON object.
import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { cfg } from '@guidekit/cfg'
import { GuidekitError, Tensor, checkNumber, ddim, euler, sample } from '@guidekit/core'
import { evaluateQuality, fashionMnistTestStatistics, loadEvaluator, type Evaluator, type QualityMetrics } from '@guidekit/eval'
import { fashionModelNames, type FashionModelName } from '@guidekit/models-fashion'
import { classConditionalDenoiser, loadClassConditionalModel, planFromCard } from '@guidekit/onnx'
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
  readonly sampler: string
  readonly fp32: GateSide
  readonly int8: GateSide
  readonly passed: boolean
  readonly criteria: string
  readonly measuredAt: string
}

/** The verdict for two measurements (exported for the unit test of the criteria). */
export function gateVerdict(fp32: Pick<GateSide, 'accuracy' | 'frechetDistance'>, int8: Pick<GateSide, 'accuracy' | 'frechetDistance'>): boolean {
  return int8.frechetDistance <= GATE.fdRatio * fp32.frechetDistance && int8.accuracy >= fp32.accuracy - GATE.accuracyDrop
}

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')

async function measure(path: string, o: { images: number; steps: number; scale: number; batch: number; threads: number; evaluator: Evaluator; log: (s: string) => void }): Promise<GateSide & { metrics: QualityMetrics }> {
  const model = await loadClassConditionalModel(path, { sessionOptions: { threads: o.threads, interOpThreads: 1, graphOptimizationLevel: 'all' } })
  const denoiser = await classConditionalDenoiser({ model, classes: [0] })
  const plan = planFromCard(model.card, { steps: o.steps })
  const data = new Float32Array(o.images * 784)
  let ms = 0
  try {
    for (let done = 0; done < o.images; done += o.batch) {
      const n = Math.min(o.batch, o.images - done)
      const t0 = performance.now()
      const r = await sample({ denoiser: denoiser.withClasses(classesFor(done, n)), guider: cfg({ scale: o.scale }), sampler: model.family === 'flow' ? euler() : ddim(), plan, shape: [n, 1, 28, 28], seed: SEED + done })
      ms += performance.now() - t0
      data.set(r.samples.data, done * 784)
      o.log(`[gate] ${model.card.name}: ${done + n}/${o.images}`)
    }
  } finally {
    await denoiser.dispose()
    await model.dispose()
  }
  const metrics = await evaluateQuality({ images: new Tensor(data, [o.images, 1, 28, 28]), labels: classesFor(0, o.images), evaluator: o.evaluator, reference: fashionMnistTestStatistics({ evaluatorSha256: o.evaluator.sha256 }) })
  return { accuracy: metrics.accuracy, frechetDistance: metrics.frechetDistance, secondsPerImage: ms / 1000 / o.images, sha256: sha256(path), metrics }
}

export async function runGate(options: { model: FashionModelName; images: number; steps: number; scale: number; batch: number; threads: number; log: (s: string) => void }): Promise<GateResult> {
  const pair = precisionPair(options.model)
  if (!pair) throw new GuidekitError('MODEL_NOT_FOUND', `${options.model} is not in packages/models-fashion/models (or GUIDEKIT_MODELS_DIR).`)
  if (!pair.int8) throw new GuidekitError('MODEL_NOT_FOUND', `${options.model}-int8.onnx is missing next to ${pair.fp32}. Make it first: pnpm quantize ${pair.fp32}`)
  const evaluatorPath = modelPath('fashion-eval')
  if (!evaluatorPath) throw new GuidekitError('MODEL_NOT_FOUND', 'fashion-eval is missing: the gate scores images with it (packages/models-fashion/models/fashion-eval.onnx).')
  const evaluator = await loadEvaluator(evaluatorPath, { sessionOptions: { threads: options.threads } })
  try {
    const common = { ...options, evaluator }
    const { metrics: _a, ...fp32 } = await measure(pair.fp32, common)
    const { metrics: _b, ...int8 } = await measure(pair.int8, common)
    const card = JSON.parse(readFileSync(pair.fp32.replace(/\.onnx$/, '.card.json'), 'utf8')) as { schedule: { family: string } }
    return {
      model: options.model,
      images: options.images,
      steps: options.steps,
      cfgScale: options.scale,
      sampler: card.schedule.family === 'flow' ? 'euler (flow), uniform t from 1 to 0' : 'ddim (eta 0), linspace timesteps 999..0',
      fp32,
      int8,
      passed: gateVerdict(fp32, int8),
      criteria: `FD_int8 <= ${GATE.fdRatio} FD_fp32 and accuracy_int8 >= accuracy_fp32 - ${GATE.accuracyDrop}`,
      measuredAt: new Date().toISOString(),
    }
  } finally {
    await evaluator.dispose()
  }
}

/** Records the gate in the int8 card: its own metrics (`metrics.byScale`) and the verdict (`gate`). */
export function writeGateToCard(int8CardPath: string, gate: GateResult): void {
  const card = JSON.parse(readFileSync(int8CardPath, 'utf8')) as Record<string, unknown>
  const derived = card.derivedFrom as { sha256?: string } | undefined
  if (derived?.sha256 && derived.sha256 !== gate.fp32.sha256) {
    throw new GuidekitError('MODEL_INVALID', `${int8CardPath} derives from fp32 weights ${derived.sha256.slice(0, 12)}, but the gate measured ${gate.fp32.sha256.slice(0, 12)}. Re-run pnpm quantize, then the gate.`)
  }
  card.metrics = {
    evaluator: 'fashion-eval',
    samples: gate.images,
    steps: gate.steps,
    sampler: gate.sampler,
    reference: 'Fashion-MNIST test set (10k), fashion-eval features',
    byScale: [{ cfgScale: gate.cfgScale, accuracy: gate.int8.accuracy, frechetDistance: gate.int8.frechetDistance }],
  }
  card.gate = { passed: gate.passed, criteria: gate.criteria, images: gate.images, fp32: { accuracy: gate.fp32.accuracy, frechetDistance: gate.fp32.frechetDistance }, int8Sha256: gate.int8.sha256, command: `pnpm bench:int8-gate --model ${gate.model} --images ${gate.images} --write-card`, measuredAt: gate.measuredAt }
  writeFileSync(int8CardPath, `${JSON.stringify(card, null, 2)}\n`)
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
      out: { type: 'string', default: 'bench-results' },
    },
  })
  const log = (s: string) => process.stderr.write(`${s}\n`)
  try {
    const model = values.model as FashionModelName
    if (!(fashionModelNames as readonly string[]).includes(model) || model === 'fashion-eval') throw new GuidekitError('INVALID_ARGUMENT', `--model must be a shipped generator (${fashionModelNames.filter((n) => n !== 'fashion-eval').join(', ')}), got ${JSON.stringify(values.model)}.`)
    const images = checkNumber('--images', Number(values.images), { min: 10, max: 100_000, integer: true })
    if (images % 10 !== 0) throw new GuidekitError('INVALID_ARGUMENT', `--images must be a multiple of 10 (the same number per class), got ${images}.`)
    const gate = await runGate({
      model,
      images,
      steps: checkNumber('--steps', Number(values.steps), { min: 1, max: 1000, integer: true }),
      scale: checkNumber('--scale', Number(values.scale), { min: 1 }),
      batch: checkNumber('--batch', Number(values.batch), { min: 1, max: 1000, integer: true }),
      threads: checkNumber('--threads', Number(values.threads), { min: 1, max: 64, integer: true }),
      log,
    })
    const dir = join(resolve(values.out as string), 'int8-gate')
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, `${model}.json`), `${JSON.stringify(gate, null, 2)}\n`)
    if (values['write-card']) writeGateToCard((precisionPair(model)?.int8 as string).replace(/\.onnx$/, '.card.json'), gate)
    log(`[gate] ${model} at ${gate.images} images: fp32 FD ${gate.fp32.frechetDistance.toFixed(3)} acc ${gate.fp32.accuracy.toFixed(3)} | int8 FD ${gate.int8.frechetDistance.toFixed(3)} acc ${gate.int8.accuracy.toFixed(3)} -> ${gate.passed ? 'PASS' : 'FAIL'}`)
    console.log(JSON.stringify(gate))
  } catch (e) {
    if (!GuidekitError.isInstance(e)) throw e
    log(`error ${e.code}: ${e.message}`)
    process.exit(2)
  }
}
