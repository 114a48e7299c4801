// Which shipped generators exist, and their denoisers. A model that has not been trained yet (no card) is
// skipped with a reason instead of failing the whole benchmark.
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { euler, ddim, dpmpp2m, type Denoiser, type NoiseFamily, type Sampler, type SamplingPlan, type Tensor } from '@guidekit/core'
import { draftAttention, type DraftAttentionDenoiser } from '@guidekit/draft-attention'
import { fashionModel, type FashionModelName } from '@guidekit/models-fashion'
import { classConditionalDenoiser, loadClassConditionalDenoiser, loadClassConditionalModel, planFromCard, type ClassConditionalDenoiser } from '@guidekit/onnx'
import type { Config } from './configs.js'

export type GeneratorName = 'fashion-dit' | 'fashion-unet' | 'fashion-sd'

/** Generators whose images come out of a VAE decode (clamped to the range: clipping cannot be seen). */
export const TEXT_TO_IMAGE: ReadonlySet<string> = new Set<GeneratorName>(['fashion-sd'])

/** Path of a shipped model, or of the same file under GUIDEKIT_MODELS_DIR (development against fresh exports). */
export function modelPath(name: FashionModelName): string | undefined {
  const dir = process.env.GUIDEKIT_MODELS_DIR
  if (dir) {
    const p = join(dir, `${name}.onnx`)
    return existsSync(p) && existsSync(join(dir, `${name}.card.json`)) ? p : undefined
  }
  try {
    const m = fashionModel(name)
    return existsSync(m.onnxPath) ? m.onnxPath : undefined
  } catch {
    return undefined
  }
}

/** A generator as the benchmark sees it: denoisers per configuration, its plans and samplers, and how its samples become 28x28 images. */
export interface Generator {
  readonly name: GeneratorName
  readonly family: NoiseFamily
  plan(steps: number): SamplingPlan
  /** The samplers benchmarked on this generator, by name. */
  readonly samplers: Readonly<Record<string, () => Sampler>>
  /** Shape of `count` samples in the sampling space (latents for text-to-image). */
  sampleShape(count: number): number[]
  /** Samples to `[count, 1, 28, 28]` images in [-1, 1], what fashion-eval scores. */
  toImages(samples: Tensor): Promise<Tensor>
  /** The denoiser of a configuration for a batch of classes (image i: class i mod 10) starting at image `firstImage`. */
  denoiser(config: Config, classes: readonly number[], firstImage?: number): Promise<Denoiser>
  /** Facts recorded with a configuration's row (e.g. the draft-attention sites). */
  extra(config: Config): Record<string, number | string>
  /** Short SHA-256 of the model file(s) a configuration runs: cached rows of other weights are not reused. */
  sha(config: Config): string
  /** Whether RL guidance (a tuned model) and DraftAttention can run on it. */
  readonly rl: boolean
  readonly draft: boolean
  /** The class-conditional base denoiser (the CFG++ inversion round trip); absent for text-to-image. */
  readonly classDenoiser: ClassConditionalDenoiser | undefined
  dispose(): Promise<void>
}

export const shortSha = (...paths: string[]) => {
  const h = createHash('sha256')
  for (const p of paths) h.update(readFileSync(p))
  return h.digest('hex').slice(0, 16)
}

export async function loadGenerator(name: Exclude<GeneratorName, 'fashion-sd'>, threads: number): Promise<Generator | { readonly skipped: string }> {
  const path = modelPath(name)
  if (!path) return { skipped: `${name} is not trained yet (no ONNX file and card in packages/models-fashion/models)` }
  const sessionOptions = { threads, interOpThreads: 1, graphOptimizationLevel: 'all' as const }
  const model = await loadClassConditionalModel(path, { sessionOptions })
  const base = classConditionalDenoiser({ model, classes: [0] })
  let rl: ClassConditionalDenoiser | undefined
  const rlPath = name === 'fashion-dit' ? modelPath('fashion-dit-rl') : undefined
  if (rlPath) rl = await loadClassConditionalDenoiser({ models: { base: model, tuned: rlPath }, classes: [0], sessionOptions })
  const drafts = new Map<number, DraftAttentionDenoiser>()
  const baseSha = shortSha(path)
  const rlSha = rlPath ? `${baseSha}+${shortSha(rlPath)}` : 'missing'
  const { channels, height, width } = model.card.image
  return {
    name,
    family: model.family,
    plan: (steps) => planFromCard(model.card, { steps }),
    // Flow models: Euler is flow-matching Euler. VP (epsilon) models: DDIM and DPM-Solver++(2M).
    samplers: model.family === 'flow' ? { euler } : { ddim: () => ddim(), 'dpm++2m': dpmpp2m },
    sampleShape: (count) => [count, channels, height, width],
    toImages: (samples) => Promise.resolve(samples),
    async denoiser(config, classes) {
      if (config.denoiser === 'rl') {
        if (!rl) throw new Error(`${config.id} needs fashion-dit-rl, which is not trained yet`)
        return rl.withClasses(classes)
      }
      if (config.denoiser === 'draft') {
        const keep = config.params.keep as number
        let d = drafts.get(keep)
        if (!d) {
          d = await draftAttention(base, { keep, denseSteps: 0.3, sessionOptions: { threads, interOpThreads: 1 } })
          drafts.set(keep, d)
        }
        return d.withClasses(classes)
      }
      return base.withClasses(classes)
    },
    extra(config) {
      const d = config.strategy === 'draft-attention' ? drafts.get(config.params.keep as number) : undefined
      return d?.sites.base !== undefined && d.windows.base ? { sites: d.sites.base, window: `${d.windows.base.height}x${d.windows.base.width}`, denseSteps: 0.3, selection: 'row-topk' } : {}
    },
    sha: (config) => (config.denoiser === 'rl' ? rlSha : baseSha),
    rl: rl !== undefined,
    draft: model.family === 'flow' && model.card.architecture?.tokenGrid !== undefined,
    classDenoiser: base,
    async dispose() {
      for (const d of drafts.values()) await d.dispose()
      await rl?.dispose()
      await model.dispose()
    },
  }
}
