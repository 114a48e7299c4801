// The Denoiser over class-conditional models: batches branches per model, feeds what the card says, and
// converts the model's output to {denoised, noise} at the edge. Runtime-free (onnxruntime-common types).
import { GuidekitError, Tensor, modelInput, toPrediction } from '@guidekit/core'
import type { Branch, DenoiseRequest, Denoiser, Prediction } from '@guidekit/core'
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-common'
import type { GeneratorCard } from '../card/schema.js'
import { gatherCall, planCalls, rowValues, splitCall } from '../internal/batching.js'
import { floatFeed, numericFeed, readFloat, runSession, type IoInfo } from '../internal/io.js'
import type { ClassConditionalModel } from './model.js'

/** What the {@link ClassConditionalDenoiserOptions.onRun} hook sees before each model run. */
export interface ModelRun {
  readonly request: DenoiseRequest
  /** The `model` name the branches asked for (`'base'` by default). */
  readonly modelName: string
  readonly model: ClassConditionalModel
  /** Rows in this run (all branches for this model, concatenated). */
  readonly batch: number
}

/** Extra inputs and run options for one model run (e.g. DraftAttention's per-step feeds). */
export interface ModelRunExtras {
  readonly feeds?: Readonly<Record<string, OrtTensor>>
  readonly runOptions?: InferenceSession.RunOptions
}

/** Options of {@link classConditionalDenoiser}. */
export interface ClassConditionalDenoiserOptions {
  /** The model used by branches without a `model` name (and by `'base'`). */
  readonly model?: ClassConditionalModel
  /** Named models, e.g. `{ base, tuned }` for RL guidance; a branch picks one with `branch.model`. */
  readonly models?: Readonly<Record<string, ClassConditionalModel>>
  /** The class label of each batch item (the positive branch). */
  readonly classes: readonly number[]
  /** The label of the unconditional branch; default: the card's `nullClass`. */
  readonly nullClass?: number
  /** Called before each model run; what it returns is added to the feeds / passed as run options. */
  readonly onRun?: (run: ModelRun) => ModelRunExtras | undefined
  /** Called by `dispose()` (loaders pass the release of the sessions they opened). */
  readonly onDispose?: () => Promise<void>
}

/** A denoiser over class-conditional ONNX models. */
export interface ClassConditionalDenoiser extends Denoiser {
  /** The card of the default model. */
  readonly card: GeneratorCard
  readonly models: Readonly<Record<string, ClassConditionalModel>>
  readonly classes: readonly number[]
  readonly nullClass: number
  /** Model runs so far (one per model per `predict`). */
  readonly modelCalls: number
  /** The same models (and hook) with other classes; no reloading. Its `dispose()` releases nothing. */
  withClasses(classes: readonly number[]): ClassConditionalDenoiser
  /** Releases what this denoiser owns (sessions opened by a loader); safe to call more than once. */
  dispose(): Promise<void>
}

const POSITIVE = new Set(['positive', 'conditional', 'cond'])
const NEGATIVE = new Set(['negative', 'unconditional', 'uncond', 'null'])
const DEFAULT = 'base'

const f32 = Math.fround

/**
 * A {@link Denoiser} over loaded class-conditional models. Branch roles: `'positive'` uses each item's
 * class, `'negative'` (or `'unconditional'`) the null class. All branches of one model go to it in ONE
 * batched run (x, or each branch's `samples` subset, concatenated with its labels); branches with different
 * `model` names (`'base'`, `'tuned'`) go to different sessions, one after the other.
 *
 * Feeds, by the card's roles: the sample (the sampler's x scaled by `1/sqrt(1 + sigma^2)` for `'vp'` models,
 * as is for `'flow'`), the timestep (the plan's; for flow models it must equal `sigma * timestepScale`, so
 * a plan built for another convention is caught), the class labels; reads the prediction output and
 * converts it with the card's parameterization. float16 models are fed and read through conversion.
 *
 * @example
 * const denoiser = classConditionalDenoiser({ model, classes: [7, 7, 3, 3] })
 * const rl = classConditionalDenoiser({ models: { base, tuned }, classes: [7] })
 */
export function classConditionalDenoiser(options: ClassConditionalDenoiserOptions): ClassConditionalDenoiser {
  const models: Record<string, ClassConditionalModel> = {}
  if (options.model !== undefined) models[DEFAULT] = options.model
  for (const [name, m] of Object.entries(options.models ?? {})) models[name] = m
  const entries = Object.entries(models)
  if (entries.length === 0) {
    throw new GuidekitError('INVALID_ARGUMENT', 'classConditionalDenoiser needs `model` or `models` ({ base, tuned }); load them with loadClassConditionalModel.', { details: { parameter: 'model' } })
  }
  const [firstName, first] = entries[0] as [string, ClassConditionalModel]
  for (const [name, m] of entries) {
    const a = first.card.image
    const b = m.card.image
    if (m.family !== first.family || a.channels !== b.channels || a.height !== b.height || a.width !== b.width) {
      throw new GuidekitError(
        'MODEL_INVALID',
        `Models '${firstName}' (${first.card.name}: ${first.family}, ${a.channels}x${a.height}x${a.width}) and '${name}' (${m.card.name}: ${m.family}, ${b.channels}x${b.height}x${b.width}) cannot be combined: a denoiser's models must share the noise family and image shape.`,
      )
    }
  }
  const nullClass = options.nullClass ?? first.card.nullClass ?? undefined
  if (nullClass === undefined || !Number.isInteger(nullClass) || nullClass < 0) {
    throw new GuidekitError('INVALID_ARGUMENT', `${first.card.name} has no null class (card field nullClass); pass nullClass, the label of the unconditional branch.`, {
      details: { parameter: 'nullClass', value: nullClass },
    })
  }
  for (const [, m] of entries) {
    const rows = m.embeddingRows
    const count = m.classCount
    if ((rows !== undefined && nullClass >= rows) || (count !== undefined && nullClass < count)) {
      throw new GuidekitError('INVALID_ARGUMENT', `nullClass ${nullClass} does not fit ${m.card.name}: it must be a label of its own${count === undefined ? '' : ` (>= ${count}, after the real classes)`}${rows === undefined ? '' : ` below ${rows} (the class embedding size)`}.`, {
        details: { parameter: 'nullClass', value: nullClass },
      })
    }
  }
  return makeDenoiser(models, firstName, options.classes, nullClass, options.onRun, options.onDispose)
}

function checkClasses(classes: readonly number[], model: ClassConditionalModel, nullClass: number): readonly number[] {
  if (!Array.isArray(classes) || classes.length === 0) {
    throw new GuidekitError('INVALID_ARGUMENT', 'classes must be a non-empty list with one class label per batch item.', { details: { parameter: 'classes', value: classes } })
  }
  const count = model.classCount
  for (const c of classes) {
    const ok = Number.isInteger(c) && c >= 0 && (count === undefined || c < count || c === nullClass)
    if (!ok) {
      throw new GuidekitError('INVALID_ARGUMENT', `classes must be integer labels${count === undefined ? ' >= 0' : ` in 0..${count - 1}`} (or the null class ${nullClass}) for ${model.card.name}, got ${JSON.stringify(c)}.`, {
        details: { parameter: 'classes', value: c },
      })
    }
  }
  return Object.freeze([...classes])
}

function makeDenoiser(
  models: Record<string, ClassConditionalModel>,
  defaultName: string,
  classList: readonly number[],
  nullClass: number,
  onRun: ClassConditionalDenoiserOptions['onRun'],
  onDispose: (() => Promise<void>) | undefined,
): ClassConditionalDenoiser {
  const first = models[defaultName] as ClassConditionalModel
  const card = first.card
  const classes = checkClasses(classList, first, nullClass)
  const { channels, height, width } = card.image
  let modelCalls = 0
  let disposed: Promise<void> | undefined

  const resolve = (branch: Branch): string => {
    const name = branch.model ?? DEFAULT
    if (models[name]) return name
    if (name === DEFAULT) return defaultName
    throw new GuidekitError('INVALID_ARGUMENT', `A branch asks for model '${name}', but this denoiser has ${Object.keys(models).map((m) => `'${m}'`).join(', ')}. Pass models: { base, ${name}: ... }.`, {
      details: { parameter: 'branch.model', value: name },
    })
  }
  const labelOf = (branch: Branch, row: number): number => {
    if (POSITIVE.has(branch.role)) return classes[row] as number
    if (NEGATIVE.has(branch.role)) return nullClass
    throw new GuidekitError('INVALID_ARGUMENT', `Unknown branch role '${branch.role}': class-conditional denoisers understand 'positive' (the item's class) and 'negative' (the null class).`, {
      details: { parameter: 'branch.role', value: branch.role },
    })
  }

  const run = async (request: DenoiseRequest, name: string, call: ReturnType<typeof planCalls>[number], results: Prediction[]): Promise<void> => {
    const model = models[name] as ClassConditionalModel
    const { sample, timestep, class: klass, prediction } = model.io
    const { x, sigma } = request
    checkTimestep(model, request)
    const xs = gatherCall(x, call)
    const input = modelInput(xs, sigma, model.family)
    const t = model.inputs.get(timestep.name) as IoInfo
    const extras = onRun?.({ request, modelName: name, model, batch: call.batch })
    const feeds: Record<string, OrtTensor> = {
      [sample.name]: floatFeed(input.data, input.shape, (model.inputs.get(sample.name) as IoInfo).dtype),
      [timestep.name]: t.shape.length === 0 ? numericFeed([request.timestep], [], t.dtype) : numericFeed(new Array<number>(call.batch).fill(request.timestep), [call.batch], t.dtype),
      [klass.name]: numericFeed(rowValues(call, (s, r) => labelOf(s.branch, r)), [call.batch], (model.inputs.get(klass.name) as IoInfo).dtype),
      ...extras?.feeds,
    }
    const out = await runSession(model.session, feeds, model.name, request.signal, extras?.runOptions)
    modelCalls++
    const { data } = readFloat(out[prediction.name], model.name, prediction.name)
    const outs = splitCall(new Tensor(data, xs.shape), call)
    const ins = splitCall(xs, call)
    call.segments.forEach((s, k) => {
      results[s.branchIndex] = toPrediction({ output: outs[k] as Tensor, x: ins[k] as Tensor, sigma, parameterization: model.card.parameterization, family: model.family })
    })
  }

  return {
    specificationVersion: 'v1',
    family: first.family,
    card,
    models,
    classes,
    nullClass,
    get modelCalls() {
      return modelCalls
    },
    async predict(request: DenoiseRequest): Promise<Prediction[]> {
      const { x } = request
      if (x.shape.length !== 4 || x.shape[1] !== channels || x.shape[2] !== height || x.shape[3] !== width) {
        throw new GuidekitError('INPUT_MISMATCH', `x has shape [${x.shape.join(', ')}], but ${card.name} takes [batch, ${channels}, ${height}, ${width}].`, {
          details: { expected: [channels, height, width], actual: x.shape },
        })
      }
      if (x.batch !== classes.length) {
        throw new GuidekitError('INPUT_MISMATCH', `x has ${x.batch} samples but the denoiser has ${classes.length} classes; pass one class per batch item.`, {
          details: { batch: x.batch, classes: classes.length },
        })
      }
      const results: Prediction[] = new Array(request.branches.length)
      // Models run one after another: each ORT run already uses all intra-op threads.
      for (const call of planCalls(request.branches, x.batch, resolve)) await run(request, call.model, call, results)
      return results
    },
    withClasses(next: readonly number[]): ClassConditionalDenoiser {
      return makeDenoiser(models, defaultName, next, nullClass, onRun, undefined)
    },
    dispose(): Promise<void> {
      disposed ??= onDispose ? onDispose() : Promise.resolve()
      return disposed
    },
  }
}

/** Flow models: the plan's timestep must be the card's `sigma * timestepScale` (float32, as the plan computes it). */
function checkTimestep(model: ClassConditionalModel, request: DenoiseRequest): void {
  const s = model.card.schedule
  if (s.family !== 'flow') return
  const scale = s.timestepScale ?? s.trainSteps
  const expected = f32(f32(request.sigma) * f32(scale))
  if (Math.abs(request.timestep - expected) > 1e-3 * Math.max(1, Math.abs(expected))) {
    throw new GuidekitError(
      'INVALID_ARGUMENT',
      `${model.card.name} takes timestep = sigma * ${scale} (= ${expected} at sigma ${request.sigma}), but the plan gives ${request.timestep}. Build the plan with planFromCard(card, { steps }) so it follows the model's timestep convention.`,
      { details: { parameter: 'timestep', expected, actual: request.timestep } },
    )
  }
}
