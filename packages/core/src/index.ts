export { GuidekitError, check, checkNumber, guidekitErrorCodes } from './errors.js'
export type { GuidekitErrorCode } from './errors.js'
export { Tensor, assertSameShape, concatBatch, gatherBatch } from './tensor.js'
export { float32ToFloat16, float16ToFloat32, float32ToFloat16Bits, float16BitsToFloat32 } from './float16.js'
export { combine, dot, norm, std, cosineSimilarity, cosineSimilarityFlat, findNonFinite } from './kernels.js'
export type { Term } from './kernels.js'
export { RandomStream, seededNoise, seedsFor, randn } from './noise.js'
export { familyAlpha } from './contracts.js'
export type {
  NoiseFamily,
  Branch,
  Prediction,
  DenoiseRequest,
  Denoiser,
  GuidedStep,
  RunInfo,
  StepContext,
  GuidanceSession,
  Guider,
  NoiseSource,
  SamplerRunInfo,
  SamplerStepInput,
  SamplerSession,
  Sampler,
} from './contracts.js'
export { inputScale, modelInput, toPrediction } from './parameterization.js'
export type { Parameterization } from './parameterization.js'
export { vpSchedule, spacedTimesteps, karrasSigmas, vpPlan, flowPlan, checkPlan, roundHalfEven } from './schedules.js'
export type { BetaSchedule, VpSchedule, TimestepSpacing, SamplingPlan, VpPlanOptions } from './schedules.js'
export { euler, flowMatchEuler, eulerAncestral, ddim, dpmpp2m } from './samplers.js'
export { sample, unguided } from './sample.js'
export type { SampleOptions, SampleResult, SampleProgress } from './sample.js'
export { gaussianDenoiser } from './toy.js'
export type { GaussianDenoiserOptions } from './toy.js'
export { modelOutput, denoisedFrom, checkBranchShapes, positiveOnly, predictPair, guidanceRescale, checkGuider, mergedPredictor } from './guidance-kit.js'
export { interval } from './interval.js'
export type { GuidanceWindow } from './interval.js'
export { wrapDenoiser } from './middleware.js'
export type { DenoiserMiddleware, WrapPredictArgs } from './middleware.js'
