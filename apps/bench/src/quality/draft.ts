// The fashion DiT with DraftAttention (@guidekit/draft-attention): the ONNX graph rewritten, the draft
// inputs fed on every run (dense during the first `denseSteps` fraction of steps, as the paper).
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultWindow, draftFeeds, isDenseStep, rewriteDraftAttention } from '@guidekit/draft-attention'
import { classConditionalDenoiser, loadClassConditionalModel, type ClassConditionalDenoiser, type ClassConditionalModel } from '@guidekit/onnx'
import * as ort from 'onnxruntime-node'

export interface DraftModel {
  readonly denoiser: ClassConditionalDenoiser
  readonly sites: number
  readonly window: { readonly height: number; readonly width: number }
  /** The plan's timesteps, to tell dense from sparse steps. */
  setTimesteps(timesteps: ArrayLike<number>): void
  readonly counts: { dense: number; sparse: number }
  dispose(): Promise<void>
}

export async function loadDraftModel(model: ClassConditionalModel, options: { keep: number; denseSteps: number; threads: number }): Promise<DraftModel> {
  const arch = model.card.architecture as unknown as { tokenGrid?: { frames?: number; height: number; width: number }; prefixTokens?: number }
  if (!arch.tokenGrid) throw new Error(`${model.card.name} declares no architecture.tokenGrid`)
  const grid = { frames: arch.tokenGrid.frames ?? 1, height: arch.tokenGrid.height, width: arch.tokenGrid.width }
  const window = defaultWindow(grid)
  const rewritten = rewriteDraftAttention(new Uint8Array(readFileSync(model.path)), { grid, window, prefixTokens: arch.prefixTokens ?? 0, selection: 'row-topk' })
  if (rewritten.sites === 0) throw new Error(`no attention site rewritten in ${model.card.name}`)
  const folder = mkdtempSync(join(tmpdir(), 'guidekit-bench-draft-'))
  let loaded: ClassConditionalModel
  try {
    const path = join(folder, `${model.card.name}.draft.onnx`)
    writeFileSync(path, rewritten.model)
    loaded = await loadClassConditionalModel({ path, card: model.card }, { sessionOptions: { threads: options.threads, interOpThreads: 1, graphOptimizationLevel: 'all' } })
  } finally {
    rmSync(folder, { recursive: true, force: true })
  }
  let timesteps: ArrayLike<number> = new Float64Array([0])
  const counts = { dense: 0, sparse: 0 }
  const session = loaded.session
  const wrapped = new Proxy(session, {
    get(target, key, receiver) {
      if (key === 'run') {
        return (feeds: Record<string, ort.Tensor>, ...rest: unknown[]) => {
          const t = Number((feeds.timestep?.data as ArrayLike<number> | undefined)?.[0] ?? 0)
          let step = 0
          for (let i = 1; i < timesteps.length; i++) if (Math.abs((timesteps[i] as number) - t) < Math.abs((timesteps[step] as number) - t)) step = i
          const dense = isDenseStep(step, timesteps.length, options.denseSteps)
          if (dense) counts.dense++
          else counts.sparse++
          const extra: Record<string, ort.Tensor> = {}
          for (const [k, f] of Object.entries(draftFeeds(rewritten.info, { keep: options.keep, dense }))) extra[k] = new ort.Tensor(f.type, f.data, [...f.dims])
          return (target.run as (...a: unknown[]) => unknown).call(target, { ...feeds, ...extra }, ...rest)
        }
      }
      const value = Reflect.get(target, key, receiver)
      return typeof value === 'function' ? value.bind(target) : value
    },
  })
  const denoiser = await classConditionalDenoiser({ model: { ...loaded, session: wrapped }, classes: [0] })
  return {
    denoiser,
    sites: rewritten.sites,
    window,
    counts,
    setTimesteps(ts) {
      timesteps = ts
    },
    dispose: () => loaded.dispose(),
  }
}
