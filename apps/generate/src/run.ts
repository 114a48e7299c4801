// One sampling run (a batch of images for one guidance strategy), shared by `generate`, `grid` and
// `fit-linear-ag`.
import { GuidekitError, sample } from '@guidekit/core'
import type { Denoiser, Guider, Prediction, Sampler, SampleResult, SamplingPlan } from '@guidekit/core'
import type { RawImage } from '@guidekit/onnx'
import { UsageError } from './errors.js'
import type { Conditioning, Engine } from './models.js'
import type { ProgressReporter } from './progress.js'

export interface RunRequest {
  readonly engine: Engine
  readonly guider: Guider
  /** The spec as the user wrote it (named in errors). */
  readonly guidanceLabel: string
  readonly sampler: Sampler
  readonly plan: SamplingPlan
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

/**
 * Samples and decodes one batch. A `NON_FINITE` error that core blames on the guider (its `details.guider`)
 * is the user's guidance value at fault: it becomes a usage error naming the spec.
 */
export async function runOnce(request: RunRequest): Promise<RunOutcome> {
  const { engine, seeds } = request
  const count = seeds.length
  const t0 = performance.now()
  const counter = { runs: 0 }
  const base = await engine.denoiser(request.conditioning, count)
  const denoiser = request.unbatched ? unbatchedDenoiser(base, counter) : base
  let result: SampleResult
  try {
    result = await sample({
      denoiser,
      guider: request.guider,
      sampler: request.sampler,
      plan: request.plan,
      shape: engine.shape(count),
      seeds,
      signal: request.signal,
      onProgress: request.progress.start(request.progressLabel),
    })
  } catch (error) {
    if (GuidekitError.isInstance(error) && error.code === 'NON_FINITE' && typeof error.details.guider === 'string') {
      throw new UsageError(`--guidance ${JSON.stringify(request.guidanceLabel)} made sampling diverge: ${error.message}`)
    }
    throw error
  }
  const images = await engine.images(result.samples, request.signal)
  return {
    images,
    labels: engine.labels(request.conditioning, count),
    result,
    modelRuns: request.unbatched ? counter.runs : result.modelCalls,
    seconds: (performance.now() - t0) / 1000,
  }
}
