// pnpm quantize <model.onnx> [--out DIR] [--calibration-rows 1920] [--validation-rows 1920] [--threads 2]
//
// 1920 rows = 32 images (a CFG batch of 64 rows) at each of the 30 timesteps of a 30-step plan.
//
// The one command that makes `<name>-int8.onnx` and `<name>-int8.card.json` from a shipped fp32 generator:
// 1. asks quantize.py which activations need calibrated ranges (Conv layers) and, if any, measures them on
//    Fashion-MNIST training images noised to the sampler's timesteps (MinMax);
// 2. rewrites the graph (quantize.py: Gelu, DynamicQuantizeMatMul, QDQ Conv; onnx.checker);
// 3. runs fp32 and int8 side by side in onnxruntime-node on other training images and records the
//    deviation in the card. Prints one JSON summary on stdout; errors print `error CODE: message`.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { GuidekitError, checkNumber, guidekitErrorCodes } from '@guidekit/core'
import { locateModel, parseGeneratorCard, readModelCard } from '@guidekit/onnx'
import { int8Card, int8Name, type QuantizeReport } from './card.js'
import { trainingFeeds } from './data.js'
import { calibrate, compareModels } from './measure.js'

const PYTHON = '/usr/bin/python3'
const script = fileURLToPath(new URL('../quantize.py', import.meta.url))

/** Runs quantize.py; its `error CODE: message` becomes a GuidekitError with that code. */
function python(args: string[]): Record<string, unknown> {
  const r = spawnSync(PYTHON, [script, ...args], { encoding: 'utf8', maxBuffer: 1 << 26 })
  if (r.error) throw new GuidekitError('UNSUPPORTED', `Cannot run ${PYTHON}: ${r.error.message}. The rewrite needs Debian's python3 with python3-onnx.`, { cause: r.error })
  if (r.status !== 0) {
    const m = /error ([A-Z_]+): (.*)/s.exec(r.stderr)
    const code = guidekitErrorCodes.find((c) => c === m?.[1]) ?? 'MODEL_ERROR'
    throw new GuidekitError(code, m?.[2]?.trim() ?? `quantize.py failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}`)
  }
  return JSON.parse(r.stdout.trim().split('\n').slice(-1)[0] as string) as Record<string, unknown>
}

export interface QuantizeOptions {
  readonly model: string
  readonly outDir?: string
  readonly calibrationRows?: number
  readonly validationRows?: number
  readonly threads?: number
  readonly log?: (line: string) => void
}

export interface QuantizeResult {
  readonly onnxPath: string
  readonly cardPath: string
  readonly card: Record<string, unknown>
}

/** Quantizes one fp32 generator (see the file comment); returns where the model and card went. */
export async function quantizeModel(options: QuantizeOptions): Promise<QuantizeResult> {
  const log = options.log ?? (() => {})
  const threads = checkNumber('threads', options.threads ?? 2, { min: 1, max: 64, integer: true })
  const calibrationRows = checkNumber('calibrationRows', options.calibrationRows ?? 1920, { min: 2, max: 100_000, integer: true })
  const validationRows = checkNumber('validationRows', options.validationRows ?? 1920, { min: 2, max: 10_000, integer: true })
  const { onnxPath, cardPath } = locateModel(resolve(options.model))
  if (!existsSync(onnxPath)) throw new GuidekitError('MODEL_NOT_FOUND', `Model file not found: ${onnxPath}. Pass a shipped fp32 generator, e.g. packages/models-fashion/models/fashion-dit.onnx.`)
  const card = readModelCard(cardPath)
  if (card.kind !== 'generator') throw new GuidekitError('UNSUPPORTED', `${card.name} is an evaluator; only generators are quantized (the evaluator scores the quality gate and stays fp32).`)
  const rawCard = JSON.parse(readFileSync(cardPath, 'utf8')) as Record<string, unknown>
  if (rawCard.precision !== undefined && rawCard.precision !== 'fp32') throw new GuidekitError('UNSUPPORTED', `${card.name} is already a ${typeof rawCard.precision === 'string' ? rawCard.precision : JSON.stringify(rawCard.precision)} model; quantize the fp32 model it derives from.`)
  const outDir = resolve(options.outDir ?? dirname(onnxPath))
  const name = int8Name(card.name)
  const outOnnx = join(outDir, `${name}.onnx`)
  const outCard = join(outDir, `${name}.card.json`)
  const work = mkdtempSync(join(tmpdir(), 'guidekit-quantize-'))
  try {
    const targets = python([onnxPath, '--instrument', join(work, 'instrumented.onnx')]) as { instrumented: string | null; tensors: string[] }
    let calibration: { rows: number; images: string } | null = null
    const rewriteArgs = [onnxPath, '--out', outOnnx]
    if (targets.tensors.length) {
      log(`[quantize] calibrating ${targets.tensors.length} activations on ${calibrationRows} rows (training images 0..${calibrationRows / 2 - 1}) ...`)
      const ranges = await calibrate(targets.instrumented as string, targets.tensors, trainingFeeds(card, { rows: calibrationRows, offset: 0, seed: 11 }), threads)
      writeFileSync(join(work, 'ranges.json'), JSON.stringify(ranges))
      rewriteArgs.push('--ranges', join(work, 'ranges.json'))
      calibration = { rows: calibrationRows, images: `Fashion-MNIST train 0..${calibrationRows / 2 - 1}, noised to the 30-step plan's timesteps, class and null label, MinMax` }
    }
    log(`[quantize] rewriting ${basename(onnxPath)} -> ${outOnnx} ...`)
    const report = python(rewriteArgs) as unknown as QuantizeReport
    log(`[quantize] validating against fp32 on ${validationRows} rows ...`)
    const offset = 50_000
    const deviation = await compareModels(onnxPath, outOnnx, trainingFeeds(card, { rows: validationRows, offset, seed: 12 }), threads)
    const fp32Sha256 = createHash('sha256').update(readFileSync(onnxPath)).digest('hex')
    const int8 = int8Card({
      fp32: rawCard,
      fp32Sha256,
      report,
      calibration,
      validation: { ...deviation, images: `Fashion-MNIST train ${offset}..${offset + validationRows / 2 - 1}, noised to the 30-step plan's timesteps, class and null label` },
      command: `pnpm quantize ${options.model}`,
    })
    parseGeneratorCard(int8, outCard) // the card the CLI and models-fashion will read: same schema as every card
    writeFileSync(outCard, `${JSON.stringify(int8, null, 2)}\n`)
    return { onnxPath: outOnnx, cardPath: outCard, card: int8 }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      'calibration-rows': { type: 'string' },
      'validation-rows': { type: 'string' },
      threads: { type: 'string' },
    },
  })
  try {
    if (positionals.length !== 1) throw new GuidekitError('INVALID_ARGUMENT', 'usage: pnpm quantize <model.onnx> [--out DIR] [--calibration-rows 1920] [--validation-rows 1920] [--threads 2]')
    const num = (v: string | undefined) => (v === undefined ? undefined : Number(v))
    const result = await quantizeModel({
      model: positionals[0] as string,
      ...(values.out ? { outDir: values.out } : {}),
      ...(values['calibration-rows'] ? { calibrationRows: num(values['calibration-rows']) as number } : {}),
      ...(values['validation-rows'] ? { validationRows: num(values['validation-rows']) as number } : {}),
      ...(values.threads ? { threads: num(values.threads) as number } : {}),
      log: (line) => process.stderr.write(`${line}\n`),
    })
    const q = result.card.quantization as Record<string, unknown>
    console.log(JSON.stringify({ onnx: result.onnxPath, card: result.cardPath, operators: q.operators, validation: q.validation }))
  } catch (e) {
    if (!GuidekitError.isInstance(e)) throw e
    process.stderr.write(`error ${e.code}: ${e.message}\n`)
    process.exit(2)
  }
}
