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
  /** Speedup under the paper's schedule (first 30% of steps dense), derived from the two per-step times. */
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
    architecture: { tokenGrid: { frames: number; height: number; width: number }; patchSize: number; prefixTokens: number }
  }
  const grid = card.architecture.tokenGrid
  const bytes = readFileSync(path)
  const rewritten = rewriteDraftAttention(bytes, { grid, window: options.window, prefixTokens: card.architecture.prefixTokens, selection: options.selection })
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
  const shape = [B, 1, grid.frames, grid.height * p, grid.width * p]
  const size = shape.reduce((a, b) => a * b, 1)
  const extra = Object.fromEntries(Object.entries(draftFeeds(rewritten.info, { keep })).map(([k, f]) => [k, new ort.Tensor(f.type, f.data as Uint8Array, [...f.dims])]))
  const labels = new ort.Tensor('int64', BigInt64Array.from({ length: B }, (_, i) => BigInt(i % 10)), [B])

  // A few Euler steps of a flow-style sampler x <- x + (t_next - t) * model(x, t): the step cost is what
  // is measured; with random weights the samples mean nothing.
  const sample = async (session: ort.InferenceSession, feedsExtra: Record<string, ort.Tensor>) => {
    let x = randn(size, 7)
    const times: number[] = []
    for (let i = 0; i < steps; i++) {
      const t = 1000 * (1 - i / steps)
      const tNext = 1000 * (1 - (i + 1) / steps)
      const start = performance.now()
      const out = (await session.run({
        sample: new ort.Tensor('float32', x, shape),
        timestep: new ort.Tensor('float32', new Float32Array(B).fill(t), [B]),
        class_labels: labels,
        ...feedsExtra,
      })).out_sample!.data as Float32Array
      times.push(performance.now() - start)
      const next = new Float32Array(size)
      for (let j = 0; j < size; j++) next[j] = x[j]! + ((tNext - t) / 1000) * out[j]!
      x = next
    }
    times.sort((a, b) => a - b)
    return { x, secondsPerStep: times[Math.floor(times.length / 2)]! / 1000 }
  }
  // Warm-up runs (first-run allocations), then the timed trajectories.
  await sample(dense, {})
  await sample(draft, extra)
  const d = await sample(dense, {})
  options.log(`e2e dense: ${d.secondsPerStep.toFixed(3)} s/step`)
  const s = await sample(draft, extra)
  options.log(`e2e draft keep=${keep}: ${s.secondsPerStep.toFixed(3)} s/step`)
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
    speedupWithDenseSteps30: 1 / (0.3 + 0.7 / speedup),
  }
}
