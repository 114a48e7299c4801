// The runtime-independent half of loading class-conditional models, shared by the Node loader
// (onnxruntime-node, files) and the browser loader (onnxruntime-web, URLs and buffers): check the card
// before anything opens, open the session, read the class embedding size from the graph, check the
// session against the card; and, for denoisers, load every named model and release what was opened.
import { GuidekitError } from '@guidekit/core'
import type { InferenceSession } from 'onnxruntime-common'
import { parseGeneratorCard } from '../card/parse.js'
import { classConditionalDenoiser, type ClassConditionalDenoiser, type ClassConditionalDenoiserOptions } from '../class-conditional/denoiser.js'
import { createClassConditionalModel, isClassConditionalModel, type ClassConditionalModel } from '../class-conditional/model.js'
import { decodeModel, embeddingRows } from '../graph/index.js'

/** What {@link openCheckedModel} needs from a loader. */
export interface CheckedModelInput {
  /** The card as given (JSON or parsed); checked whole before the session opens. */
  readonly card: unknown
  /** Where the card came from, for messages. */
  readonly where: string
  readonly name: string
  readonly open: () => Promise<InferenceSession>
  readonly readBytes: () => Promise<Uint8Array>
  readonly extraInputs?: readonly string[] | undefined
}

/** Card check, session, class embedding rows from the graph, session-vs-card check (releases on failure). */
export async function openCheckedModel(input: CheckedModelInput): Promise<ClassConditionalModel> {
  const parsed = parseGeneratorCard(input.card, input.where)
  const session = await input.open()
  let rows: number | undefined
  try {
    const graph = decodeModel(await input.readBytes(), input.name).graph
    const classInput = parsed.onnx.inputs.find((t) => t.role === 'class')?.name ?? 'class_labels'
    rows = graph ? embeddingRows(graph, classInput) : undefined
  } catch (error) {
    await session.release()
    throw error
  }
  return createClassConditionalModel({
    session,
    card: parsed,
    name: input.name,
    where: input.where,
    modelBytes: input.readBytes,
    embeddingRows: rows,
    ...(input.extraInputs ? { extraInputs: input.extraInputs } : {}),
  })
}

/** Denoiser options without the models, which the loaders take as sources. */
export type DenoiserRest = Omit<ClassConditionalDenoiserOptions, 'model' | 'models' | 'onDispose'>

/**
 * Loads `model` (as `'base'`) and `models`, then builds the denoiser; its `dispose()` releases the models
 * this call loaded (not those passed in loaded). Everything loaded so far is released on failure.
 */
export async function denoiserFromSources<S>(
  model: S | undefined,
  models: Readonly<Record<string, S>> | undefined,
  rest: DenoiserRest,
  load: (source: S) => Promise<ClassConditionalModel>,
  hint: string,
): Promise<ClassConditionalDenoiser> {
  const sources: [string, S][] = []
  if (model !== undefined) sources.push(['base', model])
  for (const [name, source] of Object.entries(models ?? {})) sources.push([name, source])
  if (sources.length === 0) {
    throw new GuidekitError('INVALID_ARGUMENT', `loadClassConditionalDenoiser needs \`model\` (${hint}) or \`models\` ({ base, tuned }).`, { details: { parameter: 'model' } })
  }
  const owned: ClassConditionalModel[] = []
  const release = () => Promise.all(owned.map((m) => m.dispose())).then(() => undefined)
  try {
    const loaded: Record<string, ClassConditionalModel> = {}
    for (const [name, source] of sources) {
      const m = await load(source)
      if (!isClassConditionalModel(source)) owned.push(m)
      loaded[name] = m
    }
    return classConditionalDenoiser({ ...rest, models: loaded, onDispose: release })
  } catch (error) {
    await release()
    throw error
  }
}
