export { fashionModel, fashionModelNames } from './fashion-model.js'
export type { FashionCard, FashionModel, FashionModelName } from './fashion-model.js'
