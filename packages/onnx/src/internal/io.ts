// Session I/O: discovering inputs/outputs from session metadata, checking them against what a model card
// or the diffusers export declares, and converting between guidekit's float32 tensors and ORT tensors.
import { GuidekitError, float16ToFloat32, float32ToFloat16 } from '@guidekit/core'
import { type InferenceSession, Tensor as OrtTensor } from 'onnxruntime-common'

/** One input or output as the session declares it. `shape` is `[]` for a scalar or an unknown shape. */
export interface IoInfo {
  readonly name: string
  readonly dtype: string
  readonly shape: readonly (number | string)[]
}

/** What a caller expects of one input or output. A dimension that is a string, null or <= 0 is free. */
export interface IoExpectation {
  readonly name: string
  /** Accepted dtypes, e.g. `['float32', 'float16']`. */
  readonly dtypes: readonly string[]
  /** Expected shape; `undefined` skips the shape check. */
  readonly shape?: readonly (number | string | null)[]
  /** Accepted ranks when `shape` is not given (e.g. `[0, 1]` for a timestep). */
  readonly ranks?: readonly number[]
}

function describe(list: readonly InferenceSession.ValueMetadata[]): Map<string, IoInfo> {
  const out = new Map<string, IoInfo>()
  for (const m of list) {
    out.set(m.name, m.isTensor ? { name: m.name, dtype: m.type, shape: [...m.shape] } : { name: m.name, dtype: 'non-tensor', shape: [] })
  }
  return out
}

export function sessionInputs(session: InferenceSession): Map<string, IoInfo> {
  return describe(session.inputMetadata)
}

export function sessionOutputs(session: InferenceSession): Map<string, IoInfo> {
  return describe(session.outputMetadata)
}

export const formatShape = (shape: readonly (number | string | null)[]): string => `[${shape.map((d) => (d === null ? '?' : String(d))).join(', ')}]`

const isFixed = (d: number | string | null): d is number => typeof d === 'number' && d > 0

/**
 * Checks a session's inputs or outputs against expectations; throws `MODEL_INVALID` for a missing name and
 * `INPUT_MISMATCH` for a dtype or shape that differs, naming the model, the input, expected and actual.
 */
export function checkIo(model: string, kind: 'input' | 'output', actual: Map<string, IoInfo>, expected: readonly IoExpectation[], source: string): void {
  for (const e of expected) {
    const a = actual.get(e.name)
    if (!a) {
      throw new GuidekitError(
        'MODEL_INVALID',
        `${model} has no ${kind} named '${e.name}' (its ${kind}s: ${[...actual.keys()].join(', ') || 'none'}); ${source} expects one. Export the model with the expected ${kind} names.`,
        { details: { model, kind, name: e.name, actual: [...actual.keys()] } },
      )
    }
    if (!e.dtypes.includes(a.dtype)) {
      throw new GuidekitError(
        'INPUT_MISMATCH',
        `${model}: ${kind} '${e.name}' has dtype ${a.dtype}, but ${source} expects ${e.dtypes.join(' or ')}.`,
        { details: { model, kind, name: e.name, expected: e.dtypes, actual: a.dtype } },
      )
    }
    // ORT reports [] both for scalars and for unknown shapes: only a non-empty shape can be checked.
    if (e.shape && a.shape.length > 0) {
      const mismatch =
        a.shape.length !== e.shape.length || e.shape.some((d, i) => isFixed(d) && typeof a.shape[i] === 'number' && a.shape[i] !== d)
      if (mismatch) {
        throw new GuidekitError(
          'INPUT_MISMATCH',
          `${model}: ${kind} '${e.name}' has shape ${formatShape(a.shape)}, but ${source} expects ${formatShape(e.shape)}.`,
          { details: { model, kind, name: e.name, expected: e.shape, actual: a.shape } },
        )
      }
    }
    if (!e.shape && e.ranks && !(a.shape.length === 0 && e.ranks.includes(0)) && a.shape.length > 0 && !e.ranks.includes(a.shape.length)) {
      throw new GuidekitError(
        'INPUT_MISMATCH',
        `${model}: ${kind} '${e.name}' has shape ${formatShape(a.shape)} (rank ${a.shape.length}), but ${source} expects rank ${e.ranks.join(' or ')}.`,
        { details: { model, kind, name: e.name, expectedRanks: e.ranks, actual: a.shape } },
      )
    }
  }
}

/** A float feed in the dtype the model declares (float16 is converted at the edge). */
export function floatFeed(data: Float32Array, shape: readonly number[], dtype: string): OrtTensor {
  if (dtype === 'float16') return new OrtTensor('float16', float32ToFloat16(data), [...shape])
  return new OrtTensor('float32', data, [...shape])
}

/** A feed of (integer or float) values in whatever numeric dtype the model declares. */
export function numericFeed(values: readonly number[], shape: readonly number[], dtype: string): OrtTensor {
  switch (dtype) {
    case 'int64':
      return new OrtTensor('int64', BigInt64Array.from(values, (v) => BigInt(Math.round(v))), [...shape])
    case 'int32':
      return new OrtTensor('int32', Int32Array.from(values, (v) => Math.round(v)), [...shape])
    case 'float16':
      return new OrtTensor('float16', float32ToFloat16(Float32Array.from(values)), [...shape])
    case 'float32':
      return new OrtTensor('float32', Float32Array.from(values), [...shape])
    case 'float64':
      return new OrtTensor('float64', Float64Array.from(values), [...shape])
    default:
      throw new GuidekitError('UNSUPPORTED', `Unsupported input dtype ${dtype}; guidekit feeds int32, int64, float16, float32 or float64.`)
  }
}

/** Reads a float output (float32 or float16) as float32. */
export function readFloat(tensor: OrtTensor | undefined, model: string, name: string): { data: Float32Array; shape: number[] } {
  if (!tensor) throw new GuidekitError('MODEL_ERROR', `${model} returned no output '${name}'.`)
  if (tensor.type === 'float32') return { data: tensor.data as Float32Array, shape: [...tensor.dims] }
  if (tensor.type === 'float16') return { data: float16ToFloat32(tensor.data as Uint16Array), shape: [...tensor.dims] }
  throw new GuidekitError('MODEL_ERROR', `${model}: output '${name}' has dtype ${tensor.type}; expected float32 or float16.`)
}

/** Throws `ABORTED` when the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) {
    throw new GuidekitError('ABORTED', 'The operation was aborted.', { cause: signal.reason })
  }
}

/** Runs a session, wrapping runtime failures in `MODEL_ERROR` and honouring the abort signal. */
export async function runSession(
  session: InferenceSession,
  feeds: Record<string, OrtTensor>,
  model: string,
  signal?: AbortSignal,
  runOptions?: InferenceSession.RunOptions,
): Promise<InferenceSession.ReturnType> {
  throwIfAborted(signal)
  let result: InferenceSession.ReturnType
  try {
    result = runOptions ? await session.run(feeds, runOptions) : await session.run(feeds)
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause)
    const shapes = Object.entries(feeds)
      .map(([k, v]) => `${k}: ${v.type}${formatShape(v.dims)}`)
      .join(', ')
    throw new GuidekitError('MODEL_ERROR', `${model} failed to run with inputs {${shapes}}: ${reason.trim()}`, { cause, details: { model } })
  }
  throwIfAborted(signal)
  return result
}
