import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ModelsFashionError } from './errors.js'
import type { EvaluatorCard, GeneratorCard, ModelCard } from './model-card.js'

/** The models this package ships, in the order of the README. */
export const fashionModelNames = ['fashion-dit', 'fashion-unet', 'fashion-dit-rl', 'fashion-eval'] as const

export type FashionModelName = (typeof fashionModelNames)[number]

/** The card type of each model: the evaluator has an `EvaluatorCard`, the three generators a `GeneratorCard`. */
export type FashionCard<N extends FashionModelName> = N extends 'fashion-eval' ? EvaluatorCard : GeneratorCard

export interface FashionModel<N extends FashionModelName = FashionModelName> {
  readonly name: N
  /** Absolute path of the ONNX file (opset 17, float32 weights, dynamic batch axis). */
  readonly onnxPath: string
  /** Absolute path of the sample grid PNG (10 classes x 8 seeds, CFG 3, 30 steps); `undefined` for the evaluator. */
  readonly gridPath: string | undefined
  readonly card: FashionCard<N>
}

// `models/` sits next to `src/` and `dist/`, so the same relative URL works from source and from the build.
const modelsDir = new URL('../models/', import.meta.url)
const cache = new Map<FashionModelName, FashionModel>()

function isModelName(name: string): name is FashionModelName {
  return (fashionModelNames as readonly string[]).includes(name)
}

function readCard(name: FashionModelName): ModelCard {
  const path = fileURLToPath(new URL(`${name}.card.json`, modelsDir))
  const card = JSON.parse(readFileSync(path, 'utf8')) as ModelCard
  if (card.name !== name || card.cardVersion !== 1 || typeof card.onnx?.file !== 'string') {
    throw new ModelsFashionError(
      'invalid-card',
      `${path} is not a version-1 model card for ${name}; reinstall @guidekit/models-fashion or re-run tooling/train.`,
    )
  }
  return card
}

/**
 * A shipped model: absolute ONNX path and its parsed model card (read once, then cached).
 *
 * @example
 * ```ts
 * const dit = fashionModel('fashion-dit')
 * dit.card.architecture.tokenGrid   // { frames: 1, height: 7, width: 7 } (when architecture.type === 'dit')
 * const session = await InferenceSession.create(dit.onnxPath)
 * ```
 */
export function fashionModel<N extends FashionModelName>(name: N): FashionModel<N> {
  if (!isModelName(name)) {
    throw new ModelsFashionError(
      'unknown-model',
      `Unknown model '${String(name)}'; expected one of ${fashionModelNames.join(', ')}.`,
    )
  }
  let model = cache.get(name)
  if (model === undefined) {
    const card = readCard(name)
    model = {
      name,
      onnxPath: fileURLToPath(new URL(card.onnx.file, modelsDir)),
      gridPath: card.kind === 'generator' ? fileURLToPath(new URL(`${name}.grid.png`, modelsDir)) : undefined,
      card,
    }
    cache.set(name, model)
  }
  return model as FashionModel<N>
}
