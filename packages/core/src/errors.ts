/**
 * Stable error codes shared by every guidekit package. A code never changes meaning once published;
 * messages may improve.
 */
export type GuidekitErrorCode =
  /** An argument is out of range, of the wrong type or missing. */
  | 'INVALID_ARGUMENT'
  /** Tensors that must share a shape do not. */
  | 'SHAPE_MISMATCH'
  /** A NaN or infinity appeared; the message names the component that produced it. */
  | 'NON_FINITE'
  /** The caller's AbortSignal fired. */
  | 'ABORTED'
  /** A valid request guidekit does not support (e.g. an epsilon model on a flow schedule). */
  | 'UNSUPPORTED'
  /** A model file or its card is missing. */
  | 'MODEL_NOT_FOUND'
  /** A model, its card or its configuration is malformed or contradicts itself (checked at load). */
  | 'MODEL_INVALID'
  /** A tensor handed to a model does not match what the model declares (shape, dtype, batch). */
  | 'INPUT_MISMATCH'
  /** A model failed while running (the runtime's error is the cause). */
  | 'MODEL_ERROR'
  /** Reading or writing a file failed. */
  | 'IO_ERROR'

/** Every {@link GuidekitErrorCode}, for exhaustive checks and documentation. */
export const guidekitErrorCodes: readonly GuidekitErrorCode[] = [
  'INVALID_ARGUMENT',
  'SHAPE_MISMATCH',
  'NON_FINITE',
  'ABORTED',
  'UNSUPPORTED',
  'MODEL_NOT_FOUND',
  'MODEL_INVALID',
  'INPUT_MISMATCH',
  'MODEL_ERROR',
  'IO_ERROR',
]

const marker = Symbol.for('@guidekit/error')

/**
 * The one error class of the guidekit family. `code` is stable; the message says what was wrong and what
 * to do. Use {@link GuidekitError.isInstance} rather than `instanceof`: it also recognises errors thrown by
 * a second copy of the package (e.g. two versions in one `node_modules`).
 *
 * @example
 * try { await sample(...) } catch (e) { if (GuidekitError.isInstance(e) && e.code === 'NON_FINITE') ... }
 */
export class GuidekitError extends Error {
  readonly [marker] = true
  readonly code: GuidekitErrorCode
  /** Extra machine-readable facts (the parameter name, the step, ...). */
  readonly details: Readonly<Record<string, unknown>>

  constructor(code: GuidekitErrorCode, message: string, options: { cause?: unknown; details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'GuidekitError'
    this.code = code
    this.details = options.details ?? {}
  }

  /** True for any guidekit error, whichever copy of the package created it. */
  static isInstance(value: unknown): value is GuidekitError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[marker] === true
  }
}

/** Throws `INVALID_ARGUMENT` naming the parameter and its valid range unless `ok`. */
export function check(ok: boolean, name: string, value: unknown, expected: string): asserts ok {
  if (!ok) {
    throw new GuidekitError('INVALID_ARGUMENT', `${name} must be ${expected}, got ${formatValue(value)}.`, {
      details: { parameter: name, value, expected },
    })
  }
}

/** Validates a finite number within optional bounds and returns it. */
export function checkNumber(
  name: string,
  value: unknown,
  range: { min?: number; max?: number; minExclusive?: boolean; maxExclusive?: boolean; integer?: boolean } = {},
): number {
  const { min, max, minExclusive = false, maxExclusive = false, integer = false } = range
  const lo = min === undefined ? '' : `${minExclusive ? '>' : '>='} ${min}`
  const hi = max === undefined ? '' : `${maxExclusive ? '<' : '<='} ${max}`
  const expected = [integer ? 'an integer' : 'a finite number', [lo, hi].filter(Boolean).join(' and ')].filter(Boolean).join(' ')
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (!integer || Number.isInteger(value)) &&
    (min === undefined || (minExclusive ? value > min : value >= min)) &&
    (max === undefined || (maxExclusive ? value < max : value <= max))
  check(ok, name, value, expected)
  return value
}

function formatValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value)
  if (Array.isArray(value)) return `[${value.slice(0, 8).map(formatValue).join(', ')}${value.length > 8 ? ', ...' : ''}]`
  try {
    return JSON.stringify(value)
  } catch {
    return String(value)
  }
}
