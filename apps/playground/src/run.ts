// Runs a grid the way `guidekit grid` does: one row per guidance spec, one column per seed (seed + i), all
// columns of a row in one batch, rows one after another; plus a preview of each row's guided x0 estimate
// after every step. DOM-free, so the page and its tests share it.
import { GuidekitError, sample, type Guider, type SamplingPlan, type Tensor } from '@guidekit/core'
import { buildGuidance, buildSampler } from '@guidekit/grammar'
import { fashionWebModel } from '@guidekit/models-fashion/web'
import { classConditionalDenoiser, classLabel, loadClassConditionalModel, planFromCard, toRawImages, type CardPlanOptions, type RawImage, type WebClassConditionalModel, type WebRuntime } from '@guidekit/onnx/web'
import type { Backend, PageModel, PlaygroundState } from './state.js'

/** The RL fine-tune that `rlg` rows use, by base model. */
const RL_MODELS: Partial<Record<PageModel, 'fashion-dit-rl'>> = { 'fashion-dit': 'fashion-dit-rl' }

export interface RowResult {
  /** The spec as written. */
  readonly label: string
  readonly guiderName: string
  readonly rlModel: string | undefined
  readonly images: RawImage[]
  /** Network evaluations per image (CFG: 2 per step). */
  readonly nfe: number
  /** Wall time of the row (denoiser, sampling, pixels) divided by its images. */
  readonly msPerImage: number
}

/** What a run reports while it goes. */
export interface GridCallbacks {
  /** A model is being loaded (or was: `runtime` set). */
  onModel?(name: string, runtime: WebRuntime | undefined): void
  onRowStart?(row: number, label: string): void
  /**
   * After each step: the row's guided x0 estimate as pixels, one image per column. The run waits for a
   * returned promise (a page yields there, so it can paint and take the cancel click between steps).
   */
  onStep?(row: number, step: number, steps: number, preview: RawImage[]): void | Promise<void>
  onRowDone?(row: number, result: RowResult): void
}

export interface GridRun {
  readonly rows: RowResult[]
  readonly className: string
  readonly sampler: string
  readonly seeds: number[]
  readonly runtime: WebRuntime
}

/**
 * The timestep spacing and Karras choice of a model's plan, as the CLI picks them without `--spacing` and
 * `--karras`: the card's recommendation, else linspace without Karras sigmas (VP models); undefined for flow.
 */
export function planChoice(model: PageModel): { spacing: CardPlanOptions['spacing']; karras: boolean | undefined } {
  const card = fashionWebModel(model).card
  if (card.schedule.family !== 'vp') return { spacing: undefined, karras: undefined }
  return { spacing: card.defaults?.spacing ?? 'linspace', karras: card.defaults?.karras ?? false }
}

const cache = new Map<string, Promise<WebClassConditionalModel>>()

/** A shipped model, loaded once per backend and kept for later runs. */
function loadModel(name: PageModel | 'fashion-dit-rl', backend: Backend, callbacks: GridCallbacks): Promise<WebClassConditionalModel> {
  const key = `${name}/${backend}`
  let model = cache.get(key)
  if (model === undefined) {
    const { url, card } = fashionWebModel(name)
    callbacks.onModel?.(name, undefined)
    model = loadClassConditionalModel({ model: url, card, name }, { sessionOptions: { executionProviders: backend === 'wasm' ? ['wasm'] : ['webgpu', 'wasm'] } })
    cache.set(key, model)
    // A failed load is not kept: the next run tries again.
    model.catch(() => cache.delete(key))
  }
  return model.then((m) => {
    callbacks.onModel?.(name, m.runtime)
    return m
  })
}

/** Calls `onStep` with each step's guided x0 estimate (and waits for it); otherwise the guider unchanged. */
function withPreview(inner: Guider, onStep: (step: number, denoised: Tensor) => void | Promise<void>): Guider {
  return {
    specificationVersion: 'v1',
    name: inner.name,
    start(run) {
      const session = inner.start(run)
      return {
        async step(ctx) {
          const guided = await session.step(ctx)
          await onStep(ctx.step, guided.denoised)
          return guided
        },
        report: () => session.report?.() ?? {},
      }
    },
  }
}

/**
 * Runs every row of the grid. Bad settings (grammar, class, sampler) throw `INVALID_ARGUMENT` before any
 * model loads; `signal` stops the run between steps with `ABORTED`.
 */
export async function runGrid(state: PlaygroundState, signal: AbortSignal, callbacks: GridCallbacks = {}): Promise<GridRun> {
  const rows = await buildGuidance(state.guidance.join(';'), { what: 'guidance' })
  const baseCard = fashionWebModel(state.model).card
  const label = classLabel(baseCard, state.className)
  const className = baseCard.classes?.[label] ?? String(label)
  const sampler = buildSampler(state.sampler, baseCard.schedule.family)
  const rlName = RL_MODELS[state.model]
  if (rows.some((r) => r.needsTunedModel) && rlName === undefined) {
    throw new GuidekitError('INVALID_ARGUMENT', `rlg needs an RL fine-tune of ${state.model}; only fashion-dit has one (fashion-dit-rl). Remove the rlg rows or choose the DiT.`)
  }
  const base = await loadModel(state.model, state.backend, callbacks)
  const tuned = rows.some((r) => r.needsTunedModel) && rlName ? await loadModel(rlName, state.backend, callbacks) : undefined
  const { channels, height, width, range } = base.card.image
  const { spacing, karras } = planChoice(state.model)
  const plan: SamplingPlan = planFromCard(base.card, { steps: state.steps, ...(spacing === undefined ? {} : { spacing }), ...(karras === undefined ? {} : { karras }) })
  const seeds = Array.from({ length: state.columns }, (_, i) => state.seed + i)
  const results: RowResult[] = []
  for (const [r, row] of rows.entries()) {
    callbacks.onRowStart?.(r, row.label)
    const t0 = performance.now()
    const models = row.needsTunedModel && tuned ? { base, tuned } : { base }
    const denoiser = classConditionalDenoiser({ models, classes: seeds.map(() => label) })
    const guider = withPreview(row.guider, (step, denoised) => callbacks.onStep?.(r, step + 1, plan.timesteps.length, toRawImages(denoised, { range })))
    const result = await sample({ denoiser, guider, sampler: sampler.sampler, plan, shape: [seeds.length, channels, height, width], seeds, signal })
    const images = toRawImages(result.samples, { range })
    const done: RowResult = {
      label: row.label,
      guiderName: row.guider.name,
      rlModel: row.needsTunedModel ? tuned?.card.name : undefined,
      images,
      nfe: result.nfe,
      msPerImage: (performance.now() - t0) / seeds.length,
    }
    results.push(done)
    callbacks.onRowDone?.(r, done)
  }
  return { rows: results, className, sampler: sampler.label, seeds, runtime: base.runtime }
}
