// Denoiser middleware: wrap any Denoiser to transform what it is asked, what it answers, or both, in the
// spirit of vercel/ai's language-model middleware (`wrapLanguageModel({ model, middleware })`).
import type { DenoiseRequest, Denoiser, Prediction } from './contracts.js'
import { GuidekitError } from './errors.js'

/** What {@link DenoiserMiddleware.wrapPredict} receives. */
export interface WrapPredictArgs {
  /** The request after every `transformRequest` of this middleware and the ones outside it. */
  readonly request: DenoiseRequest
  /** Calls the next layer (the inner middleware, then the wrapped denoiser) with a request. */
  readonly predict: (request: DenoiseRequest) => Promise<Prediction[]>
  /** The denoiser being wrapped (for its `family` and any extra fields it has). */
  readonly denoiser: Denoiser
}

/**
 * A layer around a {@link Denoiser}. Both hooks are optional:
 * - `transformRequest` rewrites the request (e.g. a different timestep, extra branches, a per-step choice);
 * - `wrapPredict` runs around the call and may change, cache or replace the predictions (e.g. logging,
 *   splitting a call into one run per branch, clamping).
 */
export interface DenoiserMiddleware {
  readonly transformRequest?: (request: DenoiseRequest) => DenoiseRequest | Promise<DenoiseRequest>
  readonly wrapPredict?: (args: WrapPredictArgs) => Promise<Prediction[]>
}

/**
 * Wraps a denoiser in one or more middleware layers. The first layer is the outermost: it transforms the
 * request first and sees the predictions last. The result has the wrapped denoiser's `family` and
 * `specificationVersion`; other fields of the wrapped denoiser (e.g. `card`, `dispose`) stay on the original.
 *
 * @example
 * const logged = wrapDenoiser({
 *   denoiser,
 *   middleware: { wrapPredict: async ({ request, predict }) => { console.log(request.step, request.branches.length); return predict(request) } },
 * })
 */
export function wrapDenoiser(options: { readonly denoiser: Denoiser; readonly middleware: DenoiserMiddleware | readonly DenoiserMiddleware[] }): Denoiser {
  const { denoiser } = options
  const layers = Array.isArray(options.middleware) ? (options.middleware as readonly DenoiserMiddleware[]) : [options.middleware as DenoiserMiddleware]
  if (typeof denoiser?.predict !== 'function') {
    throw new GuidekitError('INVALID_ARGUMENT', 'wrapDenoiser needs a denoiser (an object with predict()).', { details: { parameter: 'denoiser' } })
  }
  layers.forEach((layer, i) => {
    const ok =
      typeof layer === 'object' &&
      layer !== null &&
      (layer.transformRequest === undefined || typeof layer.transformRequest === 'function') &&
      (layer.wrapPredict === undefined || typeof layer.wrapPredict === 'function')
    if (!ok) {
      throw new GuidekitError('INVALID_ARGUMENT', `middleware[${i}] must be an object with optional transformRequest and wrapPredict functions.`, {
        details: { parameter: `middleware[${i}]` },
      })
    }
  })
  // Build from the inside out: the innermost layer calls the denoiser.
  let next = (request: DenoiseRequest): Promise<Prediction[]> => denoiser.predict(request)
  for (let i = layers.length - 1; i >= 0; i--) {
    const layer = layers[i] as DenoiserMiddleware
    const inner = next
    next = async (request) => {
      const transformed = layer.transformRequest ? await layer.transformRequest(request) : request
      return layer.wrapPredict ? layer.wrapPredict({ request: transformed, predict: inner, denoiser }) : inner(transformed)
    }
  }
  const predict = next
  return { specificationVersion: 'v1', family: denoiser.family, predict }
}
