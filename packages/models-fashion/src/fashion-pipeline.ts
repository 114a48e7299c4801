import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { GuidekitError } from '@guidekit/core'
import { parseModelCard, type PipelineCard } from '@guidekit/onnx/card'
import { fashionPipelineNames, type FashionPipelineName } from './names.js'

export interface FashionPipeline<N extends FashionPipelineName = FashionPipelineName> {
  readonly name: N
  /** Absolute path of the diffusers ONNX folder (`model_index.json`, `unet/`, `vae_decoder/`, ...): pass it to `loadDiffusersPipeline`. */
  readonly folder: string
  /** Absolute path of the card (`<name>.card.json`, next to the folder). */
  readonly cardPath: string
  /** Absolute path of the sample grid PNG (`<name>.grid.png`). */
  readonly gridPath: string
  /** The card (kind `'text-to-image'`), validated with @guidekit/onnx's model-card schema. */
  readonly card: PipelineCard
}

// `models/` sits next to `src/` and `dist/`, so the same relative URL works from source and from the build.
const modelsDir = fileURLToPath(new URL('../models/', import.meta.url))
const cache = new Map<FashionPipelineName, FashionPipeline>()

/**
 * Resolves a shipped pipeline in `dir` (the package's `models/`; tests pass another): its card, checked to
 * be this pipeline's text-to-image card whose `folder` is `<name>`, and that folder. Internal.
 */
export function pipelineIn<N extends FashionPipelineName>(dir: string, name: N): FashionPipeline<N> {
  if (!(fashionPipelineNames as readonly string[]).includes(name)) {
    throw new GuidekitError('INVALID_ARGUMENT', `Unknown pipeline '${String(name)}'; expected one of ${fashionPipelineNames.join(', ')}.`, { details: { parameter: 'name', value: name } })
  }
  const cardPath = join(dir, `${name}.card.json`)
  const folder = join(dir, name)
  if (!existsSync(cardPath) || !existsSync(join(folder, 'model_index.json'))) {
    throw new GuidekitError(
      'MODEL_NOT_FOUND',
      `${name} is not in this copy of @guidekit/models-fashion (${existsSync(cardPath) ? join(folder, 'model_index.json') : cardPath} is missing); reinstall the package, or in the repository run tooling/train/train_sd.py.`,
      { details: { card: cardPath, folder } },
    )
  }
  let json: unknown
  try {
    json = JSON.parse(readFileSync(cardPath, 'utf8'))
  } catch (cause) {
    throw new GuidekitError('MODEL_INVALID', `${cardPath} is not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}.`, { cause, details: { card: cardPath } })
  }
  const card = parseModelCard(json, cardPath)
  if (card.name !== name || card.kind !== 'text-to-image' || card.folder !== name) {
    throw new GuidekitError('MODEL_INVALID', `${cardPath} is not the text-to-image card of ${name} with folder '${name}'; reinstall @guidekit/models-fashion or re-run tooling/train/train_sd.py.`, {
      details: { card: cardPath },
    })
  }
  return { name, folder, cardPath, gridPath: join(dir, `${name}.grid.png`), card }
}

/**
 * A shipped text-to-image pipeline: the absolute paths of its diffusers ONNX folder, card and sample grid,
 * and its parsed card (read once, then cached). Unknown names are `INVALID_ARGUMENT`; a pipeline missing
 * from the installed package is `MODEL_NOT_FOUND`; a card that fails the schema is `MODEL_INVALID`.
 *
 * @example
 * ```ts
 * const sd = fashionPipeline('fashion-sd')
 * sd.card.defaults   // { steps, guidance, sampler, spacing }: what `guidekit generate --model fashion-sd` uses
 * const pipeline = await loadDiffusersPipeline(sd.folder)   // @guidekit/onnx
 * ```
 */
export function fashionPipeline<N extends FashionPipelineName>(name: N): FashionPipeline<N> {
  let pipeline = cache.get(name)
  if (pipeline === undefined) {
    pipeline = pipelineIn(modelsDir, name)
    cache.set(name, pipeline)
  }
  return pipeline as FashionPipeline<N>
}
