import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { draftFeeds, rewriteDraftAttention, type DraftSelection } from '@guidekit/draft-attention'
import * as ort from 'onnxruntime-node'
import { randn, relL2 } from './data.js'

export interface E2eResult {
  denseSecondsPerStep: number
  draftSecondsPerStep: number
  speedup: number
  /** Extras (not part of the required shape). */
  model: string
  tokens: number
  keep: number
  selection: DraftSelection
  window: { height: number; width: number }
  steps: number
  batch: number
  sites: number
  /** Relative L2 between the dense and draft final samples (random weights: a plumbing check, not quality). */
  relErrFinal: number
  /** The rewritten model with `dense: true` (its If takes the original subgraph): the cost of the dense steps. */
  rewrittenDenseSecondsPerStep: number
  /**
   * Speedup of a whole run under the paper's schedule (first 30% of steps dense, through the rewritten
   * model's dense branch), derived from the per-step times.
   */
  speedupWithDenseSteps30: number
}

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..')
export const defaultDitPath = join(root, 'tooling/dit-bench/out/dit-4x32x32.onnx')

/** Exports the random-weight large-grid DiT with Debian's PyTorch when it is missing. */
export function ensureDit(path: string, log: (line: string) => void): boolean {
  if (existsSync(path)) return true
  log(`exporting ${path} with /usr/bin/python3 tooling/dit-bench/export_dit.py ...`)
  const r = spawnSync('/usr/bin/python3', [join(root, 'tooling/dit-bench/export_dit.py'), '--frames', '4', '--grid', '32', '--out', path], { stdio: 'inherit' })
  return r.status === 0 && existsSync(path)
}

export async function benchEndToEnd(options: { path: string; keep: number; selection: DraftSelection; steps: number; batch: number; threads: number; window: { height: number; width: number }; log: (line: string) => void }): Promise<E2eResult> {
  const { path, keep, steps, batch: B } = options
  const card = JSON.parse(readFileSync(path.replace(/\.onnx$/, '.card.json'), 'utf8')) as {
    architecture: { tokenGrid: { frames?: number; height: number; width: number }; patchSize: number; prefixTokens?: number }
    onnx?: { inputs?: { name: string; shape: (number | string)[] }[] }
    inputs?: { sample?: (number | null)[] }
  }
  const grid = { frames: card.architecture.tokenGrid.frames ?? 1, height: card.architecture.tokenGrid.height, width: card.architecture.tokenGrid.width }
  const bytes = readFileSync(path)
  const rewritten = rewriteDraftAttention(bytes, { grid, window: options.window, prefixTokens: card.architecture.prefixTokens ?? 0, selection: options.selection })
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: options.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    // Two sessions alternate: no spinning, so an idle pool does not steal the cores from the other.
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  }
  const dense = await ort.InferenceSession.create(bytes, sessionOptions)
  const draft = await ort.InferenceSession.create(rewritten.model, sessionOptions)
  const p = card.architecture.patchSize
  // The sample shape from the card (the fashion DiT's [batch, 1, 28, 28]), else the video DiT's.
  const declared = card.onnx?.inputs?.find((i) => i.name === 'sample')?.shape ?? card.inputs?.sample
  const shape = declared ? declared.map((d) => (typeof d === 'number' ? d : B)) : [B, 1, grid.frames, grid.height * p, grid.width * p]
  const size = shape.reduce((a, b) => a * b, 1)
  const extra = Object.fromEntries(Object.entries(draftFeeds(rewritten.info, { keep })).map(([k, f]) => [k, new ort.Tensor(f.type, f.data as Uint8Array, [...f.dims])]))
  const denseExtra = Object.fromEntries(
    Object.entries(draftFeeds(rewritten.info, { keep, dense: true })).map(([k, f]) => [k, new ort.Tensor(f.type, f.data as Uint8Array, [...f.dims])]),
  )
  const labels = new ort.Tensor('int64', BigInt64Array.from({ length: B }, (_, i) => BigInt(i % 10)), [B])

  // A few Euler steps of a flow-style sampler x <- x + (t_next - t) * model(x, t): the step cost is what
  // is measured; with random weights the samples mean nothing. The three trajectories (original model,
  // rewritten model with sparse input, rewritten model with dense input) advance step by step in turn, so
  // load from other jobs on the machine hits them alike; the median step time of each is reported.
  const runs = [
    { session: dense, extra: {} as Record<string, ort.Tensor>, x: randn(size, 7), times: [] as number[] },
    { session: draft, extra, x: randn(size, 7), times: [] as number[] },
    { session: draft, extra: denseExtra, x: randn(size, 7), times: [] as number[] },
  ]
  const step = async (r: (typeof runs)[number], i: number, record: boolean) => {
    const t = 1000 * (1 - i / steps)
    const tNext = 1000 * (1 - (i + 1) / steps)
    const start = performance.now()
    const out = (await r.session.run({
      sample: new ort.Tensor('float32', r.x, shape),
      timestep: new ort.Tensor('float32', new Float32Array(B).fill(t), [B]),
      class_labels: labels,
      ...r.extra,
    }))[r.session.outputNames[0]!]!.data as Float32Array
    if (record) r.times.push(performance.now() - start)
    const next = new Float32Array(size)
    for (let j = 0; j < size; j++) next[j] = r.x[j]! + ((tNext - t) / 1000) * out[j]!
    r.x = next
  }
  // Warm-up (first-run allocations) on a throwaway copy of the state.
  for (const r of runs) {
    const x = r.x
    await step(r, 0, false)
    r.x = x
  }
  for (let i = 0; i < steps; i++) for (const r of runs) await step(r, i, true)
  const median = (times: number[]) => [...times].sort((a, b) => a - b)[Math.floor(times.length / 2)]! / 1000
  const d = { x: runs[0]!.x, secondsPerStep: median(runs[0]!.times) }
  const s = { x: runs[1]!.x, secondsPerStep: median(runs[1]!.times) }
  const rd = { secondsPerStep: median(runs[2]!.times) }
  options.log(`e2e dense: ${d.secondsPerStep.toFixed(3)} s/step; draft keep=${keep}: ${s.secondsPerStep.toFixed(3)} s/step; rewritten model, dense input: ${rd.secondsPerStep.toFixed(3)} s/step`)
  await dense.release()
  await draft.release()
  const speedup = d.secondsPerStep / s.secondsPerStep
  return {
    denseSecondsPerStep: d.secondsPerStep,
    draftSecondsPerStep: s.secondsPerStep,
    speedup,
    model: path.replace(`${root}/`, ''),
    tokens: grid.frames * grid.height * grid.width,
    keep,
    selection: options.selection,
    window: options.window,
    steps,
    batch: B,
    sites: rewritten.sites,
    relErrFinal: relL2(s.x, d.x),
    rewrittenDenseSecondsPerStep: rd.secondsPerStep,
    speedupWithDenseSteps30: d.secondsPerStep / (0.3 * rd.secondsPerStep + 0.7 * s.secondsPerStep),
  }
}
