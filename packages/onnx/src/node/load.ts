// Loading class-conditional models and denoisers from files (or bytes) with onnxruntime-node.
import { readFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { GuidekitError } from '@guidekit/core'
import type { GeneratorCard } from '../card/schema.js'
import type { ClassConditionalDenoiser, ClassConditionalDenoiserOptions } from '../class-conditional/denoiser.js'
import { isClassConditionalModel, type ClassConditionalModel } from '../class-conditional/model.js'
import { denoiserFromSources, openCheckedModel } from '../internal/loading.js'
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
  return openCheckedModel({ card, where, name, open, readBytes, extraInputs: options.extraInputs })
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
  const { model, models, sessionOptions, ...rest } = options
  const load = (source: ClassConditionalModelSource) => loadClassConditionalModel(source, sessionOptions ? { sessionOptions } : {})
  return denoiserFromSources(model, models, rest, load, 'a path to an .onnx file with its card')
}
