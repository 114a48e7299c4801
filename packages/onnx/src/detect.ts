import { existsSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { GuidekitError } from '@guidekit/core'

/** What kind of model a path points at. */
export type ModelKind = 'diffusers' | 'class-conditional'

/**
 * Tells a diffusers pipeline folder (`model_index.json` inside) from a card-described model (`x.onnx` with
 * `x.card.json`, or the card itself), so an app can take one `--model` argument for both.
 * Throws `MODEL_NOT_FOUND` for a missing path and `MODEL_INVALID` for anything else.
 *
 * @example
 * const kind = detectModelKind(args.model)   // 'diffusers' -> loadDiffusersPipeline, else classConditionalDenoiser
 */
export function detectModelKind(path: string): ModelKind {
  if (!existsSync(path)) {
    throw new GuidekitError('MODEL_NOT_FOUND', `Model not found: ${path}. Pass a .onnx file with its .card.json, or a diffusers ONNX pipeline folder.`, { details: { path } })
  }
  if (statSync(path).isDirectory()) {
    if (existsSync(join(path, 'model_index.json'))) return 'diffusers'
    throw new GuidekitError('MODEL_INVALID', `${path} is a folder without model_index.json, so it is not a diffusers pipeline. Pass a .onnx file with its .card.json, or a diffusers ONNX export folder.`, {
      details: { path },
    })
  }
  if (path.endsWith('.card.json')) return 'class-conditional'
  if (path.endsWith('.onnx')) {
    const card = `${path.slice(0, -'.onnx'.length)}.card.json`
    if (existsSync(card)) return 'class-conditional'
    throw new GuidekitError('MODEL_INVALID', `${path} has no model card (${card}); guidekit needs the card to know what the model predicts. Write one or pass { path, card }.`, {
      details: { path, card },
    })
  }
  throw new GuidekitError('MODEL_INVALID', `${path} is neither an .onnx model nor a diffusers pipeline folder.`, { details: { path } })
}
