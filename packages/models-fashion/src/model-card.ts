/** One ONNX input or output: its name, element type and shape (`'batch'` marks the dynamic axis). */
export interface TensorSpec {
  readonly name: string
  readonly dtype: 'float32' | 'int64'
  readonly shape: readonly (number | string)[]
}

/** Where the ONNX file is and what it takes and returns. */
export interface OnnxSpec {
  readonly file: string
  readonly opset: number
  readonly inputs: readonly TensorSpec[]
  readonly outputs: readonly TensorSpec[]
}

/** Image layout shared by all models: 1 x 28 x 28, values in [-1, 1]. */
export interface ImageSpec {
  readonly channels: number
  readonly height: number
  readonly width: number
  readonly range: readonly [number, number]
}

/**
 * A DiT: the token grid, patch size and head layout are what DraftAttention needs to rewrite the
 * attention (`softmax(q @ k^T * headDim^-0.5) @ v`, exported as MatMul -> Mul -> Softmax -> MatMul).
 */
export interface DitArchitecture {
  readonly type: 'dit'
  readonly parameters: number
  readonly patchSize: number
  readonly width: number
  readonly depth: number
  readonly heads: number
  readonly headDim: number
  readonly tokenGrid: { readonly frames: number; readonly height: number; readonly width: number }
  readonly prefixTokens: number
  readonly [extra: string]: unknown
}

export interface UnetArchitecture {
  readonly type: 'unet'
  readonly parameters: number
  readonly channels: readonly number[]
  readonly [extra: string]: unknown
}

export interface CnnArchitecture {
  readonly type: 'cnn'
  readonly parameters: number
  readonly featureDim: number
  readonly [extra: string]: unknown
}

/** Rectified flow: `x_t = (1 - t) x0 + t noise`; the ONNX `timestep` input is `t * 1000`. */
export interface FlowSchedule {
  readonly family: 'flow'
  readonly trainSteps: number
  readonly shift: number
}

/** VP (DDPM) schedule; the ONNX `timestep` input is the discrete train step 0..trainSteps-1. */
export interface VpSchedule {
  readonly family: 'vp'
  readonly betaSchedule: 'scaled_linear' | 'squaredcos_cap_v2' | 'linear'
  readonly betaStart: number
  readonly betaEnd: number
  readonly trainSteps: number
}

export interface TrainingInfo {
  readonly data: string
  readonly images: number
  readonly optimizerSteps: number
  readonly batchSize: number
  readonly wallSeconds: number
  readonly seed: number
  readonly command: string
  readonly algorithm: string
  readonly [extra: string]: unknown
}

/** Evaluator accuracy and Frechet distance of generated samples at one CFG scale `w` (`D = D_u + w (D_c - D_u)`). */
export interface ScaleMetrics {
  readonly cfgScale: number
  readonly accuracy: number
  readonly frechetDistance: number
}

export interface RewardMetrics {
  readonly name: string
  readonly base: number
  readonly tuned: number
  readonly samples: number
  readonly [extra: string]: unknown
}

export interface GeneratorMetrics {
  readonly evaluator: string
  readonly samples: number
  readonly steps: number
  readonly sampler: string
  readonly byScale: readonly ScaleMetrics[]
  readonly reward?: RewardMetrics
  readonly [extra: string]: unknown
}

export interface EvaluatorMetrics {
  readonly testAccuracy: number
  readonly trainTestFrechetDistance: number
  readonly [extra: string]: unknown
}

interface CardBase {
  readonly name: string
  readonly cardVersion: 1
  readonly description: string
  readonly onnx: OnnxSpec
  readonly image: ImageSpec
  readonly classes: readonly string[]
}

/** A class-conditional generator (class `nullClass` is the unconditional branch for CFG). */
export interface GeneratorCard extends CardBase {
  readonly kind: 'generator'
  readonly architecture: DitArchitecture | UnetArchitecture
  readonly parameterization: 'flow-velocity' | 'epsilon'
  readonly schedule: FlowSchedule | VpSchedule
  readonly nullClass: number
  readonly training: TrainingInfo
  readonly metrics: GeneratorMetrics
}

/** The classifier: outputs `logits` [B,10] and `features` [B,featureDim] from `image` [B,1,28,28]. */
export interface EvaluatorCard extends CardBase {
  readonly kind: 'evaluator'
  readonly architecture: CnnArchitecture
  readonly parameterization: 'classifier'
  readonly featureDim: number
  readonly nullClass: null
  readonly training: TrainingInfo
  readonly metrics: EvaluatorMetrics
}

/** The JSON model card shipped next to each ONNX file (`<name>.card.json`). */
export type ModelCard = GeneratorCard | EvaluatorCard
