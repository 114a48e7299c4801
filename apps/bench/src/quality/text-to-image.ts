// The text-to-image group: fashion-sd, a Stable-Diffusion-layout miniature (diffusers ONNX folder), loaded
// with the same loadDiffusersPipeline as a real SD 1.5 export. Image i is prompted "a photo of a {class}"
// for class i mod 10 (the card's `captions.classPrompts` when it lists them; empty negative prompt, as SD's
// CFG), decoded with the pipeline's VAE and scored as a 28x28 grayscale image by fashion-eval, like the
// class-conditional generators.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { Tensor, ddim } from '@guidekit/core'
import { fashionModel } from '@guidekit/models-fashion'
import { loadDiffusersPipeline, type DiffusersPipeline } from '@guidekit/onnx'
import { shortSha, type Generator } from './models.js'

/** The fashion-sd pipeline folder: packages/models-fashion/models/fashion-sd, or GUIDEKIT_MODELS_DIR/fashion-sd. */
export function textToImagePath(): string {
  const dir = process.env.GUIDEKIT_MODELS_DIR ?? dirname(fashionModel('fashion-eval').onnxPath)
  return join(dir, 'fashion-sd')
}

/** The prompt of class `label`: "a photo of a {class name}". */
export function promptFor(classNames: readonly string[], label: number): string {
  const name = classNames[label]
  if (name === undefined) throw new Error(`no class name for label ${label} (${classNames.length} classes)`)
  return `a photo of a ${name.toLowerCase()}`
}

/** What the fashion-sd card says about its captions (tooling/train/sd_captions.py writes them). */
export interface CaptionFacts {
  readonly classPrompts?: readonly string[]
  readonly heldOutTemplates?: readonly string[]
  readonly heldOutSynonyms?: readonly (readonly string[])[]
}

// Phrases that take no article, as in sd_captions.py's PLURAL (the card does not list them).
const PLURAL = new Set(['trousers', 'pants', 'sandals', 'sneakers', 'ankle boots', 'long pants'])

/** A caption template around a phrase: `{x}` the phrase, `{a}` with "a"/"an" unless plural (sd_captions.py's fill). */
export function fillTemplate(template: string, phrase: string): string {
  const a = PLURAL.has(phrase) ? phrase : `${/^[aeiou]/.test(phrase) ? 'an' : 'a'} ${phrase}`
  return template.replaceAll('{x}', phrase).replaceAll('{a}', a)
}

/**
 * The held-out paraphrase of image i (class i mod 10): the class's held-out templates x held-out synonyms
 * (template-major), cycled over the class's images, as the training script's paraphrase metric.
 */
export function paraphraseFor(captions: CaptionFacts, image: number): string {
  const templates = captions.heldOutTemplates
  const words = captions.heldOutSynonyms?.[image % 10]
  if (!templates?.length || !words?.length) throw new Error('the fashion-sd card lists no captions.heldOutTemplates / heldOutSynonyms: the paraphrase metric needs them')
  const combos = templates.flatMap((t) => words.map((w) => fillTemplate(t, w)))
  return combos[Math.floor(image / 10) % combos.length] as string
}

/**
 * Decoded images (`[B, C, H, W]` in [0, 1], C = 1 or 3) as `[B, 1, H, W]` grayscale in [-1, 1]: the mean
 * of the channels (the pipeline decodes gray images to three equal channels), then `2 v - 1`.
 */
export function toGrayscale(decoded: Tensor, size: readonly [number, number]): Tensor {
  const [batch, channels, height, width] = decoded.shape as [number, number, number, number]
  if (decoded.shape.length !== 4 || (channels !== 1 && channels !== 3)) throw new Error(`decoded images must be [batch, 1 or 3, height, width], got [${decoded.shape.join(', ')}]`)
  if (height !== size[0] || width !== size[1]) throw new Error(`the VAE decodes ${height}x${width} images; fashion-eval scores ${size[0]}x${size[1]}`)
  const plane = height * width
  const out = new Float32Array(batch * plane)
  for (let b = 0; b < batch; b++) {
    for (let p = 0; p < plane; p++) {
      let s = 0
      for (let c = 0; c < channels; c++) s += decoded.data[(b * channels + c) * plane + p] as number
      out[b * plane + p] = (2 * s) / channels - 1
    }
  }
  return new Tensor(out, [batch, 1, height, width])
}

/**
 * A generator over a diffusers pipeline (the `pipeline` argument lets tests pass the SD miniature and its
 * size). `classes` of a batch are i mod 10 for its images i = start..: the paraphrase of image i is
 * recovered from `firstImage`, the image index of the batch's first class (see runner.generate).
 */
export function textToImageGenerator(options: { pipeline: DiffusersPipeline; classNames: readonly string[]; captions?: CaptionFacts; size: readonly [number, number]; sha: string }): Generator {
  const { pipeline, classNames, captions = {}, size, sha } = options
  const classPrompt = (c: number) => captions.classPrompts?.[c] ?? promptFor(classNames, c)
  return {
    name: 'fashion-sd',
    family: 'vp',
    plan: (steps) => pipeline.plan({ steps }),
    samplers: { ddim: () => ddim() },
    sampleShape: (count) => pipeline.latentShape({ batch: count, height: size[0], width: size[1] }),
    toImages: async (samples) => toGrayscale(await pipeline.decode(samples), size),
    denoiser: (config, classes, firstImage = 0) =>
      pipeline.denoiser({
        prompt: classes.map((c, k) => (config.prompts?.kind === 'paraphrase' ? paraphraseFor(captions, firstImage + k) : classPrompt(c))),
        negativePrompt: config.prompts?.negative ?? '',
      }),
    extra: (config) => ({ prompt: config.prompts?.kind === 'paraphrase' ? 'held-out paraphrase (card captions)' : captions.classPrompts ? 'card captions.classPrompts' : 'a photo of a {class}', negativePrompt: config.prompts?.negative ?? '' }),
    sha: () => sha,
    rl: false,
    draft: false,
    classDenoiser: undefined,
    dispose: () => pipeline.dispose(),
  }
}

/** Loads fashion-sd when its folder exists; otherwise says why the group is skipped. */
export async function loadTextToImageGenerator(threads: number): Promise<Generator | { readonly skipped: string }> {
  const dir = textToImagePath()
  if (!existsSync(join(dir, 'model_index.json'))) return { skipped: `fashion-sd is not trained yet (no diffusers pipeline in ${dir}): the text-to-image group is skipped` }
  const pipeline = await loadDiffusersPipeline(dir, { sessionOptions: { threads, interOpThreads: 1, graphOptimizationLevel: 'all' } })
  try {
    pipeline.latentShape({ batch: 1, height: 28, width: 28 })
  } catch (error) {
    await pipeline.dispose()
    return { skipped: `fashion-sd does not take 28x28 images: ${error instanceof Error ? error.message : String(error)}` }
  }
  const classNames = fashionModel('fashion-eval').card.classes ?? []
  const files = ['text_encoder', 'unet', 'vae_decoder'].map((c) => join(dir, c, 'model.onnx'))
  const card = textToImageCard()
  return textToImageGenerator({ pipeline, classNames, captions: (card?.captions ?? {}), size: [28, 28], sha: shortSha(...files) })
}

/** The fashion-sd card (`fashion-sd.card.json` next to the folder), parsed as plain JSON, or undefined. */
export function textToImageCard(): Record<string, unknown> | undefined {
  const p = textToImageCardPath()
  return existsSync(p) ? (JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>) : undefined
}

export const textToImageCardPath = () => `${textToImagePath()}.card.json`
