// Loading class-conditional models and denoisers from files (or bytes) with onnxruntime-node.
import { readFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { GuidekitError } from '@guidekit/core'
import { parseGeneratorCard } from '../card/parse.js'
import type { GeneratorCard } from '../card/schema.js'
import { classConditionalDenoiser, type ClassConditionalDenoiser, type ClassConditionalDenoiserOptions } from '../class-conditional/denoiser.js'
import { createClassConditionalModel, isClassConditionalModel, type ClassConditionalModel } from '../class-conditional/model.js'
import { decodeModel, embeddingRows } from '../graph/index.js'
import { openSession, type OnnxSessionOptions } from '../session.js'
import { locateModel, readModelCard } from './files.js'

/**
 * Where a model comes from: a path to `<name>.onnx` (card at `<name>.card.json`) or to the card (its
 * `onnx.file` is resolved inside the card's folder); `{ path, card }` with the card as an object or a card
 * path; `{ bytes, card }` for a model in memory; or an already loaded model.
 */
export type ClassConditionalModelSource =
  | string
  | { readonly path: string; readonly card?: GeneratorCard | Record<string, unknown> | string }
  | { readonly bytes: Uint8Array; readonly card: GeneratorCard | Record<string, unknown>; readonly name?: string }
  | ClassConditionalModel

/** Options of {@link loadClassConditionalModel}. */
export interface LoadModelOptions {
  readonly sessionOptions?: OnnxSessionOptions
  /** Session inputs the caller feeds through the denoiser's `onRun` hook (e.g. DraftAttention's). */
  readonly extraInputs?: readonly string[]
}

/**
 * Loads a class-conditional ONNX model and checks it against its card before anything runs: the card's
 * fields (MODEL_INVALID naming the card, the field and the fix), every input and output the card lists,
 * the tensors that play the sample / timestep / class / prediction roles, and the class embedding range.
 *
 * @example
 * const model = await loadClassConditionalModel(fashionModel('fashion-dit').onnxPath, { sessionOptions: { threads: 2 } })
 */
export async function loadClassConditionalModel(source: ClassConditionalModelSource, options: LoadModelOptions = {}): Promise<ClassConditionalModel> {
  if (isClassConditionalModel(source)) return source
  let card: unknown
  let where: string
  let name: string
  let readBytes: () => Promise<Uint8Array>
  let open: () => ReturnType<typeof openSession>
  if (typeof source === 'object' && source !== null && 'bytes' in source) {
    const bytes = source.bytes
    if (!(bytes instanceof Uint8Array)) throw new GuidekitError('INVALID_ARGUMENT', 'bytes must be a Uint8Array with the .onnx file contents.', { details: { parameter: 'bytes' } })
    card = source.card
    name = source.name ?? (typeof (source.card as { name?: unknown }).name === 'string' ? String((source.card as { name: string }).name) : 'model')
    where = `the card of ${name}`
    readBytes = () => Promise.resolve(bytes)
    open = () => openSession(bytes, options.sessionOptions)
  } else {
    let onnxPath: string
    if (typeof source === 'string') {
      const located = locateModel(source)
      onnxPath = located.onnxPath
      card = located.card ?? readModelCard(located.cardPath)
      where = located.cardPath
    } else if (typeof source === 'object' && source !== null && typeof source.path === 'string') {
      onnxPath = source.path
      if (typeof source.card === 'string') {
        card = readModelCard(source.card)
        where = source.card
      } else if (source.card !== undefined) {
        card = source.card
        where = `the card given for ${basename(source.path)}`
      } else {
        const located = locateModel(source.path)
        card = located.card ?? readModelCard(located.cardPath)
        where = located.cardPath
      }
    } else {
      throw new GuidekitError('INVALID_ARGUMENT', 'A model source is a path to a .onnx or .card.json file, { path, card }, { bytes, card } or a loaded model.', { details: { parameter: 'model' } })
    }
    name = basename(onnxPath)
    readBytes = async () => new Uint8Array(await readFile(onnxPath))
    open = () => openSession(onnxPath, options.sessionOptions)
  }
  // The whole card is checked before any session is opened or file read.
  const parsed = parseGeneratorCard(card, where)
  const session = await open()
  let rows: number | undefined
  try {
    const graph = decodeModel(await readBytes(), name).graph
    const classInput = parsed.onnx.inputs.find((t) => t.role === 'class')?.name ?? 'class_labels'
    rows = graph ? embeddingRows(graph, classInput) : undefined
  } catch (error) {
    await session.release()
    throw error
  }
  return createClassConditionalModel({ session, card: parsed, name, where, modelBytes: readBytes, embeddingRows: rows, ...(options.extraInputs ? { extraInputs: options.extraInputs } : {}) })
}

/** Options of {@link loadClassConditionalDenoiser}: models as sources (paths, bytes or loaded models). */
export interface LoadDenoiserOptions extends Omit<ClassConditionalDenoiserOptions, 'model' | 'models' | 'onDispose'> {
  readonly model?: ClassConditionalModelSource
  readonly models?: Readonly<Record<string, ClassConditionalModelSource>>
  readonly sessionOptions?: OnnxSessionOptions
}

/**
 * Loads the models and returns a {@link ClassConditionalDenoiser} over them; `dispose()` releases the
 * sessions it opened (not models passed in already loaded). Everything is validated before it returns.
 *
 * @example
 * const denoiser = await loadClassConditionalDenoiser({ model: fashionModel('fashion-dit').onnxPath, classes: [7, 7, 3, 3] })
 * // RL guidance: two models
 * const rl = await loadClassConditionalDenoiser({ models: { base: dit, tuned: ditRl }, classes: [7] })
 */
export async function loadClassConditionalDenoiser(options: LoadDenoiserOptions): Promise<ClassConditionalDenoiser> {
  const sources: [string, ClassConditionalModelSource][] = []
  if (options.model !== undefined) sources.push(['base', options.model])
  for (const [name, source] of Object.entries(options.models ?? {})) sources.push([name, source])
  if (sources.length === 0) {
    throw new GuidekitError('INVALID_ARGUMENT', 'loadClassConditionalDenoiser needs `model` (a path to an .onnx file with its card) or `models` ({ base, tuned }).', { details: { parameter: 'model' } })
  }
  const owned: ClassConditionalModel[] = []
  const release = () => Promise.all(owned.map((m) => m.dispose())).then(() => undefined)
  try {
    const models: Record<string, ClassConditionalModel> = {}
    for (const [name, source] of sources) {
      const loaded = await loadClassConditionalModel(source, options.sessionOptions ? { sessionOptions: options.sessionOptions } : {})
      if (!isClassConditionalModel(source)) owned.push(loaded)
      models[name] = loaded
    }
    const { model: _m, models: _ms, sessionOptions: _s, ...rest } = options
    return classConditionalDenoiser({ ...rest, models, onDispose: release })
  } catch (error) {
    await release()
    throw error
  }
}
