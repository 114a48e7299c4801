// Per-step cost of each guider's arithmetic (no model): session.step() on a context whose predict() returns
// precomputed predictions at once, on [2, 4, 64, 64] and [1, 4, 128, 128] latents, reported next to one
// Float32Array copy of the same tensor measured in the same run ("x copy" = step time / copy time).
// Usage: pnpm bench:guidance [--json] [--quick]
import { adaptive, fitLinearAG, linearAG } from '@guidekit/adaptive'
import { apg, apgComfy, apgDiffusers } from '@guidekit/apg'
import { cfg, cfgZeroStar, cfgZeroStarX0, tangentialCfg } from '@guidekit/cfg'
import { cfgPlusPlus } from '@guidekit/cfg-pp'
import { Tensor, combine, interval, randn, type Branch, type Guider, type Prediction, type StepContext, type Tensor as T } from '@guidekit/core'
import { rlg } from '@guidekit/rlg'
import { table, timeMs } from '../timing.js'

const json = process.argv.includes('--json')
const quick = process.argv.includes('--quick')
const shapes = [
  [2, 4, 64, 64],
  [1, 4, 128, 128],
]

/** Median ms per call of an async function (same method as timeMs: warm up, batches, median). */
async function timeAsync(fn: () => Promise<unknown>, minMs: number, rounds = 5): Promise<number> {
  await fn()
  const samples: number[] = []
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now()
    let n = 0
    do {
      await fn()
      n++
    } while (performance.now() - t0 < minMs / 2)
    samples.push((performance.now() - t0) / n)
  }
  samples.sort((a, b) => a - b)
  return samples[Math.floor(samples.length / 2)] as number
}

function prediction(x: T, seed: number, shift: number): Prediction {
  const noise = randn(x.shape, seed)
  const denoised = combine([
    [1, x],
    [-1, noise],
  ]) // sigma = 1: x0 = x - eps
  for (let i = 0; i < denoised.size; i++) denoised.data[i] = (denoised.data[i] as number) + shift
  return { noise, denoised }
}

interface Row {
  shape: string
  guider: string
  ms: number
  vsCopy: number
}
const rows: Row[] = []
for (const shape of shapes) {
  const x = randn(shape, 1)
  const byModel: Record<string, Record<string, Prediction>> = {
    '': { positive: prediction(x, 2, 0.3), negative: prediction(x, 3, 0) },
    base: { positive: prediction(x, 4, 0.3), negative: prediction(x, 5, 0) },
    tuned: { positive: prediction(x, 6, 0.5), negative: prediction(x, 7, 0) },
  }
  const predict = async (branches: readonly Branch[]): Promise<Prediction[]> =>
    branches.map((b) => {
      const p = (byModel[b.model ?? ''] as Record<string, Prediction>)[b.role] as Prediction
      if (!b.samples) return p
      const n = p.denoised.sampleSize
      const pick = (t: Tensor) => {
        const out = new Float32Array((b.samples as number[]).length * n)
        ;(b.samples as number[]).forEach((s, k) => out.set(t.data.subarray(s * n, (s + 1) * n), k * n))
        return new Tensor(out, [(b.samples as number[]).length, ...t.shape.slice(1)])
      }
      return { denoised: pick(p.denoised), noise: pick(p.noise) }
    })
  const steps = 10
  const ctx = (step: number): StepContext => ({ step, steps, sigma: 1, sigmaNext: 0.8, timestep: 900, family: 'vp', x, predict })
  const run = { steps, sigmas: Float64Array.from({ length: steps + 1 }, (_, i) => 1 - i / steps), timesteps: new Float64Array(steps), family: 'vp' as const, shape }
  // LinearAG coefficients on every odd step, fitted on two synthetic trajectories
  const traj = (s: number) => ({ cond: Array.from({ length: steps }, (_, i) => randn(shape, s + i)), uncond: Array.from({ length: steps }, (_, i) => randn(shape, s + 100 + i)) })
  const coefficients = fitLinearAG([traj(10), traj(300)], { sampler: 'euler', scale: 7.5 })

  const guiders: [string, Guider, number][] = [
    ['cfg(7.5)', cfg({ scale: 7.5 }), 0],
    ['cfg(7.5, rescale 0.7)', cfg({ scale: 7.5, rescale: 0.7 }), 0],
    ['cfgZeroStar (epsilon)', cfgZeroStar({ scale: 5, zeroInitSteps: 0 }), 0],
    ['cfgZeroStarX0', cfgZeroStarX0({ scale: 5 }), 0],
    ['tangentialCfg', tangentialCfg({ scale: 7.5 }), 0],
    ['cfgPlusPlus(0.6)', cfgPlusPlus({ scale: 0.6 }), 0],
    ['apg (paper, momentum, r=15)', apg({ scale: 7, momentum: -0.5, normThreshold: 15 }), 2],
    ['apgDiffusers (defaults)', apgDiffusers(), 2],
    ['apgComfy(cfg 6)', apgComfy({ scale: 6, momentum: -0.5 }), 2],
    ['adaptive(cfg), per sample, before switch', adaptive(cfg({ scale: 7.5 }), { threshold: 1 }), 0],
    ['adaptive(cfg), batch, before switch', adaptive(cfg({ scale: 7.5 }), { threshold: 1, granularity: 'batch' }), 0],
    ['linearAG, predicted step', linearAG({ coefficients }), 1],
    ['rlg(cfg), 4 branches', rlg({ scale: 1.6, inner: cfg({ scale: 4.5 }) }), 0],
    ['interval(cfg), outside', interval(cfg({ scale: 7.5 }), { steps: [5, 10] }), 0],
  ]
  const out = Tensor.zeros(shape)
  const copyMs = timeMs(() => out.data.set(x.data), { minMs: quick ? 60 : 200 })
  rows.push({ shape: `[${shape.join(', ')}]`, guider: 'copy (Float32Array.set)', ms: copyMs, vsCopy: 1 })
  for (const [name, guider, step] of guiders) {
    const session = guider.start(run)
    // Stateful guiders (APG momentum, LinearAG history) step once first so the timed step has state.
    if (step > 0) await session.step(ctx(step - 1))
    const ms = await timeAsync(() => session.step(ctx(step)), quick ? 60 : 200)
    // The machine may be shared: time a copy right next to each guider and take the ratio to that one.
    const localCopy = timeMs(() => out.data.set(x.data), { minMs: quick ? 30 : 100 })
    rows.push({ shape: `[${shape.join(', ')}]`, guider: name, ms, vsCopy: ms / localCopy })
  }
}
if (json) {
  console.log(JSON.stringify({ rows }, null, 2))
} else {
  console.log(`guidekit guider arithmetic per step (node ${process.version}, ${process.arch}); no model: predictions are precomputed\n`)
  console.log(table(['shape', 'guider', 'ms/step', 'x copy'], rows.map((r) => [r.shape, r.guider, r.ms.toFixed(3), r.vsCopy.toFixed(1)])))
}
