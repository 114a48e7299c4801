// The shipped models' names and card types, shared by the Node entry and the browser entry.
import type { EvaluatorCard, GeneratorCard } from '@guidekit/onnx/card'

/** The models this package ships, in the order of the README. */
export const fashionModelNames = ['fashion-dit', 'fashion-unet', 'fashion-dit-rl', 'fashion-eval'] as const

export type FashionModelName = (typeof fashionModelNames)[number]

/** The card type of each model: the evaluator has an `EvaluatorCard`, the generators a `GeneratorCard`. */
export type FashionCard<N extends FashionModelName> = N extends 'fashion-eval' ? EvaluatorCard : GeneratorCard
