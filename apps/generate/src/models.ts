// `--model` resolution: a shipped model name, a class-conditional `.onnx` / `.card.json`, or a diffusers
// ONNX folder, behind one small interface the commands use.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { basename, dirname, join, resolve } from 'node:path'
import type { Denoiser, NoiseFamily, SamplingPlan, Tensor } from '@guidekit/core'
import { classConditionalDenoiser, classLabel, loadClassConditionalModel, loadDiffusersPipeline, planFromCard, toRawImages } from '@guidekit/onnx'
import type { ClassConditionalDenoiser, ClassConditionalModel, DiffusersPipeline, OnnxSessionOptions, RawImage } from '@guidekit/onnx'
import { UsageError } from './errors.js'
import { applyDraftAttention, type DraftAttentionRun } from './draft.js'

/** The shipped models (`@guidekit/models-fashion`). */
export const SHIPPED_MODELS = ['fashion-dit', 'fashion-unet', 'fashion-dit-rl'] as const
export const DEFAULT_MODEL = 'fashion-dit'

/** What a run asks the model for. */
export interface Conditioning {
  /** `--class` values (names or indices), cycled over the images. */
  readonly classes?: readonly string[]
  readonly prompt?: string
  readonly negativePrompt?: string
}

/** A loaded model, whatever its kind. */
export interface Engine {
  readonly kind: 'class-conditional' | 'diffusers'
  /** Short model name for labels and the PNG parameters. */
  readonly name: string
  readonly family: NoiseFamily
  /** The RL-fine-tuned model's name when one is loaded (for `rlg`). */
  readonly tunedName: string | undefined
  /** Draft attention in use, if any. */
  readonly draft: DraftAttentionRun | undefined
  plan(steps: number): SamplingPlan
  shape(count: number): number[]
  /** Per-image conditioning labels, e.g. `Sneaker` (class models) or the prompt. */
  labels(conditioning: Conditioning, count: number): string[]
  denoiser(conditioning: Conditioning, count: number): Promise<Denoiser>
  images(samples: Tensor, signal?: AbortSignal): Promise<RawImage[]>
  dispose(): Promise<void>
}

export interface LoadOptions {
  readonly model: string
  /** `--rl-model`; default: the shipped RL model for the shipped DiT, or `<name>-rl.onnx` next to the model. */
  readonly rlModel?: string
  readonly needsTunedModel: boolean
  readonly threads?: number
  /** `--attention` spec (`draft:keep=0.25,dense-steps=0.3`), undefined = dense. */
  readonly attention?: string
  readonly size?: { readonly width: number; readonly height: number }
  readonly onWarning?: (message: string) => void
}

interface ShippedModel {
  readonly name: string
  readonly onnxPath: string
}

async function shippedModel(name: string): Promise<ShippedModel> {
  let m: typeof import('@guidekit/models-fashion')
  try {
    m = await import('@guidekit/models-fashion')
  } catch {
    throw new UsageError(`The shipped model ${name} is not installed (@guidekit/models-fashion is missing); pass --model <model.onnx | model.card.json | diffusers folder>.`)
  }
  let model: ShippedModel
  try {
    model = m.fashionModel(name as Parameters<typeof m.fashionModel>[0])
  } catch (cause) {
    const reason = (cause as { code?: string }).code === 'ENOENT' ? 'its model card is missing' : cause instanceof Error ? cause.message : String(cause)
    throw new UsageError(`The shipped model ${name} is not available (${reason}); build it with tooling/train or pass --model <path>.`)
  }
  if (!existsSync(model.onnxPath)) throw new UsageError(`The shipped model ${name} is not built yet (${model.onnxPath} is missing); build it with tooling/train or pass --model <path>.`)
  return model
}

/** Where a `--model` value points: an `.onnx` / `.card.json` path for class-conditional models, or a folder. */
async function locate(spec: string): Promise<{ kind: 'file'; path: string } | { kind: 'folder'; path: string }> {
  if ((SHIPPED_MODELS as readonly string[]).includes(spec)) return { kind: 'file', path: (await shippedModel(spec)).onnxPath }
  const path = resolve(spec)
  if (!existsSync(path)) {
    // `name` without extension next to a card
    if (existsSync(`${path}.card.json`)) return { kind: 'file', path: `${path}.card.json` }
    throw new UsageError(
      `Model not found: ${spec}. Pass a shipped model (${SHIPPED_MODELS.join(', ')}), a class-conditional <name>.onnx or <name>.card.json, or a diffusers ONNX folder (model_index.json, unet/, vae_decoder/, ...).`,
    )
  }
  if (statSync(path).isDirectory()) {
    if (existsSync(join(path, 'model_index.json'))) return { kind: 'folder', path }
    const cards = readdirSync(path).filter((f) => f.endsWith('.card.json'))
    throw new UsageError(
      `${spec} is a folder without model_index.json, so it is not a diffusers ONNX export${cards.length ? `; for a class-conditional model pass the card itself, e.g. --model ${join(spec, cards[0] as string)}` : ''}.`,
    )
  }
  if (!path.endsWith('.onnx') && !path.endsWith('.card.json')) throw new UsageError(`--model ${spec}: expected a .onnx file, a .card.json file or a diffusers folder.`)
  return { kind: 'file', path }
}

const stem = (path: string): string => basename(path).replace(/\.card\.json$|\.onnx$/, '')

async function tunedSource(options: LoadOptions, basePath: string): Promise<string> {
  if (options.rlModel !== undefined) {
    const where = await locate(options.rlModel)
    if (where.kind !== 'file') throw new UsageError(`--rl-model ${options.rlModel} must be a class-conditional model (.onnx or .card.json), not a folder.`)
    return where.path
  }
  if (options.model === 'fashion-dit' || options.model === DEFAULT_MODEL) return (await shippedModel('fashion-dit-rl')).onnxPath
  const sibling = join(dirname(basePath), `${stem(basePath)}-rl.onnx`)
  if (existsSync(sibling)) return sibling
  throw new UsageError(`rlg needs an RL-fine-tuned model: pass --rl-model <path> (no ${basename(sibling)} next to ${basename(basePath)}).`)
}

/** Loads `--model` (and the RL model when the guidance needs one). */
export async function loadEngine(options: LoadOptions): Promise<Engine> {
  const where = await locate(options.model)
  // No intra-op thread spinning. Measured on 2 busy cores (the fashion DiT, CFG, batch 4): 0.24-0.36 s per
  // image without spinning vs 0.46-0.57 s with it; with two sessions (rlg's base and tuned models) the idle
  // pool of one spins on the cores the other needs (2.1 s per image vs 0.58 s).
  const sessionOptions: OnnxSessionOptions = {
    ...(options.threads === undefined ? {} : { threads: options.threads }),
    ort: { extra: { session: { intra_op: { allow_spinning: '0' } } } },
  }
  if (where.kind === 'folder') {
    if (options.needsTunedModel) throw new UsageError('rlg needs a class-conditional base model and its RL fine-tune; diffusers folders hold one UNet.')
    if (options.attention !== undefined) throw new UsageError('--attention draft:... works on DiT models only; this is a Stable Diffusion UNet folder.')
    const pipeline = await loadDiffusersPipeline(where.path, { sessionOptions, ...(options.onWarning ? { onWarning: options.onWarning } : {}) })
    return diffusersEngine(pipeline, options)
  }
  const loaded: ClassConditionalModel[] = []
  try {
    const base = await loadClassConditionalModel(where.path, { sessionOptions })
    loaded.push(base)
    let tuned: ClassConditionalModel | undefined
    if (options.needsTunedModel) {
      tuned = await loadClassConditionalModel(await tunedSource(options, where.path), { sessionOptions })
      loaded.push(tuned)
    }
    const models: Record<string, ClassConditionalModel> = tuned ? { base, tuned } : { base }
    let root: ClassConditionalDenoiser = classConditionalDenoiser({ models, classes: [0] })
    let draft: DraftAttentionRun | undefined
    if (options.attention !== undefined) {
      const result = await applyDraftAttention(root, options.attention, sessionOptions)
      if (result) {
        draft = result
        root = result.denoiser
      }
    }
    return classConditionalEngine(root, tuned ? tuned.card.name : undefined, draft, loaded)
  } catch (error) {
    await Promise.all(loaded.map((m) => m.dispose()))
    throw error
  }
}

function classConditionalEngine(root: ClassConditionalDenoiser, tunedName: string | undefined, draft: DraftAttentionRun | undefined, owned: readonly ClassConditionalModel[]): Engine {
  const card = root.card
  const { channels, height, width } = card.image
  const names = card.classes ?? []
  const labelsOf = (conditioning: Conditioning, count: number): number[] => {
    if (conditioning.negativePrompt !== undefined) throw new UsageError(`--negative-prompt needs a text-to-image model; ${card.name} is class-conditional (its unconditional branch is the null class).`)
    let values = conditioning.classes
    if (values === undefined && conditioning.prompt !== undefined) values = [conditioning.prompt]
    if (values === undefined || values.length === 0) {
      if (names.length === 0) throw new UsageError(`${card.name} has no class names in its card; pass --class <index>.`)
      return Array.from({ length: count }, (_, i) => i % names.length)
    }
    // Forgiving names: 'ankle-boot', 'ankle_boot' and 'AnkleBoot' all mean "Ankle boot".
    const loose = (v: string): string => v.toLowerCase().replace(/[^a-z0-9]/g, '')
    const labels = values.map((v) => classLabel(card, names.find((n) => loose(n) === loose(v)) ?? v))
    return Array.from({ length: count }, (_, i) => labels[i % labels.length] as number)
  }
  return {
    kind: 'class-conditional',
    name: card.name,
    family: root.family,
    tunedName,
    draft,
    plan: (steps) => planFromCard(card, { steps }),
    shape: (count) => [count, channels, height, width],
    labels: (conditioning, count) => labelsOf(conditioning, count).map((l) => names[l] ?? String(l)),
    async denoiser(conditioning, count) {
      return root.withClasses(labelsOf(conditioning, count))
    },
    images: async (samples) => toRawImages(samples, { range: card.image.range }),
    async dispose() {
      await root.dispose()
      await Promise.all(owned.map((m) => m.dispose()))
    },
  }
}

function diffusersEngine(pipeline: DiffusersPipeline, options: LoadOptions): Engine {
  const unetSample = pipeline.io.unet.inputs.get('sample')
  const fixed = (d: unknown): number | undefined => (typeof d === 'number' && d > 0 ? d * pipeline.vaeScaleFactor : undefined)
  const height = options.size?.height ?? fixed(unetSample?.shape[2]) ?? 512
  const width = options.size?.width ?? fixed(unetSample?.shape[3]) ?? 512
  const name = basename(pipeline.directory)
  const promptOf = (c: Conditioning): string => {
    if (c.classes !== undefined) throw new UsageError(`--class is for class-conditional models; ${name} is a text-to-image pipeline: use --prompt.`)
    if (c.prompt === undefined) throw new UsageError(`${name} is a text-to-image pipeline: pass --prompt "..." (and optionally --negative-prompt).`)
    return c.prompt
  }
  return {
    kind: 'diffusers',
    name,
    family: 'vp',
    tunedName: undefined,
    draft: undefined,
    plan: (steps) => pipeline.plan({ steps }),
    shape: (count) => pipeline.latentShape({ batch: count, height, width }),
    labels: (c, count) => new Array<string>(count).fill(promptOf(c)),
    denoiser: (c, count) => pipeline.denoiser({ prompt: promptOf(c), batch: count, ...(c.negativePrompt === undefined ? {} : { negativePrompt: c.negativePrompt }) }),
    images: async (samples, signal) => toRawImages(await pipeline.decode(samples, signal ? { signal } : {}), { range: [0, 1] }),
    dispose: () => pipeline.dispose(),
  }
}
