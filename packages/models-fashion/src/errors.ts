const MARKER = Symbol.for('guidekit.models-fashion.error')

export type ModelsFashionErrorCode = 'unknown-model' | 'invalid-card'

/** The error thrown by @guidekit/models-fashion; `code` is stable, `isInstance` survives duplicate package copies. */
export class ModelsFashionError extends Error {
  readonly [MARKER] = true
  readonly code: ModelsFashionErrorCode

  constructor(code: ModelsFashionErrorCode, message: string) {
    super(message)
    this.name = 'ModelsFashionError'
    this.code = code
  }

  static isInstance(value: unknown): value is ModelsFashionError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[MARKER] === true
  }
}
