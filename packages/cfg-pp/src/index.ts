export { cfgPlusPlus, lambdaFromCfgScale, cfgScaleFromLambda } from './cfg-plus-plus.js'
export type { CfgPlusPlusOptions, LambdaMapping } from './cfg-plus-plus.js'
export { invert } from './invert.js'
export type { InvertOptions, InvertResult } from './invert.js'
