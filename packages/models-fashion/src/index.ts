export { fashionModel } from './fashion-model.js'
export type { FashionModel } from './fashion-model.js'
export { fashionModelNames } from './names.js'
export type { FashionCard, FashionModelName } from './names.js'
