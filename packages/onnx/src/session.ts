import { existsSync, statSync } from 'node:fs'
import { GuidekitError, checkNumber } from '@guidekit/core'
import * as ort from 'onnxruntime-node'
import { openWorkerPool } from './node/pool.js'

/** ONNX Runtime graph optimization levels (`onnxruntime-common` names). */
export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'layout' | 'all'

/**
 * Session options of every model this package loads. Defaults are ONNX Runtime's (all physical cores,
 * `graphOptimizationLevel: 'all'`, CPU execution provider).
 *
 * @example
 * const options: OnnxSessionOptions = { threads: 2, graphOptimizationLevel: 'all' }
 */
export interface OnnxSessionOptions {
  /** Threads used inside one operator (`intraOpNumThreads`), per session. */
  readonly threads?: number
  /**
   * Sessions of the model in this many worker threads (default: none, one session in this thread). Each
   * call's rows are split into runs of at most 8 (at least 2 runs from 2 rows on; the split depends on the
   * rows only) that the workers take from a queue; `threads` then defaults to 1 per session. A float model
   * gives the same numbers as one session, an int8 model the same bytes for any number of workers. On 2
   * cores, 2 workers sample batch 64 with CFG 1.11-1.22x faster than one 2-thread session (batch 8:
   * 1.05-1.15x; five 15-round runs of `pnpm bench:perf`).
   */
  readonly workers?: number
  /** Threads used to run independent operators in parallel (`interOpNumThreads`). */
  readonly interOpThreads?: number
  readonly graphOptimizationLevel?: GraphOptimizationLevel
  /** Execution providers in order of preference; default `['cpu']`. */
  readonly executionProviders?: readonly string[]
  /** Fixes symbolic dimensions (e.g. `{ batch: 2 }`), which lets ORT plan memory once. */
  readonly freeDimensionOverrides?: Readonly<Record<string, number>>
  /** Raw ONNX Runtime options, merged last (escape hatch). */
  readonly ort?: ort.InferenceSession.SessionOptions
}

/** Checked `workers`. */
function workerCount(options: OnnxSessionOptions): number {
  return checkNumber('sessionOptions.workers', options.workers, { min: 1, max: 256, integer: true })
}

const levels: readonly GraphOptimizationLevel[] = ['disabled', 'basic', 'extended', 'layout', 'all']

/** Maps guidekit's session options to ONNX Runtime's, validating them. */
export function toOrtSessionOptions(options: OnnxSessionOptions = {}): ort.InferenceSession.SessionOptions {
  // ORT's own log lines (coloured warnings on stderr) are silenced: guidekit turns its failures into errors.
  const out: ort.InferenceSession.SessionOptions = { executionProviders: [...(options.executionProviders ?? ['cpu'])], logSeverityLevel: 4 }
  if (options.threads !== undefined) out.intraOpNumThreads = checkNumber('sessionOptions.threads', options.threads, { min: 0, max: 1024, integer: true })
  if (options.interOpThreads !== undefined) {
    out.interOpNumThreads = checkNumber('sessionOptions.interOpThreads', options.interOpThreads, { min: 0, max: 1024, integer: true })
  }
  if (options.graphOptimizationLevel !== undefined) {
    if (!levels.includes(options.graphOptimizationLevel)) {
      throw new GuidekitError(
        'INVALID_ARGUMENT',
        `sessionOptions.graphOptimizationLevel must be one of ${levels.join(', ')}, got ${JSON.stringify(options.graphOptimizationLevel)}.`,
        { details: { parameter: 'sessionOptions.graphOptimizationLevel', value: options.graphOptimizationLevel } },
      )
    }
    out.graphOptimizationLevel = options.graphOptimizationLevel
  }
  if (options.freeDimensionOverrides) out.freeDimensionOverrides = { ...options.freeDimensionOverrides }
  return { ...out, ...options.ort }
}

/**
 * Opens an ONNX Runtime session for a model file (or the bytes of one). A missing file is
 * `MODEL_NOT_FOUND`; a model ONNX Runtime cannot load (corrupt, unsupported operator, external weights
 * missing) is `MODEL_INVALID`.
 */
export async function openSession(model: string | Uint8Array, options: OnnxSessionOptions = {}): Promise<ort.InferenceSession> {
  const what = typeof model === 'string' ? model : `a model of ${model.byteLength} bytes`
  if (typeof model === 'string' && (!existsSync(model) || !statSync(model).isFile())) {
    throw new GuidekitError('MODEL_NOT_FOUND', `Model file not found: ${model}. Check the path (or the folder layout) and try again.`, {
      details: { path: model },
    })
  }
  const workers = options.workers === undefined ? undefined : workerCount(options)
  const ortOptions = toOrtSessionOptions(workers !== undefined && options.threads === undefined ? { ...options, threads: 1 } : options)
  try {
    if (workers !== undefined) return await openWorkerPool(model, ortOptions, workers)
    return typeof model === 'string' ? await ort.InferenceSession.create(model, ortOptions) : await ort.InferenceSession.create(model, ortOptions)
  } catch (cause) {
    const reason = (cause instanceof Error ? cause.message : String(cause)).trim().split('\n')[0]
    throw new GuidekitError(
      'MODEL_INVALID',
      `ONNX Runtime could not load ${what}: ${reason}. Is it a complete ONNX file (with its external weight file next to it) exported with operators the CPU provider supports?`,
      { cause, details: { model: what } },
    )
  }
}
