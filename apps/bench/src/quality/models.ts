// Which shipped generators exist, and their denoisers. A model that has not been trained yet (no card) is
// skipped with a reason instead of failing the whole benchmark.
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { euler, ddim, dpmpp2m, type Sampler, type SamplingPlan } from '@guidekit/core'
import { fashionModel, type FashionModelName } from '@guidekit/models-fashion'
import { classConditionalDenoiser, loadClassConditionalDenoiser, loadClassConditionalModel, planFromCard, type ClassConditionalDenoiser, type ClassConditionalModel } from '@guidekit/onnx'

export type GeneratorName = 'fashion-dit' | 'fashion-unet'

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

export interface Generator {
  readonly name: GeneratorName
  readonly model: ClassConditionalModel
  /** Denoiser over the generator alone (`withClasses` per batch). */
  readonly denoiser: ClassConditionalDenoiser
  /** `{ base, tuned }` denoiser for RL guidance (DiT only, when fashion-dit-rl exists). */
  readonly rl: ClassConditionalDenoiser | undefined
  plan(steps: number): SamplingPlan
  /** The samplers benchmarked on this generator, by name. */
  readonly samplers: Readonly<Record<string, () => Sampler>>
  /** Short SHA-256 of the ONNX file(s): cached rows of other weights are not reused. */
  readonly sha: { readonly base: string; readonly rl: string | undefined }
  dispose(): Promise<void>
}

const shortSha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16)

export async function loadGenerator(name: GeneratorName, threads: number): Promise<Generator | { readonly skipped: string }> {
  const path = modelPath(name)
  if (!path) return { skipped: `${name} is not trained yet (no ONNX file and card in packages/models-fashion/models)` }
  const sessionOptions = { threads, interOpThreads: 1, graphOptimizationLevel: 'all' as const }
  const model = await loadClassConditionalModel(path, { sessionOptions })
  const denoiser = classConditionalDenoiser({ model, classes: [0] })
  let rl: ClassConditionalDenoiser | undefined
  const rlPath = name === 'fashion-dit' ? modelPath('fashion-dit-rl') : undefined
  if (rlPath) rl = await loadClassConditionalDenoiser({ models: { base: model, tuned: rlPath }, classes: [0], sessionOptions })
  // Flow models: Euler is flow-matching Euler. VP (epsilon) models: DDIM and DPM-Solver++(2M).
  const samplers: Record<string, () => Sampler> = model.family === 'flow' ? { euler } : { ddim: () => ddim(), 'dpm++2m': dpmpp2m }
  return {
    name,
    model,
    denoiser,
    rl,
    plan: (steps) => planFromCard(model.card, { steps }),
    samplers,
    sha: { base: shortSha(path), rl: rlPath ? `${shortSha(path)}+${shortSha(rlPath)}` : undefined },
    async dispose() {
      await rl?.dispose()
      await model.dispose()
    },
  }
}
