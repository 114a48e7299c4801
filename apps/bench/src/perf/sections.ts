// The parts of bench:perf that measure guidekit alone: guidance arithmetic against model time, CFG against
// single-branch steps, peak RSS of the sample app, and the kernel and attention tables (child processes).
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { apg } from '@guidekit/apg'
import { cfg } from '@guidekit/cfg'
import { cfgPlusPlus } from '@guidekit/cfg-pp'
import { Tensor, euler, randn, sample, unguided, type GuidedStep, type Guider, type Prediction, type SamplingPlan, type StepContext } from '@guidekit/core'
import type { ClassConditionalDenoiser, ClassConditionalModel } from '@guidekit/onnx'
import * as ort from 'onnxruntime-node'
import { median } from '../timing.js'

export interface GuidanceOverhead {
  readonly ortRunMs: number
  readonly predictMs: number
  readonly rows: readonly { guider: string; guidanceMs: number; ratio: number }[]
  /** The largest guider's (arithmetic + sampler update) / ORT run of the batched CFG call (median over the rounds). */
  readonly ratio: number
}

/**
 * The guider's and sampler's work on cached predictions against ONNX Runtime's run of the batched CFG call
 * (2B rows), round by round: each round times three ORT runs and the denoiser's predict, then 200 steps of
 * each guider and 200 sampler updates, so the two sides of a round's ratio see the same machine state; a
 * guider's ratio is the median over the rounds.
 */
export async function guidanceOverhead(model: ClassConditionalModel, denoiser: ClassConditionalDenoiser, plan: SamplingPlan, batch: number, repeats: number): Promise<GuidanceOverhead> {
  const shape = [batch, 1, 28, 28]
  const classes = Array.from({ length: batch }, (_, i) => i % 10)
  const x = randn(shape, 3)
  const sigma = plan.sigmas[3] as number
  const sigmaNext = plan.sigmas[4] as number
  const timestep = plan.timesteps[3] as number
  const feeds = {
    sample: new ort.Tensor('float32', new Float32Array([...x.data, ...x.data]), [2 * batch, 1, 28, 28]),
    timestep: new ort.Tensor('float32', new Float32Array(2 * batch).fill(timestep), [2 * batch]),
    class_labels: new ort.Tensor('int64', BigInt64Array.from([...classes, ...classes.map(() => 10)].map(BigInt)), [2 * batch]),
  }
  const d = denoiser.withClasses(classes)
  const both = [{ role: 'positive' }, { role: 'negative' }]
  let cached: Prediction[] = []
  for (let i = 0; i < 3; i++) {
    await model.session.run(feeds)
    cached = await d.predict({ x, sigma, timestep, step: 0, steps: 1, branches: both })
  }
  const steps = plan.timesteps.length
  const ctx: StepContext = { step: 3, steps, sigma, sigmaNext, timestep, family: plan.family, x, predict: (branches) => Promise.resolve(branches.length === 2 ? cached : branches.map((b) => cached[b.role === 'positive' ? 0 : 1] as Prediction)) }
  const guiders = ([
    ['cfg w=3', cfg({ scale: 3 })],
    ['apg w=5', apg({ scale: 5, eta: 0, momentum: -0.5 })],
    ['cfg++ lambda=0.8', cfgPlusPlus({ scale: 0.8 })],
  ] as [string, Guider][]).map(([name, guider]) => ({ name, session: guider.start({ steps, sigmas: plan.sigmas, timesteps: plan.timesteps, family: plan.family, shape }), ms: [] as number[], ratios: [] as number[] }))
  const samplerSession = euler().start({ steps, sigmas: plan.sigmas, family: plan.family, noise: { next: (s: readonly number[]) => Tensor.zeros(s) } })
  // The guider's step is async (it awaits ctx.predict): batches of n awaited steps are timed.
  const n = 200
  const stepMs = async (g: (typeof guiders)[number]): Promise<{ ms: number; guided: GuidedStep }> => {
    let guided = await g.session.step(ctx)
    const t0 = performance.now()
    for (let i = 0; i < n; i++) guided = await g.session.step(ctx)
    return { ms: (performance.now() - t0) / n, guided }
  }
  const samplerMs = (guided: GuidedStep): number => {
    const t0 = performance.now()
    for (let i = 0; i < n; i++) samplerSession.step({ step: 3, x, sigma, sigmaNext, guided })
    return (performance.now() - t0) / n
  }
  // Warmed up as in a long run (the first hundreds of calls include V8's compilation of the loops).
  for (const g of guiders) samplerMs((await stepMs(g)).guided)
  const runTimes: number[] = []
  const predictTimes: number[] = []
  for (let r = 0; r < repeats; r++) {
    const round: number[] = []
    for (let i = 0; i < 3; i++) {
      let t0 = performance.now()
      await model.session.run(feeds)
      round.push(performance.now() - t0)
      t0 = performance.now()
      cached = await d.predict({ x, sigma, timestep, step: 0, steps: 1, branches: both })
      predictTimes.push(performance.now() - t0)
    }
    runTimes.push(...round)
    const ort = median(round)
    for (const g of guiders) {
      const { ms, guided } = await stepMs(g)
      const total = ms + samplerMs(guided)
      g.ms.push(total)
      g.ratios.push(total / ort)
    }
  }
  const ortRunMs = median(runTimes)
  const rows = guiders.map((g) => ({ guider: g.name, guidanceMs: median(g.ms), ratio: median(g.ratios) }))
  return { ortRunMs, predictMs: median(predictTimes), rows, ratio: Math.max(...rows.map((r) => r.ratio)) }
}

/** Milliseconds per step of CFG (batched branches) and of an unguided step, at batch 1 and `batch`. */
export async function cfgStepRows(denoiser: ClassConditionalDenoiser, plan: SamplingPlan, batch: number, repeats: number) {
  const steps = plan.timesteps.length
  const perStep = async (guider: Guider, b: number) => {
    const d = denoiser.withClasses(Array.from({ length: b }, (_, i) => i % 10))
    const times: number[] = []
    for (let r = 0; r < repeats; r++) times.push((await sample({ denoiser: d, guider, sampler: euler(), plan, shape: [b, 1, 28, 28], seed: 1 })).elapsedMs)
    return median(times) / steps
  }
  const rows: { batch: number; singleMs: number; cfgMs: number; ratio: number }[] = []
  for (const b of [1, batch]) {
    await perStep(unguided(), b) // warm-up for this shape
    const singleMs = await perStep(unguided(), b)
    await perStep(cfg({ scale: 3 }), b)
    const cfgMs = await perStep(cfg({ scale: 3 }), b)
    rows.push({ batch: b, singleMs, cfgMs, ratio: cfgMs / singleMs })
  }
  return rows
}

/** Peak RSS (MB) of `guidekit generate` making 8 images with `modelPath`, or why it could not be measured. */
export function peakRss(root: string, modelPath: string, steps: number, threads: number): { mb: number | null; note: string } {
  const dir = mkdtempSync(join(tmpdir(), 'guidekit-app-'))
  try {
    const cmd = [process.execPath, '--conditions=@guidekit/source', '--import', 'tsx', join(root, 'apps/generate/src/cli.ts'), 'generate', '--model', modelPath, '--count', '8', '--steps', String(steps), '--guidance', 'cfg:scale=3', '--threads', String(threads), '--out', dir, '--quiet']
    if (!existsSync('/usr/bin/time')) return { mb: null, note: '/usr/bin/time is not installed' }
    const r = spawnSync('/usr/bin/time', ['-v', ...cmd], { encoding: 'utf8', cwd: root })
    const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)
    if (r.status === 0 && m) return { mb: Number(m[1]) / 1024, note: `guidekit generate --model ${modelPath.split('/').pop()} --count 8 --steps ${steps} (cfg 3)` }
    return { mb: null, note: `the app failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}` }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** A benchmark child's `--json` output (the kernel and attention tables). */
export function childJson(root: string, script: string, args: string[]): unknown {
  const r = spawnSync(process.execPath, ['--conditions=@guidekit/source', '--import', 'tsx', join(root, script), '--json', ...args], { encoding: 'utf8', cwd: root, maxBuffer: 1 << 26 })
  if (r.status !== 0) return { error: `${script} exited ${r.status}: ${r.stderr.trim().split('\n').slice(-2).join(' ')}` }
  try {
    return JSON.parse(r.stdout)
  } catch {
    return { error: `${script} printed no JSON` }
  }
}
