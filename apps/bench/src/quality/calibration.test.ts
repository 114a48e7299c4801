import { adaptive } from '@guidekit/adaptive'
import { cfg } from '@guidekit/cfg'
import { euler, flowPlan, gaussianDenoiser, sample } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { calibrate, chooseThreshold, predictedNfe, similarityRecorder } from './calibration.js'

describe('AG calibration', () => {
  it("predicts AG's NFE from recorded similarities: S + k + 1 when an image switches at step k, else 2S", () => {
    const sims = [
      [0.5, 0.9, 0.99, 0.999],
      [0.5, 0.6, 0.7, 0.8],
    ]
    expect(predictedNfe(sims, 0.95)).toBe((4 + 2 + 1 + 8) / 2)
    expect(predictedNfe(sims, 0.4)).toBe((4 + 1 + 4 + 1) / 2)
    expect(predictedNfe(sims, 1)).toBe(8)
  })

  it('chooses the threshold whose predicted NFE is closest to the target saving', () => {
    const sims = Array.from({ length: 10 }, (_, i) => Array.from({ length: 10 }, (_, k) => 1 - 10 ** -(0.5 + (k * (1 + i / 10)) / 2)))
    for (const saving of [0.15, 0.25, 0.35]) {
      const t = chooseThreshold(sims, saving)
      expect(Math.abs(predictedNfe(sims, t) - (1 - saving) * 20)).toBeLessThan(0.6)
    }
    const c = calibrate({ generator: 'g', sampler: 'euler', steps: 10, scale: 3, images: 10, seed: 0, modelSha: 'x', similarities: sims }, [0.25])
    expect(c.predictedNfe['0.25']).toBe(predictedNfe(sims, c.thresholds['0.25'] as number))
  })

  it('matches the NFE that adaptive(cfg) measures on the same seeds (exact, not an estimate)', async () => {
    const denoiser = gaussianDenoiser({ family: 'flow', means: { positive: 1, negative: -0.5 }, std: 0.5 })
    const plan = flowPlan({ steps: 12 })
    const shape = [6, 1, 4, 4]
    const recorder = similarityRecorder(cfg({ scale: 3 }))
    const base = await sample({ denoiser, guider: recorder.guider, sampler: euler(), plan, shape, seed: 5 })
    expect(base.nfe).toBe(24)
    expect(recorder.similarities).toHaveLength(6)
    // Thresholds must lie in (0, 1]: quantiles of the positive similarities seen.
    const sorted = recorder.similarities
      .flat()
      .filter((s) => s > 0)
      .sort((a, b) => a - b)
    for (const q of [0.2, 0.5, 0.7]) {
      const threshold = sorted[Math.floor(q * sorted.length)] as number
      const ag = await sample({ denoiser, guider: adaptive(cfg({ scale: 3 }), { threshold }), sampler: euler(), plan, shape, seed: 5 })
      expect(ag.nfe).toBeCloseTo(predictedNfe(recorder.similarities, threshold), 10)
      expect(ag.nfe).toBeLessThan(24)
    }
  })
})
