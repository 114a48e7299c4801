// One sampling run (a batch of images for one guidance strategy), shared by `generate` and `grid`.
import { sample } from '@guidekit/core'
import type { Denoiser, Guider, Prediction, Sampler, SampleResult } from '@guidekit/core'
import type { RawImage } from '@guidekit/onnx'
import type { Conditioning, Engine } from './models.js'
import type { ProgressReporter } from './progress.js'

export interface RunRequest {
  readonly engine: Engine
  readonly guider: Guider
  readonly guidanceLabel: string
  readonly sampler: Sampler
  readonly steps: number
  readonly seeds: readonly number[]
  readonly conditioning: Conditioning
  readonly signal: AbortSignal
  readonly progress: ProgressReporter
  readonly progressLabel: string
  /** One model run per branch instead of one per model (to measure what batching saves). */
  readonly unbatched?: boolean
}

export interface RunOutcome {
  readonly images: RawImage[]
  readonly labels: string[]
  readonly result: SampleResult
  /** Model runs actually made (differs from `result.modelCalls` with `unbatched`). */
  readonly modelRuns: number
  /** Wall time of the run, model loading excluded, decoding included. */
  readonly seconds: number
}

/** Splits each request into one `predict` per branch (what an unbatched pipeline would do). */
function unbatchedDenoiser(inner: Denoiser, counter: { runs: number }): Denoiser {
  return {
    specificationVersion: 'v1',
    family: inner.family,
    async predict(request) {
      const out: Prediction[] = []
      for (const branch of request.branches) {
        const [p] = await inner.predict({ ...request, branches: [branch] })
        counter.runs++
        out.push(p as Prediction)
      }
      return out
    },
  }
}

export async function runOnce(request: RunRequest): Promise<RunOutcome> {
  const { engine, seeds } = request
  const count = seeds.length
  const t0 = performance.now()
  const counter = { runs: 0 }
  const base = await engine.denoiser(request.conditioning, count)
  const denoiser = request.unbatched ? unbatchedDenoiser(base, counter) : base
  const plan = engine.plan(request.steps)
  const result = await sample({
    denoiser,
    guider: request.guider,
    sampler: request.sampler,
    plan,
    shape: engine.shape(count),
    seeds,
    signal: request.signal,
    onProgress: request.progress.start(request.progressLabel),
  })
  const images = await engine.images(result.samples, request.signal)
  return {
    images,
    labels: engine.labels(request.conditioning, count),
    result,
    modelRuns: request.unbatched ? counter.runs : result.modelCalls,
    seconds: (performance.now() - t0) / 1000,
  }
}
