import { GuidekitError } from '@guidekit/core'

/** Exit codes of the `guidekit` CLI (documented in --help and the README). */
export const EXIT = {
  ok: 0,
  /** Unexpected failure (a bug, a model that fails at run time). */
  unexpected: 1,
  /** Bad input: arguments, model files, output paths, a guidance value that makes sampling diverge. */
  usage: 2,
  /** Interrupted by SIGINT (Ctrl-C): 128 + 2, as shells report it. */
  interrupted: 130,
  /** Terminated by SIGTERM: 128 + 15. */
  terminated: 143,
} as const

/** Bad input found by the CLI itself: printed as one line, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** The run was stopped by a signal; `exitCode` is 128 + the signal number. */
export class InterruptedError extends Error {
  override readonly name = 'InterruptedError'
  constructor(
    readonly signalName: 'SIGINT' | 'SIGTERM',
    message = 'Interrupted; no partial files were written.',
  ) {
    super(message)
  }

  get exitCode(): number {
    return this.signalName === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted
  }
}

// GuidekitError codes that mean "the input was wrong" rather than "something broke".
const USAGE_CODES = new Set(['INVALID_ARGUMENT', 'MODEL_NOT_FOUND', 'MODEL_INVALID', 'INPUT_MISMATCH', 'UNSUPPORTED', 'IO_ERROR', 'SHAPE_MISMATCH'])

// Node file-system errors caused by the user's paths.
const FS_REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'no such file or folder',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOTDIR: 'a parent is not a folder',
  EISDIR: 'it is a folder',
  EEXIST: 'it already exists',
  ENOSPC: 'no space left on the device',
  ENAMETOOLONG: 'the name is too long',
  EDQUOT: 'disk quota exceeded',
}

/**
 * How an error is reported: the exit code and one line for stderr (no stack trace). `signal` is the run's
 * abort signal: an abort it caused reports the signal that stopped the run.
 */
export function classify(error: unknown, signal?: AbortSignal): { code: number; message: string } {
  if (error instanceof InterruptedError) return { code: error.exitCode, message: error.message }
  if (error instanceof UsageError) return { code: EXIT.usage, message: error.message }
  if (GuidekitError.isInstance(error)) {
    if (error.code === 'ABORTED') {
      const reason: unknown = signal?.reason
      return { code: reason instanceof InterruptedError ? reason.exitCode : EXIT.interrupted, message: 'Interrupted; no partial files were written.' }
    }
    return { code: USAGE_CODES.has(error.code) ? EXIT.usage : EXIT.unexpected, message: error.message }
  }
  const code = (error as { code?: unknown } | null)?.code
  if (typeof code === 'string' && code in FS_REASONS) {
    const e = error as NodeJS.ErrnoException
    return { code: EXIT.usage, message: `Cannot ${e.syscall ?? 'access'} ${e.path ?? 'a file'}: ${FS_REASONS[code]} (${code}).` }
  }
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
  return { code: EXIT.unexpected, message: `Unexpected error: ${message.split('\n')[0]} (rerun with GUIDEKIT_DEBUG=1 for the stack trace).` }
}

/** One line: collapses newlines so a message never spans several lines. */
export function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim()
}
