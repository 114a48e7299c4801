import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { GuidekitError } from '@guidekit/core'
import type { GaussianStatistics } from './statistics.js'

/** The JSON header of a reference-statistics file; the numbers live in the `.f64` file next to it. */
export interface ReferenceHeader {
  readonly format: 'guidekit.eval.reference/v1'
  /** e.g. 'Fashion-MNIST test set (10k)'. */
  readonly dataset: string
  /** The evaluator the features came from: its model name and the SHA-256 of its ONNX file. */
  readonly evaluator: { readonly name: string; readonly sha256: string }
  readonly count: number
  readonly dim: number
  /** Binary file (relative to the header): little-endian float64, `mean[dim]`, then the covariance's upper triangle row by row. */
  readonly file: string
  /** Metrics of the real images, for the "data" row of a benchmark table. */
  readonly data?: Readonly<Record<string, unknown>>
  /** How the file was made. */
  readonly command?: string
}

/** Reference statistics plus the header that says where they came from. */
export interface ReferenceStatistics extends GaussianStatistics {
  readonly header: ReferenceHeader
}

/** Packs statistics as the `.f64` payload: `mean`, then the upper triangle of the covariance, little-endian float64. */
export function encodeStatistics(stats: GaussianStatistics): Uint8Array {
  const { dim } = stats
  const values = new Float64Array(dim + (dim * (dim + 1)) / 2)
  values.set(stats.mean, 0)
  let o = dim
  for (let i = 0; i < dim; i++) for (let j = i; j < dim; j++) values[o++] = stats.covariance[i * dim + j] as number
  const out = new Uint8Array(values.length * 8)
  const view = new DataView(out.buffer)
  values.forEach((v, k) => view.setFloat64(k * 8, v, true))
  return out
}

/** Inverse of {@link encodeStatistics}. */
export function decodeStatistics(bytes: Uint8Array, dim: number, count: number): GaussianStatistics {
  const expected = (dim + (dim * (dim + 1)) / 2) * 8
  if (bytes.byteLength !== expected) {
    throw new GuidekitError('IO_ERROR', `Reference statistics for dim ${dim} must be ${expected} bytes, got ${bytes.byteLength}; regenerate them (packages/eval/scripts/make-reference.ts).`, {
      details: { expected, actual: bytes.byteLength },
    })
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const mean = new Float64Array(dim)
  for (let i = 0; i < dim; i++) mean[i] = view.getFloat64(i * 8, true)
  const covariance = new Float64Array(dim * dim)
  let o = dim
  for (let i = 0; i < dim; i++) {
    for (let j = i; j < dim; j++) {
      const v = view.getFloat64(o++ * 8, true)
      covariance[i * dim + j] = v
      covariance[j * dim + i] = v
    }
  }
  return { dim, count, mean, covariance }
}

/**
 * Reads reference statistics from a header JSON file (and the `.f64` file it names). When `evaluatorSha256`
 * is given, a reference made with a different evaluator is rejected (`MODEL_INVALID`): Frechet distances
 * against features of another network are meaningless.
 */
export function readReferenceStatistics(headerPath: string, options: { readonly evaluatorSha256?: string } = {}): ReferenceStatistics {
  let header: ReferenceHeader
  try {
    header = JSON.parse(readFileSync(headerPath, 'utf8')) as ReferenceHeader
  } catch (cause) {
    throw new GuidekitError('IO_ERROR', `Could not read reference statistics ${headerPath}: ${cause instanceof Error ? cause.message : String(cause)}.`, { cause })
  }
  if (header.format !== 'guidekit.eval.reference/v1') {
    throw new GuidekitError('IO_ERROR', `${headerPath} is not a guidekit.eval.reference/v1 header (format ${JSON.stringify(header.format)}).`)
  }
  if (options.evaluatorSha256 !== undefined && options.evaluatorSha256 !== header.evaluator.sha256) {
    throw new GuidekitError(
      'MODEL_INVALID',
      `${headerPath} was made with evaluator ${header.evaluator.name} (sha256 ${header.evaluator.sha256.slice(0, 12)}...), but the loaded evaluator has sha256 ${options.evaluatorSha256.slice(0, 12)}...; regenerate the reference (pnpm --filter @guidekit/eval make-reference) or use the matching evaluator.`,
      { details: { expected: header.evaluator.sha256, actual: options.evaluatorSha256 } },
    )
  }
  const binPath = join(dirname(headerPath), header.file)
  const stats = decodeStatistics(new Uint8Array(readFileSync(binPath)), header.dim, header.count)
  return { ...stats, header }
}

/** Path of the shipped reference: `fashion-eval` features of the Fashion-MNIST test set (10k images). */
export const fashionMnistTestReferencePath: string = fileURLToPath(new URL('../reference/fashion-mnist-test.json', import.meta.url))

/**
 * The shipped Fashion-MNIST test-set statistics (mean and covariance of `fashion-eval` features, float64),
 * so Frechet distances need neither the dataset nor a GPU. Pass the evaluator's `sha256` to make sure the
 * reference belongs to it.
 *
 * @example
 * const fd = frechetDistance(featureStatistics(features), fashionMnistTestStatistics({ evaluatorSha256: evaluator.sha256 }))
 */
export function fashionMnistTestStatistics(options: { readonly evaluatorSha256?: string } = {}): ReferenceStatistics {
  return readReferenceStatistics(fashionMnistTestReferencePath, options)
}
