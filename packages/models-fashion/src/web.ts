// @guidekit/models-fashion/web: the shipped models for browsers and bundlers, without `fs`. Each file URL
// is a literal `new URL('../models/<file>', import.meta.url)`, the pattern Vite, webpack 5, Parcel and
// esbuild's asset loaders recognise, so an app build emits exactly these files. The cards are JSON
// imports, validated on first use with @guidekit/onnx's card schema.
import { GuidekitError } from '@guidekit/core'
import { parseModelCard } from '@guidekit/onnx/card'
import ditCard from '../models/fashion-dit.card.json' with { type: 'json' }
import ditRlCard from '../models/fashion-dit-rl.card.json' with { type: 'json' }
import evalCard from '../models/fashion-eval.card.json' with { type: 'json' }
import unetCard from '../models/fashion-unet.card.json' with { type: 'json' }
import { fashionModelNames, type FashionCard, type FashionModelName } from './names.js'

/** A shipped model in a browser: where its ONNX file is and its parsed card. */
export interface FashionWebModel<N extends FashionModelName = FashionModelName> {
  readonly name: N
  /** The ONNX file's URL (after bundling: the emitted asset's URL). Fetched only when a model is loaded. */
  readonly url: URL
  /** The card, validated with @guidekit/onnx's model-card schema. */
  readonly card: FashionCard<N>
}

// Literal URLs, one per file: bundlers see (and emit) only literals.
const files: Readonly<Record<FashionModelName, { readonly url: URL; readonly card: unknown }>> = {
  'fashion-dit': { url: new URL('../models/fashion-dit.onnx', import.meta.url), card: ditCard },
  'fashion-unet': { url: new URL('../models/fashion-unet.onnx', import.meta.url), card: unetCard },
  'fashion-dit-rl': { url: new URL('../models/fashion-dit-rl.onnx', import.meta.url), card: ditRlCard },
  'fashion-eval': { url: new URL('../models/fashion-eval.onnx', import.meta.url), card: evalCard },
}

const cache = new Map<FashionModelName, FashionWebModel>()

/**
 * A shipped model for the browser: its ONNX file URL and its parsed card (checked once, then cached).
 * Unknown names are `INVALID_ARGUMENT`; a card that fails the schema is `MODEL_INVALID`.
 *
 * @example
 * ```ts
 * import { loadClassConditionalModel } from '@guidekit/onnx/web'
 * const dit = fashionWebModel('fashion-dit')
 * const model = await loadClassConditionalModel({ model: dit.url, card: dit.card })
 * ```
 */
export function fashionWebModel<N extends FashionModelName>(name: N): FashionWebModel<N> {
  const file = (fashionModelNames as readonly string[]).includes(name) ? files[name] : undefined
  if (file === undefined) {
    throw new GuidekitError('INVALID_ARGUMENT', `Unknown model '${String(name)}'; expected one of ${fashionModelNames.join(', ')}.`, { details: { parameter: 'name', value: name } })
  }
  let model = cache.get(name)
  if (model === undefined) {
    const where = `@guidekit/models-fashion/models/${name}.card.json`
    const card = parseModelCard(file.card, where)
    if (card.name !== name || card.kind === 'text-to-image') {
      throw new GuidekitError('MODEL_INVALID', `${where} is not the card of ${name}; reinstall @guidekit/models-fashion.`, { details: { card: where } })
    }
    model = { name, url: file.url, card: card as FashionCard<typeof name> }
    cache.set(name, model)
  }
  return model as FashionWebModel<N>
}

export { fashionModelNames }
export type { FashionCard, FashionModelName }
