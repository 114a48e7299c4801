export { apg, apgDiffusers, apgComfy, fromComfyApgCfg, diffusersEtaFromPaper } from './apg.js'
export type { ApgOptions, ApgDiffusersOptions, ApgComfyOptions } from './apg.js'
export { apgDirection, apgMomentumUpdate } from './apg-math.js'
export type { ApgDirectionOptions, NormDim } from './apg-math.js'
