import { GuidekitError } from '@guidekit/core'

/** Exit codes of the `guidekit` CLI (documented in --help and the README). */
export const EXIT = {
  ok: 0,
  /** Unexpected failure (a bug, a model that fails at run time). */
  unexpected: 1,
  /** Bad input: arguments, model files, output paths. */
  usage: 2,
  /** Interrupted (Ctrl-C / SIGINT), as shells report 128 + SIGINT. */
  interrupted: 130,
} as const

/** Bad input found by the CLI itself: printed as one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** The user interrupted the run (SIGINT / abort): exit code 130. */
export class InterruptedError extends Error {
  override readonly name = 'InterruptedError'
}

// GuidekitError codes that mean "the input was wrong" rather than "something broke".
const USAGE_CODES = new Set(['INVALID_ARGUMENT', 'MODEL_NOT_FOUND', 'MODEL_INVALID', 'INPUT_MISMATCH', 'UNSUPPORTED', 'IO_ERROR', 'SHAPE_MISMATCH'])

// Node file-system errors caused by the user's paths.
const FS_CODES = new Set(['ENOENT', 'EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EISDIR', 'EEXIST', 'ENOSPC', 'ENAMETOOLONG'])

/** How an error is reported: the exit code and one line for stderr (no stack trace). */
export function classify(error: unknown): { code: number; message: string } {
  if (error instanceof InterruptedError) return { code: EXIT.interrupted, message: error.message }
  if (error instanceof UsageError) return { code: EXIT.usage, message: error.message }
  if (GuidekitError.isInstance(error)) {
    if (error.code === 'ABORTED') return { code: EXIT.interrupted, message: 'Interrupted; no partial files were written.' }
    return { code: USAGE_CODES.has(error.code) ? EXIT.usage : EXIT.unexpected, message: error.message }
  }
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS')) return { code: EXIT.usage, message: (error as Error).message }
  if (typeof code === 'string' && FS_CODES.has(code)) {
    const e = error as NodeJS.ErrnoException
    return { code: EXIT.usage, message: `Cannot ${e.syscall ?? 'access'} ${e.path ?? 'a file'}: ${code}${code === 'ENOENT' ? ' (no such file or folder)' : code === 'EACCES' || code === 'EPERM' ? ' (permission denied)' : ''}.` }
  }
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  return { code: EXIT.unexpected, message: `Unexpected error: ${message.split('\n')[0]} (rerun with GUIDEKIT_DEBUG=1 for the stack trace).` }
}

/** One line: collapses newlines so a message never spans several lines. */
export function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim()
}
