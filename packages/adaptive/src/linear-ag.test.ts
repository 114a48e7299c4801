import { GuidekitError, euler, gaussianDenoiser, sample, vpPlan, vpSchedule } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { fitLinearAG, linearAG, linearAGRecorder, parseLinearAGCoefficients } from './index.js'

const n = 16
// Means that differ element by element (a uniform offset would make the regressors linearly dependent).
const denoiser = gaussianDenoiser({
  family: 'vp',
  means: { positive: Float32Array.from({ length: n }, (_, i) => Math.cos(i) + 0.5), negative: Float32Array.from({ length: n }, (_, i) => 0.5 * Math.sin(2 * i)) },
})
const plan = vpPlan(vpSchedule(), { steps: 12, karras: true })

async function record(space: 'epsilon' | 'x0') {
  const recorder = linearAGRecorder({ scale: 5, space })
  for (const seed of [1, 2, 3]) await sample({ denoiser, guider: recorder.guider, sampler: euler(), plan, shape: [4, n], seed })
  return recorder
}

describe('LinearAG', () => {
  it('records, fits, serialises and applies coefficients close to full CFG at fewer evaluations', async () => {
    for (const space of ['epsilon', 'x0'] as const) {
      const recorder = await record(space)
      expect(recorder.trajectories).toHaveLength(3)
      const coefficients = fitLinearAG(recorder.trajectories, { sampler: 'euler', scale: recorder.scale, space })
      expect(coefficients.steps).toBe(12)
      expect(coefficients.coefficients.filter(Boolean)).toHaveLength(6) // odd steps
      const json = JSON.parse(JSON.stringify(coefficients))
      const guider = linearAG({ coefficients: parseLinearAGCoefficients(json), sampler: 'euler' })
      const fast = await sample({ denoiser, guider, sampler: euler(), plan, shape: [4, n], seed: 9 })
      const full = await sample({ denoiser, guider: recorder.guider, sampler: euler(), plan, shape: [4, n], seed: 9 })
      expect(fast.nfe).toBe(24 - 6)
      expect(fast.guidance.savedNfe).toBe(6)
      const err = fast.samples.data.reduce((m, v, i) => Math.max(m, Math.abs(v - (full.samples.data[i] as number))), 0)
      // The toy's predictions are affine in x, so the regression is nearly exact on an unseen seed.
      expect(err).toBeLessThan(0.05)
    }
  })

  it('rejects coefficients fitted for another step count or sampler, and malformed files', async () => {
    const recorder = await record('epsilon')
    const coefficients = fitLinearAG(recorder.trajectories, { sampler: 'euler', scale: 5 })
    const other = vpPlan(vpSchedule(), { steps: 20, karras: true })
    await expect(sample({ denoiser, guider: linearAG({ coefficients }), sampler: euler(), plan: other, shape: [1, n] })).rejects.toThrow(/coefficients.steps must equal .* fitted for 12 steps, this run has 20/)
    expect(() => linearAG({ coefficients, sampler: 'dpmpp-2m' })).toThrow(/sampler/)
    expect(() => parseLinearAGCoefficients({ ...coefficients, coefficients: coefficients.coefficients.slice(1) })).toThrow(/coefficients.coefficients/)
    expect(() => parseLinearAGCoefficients({ ...coefficients, format: 'x' })).toThrow(/format/)
    expect(() => fitLinearAG(recorder.trajectories, { sampler: 'euler', scale: 5, predictSteps: [0] })).toThrow(/predictSteps/)
    const error = (() => {
      try {
        parseLinearAGCoefficients({ ...coefficients, steps: 0 })
      } catch (e) {
        return e
      }
      return undefined
    })()
    expect(GuidekitError.isInstance(error)).toBe(true)
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('steps') })
  })
})
