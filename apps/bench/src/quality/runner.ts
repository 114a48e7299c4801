// Generates one configuration's images on the shared seeds and measures them. Each (configuration, size)
// is cached under bench-results/quality/cache/: `<id>__n<N>.json` (the row, its per-image values and FD
// bootstrap replicates) and `<id>__n<N>.bin` (float32 evaluator features, then logits, per image), so an
// interrupted run resumes, intervals and paired tests need no re-sampling, and a row grows from n to a
// larger N by sampling only images n..N-1 (image i is class i mod 10 with seed SEED + i whatever the batch).
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { Tensor, sample, type Guider } from '@guidekit/core'
import { compressibility, featureStatistics, frechetDistance, saturationStatistics, withinClassDiversity, type Evaluator, type GaussianStatistics } from '@guidekit/eval'
import { BOOTSTRAP_SEED, biasCorrectedInterval, frechetReplicates, meanReplicates, percentileInterval, resampleCounts, type Interval, type PreparedReference } from './bootstrap.js'
import { effectiveCfgScale, type Config } from './configs.js'
import type { Generator } from './models.js'

/** Per-image values, image i at index i (string of '0'/'1' for the hits). */
export interface PerImage {
  readonly correct: string
  readonly clippedPixels: readonly number[]
  readonly whitePixels: readonly number[]
  readonly contrast: readonly number[]
  readonly meanIntensity: readonly number[]
  readonly reward: readonly number[]
}

/** One row of the quality table: a configuration measured on images 0..images-1. */
export interface Row {
  /** Cache format; rows of other formats are measured again. */
  readonly format: 2
  readonly id: string
  readonly generator: string
  readonly strategy: string
  readonly label: string
  readonly params: Readonly<Record<string, number>>
  readonly steps: number
  readonly sampler: string
  readonly images: number
  /** Network evaluations per image (CFG: 2 per step), averaged over the images. */
  readonly nfe: number
  readonly secondsPerImage: number
  readonly accuracy: number
  readonly accuracyCi: Interval
  readonly frechetDistance: number
  /** 95% bootstrap interval, percentile shifted by the bootstrap bias (biasCorrectedInterval in bootstrap.ts). */
  readonly frechetDistanceCi: Interval
  /** Mean FD over the resamples minus the point estimate: how far the percentile interval is shifted up. */
  readonly frechetDistanceBias: number
  readonly meanIntensity: number
  readonly contrast: number
  readonly clippedFraction: number
  readonly whiteFraction: number
  readonly reward: number
  readonly diversity: number
  /** Guider counters (e.g. AG's savedNfe per image), averaged over the images. */
  readonly guidance: Readonly<Record<string, number>>
  /** Extra facts (LinearAG fit cost, the CFG++ effective scale, ...). */
  readonly extra: Readonly<Record<string, number | string>>
  /** Short SHA-256 of the model file(s) the row was measured with. */
  readonly modelSha: string
  readonly measuredAt: string
  readonly pixelsPerImage: number
  readonly featureDim: number
  readonly classes: number
  readonly perImage: PerImage
  /** FD of each resample (resample r of every row of this size draws the same image indices). */
  readonly bootstrap: { readonly seed: number; readonly resamples: number; readonly frechetDistance: readonly number[] }
  /** Set in quality.json: a claim's test uses this row at this size. */
  readonly usedByClaims?: boolean
}

/** Image i of every configuration: class i mod 10, seed SEED + i. */
export const SEED = 1_000_000
const FIT_SEED = 2_000_000
export const FIT_IMAGES = 40
export const classesFor = (start: number, count: number): number[] => Array.from({ length: count }, (_, k) => (start + k) % 10)

export interface RunDeps {
  readonly generator: Generator
  readonly evaluator: Evaluator
  readonly reference: GaussianStatistics
  readonly prepared: PreparedReference
  readonly batch: number
  /** Bootstrap resamples per row (at least 1000 for reported intervals). */
  readonly resamples: number
  readonly cacheDir: string
  readonly fresh: boolean
  readonly log: (line: string) => void
}

const base = (dir: string, id: string, images: number) => join(dir, `${id}__n${images}`)

/** The cached row of a configuration at one size, unless it was measured with other weights or an older format. */
export function readCached(dir: string, id: string, images: number, modelSha?: string): Row | undefined {
  const p = `${base(dir, id, images)}.json`
  if (!existsSync(p)) return undefined
  const row = JSON.parse(readFileSync(p, 'utf8')) as Row
  if (row.format !== 2 || (modelSha !== undefined && row.modelSha !== modelSha)) return undefined
  // The FD interval is derived from the stored replicates, so rows cached before it was bias-corrected agree.
  return { ...row, frechetDistanceCi: biasCorrectedInterval(row.bootstrap.frechetDistance, row.frechetDistance) }
}

/** Every cached size of a configuration (measured with `modelSha`, when given), ascending. */
export function readSizes(dir: string, id: string, modelSha?: string): Row[] {
  if (!existsSync(dir)) return []
  const pattern = new RegExp(`^${id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}__n(\\d+)\\.json$`)
  return readdirSync(dir)
    .map((f) => pattern.exec(f))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b)
    .map((n) => readCached(dir, id, n, modelSha))
    .filter((r): r is Row => r !== undefined)
}

function writeRow(dir: string, row: Row, features?: { features: Float32Array; logits: Float32Array }): void {
  mkdirSync(dir, { recursive: true })
  if (features) {
    const bytes = new Uint8Array((features.features.length + features.logits.length) * 4)
    new Float32Array(bytes.buffer).set(features.features, 0)
    new Float32Array(bytes.buffer).set(features.logits, features.features.length)
    writeFileSync(`${base(dir, row.id, row.images)}.bin`, bytes)
  }
  writeFileSync(`${base(dir, row.id, row.images)}.json`, `${JSON.stringify(row)}\n`)
}

/** The features and logits of a cached row, or undefined when its `.bin` is absent. */
export function readFeatures(dir: string, row: Row): { features: Float32Array; logits: Float32Array } | undefined {
  const p = `${base(dir, row.id, row.images)}.bin`
  if (!existsSync(p)) return undefined
  const buf = readFileSync(p)
  const all = new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength))
  const f = row.images * row.featureDim
  if (all.length !== f + row.images * row.classes) throw new Error(`${p} holds ${all.length} values, expected ${f + row.images * row.classes}; delete it and the row`)
  return { features: all.subarray(0, f), logits: all.subarray(f) }
}

/** Samples `count` images of a configuration starting at image `start` (batched), returning 28x28 images and counters. */
export async function generate(deps: Pick<RunDeps, 'generator' | 'batch'>, config: Config, guider: Guider, start: number, count: number, seedBase = SEED) {
  const { generator } = deps
  const plan = generator.plan(config.steps)
  const makeSampler = generator.samplers[config.sampler]
  if (!makeSampler) throw new Error(`unknown sampler ${config.sampler} for ${generator.name}`)
  const parts: Tensor[] = []
  let nfe = 0
  let ms = 0
  const guidance: Record<string, number> = {}
  for (let done = 0; done < count; done += deps.batch) {
    const n = Math.min(deps.batch, count - done)
    const denoiser = await generator.denoiser(config, classesFor(start + done, n), start + done)
    const t0 = performance.now()
    const r = await sample({ denoiser, guider, sampler: makeSampler(), plan, shape: generator.sampleShape(n), seed: seedBase + start + done })
    parts.push(await generator.toImages(r.samples))
    ms += performance.now() - t0
    nfe += r.nfe * n
    for (const [k, v] of Object.entries(r.guidance)) guidance[k] = (guidance[k] ?? 0) + v * n
  }
  for (const k of Object.keys(guidance)) guidance[k] = (guidance[k] as number) / count
  const shape = (parts[0] as Tensor).shape.slice(1)
  const size = (parts[0] as Tensor).sampleSize
  const data = new Float32Array(count * size)
  let o = 0
  for (const p of parts) {
    data.set(p.data, o)
    o += p.data.length
  }
  return { images: new Tensor(data, [count, ...shape]), nfe: nfe / count, secondsPerImage: ms / 1000 / count, guidance }
}

/** Per-image values of generated images, with the evaluator's features and logits. */
async function measureImages(evaluator: Evaluator, images: Tensor, labels: readonly number[]) {
  const { logits, features } = await evaluator.evaluate(images)
  const n = images.shape[0] as number
  const size = images.sampleSize
  const rewards = compressibility(images)
  let correct = ''
  const clippedPixels: number[] = []
  const whitePixels: number[] = []
  const contrast: number[] = []
  const meanIntensity: number[] = []
  for (let i = 0; i < n; i++) {
    let best = 0
    for (let k = 1; k < logits.dim; k++) if ((logits.data[i * logits.dim + k] as number) > (logits.data[i * logits.dim + best] as number)) best = k
    correct += best === labels[i] ? '1' : '0'
    const s = saturationStatistics(images.batchSlice(i, i + 1))
    clippedPixels.push(Math.round(s.clippedFraction * size))
    whitePixels.push(Math.round(s.whiteFraction * size))
    contrast.push(Number(s.contrast.toFixed(6)))
    meanIntensity.push(Number(s.meanIntensity.toFixed(6)))
  }
  return {
    perImage: { correct, clippedPixels, whitePixels, contrast, meanIntensity, reward: Array.from(rewards) },
    features: Float32Array.from(features.data),
    logits: Float32Array.from(logits.data),
    featureDim: features.dim,
    classes: logits.dim,
    pixelsPerImage: size,
  }
}

const mean = (v: readonly number[]) => v.reduce((s, x) => s + x, 0) / v.length

/** The metrics of a row from its per-image values and features, with the bootstrap. */
export function summarize(
  m: { perImage: PerImage; features: Float32Array; featureDim: number; pixelsPerImage: number },
  deps: Pick<RunDeps, 'reference' | 'prepared' | 'resamples'>,
): Pick<Row, 'accuracy' | 'accuracyCi' | 'frechetDistance' | 'frechetDistanceCi' | 'frechetDistanceBias' | 'meanIntensity' | 'contrast' | 'clippedFraction' | 'whiteFraction' | 'reward' | 'diversity' | 'bootstrap'> {
  const p = m.perImage
  const n = p.correct.length
  const counts = resampleCounts(n, { resamples: deps.resamples })
  const hits = Array.from(p.correct, (c) => (c === '1' ? 1 : 0))
  const set = { count: n, dim: m.featureDim, data: m.features }
  const fd = frechetReplicates(set, deps.prepared, counts)
  const point = frechetDistance(featureStatistics(set), deps.reference)
  return {
    accuracy: mean(hits),
    accuracyCi: percentileInterval(meanReplicates(hits, counts)),
    frechetDistance: point,
    frechetDistanceCi: biasCorrectedInterval(fd, point),
    frechetDistanceBias: fd.reduce((s, v) => s + v, 0) / fd.length - point,
    meanIntensity: mean(p.meanIntensity),
    contrast: mean(p.contrast),
    clippedFraction: mean(p.clippedPixels) / m.pixelsPerImage,
    whiteFraction: mean(p.whitePixels) / m.pixelsPerImage,
    reward: mean(p.reward),
    diversity: withinClassDiversity(set, classesFor(0, n)).mean,
    bootstrap: { seed: BOOTSTRAP_SEED, resamples: deps.resamples, frechetDistance: Array.from(fd, (v) => Number(v.toFixed(6))) },
  }
}

const concat = <T>(a: readonly T[], b: readonly T[]) => [...a, ...b]
function joinPerImage(a: PerImage, b: PerImage): PerImage {
  return {
    correct: a.correct + b.correct,
    clippedPixels: concat(a.clippedPixels, b.clippedPixels),
    whitePixels: concat(a.whitePixels, b.whitePixels),
    contrast: concat(a.contrast, b.contrast),
    meanIntensity: concat(a.meanIntensity, b.meanIntensity),
    reward: concat(a.reward, b.reward),
  }
}
function joinFloats(a: Float32Array, b: Float32Array): Float32Array {
  const out = new Float32Array(a.length + b.length)
  out.set(a, 0)
  out.set(b, a.length)
  return out
}
const weighted = (a: number, na: number, b: number, nb: number) => (a * na + b * nb) / (na + nb)

/**
 * Measures a configuration at each of its sizes: a cached size is reused (its bootstrap redone from the
 * features when it has fewer resamples than asked), a larger one grows from the largest smaller size that
 * still has its features, and anything else is sampled from image 0. Returns the rows, ascending.
 */
export async function runConfig(deps: RunDeps, config: Config): Promise<Row[]> {
  const sha = deps.generator.sha(config)
  const rows: Row[] = []
  let guider: Guider | undefined
  let fit: Record<string, number> = {}
  const makeGuider = async () => {
    if (guider) return guider
    const plan = deps.generator.plan(config.steps)
    const f0 = performance.now()
    let fitted = false
    guider = await config.guider({
      plan,
      samplerName: config.sampler,
      async run(g) {
        fitted = true
        await generate(deps, config, g, 0, FIT_IMAGES, FIT_SEED)
      },
    })
    if (fitted) fit = { fitSeconds: Number(((performance.now() - f0) / 1000).toFixed(2)), fitImages: FIT_IMAGES }
    return guider
  }
  for (const n of config.sizes) {
    const cached = deps.fresh ? undefined : readCached(deps.cacheDir, config.id, n, sha)
    if (cached) {
      const stored = cached.bootstrap.resamples >= deps.resamples ? undefined : readFeatures(deps.cacheDir, cached)
      const row = stored ? { ...cached, ...summarize({ ...cached, features: stored.features }, deps) } : cached
      if (stored) writeRow(deps.cacheDir, row)
      deps.log(`${stored ? 'rebooted' : 'cached '} ${config.id} n=${n}`)
      rows.push(row)
      continue
    }
    const t0 = performance.now()
    const from = deps.fresh ? undefined : [...rows, ...readSizes(deps.cacheDir, config.id, sha)].filter((r) => r.images < n && existsSync(`${base(deps.cacheDir, r.id, r.images)}.bin`)).sort((a, b) => b.images - a.images)[0]
    const start = from?.images ?? 0
    const out = await generate(deps, config, await makeGuider(), start, n - start)
    const fresh = await measureImages(deps.evaluator, out.images, classesFor(start, n - start))
    const prior = from ? readFeatures(deps.cacheDir, from) : undefined
    const perImage = from ? joinPerImage(from.perImage, fresh.perImage) : fresh.perImage
    const features = prior ? joinFloats(prior.features, fresh.features) : fresh.features
    const logits = prior ? joinFloats(prior.logits, fresh.logits) : fresh.logits
    const guidance: Record<string, number> = {}
    for (const k of new Set([...Object.keys(out.guidance), ...Object.keys(from?.guidance ?? {})])) guidance[k] = weighted(from?.guidance[k] ?? 0, start, out.guidance[k] ?? 0, n - start)
    const row: Row = {
      format: 2,
      id: config.id,
      generator: config.generator,
      strategy: config.strategy,
      label: config.label,
      params: config.params,
      steps: config.steps,
      sampler: config.sampler,
      images: n,
      nfe: from ? weighted(from.nfe, start, out.nfe, n - start) : out.nfe,
      secondsPerImage: from ? weighted(from.secondsPerImage, start, out.secondsPerImage, n - start) : out.secondsPerImage,
      ...summarize({ perImage, features, featureDim: fresh.featureDim, pixelsPerImage: fresh.pixelsPerImage }, deps),
      guidance,
      extra: {
        ...(from?.extra ?? {}),
        ...fit,
        ...deps.generator.extra(config),
        ...(config.strategy === 'cfg++' ? { effectiveCfgScale: Number(effectiveCfgScale(config.params.lambda as number, deps.generator.plan(config.steps)).toFixed(3)) } : {}),
        ...(from ? { grownFrom: start } : {}),
      },
      modelSha: sha,
      measuredAt: new Date().toISOString(),
      pixelsPerImage: fresh.pixelsPerImage,
      featureDim: fresh.featureDim,
      classes: fresh.classes,
      perImage,
    }
    writeRow(deps.cacheDir, row, { features, logits })
    rows.push(row)
    const ci = (i: Interval, d: number) => `[${i[0].toFixed(d)}, ${i[1].toFixed(d)}]`
    deps.log(
      `done    ${config.label.padEnd(34)} ${config.sampler} ${config.steps} steps n=${n}${from ? ` (grown from ${start})` : ''}: nfe ${row.nfe.toFixed(1)} acc ${row.accuracy.toFixed(3)} ${ci(row.accuracyCi, 3)} fd ${row.frechetDistance.toFixed(2)} ${ci(row.frechetDistanceCi, 2)} clip ${(row.clippedFraction * 100).toFixed(2)}% (${((performance.now() - t0) / 1000).toFixed(0)} s)`,
    )
  }
  return rows
}
