/** Runs `fn` once to warm up, then until `minRuns` runs and `budgetMs` are both used (at most `maxRuns`); min and median ms. */
export async function time(fn: () => Promise<unknown>, options: { minRuns: number; maxRuns: number; budgetMs: number; warmup?: boolean }): Promise<{ min: number; median: number; runs: number }> {
  if (options.warmup !== false) await fn()
  const times: number[] = []
  const start = performance.now()
  while (times.length < options.maxRuns && (times.length < options.minRuns || performance.now() - start < options.budgetMs)) {
    const t = performance.now()
    await fn()
    times.push(performance.now() - t)
  }
  times.sort((a, b) => a - b)
  return { min: times[0]!, median: times[Math.floor(times.length / 2)]!, runs: times.length }
}
