import type { SampleProgress } from '@guidekit/core'

/** Where progress goes: a redrawn bar on a TTY, plain lines otherwise, nothing with --quiet. */
export interface ProgressReporter {
  /** Starts one sampling run (e.g. one grid row). */
  start(label: string): (progress: SampleProgress) => void
  /** A finished run: one line. */
  done(line: string): void
  /** Clears the bar (before errors or the final output). */
  clear(): void
}

export interface ProgressStream {
  write(chunk: string): unknown
  readonly isTTY?: boolean
  readonly columns?: number
}

export function progressReporter(stream: ProgressStream, options: { quiet: boolean }): ProgressReporter {
  if (options.quiet) return { start: () => () => {}, done: () => {}, clear: () => {} }
  if (!stream.isTTY) {
    // Plain lines: start and end of each run (logs stay short and diff-able).
    return {
      start(label) {
        stream.write(`${label}: sampling...\n`)
        return () => {}
      },
      done: (line) => stream.write(`${line}\n`),
      clear: () => {},
    }
  }
  let drawn = false
  let last = 0
  const clear = (): void => {
    if (drawn) stream.write('\r\x1b[2K')
    drawn = false
  }
  return {
    start(label) {
      return (p) => {
        const now = performance.now()
        if (p.step !== p.steps && now - last < 50) return
        last = now
        const cols = Math.max(40, Math.min(stream.columns ?? 80, 120))
        const width = Math.max(10, Math.min(30, cols - 50))
        const filled = Math.round((p.step / p.steps) * width)
        const bar = `${'#'.repeat(filled)}${'-'.repeat(width - filled)}`
        const eta = p.step > 0 ? ((p.elapsedMs / p.step) * (p.steps - p.step)) / 1000 : 0
        const line = `[${bar}] ${String(p.step).padStart(String(p.steps).length)}/${p.steps} ${(p.elapsedMs / 1000).toFixed(1)}s eta ${eta.toFixed(1)}s  ${label}`
        stream.write(`\r\x1b[2K${line.slice(0, cols - 1)}`)
        drawn = true
      }
    },
    done(line) {
      clear()
      stream.write(`${line}\n`)
    },
    clear,
  }
}
