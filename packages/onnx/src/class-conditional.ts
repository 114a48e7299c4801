import { basename } from 'node:path'
import { GuidekitError, Tensor, modelInput, toPrediction } from '@guidekit/core'
import type { Branch, DenoiseRequest, Denoiser, NoiseFamily, Prediction } from '@guidekit/core'
import type * as ort from 'onnxruntime-node'
import { gatherCall, planCalls, rowValues, splitCall } from './internal/batching.js'
import { checkIo, floatFeed, numericFeed, readFloat, runSession, sessionInputs, sessionOutputs } from './internal/io.js'
import type { IoInfo } from './internal/io.js'
import { locateModel, parseModelCard, readModelCard } from './model-card.js'
import type { ModelCard } from './model-card.js'
import { openSession } from './session.js'
import type { OnnxSessionOptions } from './session.js'

const marker = Symbol.for('@guidekit/onnx/class-conditional-model')

/**
 * A loaded class-conditional model (an ONNX session checked against its card). Load once and share it
 * between denoisers (e.g. one per class set); `dispose()` releases the session.
 */
export interface ClassConditionalModel {
  readonly [marker]: true
  readonly path: string
  readonly card: ModelCard
  readonly family: NoiseFamily
  /** Inputs and outputs as the session declares them. */
  readonly inputs: ReadonlyMap<string, IoInfo>
  readonly outputs: ReadonlyMap<string, IoInfo>
  /** The underlying ONNX Runtime session. */
  readonly session: ort.InferenceSession
  dispose(): Promise<void>
}

/**
 * Where a model comes from: a path to `<name>.onnx` (card at `<name>.card.json`) or to the card, an
 * explicit `{ path, card }` (card object or card path), or an already loaded model.
 */
export type ClassConditionalModelSource = string | { readonly path: string; readonly card?: ModelCard | string } | ClassConditionalModel

const isLoaded = (s: ClassConditionalModelSource): s is ClassConditionalModel => typeof s === 'object' && (s as { [marker]?: boolean })[marker] === true

const SAMPLE = 'sample'
const TIMESTEP = 'timestep'
const LABELS = 'class_labels'
const OUT = 'out_sample'

/**
 * Loads a class-conditional ONNX model (the interface of `@guidekit/models-fashion`: inputs `sample`
 * [B,C,H,W], `timestep` [B], `class_labels` int64 [B]; output `out_sample`) and checks the session's inputs
 * and outputs against its card: a missing input is `MODEL_INVALID`, a dtype or shape that differs from
 * the card is `INPUT_MISMATCH` naming the input, expected and actual.
 *
 * @example
 * const dit = await loadClassConditionalModel('node_modules/@guidekit/models-fashion/models/fashion-dit.onnx', { sessionOptions: { threads: 2 } })
 */
export async function loadClassConditionalModel(
  source: ClassConditionalModelSource,
  options: { readonly sessionOptions?: OnnxSessionOptions } = {},
): Promise<ClassConditionalModel> {
  if (isLoaded(source)) return source
  let onnxPath: string
  let card: ModelCard
  let where: string
  if (typeof source === 'string') {
    const located = locateModel(source)
    onnxPath = located.onnxPath
    card = readModelCard(located.cardPath)
    where = located.cardPath
  } else {
    onnxPath = source.path
    if (typeof source.card === 'string') {
      card = readModelCard(source.card)
      where = source.card
    } else if (source.card) {
      card = parseModelCard(source.card, `for ${basename(source.path)}`)
      where = `the card of ${basename(source.path)}`
    } else {
      const located = locateModel(source.path)
      card = readModelCard(located.cardPath)
      where = located.cardPath
    }
  }
  if (card.kind === 'evaluator') {
    throw new GuidekitError('MODEL_INVALID', `${card.name} is an evaluator (a classifier), not a generator; pass a generator model to the denoiser.`, { details: { card: where } })
  }
  const p = card.parameterization
  if ((p === 'flow-velocity' && card.schedule.family !== 'flow') || (p === 'v' && card.schedule.family !== 'vp')) {
    throw new GuidekitError('MODEL_INVALID', `Model card ${where}: parameterization '${p}' does not fit schedule.family '${card.schedule.family}' ('flow-velocity' needs 'flow', 'v' needs 'vp').`, {
      details: { card: where },
    })
  }
  const session = await openSession(onnxPath, options.sessionOptions)
  const inputs = sessionInputs(session)
  const outputs = sessionOutputs(session)
  const name = basename(onnxPath)
  try {
    const source = `its card (${where})`
    checkIo(name, 'input', inputs, card.onnx.inputs.map((t) => ({ name: t.name, dtypes: [t.dtype], shape: t.shape })), source)
    checkIo(name, 'output', outputs, card.onnx.outputs.map((t) => ({ name: t.name, dtypes: [t.dtype], shape: t.shape })), source)
    // The runtime feeds these three by name; the card must declare them with float / integer dtypes.
    const { channels, height, width } = card.image
    checkIo(
      name,
      'input',
      inputs,
      [
        { name: SAMPLE, dtypes: ['float32', 'float16'], shape: ['batch', channels, height, width] },
        { name: TIMESTEP, dtypes: ['float32', 'float16', 'int64', 'int32'], ranks: [0, 1] },
        { name: LABELS, dtypes: ['int64', 'int32'], ranks: [1] },
      ],
      'guidekit (class-conditional interface: sample, timestep, class_labels)',
    )
    checkIo(name, 'output', outputs, [{ name: OUT, dtypes: ['float32', 'float16'], shape: ['batch', channels, height, width] }], 'guidekit')
  } catch (error) {
    await session.release()
    throw error
  }
  return {
    [marker]: true,
    path: onnxPath,
    card,
    family: card.schedule.family,
    inputs,
    outputs,
    session,
    dispose: () => session.release(),
  }
}

/** Options of {@link classConditionalDenoiser}. */
export interface ClassConditionalDenoiserOptions {
  /** The model branches without a `model` name use (and `'base'`, unless `models.base` is given). */
  readonly model?: ClassConditionalModelSource
  /** Named models, e.g. `{ base, tuned }` for RL guidance; a branch picks one with `branch.model`. */
  readonly models?: Readonly<Record<string, ClassConditionalModelSource>>
  /** The class label of each batch item (the positive branch). */
  readonly classes: readonly number[]
  /** The label of the unconditional branch; default: the card's `nullClass`. */
  readonly nullClass?: number
  readonly sessionOptions?: OnnxSessionOptions
}

/** A denoiser over class-conditional ONNX models. */
export interface ClassConditionalDenoiser extends Denoiser {
  /** The card of the default model. */
  readonly card: ModelCard
  readonly models: Readonly<Record<string, ClassConditionalModel>>
  readonly classes: readonly number[]
  readonly nullClass: number
  /** Model runs so far (one per model per `predict`). */
  readonly modelCalls: number
  /** The same models with other classes (no reloading). */
  withClasses(classes: readonly number[]): ClassConditionalDenoiser
  /** Releases every session this denoiser loaded (not models passed in already loaded). */
  dispose(): Promise<void>
}

const POSITIVE = new Set(['positive', 'conditional', 'cond'])
const NEGATIVE = new Set(['negative', 'unconditional', 'uncond', 'null'])
const DEFAULT = 'default'

/**
 * A {@link Denoiser} over class-conditional ONNX models, driven by their cards. Branch roles: `'positive'`
 * uses each item's class, `'negative'` (or `'unconditional'`) the null class. All branches of one model go
 * to it in ONE batched run (x, or each branch's `samples` subset, concatenated with its labels); branches
 * with different `model` names (`'base'`, `'tuned'`) go to different sessions.
 *
 * The model input is the sampler's x scaled by `1/sqrt(1 + sigma^2)` for `'vp'` models (VE cast) and as is
 * for `'flow'` models; the timestep is the request's (`sigma * 1000` for flow, the train step for VP). The
 * output is converted to `{denoised, noise}` by the card's parameterization (core's `toPrediction`).
 * fp16 models are fed and read through float32 <-> float16 conversion at the edge.
 *
 * @example
 * const denoiser = await classConditionalDenoiser({ model: 'fashion-dit.onnx', classes: [7, 7, 3, 3] })
 * const [cond, uncond] = await denoiser.predict({ x, sigma, timestep, branches: [{ role: 'positive' }, { role: 'negative' }] })
 * // RL guidance: two models
 * const rl = await classConditionalDenoiser({ models: { base: 'fashion-dit.onnx', tuned: 'fashion-dit-rl.onnx' }, classes: [7] })
 */
export async function classConditionalDenoiser(options: ClassConditionalDenoiserOptions): Promise<ClassConditionalDenoiser> {
  const sources: [string, ClassConditionalModelSource][] = []
  if (options.model !== undefined) sources.push([DEFAULT, options.model])
  for (const [name, source] of Object.entries(options.models ?? {})) sources.push([name, source])
  if (sources.length === 0) {
    throw new GuidekitError('INVALID_ARGUMENT', 'classConditionalDenoiser needs `model` (a path to an .onnx file with its card) or `models` ({ base, tuned }).', {
      details: { parameter: 'model' },
    })
  }
  const owned: ClassConditionalModel[] = []
  const models: Record<string, ClassConditionalModel> = {}
  try {
    for (const [name, source] of sources) {
      const loaded = await loadClassConditionalModel(source, options.sessionOptions ? { sessionOptions: options.sessionOptions } : {})
      if (!isLoaded(source)) owned.push(loaded)
      models[name] = loaded
    }
  } catch (error) {
    await Promise.all(owned.map((m) => m.dispose()))
    throw error
  }
  const [defaultName, first] = Object.entries(models)[0] as [string, ClassConditionalModel]
  for (const [name, m] of Object.entries(models)) {
    const a = first.card
    const b = m.card
    if (m.family !== first.family || a.image.channels !== b.image.channels || a.image.height !== b.image.height || a.image.width !== b.image.width) {
      await Promise.all(owned.map((o) => o.dispose()))
      throw new GuidekitError(
        'MODEL_INVALID',
        `Models '${defaultName}' (${a.name}: ${first.family}, ${a.image.channels}x${a.image.height}x${a.image.width}) and '${name}' (${b.name}: ${m.family}, ${b.image.channels}x${b.image.height}x${b.image.width}) cannot be combined: a denoiser's models must share the noise family and image shape.`,
      )
    }
  }
  const nullClass = options.nullClass ?? first.card.nullClass
  if (nullClass === undefined || !Number.isInteger(nullClass)) {
    await Promise.all(owned.map((o) => o.dispose()))
    throw new GuidekitError('INVALID_ARGUMENT', `The card of ${first.card.name} declares no nullClass; pass nullClass (the label of the unconditional branch).`, {
      details: { parameter: 'nullClass' },
    })
  }
  return makeDenoiser(models, defaultName, options.classes, nullClass, owned)
}

function makeDenoiser(
  models: Record<string, ClassConditionalModel>,
  defaultName: string,
  classes: readonly number[],
  nullClass: number,
  owned: readonly ClassConditionalModel[],
): ClassConditionalDenoiser {
  const first = models[defaultName] as ClassConditionalModel
  const card = first.card
  const classCount = card.classes?.length
  if (!Array.isArray(classes) || classes.length === 0) {
    throw new GuidekitError('INVALID_ARGUMENT', 'classes must be a non-empty list with one class label per batch item.', { details: { parameter: 'classes', value: classes } })
  }
  for (const c of classes) {
    const ok = Number.isInteger(c) && c >= 0 && (classCount === undefined ? true : c < classCount || c === nullClass)
    if (!ok) {
      throw new GuidekitError(
        'INVALID_ARGUMENT',
        `classes must be integer labels${classCount === undefined ? '' : ` in 0..${classCount - 1}`} (or the null class ${nullClass}) for ${card.name}, got ${JSON.stringify(c)}.`,
        { details: { parameter: 'classes', value: c } },
      )
    }
  }
  const frozen = Object.freeze([...classes])
  const { channels, height, width } = card.image
  let modelCalls = 0

  const resolve = (branch: Branch): string => {
    const name = branch.model
    if (name === undefined) return defaultName
    if (models[name]) return name
    if (name === 'base' && models[DEFAULT]) return DEFAULT
    throw new GuidekitError(
      'INVALID_ARGUMENT',
      `A branch asks for model '${name}', but this denoiser has ${Object.keys(models)
        .map((m) => `'${m === DEFAULT ? 'base' : m}'`)
        .join(', ')}. Pass models: { base, ${name}: ... } to classConditionalDenoiser.`,
      { details: { parameter: 'branch.model', value: name } },
    )
  }
  const labelOf = (branch: Branch, row: number): number => {
    if (POSITIVE.has(branch.role)) return frozen[row] as number
    if (NEGATIVE.has(branch.role)) return nullClass
    throw new GuidekitError('INVALID_ARGUMENT', `Unknown branch role '${branch.role}': class-conditional denoisers understand 'positive' (the item's class) and 'negative' (the null class).`, {
      details: { parameter: 'branch.role', value: branch.role },
    })
  }

  const denoiser: ClassConditionalDenoiser = {
    specificationVersion: 'v1',
    family: first.family,
    card,
    models,
    classes: frozen,
    nullClass,
    get modelCalls() {
      return modelCalls
    },
    async predict(request: DenoiseRequest): Promise<Prediction[]> {
      const { x, sigma, timestep, branches, signal } = request
      if (x.shape.length !== 4 || x.shape[1] !== channels || x.shape[2] !== height || x.shape[3] !== width) {
        throw new GuidekitError('INPUT_MISMATCH', `x has shape [${x.shape.join(', ')}], but ${card.name} takes [batch, ${channels}, ${height}, ${width}].`, {
          details: { expected: [channels, height, width], actual: x.shape },
        })
      }
      if (x.batch !== frozen.length) {
        throw new GuidekitError('INPUT_MISMATCH', `x has ${x.batch} samples but the denoiser has ${frozen.length} classes; pass one class per batch item.`, {
          details: { batch: x.batch, classes: frozen.length },
        })
      }
      const calls = planCalls(branches, x.batch, resolve)
      const results: Prediction[] = new Array(branches.length)
      // Models run one after another: each ORT run already uses all intra-op threads.
      for (const call of calls) {
        const model = models[call.model] as ClassConditionalModel
        const xs = gatherCall(x, call)
        const input = modelInput(xs, sigma, model.family)
        const labels = rowValues(call, (s, r) => labelOf(s.branch, r))
        const t = model.inputs.get(TIMESTEP) as IoInfo
        const feeds = {
          [SAMPLE]: floatFeed(input.data, input.shape, (model.inputs.get(SAMPLE) as IoInfo).dtype),
          [TIMESTEP]: t.shape.length === 0 ? numericFeed([timestep], [], t.dtype) : numericFeed(new Array<number>(call.batch).fill(timestep), [call.batch], t.dtype),
          [LABELS]: numericFeed(labels, [call.batch], (model.inputs.get(LABELS) as IoInfo).dtype),
        }
        const out = await runSession(model.session, feeds, basename(model.path), signal)
        modelCalls++
        const { data } = readFloat(out[OUT], basename(model.path), OUT)
        const output = new Tensor(data, xs.shape)
        const outs = splitCall(output, call)
        const ins = splitCall(xs, call)
        call.segments.forEach((s, k) => {
          results[s.branchIndex] = toPrediction({ output: outs[k] as Tensor, x: ins[k] as Tensor, sigma, parameterization: model.card.parameterization, family: model.family })
        })
      }
      return results
    },
    withClasses(next: readonly number[]): ClassConditionalDenoiser {
      return makeDenoiser(models, defaultName, next, nullClass, [])
    },
    async dispose(): Promise<void> {
      await Promise.all(owned.map((m) => m.dispose()))
    },
  }
  return denoiser
}
