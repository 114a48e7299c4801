// Shared types and helpers of the conformance runner. Case files export `(file: VectorFile) => ConformanceCase[]`.

/** A tensor as stored in vector files: flat row-major data. */
export interface StoredTensor {
  readonly shape: readonly number[]
  readonly data: readonly number[]
}

/** The parsed vector file (only the top-level sections the runner knows; unknown keys are ignored). */
export interface VectorFile {
  readonly guidance?: readonly VectorCase[]
  readonly comfy_samplers?: readonly VectorCase[]
  readonly schedulers?: Readonly<Record<string, unknown>>
  readonly toy_denoisers?: Readonly<Record<string, unknown>>
  readonly [key: string]: unknown
}

/** One case of the `guidance` or `comfy_samplers` sections. */
export interface VectorCase {
  readonly id: string
  readonly method: string
  readonly params?: Readonly<Record<string, unknown>>
  readonly inputs?: Readonly<Record<string, unknown>>
  readonly outputs?: Readonly<Record<string, unknown>>
  readonly [key: string]: unknown
}

/** The outcome of one case. `ratio` is the worst `|a - b| / (atol + rtol |b|)` (pass when <= 1). */
export interface CaseResult {
  readonly status: 'pass' | 'fail' | 'skip'
  readonly ratio?: number
  readonly maxAbsDiff?: number
  readonly note?: string
}

export interface ConformanceCase {
  readonly id: string
  run(): Promise<CaseResult> | CaseResult
}

export type CaseSource = (file: VectorFile) => ConformanceCase[]

/** Tolerances of vectors/README.md §3. */
export const SINGLE_STEP = { atol: 1e-5, rtol: 1e-5 } as const
export const TRAJECTORY = { atol: 1e-4, rtol: 1e-4 } as const

export function isStoredTensor(value: unknown): value is StoredTensor {
  return typeof value === 'object' && value !== null && Array.isArray((value as StoredTensor).shape) && Array.isArray((value as StoredTensor).data)
}

/** A stored tensor as float32 data plus shape. Throws a clear error when the value is not a tensor. */
export function tensorData(value: unknown, what: string): { data: Float32Array; shape: number[] } {
  if (!isStoredTensor(value)) throw new Error(`${what}: expected a {shape, data} tensor`)
  const size = value.shape.reduce((a, b) => a * b, 1)
  if (size !== value.data.length) throw new Error(`${what}: shape [${value.shape.join(', ')}] does not match ${value.data.length} values`)
  return { data: Float32Array.from(value.data), shape: [...value.shape] }
}

/** A running comparison: accumulate several outputs, then `result()`. */
export class Comparison {
  private worstRatio = 0
  private worstAbs = 0
  private problems: string[] = []

  /** Compares `actual` to `expected` element-wise with `|a - b| <= atol + rtol |b|`. */
  add(what: string, actual: ArrayLike<number>, expected: unknown, tol: { atol: number; rtol: number }): this {
    const exp: ArrayLike<number> = isStoredTensor(expected) ? expected.data : (expected as ArrayLike<number>)
    if (!exp || typeof exp.length !== 'number') {
      this.problems.push(`${what}: no expected values`)
      return this
    }
    if (actual.length !== exp.length) {
      this.problems.push(`${what}: ${actual.length} values, expected ${exp.length}`)
      this.worstRatio = Infinity
      return this
    }
    for (let i = 0; i < exp.length; i++) {
      const a = actual[i] as number
      const b = Math.fround(exp[i] as number)
      const diff = Math.abs(a - b)
      const ratio = Number.isNaN(diff) ? Infinity : diff / (tol.atol + tol.rtol * Math.abs(b))
      if (ratio > this.worstRatio) this.worstRatio = ratio
      if (diff > this.worstAbs || Number.isNaN(diff)) this.worstAbs = Number.isNaN(diff) ? Infinity : diff
    }
    return this
  }

  /** Exact comparison (integers, booleans). */
  exact(what: string, actual: unknown, expected: unknown): this {
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      this.problems.push(`${what}: got ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`)
      this.worstRatio = Infinity
    }
    return this
  }

  result(): CaseResult {
    const ok = this.problems.length === 0 && this.worstRatio <= 1
    return { status: ok ? 'pass' : 'fail', ratio: this.worstRatio, maxAbsDiff: this.worstAbs, ...(this.problems.length ? { note: this.problems.join('; ') } : {}) }
  }
}

/** Reads a number from a params/config object, with a default. */
export function num(obj: Readonly<Record<string, unknown>> | undefined, key: string, fallback?: number): number {
  const v = obj?.[key]
  if (typeof v === 'number') return v
  if (fallback !== undefined && (v === undefined || v === null)) return fallback
  throw new Error(`missing numeric parameter '${key}'`)
}
