import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cfg } from '@guidekit/cfg'
import { euler, flowPlan, gaussianDenoiser } from '@guidekit/core'
import { fashionMnistTestStatistics, loadEvaluator, type Evaluator } from '@guidekit/eval'
import { fashionModel } from '@guidekit/models-fashion'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { percentileInterval, prepareReference, type PreparedReference } from './bootstrap.js'
import type { Config } from './configs.js'
import type { Generator } from './models.js'
import { readFeatures, runConfig, type RunDeps } from './runner.js'

let evaluator: Evaluator
let prepared: PreparedReference
const dirs: string[] = []
let denoiserCalls = 0

// A generator over the exact Gaussian toy denoiser: real sampling and a real fashion-eval, no trained model.
const toy: Generator = {
  name: 'fashion-dit',
  family: 'flow',
  plan: (steps) => flowPlan({ steps }),
  samplers: { euler },
  sampleShape: (count) => [count, 1, 28, 28],
  toImages: (samples) => Promise.resolve(samples),
  denoiser: () => {
    denoiserCalls++
    return Promise.resolve(gaussianDenoiser({ family: 'flow', means: { positive: 0.3, negative: -0.2 }, std: 0.5 }))
  },
  extra: () => ({}),
  sha: () => 'toy',
  rl: false,
  draft: false,
  classDenoiser: undefined,
  dispose: () => Promise.resolve(),
}
const config: Config = { id: 'toy__euler__4__cfg__scale3', generator: 'fashion-dit', strategy: 'cfg', label: 'cfg w=3', params: { scale: 3 }, steps: 4, sampler: 'euler', denoiser: 'base', sizes: [6, 12], expectedNfe: 8, guider: () => Promise.resolve(cfg({ scale: 3 })) }

const deps = (batch: number, resamples = 20, dir?: string): RunDeps => {
  const cacheDir = dir ?? mkdtempSync(join(tmpdir(), 'guidekit-quality-'))
  if (!dir) dirs.push(cacheDir)
  const reference = fashionMnistTestStatistics({ evaluatorSha256: evaluator.sha256 })
  return { generator: toy, evaluator, reference, prepared, batch, resamples, cacheDir, fresh: false, log: () => {} }
}

beforeAll(async () => {
  evaluator = await loadEvaluator(fashionModel('fashion-eval').onnxPath, { sessionOptions: { threads: 1 } })
  prepared = prepareReference(fashionMnistTestStatistics({ evaluatorSha256: evaluator.sha256 }))
})
afterAll(async () => {
  await evaluator.dispose()
  for (const d of dirs) rmSync(d, { recursive: true, force: true })
})

describe('runConfig', () => {
  it('grows a cached row by sampling only the new seeds, to the same row as sampling them all at once', { timeout: 240_000 }, async () => {
    const grownDeps = deps(4)
    const [small, grown] = await runConfig(grownDeps, config)
    expect([small?.images, grown?.images, grown?.extra.grownFrom]).toEqual([6, 12, 6])
    expect(grown?.perImage.reward.slice(0, 6)).toEqual(small?.perImage.reward)
    const [direct] = await runConfig(deps(5), { ...config, sizes: [12] })
    expect(direct?.perImage.correct).toBe(grown?.perImage.correct)
    expect(direct?.perImage.reward).toEqual(grown?.perImage.reward)
    expect(direct?.perImage.clippedPixels).toEqual(grown?.perImage.clippedPixels)
    expect(direct?.frechetDistance).toBeCloseTo(grown?.frechetDistance as number, 4)
    expect(direct?.nfe).toBe(8)
    expect(readFeatures(grownDeps.cacheDir, grown as NonNullable<typeof grown>)?.features).toHaveLength(12 * 256)

    // Cached: nothing is sampled again. More resamples: redone from the stored features, extending the stream.
    const calls = denoiserCalls
    const again = await runConfig(grownDeps, config)
    expect(denoiserCalls).toBe(calls)
    expect(again[1]?.bootstrap.frechetDistance).toEqual(grown?.bootstrap.frechetDistance)
    const more = await runConfig({ ...grownDeps, resamples: 30 }, config)
    expect(denoiserCalls).toBe(calls)
    expect(more[1]?.bootstrap.resamples).toBe(30)
    expect(more[1]?.bootstrap.frechetDistance.slice(0, 20)).toEqual(grown?.bootstrap.frechetDistance)

    // The FD interval is the percentile interval of the resamples shifted down by their bias: resampled sets
    // repeat images, so their FD is inflated and the plain interval would miss the estimate.
    const row = more[1] as NonNullable<(typeof more)[1]>
    const fd = row.bootstrap.frechetDistance
    const bias = fd.reduce((s, v) => s + v, 0) / fd.length - row.frechetDistance
    expect(bias).toBeGreaterThan(0)
    expect(row.frechetDistanceBias).toBeCloseTo(bias, 6)
    const [lo, hi] = percentileInterval(fd)
    expect(row.frechetDistanceCi[0]).toBeCloseTo(lo - bias, 6)
    expect(row.frechetDistanceCi[1]).toBeCloseTo(hi - bias, 6)
    expect(row.frechetDistanceCi[0]).toBeLessThan(row.frechetDistance)
    expect(row.frechetDistanceCi[1]).toBeGreaterThan(row.frechetDistance)
  })
})
