// Where the int8 model of a shipped fp32 generator is: `<name>-int8.onnx` and its card next to the fp32 file
// (packages/models-fashion/models, or GUIDEKIT_MODELS_DIR), as `pnpm quantize` writes them (the same place
// the CLI's `--precision` looks for `<name>-int8.card.json`).
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { basename, dirname, join, relative } from 'node:path'
import type { FashionModelName } from '@guidekit/models-fashion'
import { modelPath } from '../quality/models.js'

export interface PrecisionPair {
  readonly name: string
  readonly fp32: string
  /** `undefined` when `pnpm quantize` has not been run for this model. */
  readonly int8: string | undefined
}

export function precisionPair(name: FashionModelName): PrecisionPair | undefined {
  const fp32 = modelPath(name)
  if (!fp32) return undefined
  const int8 = join(dirname(fp32), `${name}-int8.onnx`)
  return { name, fp32, int8: existsSync(int8) && existsSync(int8.replace(/\.onnx$/, '.card.json')) ? int8 : undefined }
}

/** The gate's numbers as bench:perf reports them (`int8Quality`). */
export interface Int8Quality {
  readonly images: number
  readonly fdFp32: number
  readonly fdInt8: number
  readonly accFp32: number
  readonly accInt8: number
  readonly passed: boolean
  /** Where the numbers come from: the int8 card's `gate`, or the cached gate result file. */
  readonly source: string
}

/** The bar: a reduced-precision model ships only after passing the gate at this many images. */
export const GATE_IMAGES = 1000

const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')

/**
 * The int8 model's gate result for the current files: the int8 card's `metrics.qualityGate` (written by
 * `bench:int8-gate --write-card`), else `<resultsDir>/int8-gate/<name>.json`, each only if it was measured
 * on these exact weights (SHA-256). `undefined` when neither matches.
 */
export function int8Quality(pair: PrecisionPair, resultsDir: string): Int8Quality | undefined {
  if (!pair.int8) return undefined
  const int8Sha = sha256(pair.int8)
  const cardPath = pair.int8.replace(/\.onnx$/, '.card.json')
  type Side = { accuracy: number; frechetDistance: number }
  const card = JSON.parse(readFileSync(cardPath, 'utf8')) as { metrics?: { qualityGate?: { passed: boolean; images: number; int8Sha256: string; fp32: Side; int8: Side } } }
  const gate = card.metrics?.qualityGate
  if (gate && gate.int8Sha256 === int8Sha) {
    return { images: gate.images, fdFp32: gate.fp32.frechetDistance, fdInt8: gate.int8.frechetDistance, accFp32: gate.fp32.accuracy, accInt8: gate.int8.accuracy, passed: gate.passed, source: `int8 card (${basename(cardPath)}: metrics.qualityGate)` }
  }
  const cached = join(resultsDir, 'int8-gate', `${pair.name}.json`)
  if (!existsSync(cached)) return undefined
  const g = JSON.parse(readFileSync(cached, 'utf8')) as { images: number; passed: boolean; fp32: Side & { sha256: string }; int8: Side & { sha256: string } }
  if (g.int8.sha256 !== int8Sha || g.fp32.sha256 !== sha256(pair.fp32)) return undefined
  return { images: g.images, fdFp32: g.fp32.frechetDistance, fdInt8: g.int8.frechetDistance, accFp32: g.fp32.accuracy, accInt8: g.int8.accuracy, passed: g.passed, source: `cached gate result (${relative(process.cwd(), cached)})` }
}
