// @guidekit/onnx/web: class-conditional models in browsers with onnxruntime-web (WASM, or WebGPU when the
// browser offers it). No Node built-ins. The denoiser, the cards and the image conversion are the same
// runtime-free code the Node entry uses.
export { loadClassConditionalDenoiser, loadClassConditionalModel } from './load.js'
export type { WebClassConditionalModel, WebLoadDenoiserOptions, WebLoadModelOptions, WebModelBytes, WebModelFile, WebModelSource } from './load.js'
export { openWebSession } from './runtime.js'
export type { WebExecutionProvider, WebRuntime, WebSession, WebSessionOptions } from './runtime.js'
export { classConditionalDenoiser } from '../class-conditional/denoiser.js'
export type { ClassConditionalDenoiser, ClassConditionalDenoiserOptions, ModelRun, ModelRunExtras } from '../class-conditional/denoiser.js'
export { createClassConditionalModel, isClassConditionalModel } from '../class-conditional/model.js'
export type { ClassConditionalModel, CreateClassConditionalModelOptions } from '../class-conditional/model.js'
export { classLabel, describeClasses, parseGeneratorCard, planFromCard } from '../card/index.js'
export type { CardPlanOptions, GeneratorCard } from '../card/index.js'
export { toRawImages } from '../image.js'
export type { RawImage } from '../image.js'
