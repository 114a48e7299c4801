import { describe, expect, it } from 'vitest'
import type { DenoiseRequest, Prediction } from './contracts.js'
import { wrapDenoiser } from './middleware.js'
import { euler } from './samplers.js'
import { sample } from './sample.js'
import { flowPlan } from './schedules.js'
import { gaussianDenoiser, referenceCfg } from './testing/index.js'

const toy = () => gaussianDenoiser({ family: 'flow', means: { positive: 1, negative: -1 }, std: 0.5 })

describe('wrapDenoiser', () => {
  it('sees every request with its step and step count, in order, and passes predictions through', async () => {
    const seen: [number, number, number][] = []
    const denoiser = wrapDenoiser({
      denoiser: toy(),
      middleware: {
        wrapPredict: async ({ request, predict }) => {
          seen.push([request.step, request.steps, request.branches.length])
          return predict(request)
        },
      },
    })
    const plain = await sample({ denoiser: toy(), guider: referenceCfg(3), sampler: euler(), plan: flowPlan({ steps: 4 }), shape: [2, 3], seed: 1 })
    const wrapped = await sample({ denoiser, guider: referenceCfg(3), sampler: euler(), plan: flowPlan({ steps: 4 }), shape: [2, 3], seed: 1 })
    expect(seen).toEqual([0, 1, 2, 3].map((s) => [s, 4, 2]))
    expect([...wrapped.samples.data]).toEqual([...plain.samples.data])
  })

  it('runs the first layer outermost: it transforms first and sees the predictions last', async () => {
    const order: string[] = []
    const layer = (name: string) => ({
      transformRequest: (r: DenoiseRequest) => {
        order.push(`${name}:request`)
        return r
      },
      wrapPredict: async ({ request, predict }: { request: DenoiseRequest; predict: (r: DenoiseRequest) => Promise<Prediction[]> }) => {
        order.push(`${name}:before`)
        const out = await predict(request)
        order.push(`${name}:after`)
        return out
      },
    })
    const denoiser = wrapDenoiser({ denoiser: toy(), middleware: [layer('outer'), layer('inner')] })
    await sample({ denoiser, guider: referenceCfg(3), sampler: euler(), plan: flowPlan({ steps: 1 }), shape: [1, 2] })
    expect(order).toEqual(['outer:request', 'outer:before', 'inner:request', 'inner:before', 'inner:after', 'outer:after'])
  })

  it('lets a layer change the request (here: the negative branch replaced by the positive one)', async () => {
    const denoiser = wrapDenoiser({
      denoiser: toy(),
      middleware: { transformRequest: (r) => ({ ...r, branches: r.branches.map(() => ({ role: 'positive' })) }) },
    })
    const guided = await sample({ denoiser, guider: referenceCfg(5), sampler: euler(), plan: flowPlan({ steps: 8 }), shape: [1, 4], seed: 2 })
    const unguided = await sample({ denoiser: toy(), guider: referenceCfg(1), sampler: euler(), plan: flowPlan({ steps: 8 }), shape: [1, 4], seed: 2 })
    guided.samples.data.forEach((v, i) => expect(v).toBeCloseTo(unguided.samples.data[i] as number, 5))
  })

  it('rejects a missing denoiser and malformed layers', () => {
    expect(() => wrapDenoiser({ denoiser: {} as never, middleware: {} })).toThrow(/needs a denoiser/)
    expect(() => wrapDenoiser({ denoiser: toy(), middleware: [{ wrapPredict: 3 as never }] })).toThrow(/middleware\[0\]/)
  })
})
