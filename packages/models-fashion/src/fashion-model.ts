import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { GuidekitError } from '@guidekit/core'
import { parseModelCard } from '@guidekit/onnx/card'
import { fashionModelNames, type FashionCard, type FashionModelName } from './names.js'

export interface FashionModel<N extends FashionModelName = FashionModelName> {
  readonly name: N
  /** Absolute path of the ONNX file (opset 17, float32 weights, dynamic batch axis). */
  readonly onnxPath: string
  /** Absolute path of the card (`<name>.card.json`). */
  readonly cardPath: string
  /** Absolute path of the sample grid PNG (10 classes x 8 seeds, CFG 3, 30 steps); `undefined` for the evaluator. */
  readonly gridPath: string | undefined
  /** The card, validated with @guidekit/onnx's model-card schema. */
  readonly card: FashionCard<N>
}

// `models/` sits next to `src/` and `dist/`, so the same relative URL works from source and from the build.
const modelsDir = new URL('../models/', import.meta.url)
const cache = new Map<FashionModelName, FashionModel>()

function isModelName(name: string): name is FashionModelName {
  return (fashionModelNames as readonly string[]).includes(name)
}

/**
 * A shipped model: the absolute paths of its files and its parsed model card (read once, then cached).
 * Unknown names are `INVALID_ARGUMENT`; a card that fails the schema is `MODEL_INVALID`.
 *
 * @example
 * ```ts
 * const dit = fashionModel('fashion-dit')
 * dit.card.architecture?.tokenGrid   // { frames: 1, height: 7, width: 7 }
 * const denoiser = await loadClassConditionalDenoiser({ model: dit.onnxPath, classes: [7] })   // @guidekit/onnx
 * ```
 */
export function fashionModel<N extends FashionModelName>(name: N): FashionModel<N> {
  if (!isModelName(name)) {
    throw new GuidekitError('INVALID_ARGUMENT', `Unknown model '${String(name)}'; expected one of ${fashionModelNames.join(', ')}.`, { details: { parameter: 'name', value: name } })
  }
  let model = cache.get(name)
  if (model === undefined) {
    const cardPath = fileURLToPath(new URL(`${name}.card.json`, modelsDir))
    const card = parseModelCard(JSON.parse(readFileSync(cardPath, 'utf8')), cardPath)
    if (card.name !== name || card.kind === 'text-to-image') {
      throw new GuidekitError('MODEL_INVALID', `${cardPath} is not the card of ${name}; reinstall @guidekit/models-fashion or re-run tooling/train.`, { details: { card: cardPath } })
    }
    model = {
      name,
      onnxPath: fileURLToPath(new URL(card.onnx.file, modelsDir)),
      cardPath,
      gridPath: card.kind === 'generator' ? fileURLToPath(new URL(`${name}.grid.png`, modelsDir)) : undefined,
      card: card as FashionCard<typeof name>,
    }
    cache.set(name, model)
  }
  return model as FashionModel<N>
}
