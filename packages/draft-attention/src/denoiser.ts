// DraftAttention as a denoiser wrapper: rewrite each DiT's attention, load the rewritten graphs, and feed
// their per-step inputs (dense for the first steps, block-sparse after) from the request's step index.
import { GuidekitError } from '@guidekit/core'
import { classConditionalDenoiser, loadClassConditionalModel } from '@guidekit/onnx'
import type { ClassConditionalDenoiser, ClassConditionalModel, OnnxSessionOptions } from '@guidekit/onnx'
import { Tensor as OrtTensor } from 'onnxruntime-common'
import { defaultWindow, draftFeeds, isDenseStep } from './feeds.js'
import { rewriteDraftAttention, type DraftModelInfo } from './rewrite.js'
import type { DraftSelection } from './selection.js'

/** Options of {@link draftAttention}. */
export interface DraftAttentionDenoiserOptions {
  /** Fraction of attention block pairs kept on sparse steps, in (0, 1] (default 0.1). */
  readonly keep?: number
  /** Fraction of the first sampling steps run with dense attention (default 0.3, the paper's high-noise steps). */
  readonly denseSteps?: number
  /** First attention sites (layers) left dense on every step (default 0). */
  readonly denseLayers?: number
  /** Pooling window in tokens; default {@link defaultWindow} of the model's token grid. */
  readonly window?: { readonly height: number; readonly width: number }
  readonly selection?: DraftSelection
  /** Session options of the rewritten models (e.g. `{ threads: 2 }`). */
  readonly sessionOptions?: OnnxSessionOptions
}

/** A class-conditional denoiser running DraftAttention, with what it did. */
export interface DraftAttentionDenoiser extends ClassConditionalDenoiser {
  /** Rewritten attention sites per model name. */
  readonly sites: Readonly<Record<string, number>>
  /** The pooling window used per model name, in tokens. */
  readonly windows: Readonly<Record<string, { readonly height: number; readonly width: number }>>
  /** Model runs fed dense / sparse so far (over every denoiser made from this one with `withClasses`). */
  readonly runs: { readonly dense: number; readonly sparse: number }
  withClasses(classes: readonly number[]): DraftAttentionDenoiser
}

interface TokenLayout {
  readonly grid: { frames: number; height: number; width: number }
  readonly prefixTokens: number
}

function tokenLayout(model: ClassConditionalModel): TokenLayout {
  const arch = model.card.architecture ?? {}
  const grid = arch.tokenGrid as { frames?: number; height?: number; width?: number } | undefined
  if (!grid || !Number.isInteger(grid.height) || !Number.isInteger(grid.width)) {
    throw new GuidekitError('UNSUPPORTED', `DraftAttention works on DiT models whose card declares architecture.tokenGrid; ${model.card.name} is a ${String(arch.type ?? 'model')} without one.`, {
      details: { model: model.card.name },
    })
  }
  return { grid: { frames: grid.frames ?? 1, height: grid.height as number, width: grid.width as number }, prefixTokens: Number(arch.prefixTokens ?? 0) }
}

/**
 * Wraps a class-conditional DiT denoiser in DraftAttention (Shen et al., arXiv 2505.14708): every model's
 * attention is rewritten to pool queries and keys into a low-resolution draft, keep the `keep` most
 * attended block pairs and run block-sparse attention over them; the first `denseSteps` of each trajectory
 * (read from the request's step index) and the first `denseLayers` sites stay dense. One implementation for
 * the CLI, the benchmarks and library users; it composes with every guider. `dispose()` releases the
 * rewritten sessions (the original denoiser keeps its own).
 *
 * @example
 * const dit = await loadClassConditionalDenoiser({ model: fashionModel('fashion-dit').onnxPath, classes })
 * const draft = await draftAttention(dit, { keep: 0.25, denseSteps: 0.3 })
 * await sample({ denoiser: draft, guider: cfg({ scale: 3 }), sampler: euler(), plan, shape })
 */
export async function draftAttention(denoiser: ClassConditionalDenoiser, options: DraftAttentionDenoiserOptions = {}): Promise<DraftAttentionDenoiser> {
  const keep = options.keep ?? 0.1
  const denseSteps = options.denseSteps ?? 0.3
  // Validate the options once, before rewriting anything.
  isDenseStep(0, 1, denseSteps)
  const owned: ClassConditionalModel[] = []
  const infos: Record<string, DraftModelInfo> = {}
  const sites: Record<string, number> = {}
  const windows: Record<string, { height: number; width: number }> = {}
  const models: Record<string, ClassConditionalModel> = {}
  try {
    for (const [name, model] of Object.entries(denoiser.models)) {
      const layout = tokenLayout(model)
      const window = options.window ?? defaultWindow(layout.grid)
      windows[name] = window
      const rewritten = rewriteDraftAttention(await model.modelBytes(), {
        grid: layout.grid,
        window,
        prefixTokens: layout.prefixTokens,
        ...(options.selection === undefined ? {} : { selection: options.selection }),
        denseLayers: options.denseLayers ?? 0,
      })
      const matched = rewritten.found.filter((f) => f.rewritten || f.keptDense === true).length
      const denseLayers = options.denseLayers ?? 0
      if (rewritten.sites === 0 && matched > 0 && denseLayers >= matched) {
        throw new GuidekitError('INVALID_ARGUMENT', `denseLayers is ${denseLayers}, but ${model.card.name} has ${matched} attention sites, so none would use draft attention; pass denseLayers from 0 to ${matched - 1}.`, {
          details: { parameter: 'denseLayers', value: denseLayers, sites: matched },
        })
      }
      if (rewritten.sites === 0) {
        const reasons = rewritten.found.map((f) => f.reason).filter(Boolean)
        throw new GuidekitError('UNSUPPORTED', `DraftAttention found no attention to rewrite in ${model.card.name}${reasons.length ? ` (${[...new Set(reasons)].join('; ')})` : ''}.`, { details: { model: model.card.name } })
      }
      draftFeeds(rewritten.info, { keep }) // validates keep against the model
      const extraInputs = Object.values(rewritten.info.inputs).filter((v): v is string => typeof v === 'string')
      const loaded = await loadClassConditionalModel({ bytes: rewritten.model, card: model.card, name: `${model.name} (draft attention)` }, { extraInputs, ...(options.sessionOptions ? { sessionOptions: options.sessionOptions } : {}) })
      owned.push(loaded)
      models[name] = loaded
      infos[name] = rewritten.info
      sites[name] = rewritten.sites
    }
  } catch (error) {
    await Promise.all(owned.map((m) => m.dispose()))
    throw error
  }
  const runs = { dense: 0, sparse: 0 }
  const inner = classConditionalDenoiser({
    models,
    classes: denoiser.classes,
    nullClass: denoiser.nullClass,
    onRun: ({ request, modelName }) => {
      const dense = isDenseStep(request.step, request.steps, denseSteps)
      if (dense) runs.dense++
      else runs.sparse++
      const feeds: Record<string, OrtTensor> = {}
      for (const [k, f] of Object.entries(draftFeeds(infos[modelName] as DraftModelInfo, { keep, dense }))) feeds[k] = new OrtTensor(f.type, f.data, [...f.dims])
      return { feeds }
    },
    onDispose: async () => {
      await Promise.all(owned.map((m) => m.dispose()))
    },
  })
  const withStats = (d: ClassConditionalDenoiser): DraftAttentionDenoiser => ({
    specificationVersion: 'v1',
    family: d.family,
    card: d.card,
    models: d.models,
    classes: d.classes,
    nullClass: d.nullClass,
    get modelCalls() {
      return d.modelCalls
    },
    predict: (request) => d.predict(request),
    withClasses: (classes) => withStats(d.withClasses(classes)),
    dispose: () => d.dispose(),
    sites,
    windows,
    runs,
  })
  return withStats(inner)
}
