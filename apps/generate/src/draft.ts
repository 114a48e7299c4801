// `--attention draft:...`: rewrite each DiT's ONNX graph with @guidekit/draft-attention, load the result,
// and feed its runtime inputs (dense or sparse, blocks kept) on every model run.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { SamplingPlan } from '@guidekit/core'
import { loadClassConditionalModel } from '@guidekit/onnx'
import type { ClassConditionalModel, OnnxSessionOptions } from '@guidekit/onnx'
import * as ort from 'onnxruntime-node'
import { UsageError } from './errors.js'

/** Draft attention as used by one run. */
export interface DraftAttentionRun {
  /** The spec as written, for labels and the PNG parameters. */
  readonly label: string
  readonly keep: number
  readonly denseSteps: number
  /** Rewritten attention sites per model. */
  readonly sites: Readonly<Record<string, number>>
  /** Model runs fed dense / sparse so far. */
  readonly counts: { dense: number; sparse: number }
  /** The plan of the next sampling run: each run's timestep tells which step (dense or sparse) it is. */
  setPlan(plan: SamplingPlan): void
}

type Draft = typeof import('@guidekit/draft-attention')

interface TokenLayout {
  readonly grid: { frames: number; height: number; width: number }
  readonly prefixTokens: number
}

function tokenLayout(model: ClassConditionalModel): TokenLayout {
  const arch = (model.card.architecture ?? {}) as Record<string, unknown>
  const grid = arch.tokenGrid as { frames?: number; height?: number; width?: number } | undefined
  if (!grid || !Number.isInteger(grid.height) || !Number.isInteger(grid.width)) {
    throw new UsageError(
      `--attention draft:... works on DiT models whose card declares architecture.tokenGrid; ${model.card.name} is a ${String(arch.type ?? 'model')} without one.`,
    )
  }
  return { grid: { frames: grid.frames ?? 1, height: grid.height as number, width: grid.width as number }, prefixTokens: Number(arch.prefixTokens ?? 0) }
}

/**
 * Rewrites every model for draft attention, or returns undefined for `--attention dense`. The rewritten
 * graphs live in a temporary folder that is removed once the sessions are open (ONNX Runtime has read
 * them). Models with external weight files are not supported here (the rewrite keeps their references).
 */
export async function applyDraftAttention(
  models: Readonly<Record<string, ClassConditionalModel>>,
  spec: string,
  sessionOptions: OnnxSessionOptions,
): Promise<{ models: Record<string, ClassConditionalModel>; owned: ClassConditionalModel[]; run: DraftAttentionRun } | undefined> {
  let draft: Draft
  try {
    draft = await import('@guidekit/draft-attention')
  } catch (cause) {
    throw new UsageError(`--attention needs @guidekit/draft-attention, which could not be loaded (${cause instanceof Error ? cause.message.split('\n')[0] : String(cause)}).`)
  }
  const parsed = draft.parseDraftAttentionSpec(spec)
  if (parsed === undefined) return undefined
  const counts = { dense: 0, sparse: 0 }
  let timesteps: Float64Array | undefined
  const stepOf = (feeds: Record<string, ort.Tensor>): number => {
    const t = feeds.timestep
    if (!timesteps || !t) return 0
    const value = Number((t.data as ArrayLike<number | bigint>)[0] ?? 0)
    let best = 0
    for (let i = 1; i < timesteps.length; i++) if (Math.abs((timesteps[i] as number) - value) < Math.abs((timesteps[best] as number) - value)) best = i
    return best
  }
  const out: Record<string, ClassConditionalModel> = {}
  const owned: ClassConditionalModel[] = []
  const sites: Record<string, number> = {}
  const folder = mkdtempSync(join(tmpdir(), 'guidekit-draft-'))
  try {
    for (const [name, model] of Object.entries(models)) {
      const layout = tokenLayout(model)
      const window = parsed.window ?? draft.defaultWindow(layout.grid)
      const bytes = new Uint8Array(readFileSync(model.path))
      const rewritten = draft.rewriteDraftAttention(bytes, { grid: layout.grid, window, prefixTokens: layout.prefixTokens, selection: parsed.selection, denseLayers: parsed.denseLayers })
      if (rewritten.sites === 0) throw new UsageError(`--attention: found no attention to rewrite in ${model.card.name} (${rewritten.found.length} sites found; ${rewritten.found.map((f) => f.reason).filter(Boolean).join('; ') || 'none matched'}).`)
      sites[model.card.name] = rewritten.sites
      const path = join(folder, `${model.card.name}.draft.onnx`)
      writeFileSync(path, rewritten.model)
      const loaded = await loadClassConditionalModel({ path, card: model.card }, { sessionOptions })
      owned.push(loaded)
      const info = rewritten.info
      const session = loaded.session
      // The class-conditional denoiser feeds sample/timestep/class_labels; add the draft inputs per run.
      const wrapped = new Proxy(session, {
        get(target, key) {
          if (key === 'run') {
            return (feeds: Record<string, ort.Tensor>, ...rest: unknown[]) => {
              const steps = timesteps?.length ?? 1
              const dense = draft.isDenseStep(Math.min(stepOf(feeds), steps - 1), steps, parsed.denseSteps)
              if (dense) counts.dense++
              else counts.sparse++
              const extra: Record<string, ort.Tensor> = {}
              for (const [k, f] of Object.entries(draft.draftFeeds(info, { keep: parsed.keep, dense }))) extra[k] = new ort.Tensor(f.type, f.data, [...f.dims])
              return (target.run as (...a: unknown[]) => unknown).call(target, { ...feeds, ...extra }, ...rest)
            }
          }
          // Read everything else from the session itself (ORT's getters use private fields).
          const value = Reflect.get(target, key, target)
          return typeof value === 'function' ? value.bind(target) : value
        },
      })
      out[name] = { ...loaded, session: wrapped }
    }
  } catch (error) {
    await Promise.all(owned.map((m) => m.dispose()))
    throw error
  } finally {
    rmSync(folder, { recursive: true, force: true })
  }
  return {
    models: out,
    owned,
    run: {
      label: spec.trim(),
      keep: parsed.keep,
      denseSteps: parsed.denseSteps,
      sites,
      counts,
      setPlan(plan) {
        timesteps = plan.timesteps
      },
    },
  }
}
