// What a run will do before it does it: per configuration and size, cached / grown / new, the images and
// network evaluations to sample, and an ETA from rates measured on this machine just before.
import { RandomStream, sample } from '@guidekit/core'
import { cfg } from '@guidekit/cfg'
import { frechetReplicates, resampleCounts, type PreparedReference } from './bootstrap.js'
import type { Config } from './configs.js'
import type { Generator } from './models.js'
import { readCached, readSizes } from './runner.js'

export interface PlannedRow {
  readonly config: Config
  readonly size: number
  readonly action: 'cached' | 'grow' | 'new'
  /** Images to sample (0 when cached). */
  readonly images: number
}

/** Each (configuration, size) as runConfig will treat it: cached, grown from the largest smaller cached size, or new. */
export function planRows(configs: readonly Config[], cacheDir: string, sha: (c: Config) => string, fresh: boolean): PlannedRow[] {
  const out: PlannedRow[] = []
  for (const config of configs) {
    let have = fresh ? 0 : Math.max(0, ...readSizes(cacheDir, config.id, sha(config)).map((r) => r.images))
    for (const size of config.sizes) {
      const cached = !fresh && readCached(cacheDir, config.id, size, sha(config)) !== undefined
      const from = have < size ? have : 0
      out.push({ config, size, action: cached ? 'cached' : from > 0 ? 'grow' : 'new', images: cached ? 0 : size - from })
      have = Math.max(have, size)
    }
  }
  return out
}

/** Milliseconds per network evaluation per image of a denoiser: one warm-up step, then 2 CFG steps on `batch` images. */
export async function measureRate(generator: Generator, config: Config, batch: number): Promise<number> {
  const makeSampler = generator.samplers[config.sampler]
  if (!makeSampler) throw new Error(`unknown sampler ${config.sampler} for ${generator.name}`)
  const denoiser = await generator.denoiser(config, Array.from({ length: batch }, (_, i) => i % 10))
  const run = (steps: number) => sample({ denoiser, guider: cfg({ scale: 3 }), sampler: makeSampler(), plan: generator.plan(steps), shape: generator.sampleShape(batch), seed: 1 })
  await run(1)
  const t0 = performance.now()
  const r = await run(2)
  return (performance.now() - t0) / (r.nfe * batch)
}

/**
 * Seconds of a row's FD bootstrap at n images with `resamples` resamples: the set-up (centring and whitening
 * the features) and the per-resample cost, each measured at 200 and 1000 images and interpolated linearly in n.
 */
export function measureBootstrap(prepared: PreparedReference): (n: number, resamples: number) => number {
  const time = (n: number, resamples: number) => {
    const stream = new RandomStream(5)
    const data = Float32Array.from({ length: n * prepared.dim }, () => Math.abs(stream.nextNormal()))
    const counts = resampleCounts(n, { resamples })
    const t0 = performance.now()
    frechetReplicates({ count: n, dim: prepared.dim, data }, prepared, counts)
    return (performance.now() - t0) / 1000
  }
  time(200, 1) // warm-up (JIT)
  const cost = (n: number) => {
    const one = time(n, 1)
    const per = Math.max(0, (time(n, 4) - one) / 3)
    return { setup: Math.max(0, one - per), per }
  }
  const small = cost(200)
  const large = cost(1000)
  const at = (a: number, b: number, n: number) => Math.max(a, a + ((b - a) * (n - 200)) / 800)
  return (n, resamples) => at(small.setup, large.setup, n) + resamples * at(small.per, large.per, n)
}

const clock = (seconds: number) => `${Math.floor(seconds / 3600)} h ${String(Math.round((seconds % 3600) / 60)).padStart(2, '0')} min`

/** The plan as text, with its ETA. `rate(config)`: ms per NFE per image for that configuration's denoiser. */
export function describePlan(options: {
  rows: readonly PlannedRow[]
  rate: (config: Config) => number
  bootstrapSeconds: (n: number, resamples: number) => number
  resamples: number
  /** Further sampling outside the rows (AG calibration, LinearAG fits, inversion round trips): NFE per image x images, at a configuration's rate. */
  extras: readonly { readonly what: string; readonly config: Config; readonly images: number; readonly nfe: number }[]
}): { text: string; seconds: number } {
  const { rows, rate, bootstrapSeconds, resamples, extras } = options
  const todo = rows.filter((r) => r.action !== 'cached')
  const perGenerator = new Map<string, { nfe: number; seconds: number; images: number }>()
  const addTo = (config: Config, images: number, nfe: number) => {
    const g = perGenerator.get(config.generator) ?? { nfe: 0, seconds: 0, images: 0 }
    g.images += images
    g.nfe += images * nfe
    g.seconds += (images * nfe * rate(config)) / 1000
    perGenerator.set(config.generator, g)
  }
  for (const r of todo) addTo(r.config, r.images, r.config.expectedNfe)
  for (const e of extras) addTo(e.config, e.images, e.nfe)
  const boot = todo.reduce((s, r) => s + bootstrapSeconds(r.size, resamples), 0)
  const sampling = [...perGenerator.values()].reduce((s, g) => s + g.seconds, 0)
  const count = (a: PlannedRow['action']) => rows.filter((r) => r.action === a).length
  const lines = [
    `plan: ${new Set(rows.map((r) => r.config.id)).size} configurations, ${rows.length} (configuration, size) rows: ${count('cached')} cached, ${count('new')} new, ${count('grow')} grown from a smaller cached size`,
    ...[...perGenerator].map(([name, g]) => `  ${name}: ${g.images.toLocaleString('en')} images, ${Math.round(g.nfe).toLocaleString('en')} NFE x images at ${g.nfe ? ((1000 * g.seconds) / g.nfe).toFixed(2) : 'n/a'} ms per image-NFE (batch measured now), ~${clock(g.seconds)}`),
    `  bootstrap: ${todo.length} rows x ${resamples} resamples, ~${clock(boot)}`,
    ...extras.map((e) => `  (included above) ${e.what}: ${e.images} images x ${e.nfe} NFE`),
    `ETA ~${clock(sampling + boot)} (finishing about ${new Date(Date.now() + (sampling + boot) * 1000).toTimeString().slice(0, 5)}; rates measured now, so a busier machine takes longer)`,
  ]
  return { text: lines.join('\n'), seconds: sampling + boot }
}
