// A class-conditional generator: an ONNX Runtime session checked against its model card. Runtime-free
// (onnxruntime-common types only): the Node and browser entries open the session and hand it here.
import { GuidekitError } from '@guidekit/core'
import type { NoiseFamily } from '@guidekit/core'
import type { InferenceSession } from 'onnxruntime-common'
import { classConditionalIo, parseGeneratorCard, type ClassConditionalIo } from '../card/parse.js'
import type { GeneratorCard } from '../card/schema.js'
import { checkIo, sessionInputs, sessionOutputs, type IoInfo } from '../internal/io.js'

const marker = Symbol.for('@guidekit/onnx/class-conditional-model')

/**
 * A loaded class-conditional model (a session checked against its card). Load once and share it between
 * denoisers; `dispose()` releases the session.
 */
export interface ClassConditionalModel {
  readonly [marker]: true
  /** The model's name in messages (its file name, or the card name). */
  readonly name: string
  readonly card: GeneratorCard
  /** Where the card came from, for messages. */
  readonly where: string
  readonly family: NoiseFamily
  /** The card tensors guidekit feeds (sample, timestep, class) and reads (prediction). */
  readonly io: ClassConditionalIo
  /** Inputs and outputs as the session declares them. */
  readonly inputs: ReadonlyMap<string, IoInfo>
  readonly outputs: ReadonlyMap<string, IoInfo>
  /**
   * Number of real classes: the card's class names, else what the class embedding holds besides the null
   * class; `undefined` when neither is known.
   */
  readonly classCount: number | undefined
  /** Rows of the class embedding table, when the graph shows one. */
  readonly embeddingRows: number | undefined
  readonly session: InferenceSession
  /** The `.onnx` bytes (read on demand), for graph rewrites such as DraftAttention. */
  modelBytes(): Promise<Uint8Array>
  dispose(): Promise<void>
}

export const isClassConditionalModel = (value: unknown): value is ClassConditionalModel =>
  typeof value === 'object' && value !== null && (value as { [marker]?: boolean })[marker] === true

/** What {@link createClassConditionalModel} needs. */
export interface CreateClassConditionalModelOptions {
  readonly session: InferenceSession
  /** The card, parsed or as JSON. */
  readonly card: GeneratorCard | unknown
  readonly name: string
  readonly where: string
  readonly modelBytes: () => Promise<Uint8Array>
  /** Rows of the class embedding when known (see `embeddingRows` in @guidekit/onnx/graph). */
  readonly embeddingRows?: number | undefined
  /** Session inputs the caller feeds itself through the denoiser's `onRun` hook (e.g. DraftAttention's). */
  readonly extraInputs?: readonly string[]
}

function invalid(where: string, message: string, details: Record<string, unknown> = {}): never {
  throw new GuidekitError('MODEL_INVALID', `${message} (card: ${where})`, { details: { card: where, ...details } })
}

/**
 * Checks a session against its card and returns the model: every card input and output exists with the
 * card's dtype and compatible shape; the roles are fed/read by the right names; no session input is left
 * unfed; the class labels the card promises fit the class embedding. Mismatches are `MODEL_INVALID` or
 * `INPUT_MISMATCH` errors that name the card, the field and the fix. Releases the session on failure.
 */
export async function createClassConditionalModel(options: CreateClassConditionalModelOptions): Promise<ClassConditionalModel> {
  const { session, name, where } = options
  try {
    const card = parseGeneratorCard(options.card, where)
    const io = classConditionalIo(card, where)
    const inputs = sessionInputs(session)
    const outputs = sessionOutputs(session)
    const source = `its card (${where})`
    checkIo(name, 'input', inputs, card.onnx.inputs.map((t) => ({ name: t.name, dtypes: [t.dtype], shape: t.shape })), source)
    checkIo(name, 'output', outputs, card.onnx.outputs.map((t) => ({ name: t.name, dtypes: [t.dtype], shape: t.shape })), source)
    const fed = new Set([io.sample.name, io.timestep.name, io.class.name, ...(options.extraInputs ?? [])])
    const unfed = [...inputs.keys()].filter((k) => !fed.has(k))
    if (unfed.length > 0) {
      invalid(where, `${name} has input(s) ${unfed.join(', ')} that guidekit would not feed: give them a role in the card (sample, timestep, class) or remove them from the graph`, { unfed })
    }
    const rows = options.embeddingRows
    const nullClass = card.nullClass ?? undefined
    let classCount = card.classes?.length
    if (rows !== undefined) {
      if (nullClass !== undefined && nullClass >= rows) {
        invalid(where, `nullClass is ${nullClass}, but ${name}'s class embedding has ${rows} rows (labels 0..${rows - 1}); set nullClass to the label the model was trained with for the unconditional branch`, { nullClass, rows })
      }
      if (classCount !== undefined && classCount > rows) invalid(where, `the card lists ${classCount} classes, but ${name}'s class embedding has only ${rows} rows`, { classCount, rows })
      if (classCount === undefined) classCount = nullClass === rows - 1 ? rows - 1 : rows
    }
    return {
      [marker]: true,
      name,
      card,
      where,
      family: card.schedule.family,
      io,
      inputs,
      outputs,
      classCount,
      embeddingRows: rows,
      session,
      modelBytes: options.modelBytes,
      dispose: releaseOnce(session),
    }
  } catch (error) {
    await session.release()
    throw error
  }
}

/** `session.release()` that may be called any number of times. */
export function releaseOnce(session: InferenceSession): () => Promise<void> {
  let released: Promise<void> | undefined
  return () => (released ??= session.release())
}
