// `--model` resolution: a model name registered in @guidekit/models-fashion, a class-conditional `.onnx` /
// `.card.json`, a text-to-image card, or a diffusers ONNX folder, behind one small interface the commands use.
import { existsSync, readdirSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import type { Denoiser, NoiseFamily, SamplingPlan, Tensor, TimestepSpacing } from '@guidekit/core'
import { classConditionalDenoiser, classLabel, describeClasses, loadClassConditionalModel, loadDiffusersPipeline, locateModel, planFromCard, readModelCard, toRawImages } from '@guidekit/onnx'
import type { CardDefaults, ClassConditionalDenoiser, ClassConditionalModel, DiffusersPipeline, GeneratorCard, OnnxSessionOptions, RawImage } from '@guidekit/onnx'
import { applyDraftAttention, type DraftAttentionRun } from './draft.js'
import { UsageError } from './errors.js'
import { choosePrecision, findVariants } from './precision.js'

/** What a run asks the model for. */
export interface Conditioning {
  /** `--class` values (names or indices), cycled over the images. */
  readonly classes?: readonly string[]
  readonly prompt?: string
  readonly negativePrompt?: string
}

export type Spacing = Exclude<TimestepSpacing, 'linspace-exclusive'>

/** The sampling settings a model recommends (its card, or a diffusers pipeline's config), and where they come from. */
export interface EngineDefaults extends CardDefaults {
  readonly source: string
}

/** A loaded model, whatever its kind. */
export interface Engine {
  readonly kind: 'class-conditional' | 'diffusers'
  /** Short model name for labels and file names. */
  readonly name: string
  readonly family: NoiseFamily
  /** The RL-fine-tuned model's name when one is loaded (for `rlg`). */
  readonly tunedName: string | undefined
  /** Draft attention in use, if any. */
  readonly draft: DraftAttentionRun | undefined
  readonly defaults: EngineDefaults
  /** The precision run (class-conditional models): which card and ONNX file, and why. */
  readonly precision: { readonly precision: string; readonly file: string; readonly reason: string } | undefined
  plan(steps: number, options: { readonly spacing?: Spacing; readonly karras?: boolean }): SamplingPlan
  shape(count: number): number[]
  /** Per-image conditioning labels, e.g. `Sneaker` (class models) or the prompt; validates the classes. */
  labels(conditioning: Conditioning, count: number): string[]
  denoiser(conditioning: Conditioning, count: number): Promise<Denoiser>
  images(samples: Tensor, signal?: AbortSignal): Promise<RawImage[]>
  dispose(): Promise<void>
}

export interface LoadOptions {
  readonly model: string
  /** `--rl-model`; default: `<name>-rl` next to the model. */
  readonly rlModel?: string
  readonly needsTunedModel: boolean
  readonly threads?: number
  /** `--attention` spec (`draft:keep=0.25,dense-steps=0.3`), undefined = dense. */
  readonly attention?: string
  readonly size?: { readonly width: number; readonly height: number }
  /** `--precision`; default: the fastest variant that passed its quality gate. */
  readonly precision?: string
  readonly onWarning?: (message: string) => void
}

/** A model on disk: its card (and, when `--model` named the `.onnx` file, that file), or a diffusers folder. */
type Located = { readonly kind: 'card'; readonly cardPath: string; readonly onnxPath?: string } | { readonly kind: 'folder'; readonly path: string }

// Model names come from @guidekit/models-fashion's registries: class-conditional models
// (`fashionModelNames`, `fashionModel(name)`) and text-to-image pipelines (`fashionPipelineNames`,
// `fashionPipeline(name)`: a diffusers ONNX folder with its card next to it). A name resolves to its card;
// a pipeline's card names its folder, so `--model fashion-sd` runs exactly as `--model <that folder>`, plus
// the card's defaults. The package is imported lazily: the CLI works without it (paths only). The
// pipeline registry is optional here, so the CLI also runs against a models-fashion that ships none.
interface Registered {
  readonly cardPath: string
  readonly card: { readonly kind: string }
}
interface Registry {
  readonly fashionModelNames: readonly string[]
  readonly fashionModel: (name: string) => Registered
  readonly fashionPipelineNames?: readonly string[]
  readonly fashionPipeline?: (name: string) => Registered
}

async function registry(): Promise<Registry | undefined> {
  try {
    // Typed by what the CLI uses: a models-fashion without the pipeline registry has the rest.
    const m: object = await import('@guidekit/models-fashion')
    return m as Registry
  } catch {
    return undefined
  }
}

/** The card of a registered model or pipeline name, or `undefined` when the name is not registered. */
function registeredCard(m: Registry | undefined, name: string): string | undefined {
  if (m === undefined) return undefined
  if (m.fashionModelNames.includes(name)) return m.fashionModel(name).cardPath
  if (m.fashionPipeline && m.fashionPipelineNames?.includes(name)) return m.fashionPipeline(name).cardPath
  return undefined
}

/** The registered names that make images (for messages): generators and the pipelines this copy ships. */
function registeredGenerators(m: Registry | undefined): string[] {
  if (m === undefined) return []
  const usable = (get: (name: string) => Registered) => (name: string): boolean => {
    try {
      return get(name).card.kind !== 'evaluator'
    } catch {
      return false // not shipped in this copy, or broken: reported when asked for by name, not listed here
    }
  }
  const { fashionModel, fashionPipeline, fashionModelNames, fashionPipelineNames = [] } = m
  return [...fashionModelNames.filter(usable(fashionModel)), ...(fashionPipeline ? fashionPipelineNames.filter(usable(fashionPipeline)) : [])]
}

/** Where a `--model` value points, checked for existence (nothing is loaded yet). */
export async function locate(spec: string, flag = '--model'): Promise<Located> {
  const m = await registry()
  const registered = registeredCard(m, spec)
  if (registered !== undefined) return { kind: 'card', cardPath: registered }
  const path = resolve(spec)
  if (!existsSync(path)) {
    if (existsSync(`${path}.card.json`)) return { kind: 'card', cardPath: `${path}.card.json` }
    const shipped = registeredGenerators(m)
    throw new UsageError(
      `${flag} ${spec}: not found. Pass a shipped model (${shipped.join(', ') || 'none installed'}), a class-conditional <name>.onnx or <name>.card.json, or a diffusers ONNX folder (model_index.json, unet/, vae_decoder/, ...).`,
    )
  }
  if (statSync(path).isDirectory()) {
    if (existsSync(join(path, 'model_index.json'))) return { kind: 'folder', path }
    const cards = readdirSync(path).filter((f) => f.endsWith('.card.json'))
    throw new UsageError(`${flag} ${spec} is a folder without model_index.json, so it is not a diffusers ONNX export${cards.length ? `; for a card-described model pass the card itself, e.g. ${flag} ${join(spec, cards[0] as string)}` : ''}.`)
  }
  if (path.endsWith('.card.json')) return { kind: 'card', cardPath: path }
  if (path.endsWith('.onnx')) {
    const cardPath = locateModel(path).cardPath
    if (!existsSync(cardPath)) throw new UsageError(`${flag} ${spec} has no model card (${basename(cardPath)} next to it); guidekit needs the card to know what the model predicts.`)
    return { kind: 'card', cardPath, onnxPath: path }
  }
  throw new UsageError(`${flag} ${spec}: expected a .onnx file, a .card.json file or a diffusers folder.`)
}

const stem = (path: string): string => basename(path).replace(/\.card\.json$|\.onnx$/, '')

/**
 * The RL-fine-tuned model for `rlg`: `--rl-model`, else `<name>-rl.card.json` / `<name>-rl.onnx` next to the
 * model's card. `undefined` when there is none (a fact the grid uses to leave its default rlg row out).
 */
export async function findTunedModel(model: Located, rlModel: string | undefined): Promise<string | undefined> {
  if (rlModel !== undefined) {
    const where = await locate(rlModel, '--rl-model')
    if (where.kind !== 'card') throw new UsageError(`--rl-model ${rlModel} must be a class-conditional model (.onnx or .card.json), not a folder.`)
    return where.cardPath
  }
  if (model.kind !== 'card') return undefined
  const base = join(dirname(model.cardPath), `${stem(model.cardPath)}-rl`)
  return [`${base}.card.json`].find((p) => existsSync(p))
}

/** Loads `--model` (and the RL model when the guidance needs one); everything is checked before it returns. */
export async function loadEngine(options: LoadOptions): Promise<Engine> {
  const where = await locate(options.model)
  // No intra-op thread spinning. Measured on 2 busy cores (the fashion DiT, CFG, batch 4): 0.24-0.36 s per
  // image without spinning vs 0.46-0.57 s with it; with two sessions (rlg's base and tuned models) the idle
  // pool of one spins on the cores the other needs (2.1 s per image vs 0.58 s).
  const sessionOptions: OnnxSessionOptions = {
    ...(options.threads === undefined ? {} : { threads: options.threads }),
    ort: { extra: { session: { intra_op: { allow_spinning: '0' } } } },
  }
  if (where.kind === 'folder') return diffusersEngine(where.path, undefined, options, sessionOptions)
  const card = readModelCard(where.cardPath)
  if (card.kind === 'text-to-image') return diffusersEngine(locateModel(where.cardPath).onnxPath, { defaults: card.defaults, cardPath: where.cardPath }, options, sessionOptions)
  if (card.kind !== 'generator') throw new UsageError(`--model ${options.model} is a ${card.kind} model (it classifies images); pass a generator.`)
  // Class-conditional generators run as one single-threaded session per thread in worker threads, each
  // step's rows split between them (1.11-1.22x faster than one multi-threaded session at batch 64,
  // 1.05-1.15x at batch 8: pnpm bench:perf); the split depends on the rows only, so images do not depend
  // on --threads.
  const generatorOptions: OnnxSessionOptions = { ...sessionOptions, workers: options.threads ?? availableParallelism(), threads: 1 }
  if (options.size !== undefined && (options.size.width !== card.image.width || options.size.height !== card.image.height)) {
    throw new UsageError(`--size ${options.size.width}x${options.size.height} does not apply: ${card.name} is class-conditional and makes ${card.image.width}x${card.image.height} images (--size is for text-to-image models).`)
  }
  const variants = findVariants(where.cardPath, card)
  // RL guidance blends the model's and its RL model's predictions: by default both at the RL model's precision
  // (the model itself), so that a faster variant's rounding is not amplified by the blend.
  const pairDefault = options.precision === undefined && options.needsTunedModel === true
  const picked = choosePrecision(variants, pairDefault ? variants[0]?.precision : options.precision)
  const choice = pairDefault ? { ...picked, reason: 'rlg pairs the model with its RL model at the same precision' } : picked
  if (choice.warning) options.onWarning?.(choice.warning)
  const tunedPath = options.needsTunedModel ? await findTunedModel(where, options.rlModel) : undefined
  if (options.needsTunedModel && tunedPath === undefined) {
    throw new UsageError(`rlg needs an RL-fine-tuned model: pass --rl-model <path> (there is no ${stem(where.cardPath)}-rl.card.json next to ${basename(where.cardPath)}).`)
  }
  const loaded: ClassConditionalModel[] = []
  try {
    // The model itself from the .onnx file the user named (if any), a variant from its card.
    const own = choice.variant.cardPath === where.cardPath && where.onnxPath !== undefined
    const base = await loadClassConditionalModel(own ? { path: where.onnxPath, card: where.cardPath } : choice.variant.cardPath, { sessionOptions: generatorOptions })
    loaded.push(base)
    const tuned = tunedPath === undefined ? undefined : await loadClassConditionalModel(tunedPath, { sessionOptions: generatorOptions })
    if (tuned) loaded.push(tuned)
    let root: ClassConditionalDenoiser = classConditionalDenoiser({ models: tuned ? { base, tuned } : { base }, classes: [0] })
    let draft: DraftAttentionRun | undefined
    if (options.attention !== undefined) {
      draft = await applyDraftAttention(root, options.attention, generatorOptions)
      if (draft) root = draft.denoiser
    }
    const precision = { precision: choice.variant.precision, file: basename(own ? where.onnxPath : locateModel(choice.variant.cardPath).onnxPath), reason: choice.reason }
    return classConditionalEngine(root, base, { tunedName: tuned?.card.name, draft, precision, defaults: { ...card.defaults, source: basename(where.cardPath) } }, loaded)
  } catch (error) {
    await Promise.all(loaded.map((m) => m.dispose()))
    throw error
  }
}

interface ClassEngineParts {
  readonly tunedName: string | undefined
  readonly draft: DraftAttentionRun | undefined
  readonly precision: Engine['precision']
  readonly defaults: EngineDefaults
}

function classConditionalEngine(root: ClassConditionalDenoiser, base: ClassConditionalModel, parts: ClassEngineParts, owned: readonly ClassConditionalModel[]): Engine {
  const card: GeneratorCard = root.card
  const { channels, height, width } = card.image
  const names = card.classes ?? []
  // Cards without class names: the class range comes from the model's class embedding.
  const count = base.classCount
  const labelsOf = (conditioning: Conditioning, n: number): number[] => {
    if (conditioning.negativePrompt !== undefined) throw new UsageError(`--negative-prompt ${JSON.stringify(conditioning.negativePrompt)} needs a text-to-image model; ${card.name} is class-conditional (its unconditional branch is the null class).`)
    let values = conditioning.classes
    if (values === undefined && conditioning.prompt !== undefined) values = [conditioning.prompt]
    if (values === undefined) {
      if (count === undefined) throw new UsageError(`${card.name}'s card names no classes and its class range cannot be read from the graph; pass --class <index>.`)
      return Array.from({ length: n }, (_, i) => i % count)
    }
    const labels = values.map((v) => {
      const label = classLabel(card, v)
      if (count !== undefined && label >= count) {
        const valid = names.length ? describeClasses(names) : `0..${count - 1}`
        throw new UsageError(`Unknown class ${JSON.stringify(v)} for model '${card.name}'. Valid classes: ${valid}.`)
      }
      return label
    })
    return Array.from({ length: n }, (_, i) => labels[i % labels.length] as number)
  }
  return {
    kind: 'class-conditional',
    name: card.name,
    family: root.family,
    tunedName: parts.tunedName,
    draft: parts.draft,
    defaults: parts.defaults,
    precision: parts.precision,
    plan: (steps, o) => planFromCard(card, { steps, ...(o.spacing === undefined ? {} : { spacing: o.spacing }), ...(o.karras === undefined ? {} : { karras: o.karras }) }),
    shape: (n) => [n, channels, height, width],
    labels: (conditioning, n) => labelsOf(conditioning, n).map((l) => names[l] ?? String(l)),
    denoiser: (conditioning, n) => Promise.resolve(root.withClasses(labelsOf(conditioning, n))),
    images: (samples) => Promise.resolve(toRawImages(samples, { range: card.image.range })),
    async dispose() {
      await root.dispose()
      await Promise.all(owned.map((m) => m.dispose()))
    },
  }
}

// diffusers' schedulers that a guidekit sampler reproduces; others (PNDM, LMS, ...) default to euler.
const SAMPLER_OF_SCHEDULER: Readonly<Record<string, string>> = {
  DDIMScheduler: 'ddim',
  EulerDiscreteScheduler: 'euler',
  EulerAncestralDiscreteScheduler: 'euler-a',
  DPMSolverMultistepScheduler: 'dpmpp-2m',
}

async function diffusersEngine(folder: string, card: { defaults: CardDefaults | undefined; cardPath: string } | undefined, options: LoadOptions, sessionOptions: OnnxSessionOptions): Promise<Engine> {
  if (options.needsTunedModel) throw new UsageError('rlg needs a class-conditional base model and its RL fine-tune; diffusers folders hold one UNet.')
  if (options.attention !== undefined) throw new UsageError('--attention draft:... works on DiT models only; this is a Stable Diffusion UNet folder.')
  if (options.precision !== undefined) throw new UsageError(`--precision ${options.precision} does not apply to diffusers folders (${basename(folder)}): it picks a reduced-precision variant card of a class-conditional model.`)
  const pipeline: DiffusersPipeline = await loadDiffusersPipeline(folder, { sessionOptions, ...(options.onWarning ? { onWarning: options.onWarning } : {}) })
  const unetSample = pipeline.io.unet.inputs.get('sample')
  const fixed = (d: unknown): number | undefined => (typeof d === 'number' && d > 0 ? d * pipeline.vaeScaleFactor : undefined)
  const height = options.size?.height ?? fixed(unetSample?.shape[2]) ?? 512
  const width = options.size?.width ?? fixed(unetSample?.shape[3]) ?? 512
  const name = card ? stem(card.cardPath) : basename(pipeline.directory)
  const promptOf = (c: Conditioning): string => {
    if (c.classes !== undefined) throw new UsageError(`--class ${JSON.stringify(c.classes.join(','))} is for class-conditional models; ${name} is a text-to-image pipeline: use --prompt.`)
    if (c.prompt === undefined) throw new UsageError(`${name} is a text-to-image pipeline: pass --prompt "..." (and optionally --negative-prompt).`)
    return c.prompt
  }
  const scheduler = pipeline.scheduler
  // Without a card: the scheduler config's spacing and sampler, and the steps and guidance scale that diffusers'
  // OnnxStableDiffusionPipeline uses when not told (num_inference_steps=50, guidance_scale=7.5).
  const sampler = SAMPLER_OF_SCHEDULER[scheduler.className]
  const defaults: EngineDefaults = {
    steps: 50,
    guidance: 'cfg:scale=7.5',
    spacing: scheduler.timestepSpacing === 'linspace-exclusive' ? 'linspace' : scheduler.timestepSpacing,
    ...(sampler === undefined ? {} : { sampler }),
    ...card?.defaults,
    source: card ? basename(card.cardPath) : `${name}/scheduler/scheduler_config.json (${scheduler.className})`,
  }
  return {
    kind: 'diffusers',
    name,
    family: 'vp',
    tunedName: undefined,
    draft: undefined,
    defaults,
    precision: undefined,
    plan: (steps, o) => pipeline.plan({ steps, ...(o.spacing === undefined ? {} : { spacing: o.spacing }), ...(o.karras === undefined ? {} : { karras: o.karras }) }),
    shape: (count) => pipeline.latentShape({ batch: count, height, width }),
    labels: (c, count) => new Array<string>(count).fill(promptOf(c)),
    denoiser: (c, count) => pipeline.denoiser({ prompt: promptOf(c), batch: count, ...(c.negativePrompt === undefined ? {} : { negativePrompt: c.negativePrompt }) }),
    images: async (samples, signal) => toRawImages(await pipeline.decode(samples, signal ? { signal } : {}), { range: [0, 1] }),
    dispose: () => pipeline.dispose(),
  }
}
