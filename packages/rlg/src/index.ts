export { rlg } from './rlg.js'
export type { RlgOptions } from './rlg.js'
