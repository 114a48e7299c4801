export { adaptive } from './adaptive.js'
export type { AdaptiveOptions } from './adaptive.js'
export { linearAG, linearAGRecorder, fitLinearAG, parseLinearAGCoefficients, LINEAR_AG_REGRESSORS } from './linear-ag.js'
export type { LinearAGCoefficients, LinearAGTrajectory, FitLinearAGOptions } from './linear-ag.js'
