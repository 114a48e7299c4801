// Generates one configuration's images on the shared seeds and measures them. Rows are cached per
// configuration under bench-results/quality/cache/, so an interrupted or partial run resumes.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Tensor, sample, type Denoiser, type Guider } from '@guidekit/core'
import { evaluateQuality, type Evaluator, type GaussianStatistics } from '@guidekit/eval'
import type { Config } from './configs.js'
import type { Generator } from './models.js'

/** One row of the quality table. */
export interface Row {
  readonly id: string
  readonly generator: string
  readonly strategy: string
  readonly label: string
  readonly params: Readonly<Record<string, number>>
  readonly steps: number
  readonly sampler: string
  readonly images: number
  /** Network evaluations per image (CFG: 2 per step). */
  readonly nfe: number
  readonly secondsPerImage: number
  readonly accuracy: number
  readonly frechetDistance: number
  readonly meanIntensity: number
  readonly contrast: number
  readonly clippedFraction: number
  /** Values above +1 (pushed past white); absent in rows cached before it was added. */
  readonly clippedHighFraction?: number
  readonly whiteFraction: number
  readonly reward: number
  readonly diversity: number
  /** Guider counters summed over batches (e.g. AG's savedNfe per image, averaged). */
  readonly guidance: Readonly<Record<string, number>>
  /** Extra facts (LinearAG fit cost, the CFG++ effective scale, ...). */
  readonly extra: Readonly<Record<string, number | string>>
  /** Short SHA-256 of the model file(s) the row was measured with. */
  readonly modelSha: string
  readonly measuredAt: string
}

/** Image i of every configuration: class i mod 10, seed SEED + i. */
export const SEED = 1_000_000
const FIT_SEED = 2_000_000
export const classesFor = (start: number, count: number): number[] => Array.from({ length: count }, (_, k) => (start + k) % 10)

export interface RunDeps {
  readonly generator: Generator
  /** The denoiser of a configuration for some classes. */
  denoiser(config: Config, classes: readonly number[]): Promise<Denoiser>
  readonly evaluator: Evaluator
  readonly reference: GaussianStatistics
  readonly images: number
  readonly batch: number
  readonly cacheDir: string
  readonly fresh: boolean
  readonly log: (line: string) => void
  readonly extra?: (config: Config) => Record<string, number | string>
}

export function cachePath(dir: string, config: Config, images: number): string {
  return join(dir, `${config.id}__n${images}.json`)
}

/** The cached row of a configuration, unless it was measured with other weights (`modelSha` given and different). */
export function readCached(dir: string, config: Config, images: number, modelSha?: string): Row | undefined {
  const p = cachePath(dir, config, images)
  if (!existsSync(p)) return undefined
  const row = JSON.parse(readFileSync(p, 'utf8')) as Row
  return modelSha === undefined || row.modelSha === modelSha ? row : undefined
}

/**
 * The cached row of a configuration with the most images (measured with `modelSha`, when given): the report
 * shows each configuration at its largest measured size, so a larger run of a few configurations refines
 * those rows without rerunning the rest.
 */
export function readBest(dir: string, config: Config, modelSha?: string): Row | undefined {
  if (!existsSync(dir)) return undefined
  const sizes = readdirSync(dir)
    .map((f) => new RegExp(`^${config.id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}__n(\\d+)\\.json$`).exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => b - a)
  for (const n of sizes) {
    const row = readCached(dir, config, n, modelSha)
    if (row) return row
  }
  return undefined
}

export function shaFor(generator: Generator, config: Config): string {
  return config.denoiser === 'rl' ? (generator.sha.rl ?? 'missing') : generator.sha.base
}

/** Samples `count` images of a configuration starting at image `start` (batched), returning images and counters. */
export async function generate(deps: Pick<RunDeps, 'generator' | 'denoiser' | 'batch'>, config: Config, guider: Guider, start: number, count: number, seedBase = SEED) {
  const plan = deps.generator.plan(config.steps)
  const makeSampler = deps.generator.samplers[config.sampler]
  if (!makeSampler) throw new Error(`unknown sampler ${config.sampler} for ${deps.generator.name}`)
  const { channels, height, width } = deps.generator.model.card.image
  const size = channels * height * width
  const data = new Float32Array(count * size)
  let nfe = 0
  let ms = 0
  const guidance: Record<string, number> = {}
  for (let done = 0; done < count; done += deps.batch) {
    const n = Math.min(deps.batch, count - done)
    const classes = classesFor(start + done, n)
    const denoiser = await deps.denoiser(config, classes)
    const t0 = performance.now()
    const r = await sample({ denoiser, guider, sampler: makeSampler(), plan, shape: [n, channels, height, width], seed: seedBase + start + done })
    ms += performance.now() - t0
    data.set(r.samples.data, done * size)
    nfe += r.nfe * n
    for (const [k, v] of Object.entries(r.guidance)) guidance[k] = (guidance[k] ?? 0) + v * n
  }
  for (const k of Object.keys(guidance)) guidance[k] = (guidance[k] as number) / count
  return { images: new Tensor(data, [count, channels, height, width]), labels: classesFor(start, count), nfe: nfe / count, secondsPerImage: ms / 1000 / count, guidance }
}

export async function runConfig(deps: RunDeps, config: Config): Promise<Row> {
  if (!deps.fresh) {
    const cached = readCached(deps.cacheDir, config, deps.images, shaFor(deps.generator, config))
    if (cached) {
      deps.log(`cached  ${config.id}`)
      return cached
    }
  }
  const t0 = performance.now()
  const plan = deps.generator.plan(config.steps)
  let fitSeconds = 0
  const guider = await config.guider({
    plan,
    samplerName: config.sampler,
    async run(g) {
      const f0 = performance.now()
      await generate(deps, config, g, 0, Math.min(deps.batch, 40), FIT_SEED)
      fitSeconds += (performance.now() - f0) / 1000
    },
  })
  const out = await generate(deps, config, guider, 0, deps.images)
  const m = await evaluateQuality({ images: out.images, labels: out.labels, evaluator: deps.evaluator, reference: deps.reference })
  const row: Row = {
    id: config.id,
    generator: config.generator,
    strategy: config.strategy,
    label: config.label,
    params: config.params,
    steps: config.steps,
    sampler: config.sampler,
    images: deps.images,
    nfe: out.nfe,
    secondsPerImage: out.secondsPerImage,
    accuracy: m.accuracy,
    frechetDistance: m.frechetDistance,
    meanIntensity: m.saturation.meanIntensity,
    contrast: m.saturation.contrast,
    clippedFraction: m.saturation.clippedFraction,
    clippedHighFraction: m.saturation.clippedHighFraction,
    whiteFraction: m.saturation.whiteFraction,
    reward: m.reward,
    diversity: m.diversity,
    guidance: out.guidance,
    extra: { ...(fitSeconds ? { fitSeconds: Number(fitSeconds.toFixed(2)), fitImages: Math.min(deps.batch, 40) } : {}), ...(deps.extra?.(config) ?? {}) },
    modelSha: shaFor(deps.generator, config),
    measuredAt: new Date().toISOString(),
  }
  mkdirSync(deps.cacheDir, { recursive: true })
  writeFileSync(cachePath(deps.cacheDir, config, deps.images), `${JSON.stringify(row, null, 2)}\n`)
  deps.log(
    `done    ${config.label.padEnd(34)} ${config.sampler} ${config.steps} steps: nfe ${row.nfe.toFixed(1)} acc ${row.accuracy.toFixed(3)} fd ${row.frechetDistance.toFixed(2)} clip ${(row.clippedFraction * 100).toFixed(2)}% reward ${row.reward.toFixed(1)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
  )
  return row
}
