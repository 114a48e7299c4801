// @guidekit/onnx/card: model cards (schema, parsing, plans, class names) without any runtime, for
// browsers, tooling and model packages.
export { CARD_VERSION, cardDefaultsSchema, evaluatorCardSchema, generatorCardSchema, inputRoles, modelCardJsonSchema, modelCardSchema, pipelineCardSchema, tensorSpecSchema } from './schema.js'
export type { AnyModelCard, CardDefaults, EvaluatorCard, GeneratorCard, InputRole, ModelCardSchedule, ModelCardTensor, PipelineCard } from './schema.js'
export { DEFAULT_IO_NAMES, classConditionalIo, parseGeneratorCard, parseModelCard } from './parse.js'
export type { ClassConditionalIo } from './parse.js'
export { planFromCard, scheduleFromCard } from './plan.js'
export type { CardPlanOptions } from './plan.js'
export { classLabel, describeClasses } from './classes.js'
