export { fashionModel, fashionModelNames } from './fashion-model.js'
export type { FashionCard, FashionModel, FashionModelName } from './fashion-model.js'
export { ModelsFashionError } from './errors.js'
export type { ModelsFashionErrorCode } from './errors.js'
export type {
  CnnArchitecture,
  DitArchitecture,
  EvaluatorCard,
  EvaluatorMetrics,
  FlowSchedule,
  GeneratorCard,
  GeneratorMetrics,
  ImageSpec,
  ModelCard,
  OnnxSpec,
  RewardMetrics,
  ScaleMetrics,
  TensorSpec,
  TrainingInfo,
  UnetArchitecture,
  VpSchedule,
} from './model-card.js'
