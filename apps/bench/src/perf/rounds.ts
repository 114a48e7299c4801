// How bench:perf turns rounds of trajectory times into a verdict. Every contender runs once per round, in
// rotating order, so the trajectories of one round see about the same machine state; on a shared VM that
// state drifts between rounds by 25-50%, so one round says little and the verdict needs many rounds and an
// interval. Slow torch modes (fp32: ~10x the best mode) are only screened: after SCREEN_ROUNDS rounds, a torch
// mode slower than OUT_OF_CONTENTION times the fastest torch mode stops, and the rounds go to the contenders.
import { BOOTSTRAP_SEED, percentileInterval, resampleCounts, type Interval } from '../quality/bootstrap.js'
import { median } from '../timing.js'

/** Rounds every contender runs before slow torch modes stop. */
export const SCREEN_ROUNDS = 3
/** A torch mode whose median is more than this many times the fastest torch mode's is out of contention. */
export const OUT_OF_CONTENTION = 2
/** Bootstrap resamples of the rounds. */
export const ROUND_RESAMPLES = 2000

/**
 * The indices of `medians` still timed after the screening rounds: every guidekit contender, and the torch
 * modes within OUT_OF_CONTENTION of the fastest torch mode.
 *
 * @example
 * stillTimed([{ torch: true, median: 400 }, { torch: true, median: 5000 }, { torch: false, median: 200 }])   // [0, 2]
 */
export function stillTimed(contenders: readonly { torch: boolean; median: number }[]): number[] {
  const fastest = Math.min(...contenders.filter((c) => c.torch).map((c) => c.median))
  return contenders.flatMap((c, i) => (!c.torch || c.median <= OUT_OF_CONTENTION * fastest ? [i] : []))
}

/** The speedup `median(torch) / median(ours)` with its 95% interval, paired over rounds. */
export interface RoundSpeedup {
  readonly rounds: number
  readonly speedup: number
  readonly interval: Interval
}

/**
 * `median(torch) / median(ours)` over the rounds both ran, and its 95% percentile interval from resampling
 * the rounds with replacement (paired: a resample keeps round r's torch and guidekit times together, so the
 * drift they share cancels). `seed` makes the resamples reproducible; use a different one per batch.
 *
 * @example
 * roundSpeedup([460, 475, 570], [300, 210, 215], 8)   // { rounds: 3, speedup: 2.21, interval: [...] }
 */
export function roundSpeedup(torch: readonly number[], ours: readonly number[], seed: number): RoundSpeedup | null {
  const n = Math.min(torch.length, ours.length)
  if (n < 2) return null
  const t = torch.slice(0, n)
  const o = ours.slice(0, n)
  const counts = resampleCounts(n, { resamples: ROUND_RESAMPLES, seed: BOOTSTRAP_SEED + seed * 1000 })
  const replicates = new Float64Array(ROUND_RESAMPLES)
  const rt: number[] = []
  const ro: number[] = []
  for (let r = 0; r < ROUND_RESAMPLES; r++) {
    rt.length = 0
    ro.length = 0
    for (let i = 0; i < n; i++) {
      for (let c = counts[r * n + i] as number; c > 0; c--) {
        rt.push(t[i] as number)
        ro.push(o[i] as number)
      }
    }
    replicates[r] = median(rt) / median(ro)
  }
  return { rounds: n, speedup: median(t) / median(o), interval: percentileInterval(replicates) }
}
