// Type tests for the public contracts: what compiles and what must not (vitest --typecheck).
import { describe, expectTypeOf, it } from 'vitest'
import type { DenoiseRequest, Denoiser, GuidedStep, Guider, Prediction, Sampler, StepContext } from './contracts.js'
import type { GuidekitErrorCode } from './errors.js'
import { interval } from './interval.js'
import { wrapDenoiser, type DenoiserMiddleware } from './middleware.js'
import { euler } from './samplers.js'
import { sample, unguided, type SampleResult } from './sample.js'
import { flowPlan, type SamplingPlan } from './schedules.js'
import type { Tensor } from './tensor.js'
import { gaussianDenoiser, referenceCfg } from './testing/index.js'

describe('contracts', () => {
  it('a denoise request says where on the trajectory it is', () => {
    expectTypeOf<DenoiseRequest>().toHaveProperty('step').toEqualTypeOf<number>()
    expectTypeOf<DenoiseRequest>().toHaveProperty('steps').toEqualTypeOf<number>()
    // @ts-expect-error: step and steps are required
    const request: DenoiseRequest = { x: null as unknown as Tensor, sigma: 1, timestep: 1000, branches: [] }
    void request
    expectTypeOf<Denoiser['predict']>().returns.toEqualTypeOf<Promise<Prediction[]>>()
  })

  it('guiders, samplers and combinators are values of the contract types', () => {
    expectTypeOf(unguided()).toEqualTypeOf<Guider>()
    expectTypeOf(interval(referenceCfg(3), { sigma: [0.2, 5] })).toEqualTypeOf<Guider>()
    expectTypeOf(euler()).toEqualTypeOf<Sampler>()
    // @ts-expect-error: a window is sigma, steps or fraction
    interval(unguided(), { time: [0, 1] })
    expectTypeOf<Awaited<ReturnType<ReturnType<Guider['start']>['step']>>>().toEqualTypeOf<GuidedStep>()
    expectTypeOf<StepContext['predict']>().parameters.toEqualTypeOf<[branches: readonly import('./contracts.js').Branch[]]>()
  })

  it('sample() needs a plan and returns counts', () => {
    expectTypeOf(sample).parameter(0).toHaveProperty('plan').toEqualTypeOf<SamplingPlan>()
    expectTypeOf(sample({ denoiser: gaussianDenoiser({ family: 'flow', means: { positive: 0 } }), guider: unguided(), sampler: euler(), plan: flowPlan({ steps: 2 }), shape: [1, 2] })).resolves.toEqualTypeOf<SampleResult>()
  })

  it('middleware wraps any denoiser into a denoiser', () => {
    const layer: DenoiserMiddleware = { wrapPredict: ({ request, predict }) => predict(request) }
    expectTypeOf(wrapDenoiser({ denoiser: gaussianDenoiser({ family: 'vp', means: { positive: 0 } }), middleware: layer })).toEqualTypeOf<Denoiser>()
    // @ts-expect-error: transformRequest returns a request, not predictions
    const bad: DenoiserMiddleware = { transformRequest: () => [] as Prediction[] }
    void bad
  })

  it('error codes are one closed union', () => {
    expectTypeOf<'MODEL_INVALID'>().toExtend<GuidekitErrorCode>()
    expectTypeOf<'model-invalid'>().not.toExtend<GuidekitErrorCode>()
  })
})
