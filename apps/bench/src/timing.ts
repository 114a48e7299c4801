// Shared timing helpers for the benchmarks: warm up, then take the median of several timed batches.

/** Median milliseconds per call of `fn`, over `rounds` batches each lasting at least `minMs`. */
export function timeMs(fn: () => void, options: { rounds?: number; minMs?: number } = {}): number {
  const { rounds = 5, minMs = 100 } = options
  fn()
  let reps = 1
  for (;;) {
    const t0 = performance.now()
    for (let i = 0; i < reps; i++) fn()
    const dt = performance.now() - t0
    if (dt >= minMs / 4 || reps > 1 << 20) break
    reps *= 2
  }
  const samples: number[] = []
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now()
    let n = 0
    do {
      fn()
      n++
    } while (performance.now() - t0 < minMs / 2 && n < reps * 4)
    samples.push((performance.now() - t0) / n)
  }
  samples.sort((a, b) => a - b)
  return samples[Math.floor(samples.length / 2)] as number
}

/** The median (the mean of the two middle values of an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const h = s.length >> 1
  return s.length % 2 ? (s[h] as number) : ((s[h - 1] as number) + (s[h] as number)) / 2
}

/** Formats rows as a fixed-width text table. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ')
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n')
}
