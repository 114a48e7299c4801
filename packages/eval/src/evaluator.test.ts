import { Tensor } from '@guidekit/core'
import { fashionModel } from '@guidekit/models-fashion'
import { afterAll, describe, expect, it } from 'vitest'
import { loadEvaluator } from './evaluator.js'
import type { Evaluator } from './evaluator.js'
import { frechetDistance } from './frechet.js'
import { evaluateQuality } from './quality.js'
import { decodeStatistics, encodeStatistics, fashionMnistTestStatistics } from './reference.js'
import { featureStatistics } from './statistics.js'

let evaluator: Evaluator | undefined
const load = async () => (evaluator ??= await loadEvaluator(fashionModel('fashion-eval').onnxPath, { sessionOptions: { threads: 1 } }))
afterAll(async () => evaluator?.dispose())

describe('shipped reference statistics', () => {
  it('belong to the shipped fashion-eval (regenerate with make-reference after retraining)', async () => {
    const e = await load()
    const ref = fashionMnistTestStatistics({ evaluatorSha256: e.sha256 })
    expect(ref.dim).toBe(256)
    expect(ref.count).toBe(10_000)
    expect(ref.covariance[3 * 256 + 7]).toBe(ref.covariance[7 * 256 + 3])
    expect(() => fashionMnistTestStatistics({ evaluatorSha256: '0'.repeat(64) })).toThrow(/regenerate/)
  })

  it('disposes idempotently', async () => {
    const e = await loadEvaluator(fashionModel('fashion-eval').onnxPath, { sessionOptions: { threads: 1 } })
    await e.dispose()
    await expect(e.dispose()).resolves.toBeUndefined()
  })

  it('round-trip through the binary encoding exactly', () => {
    const stats = featureStatistics({ count: 4, dim: 3, data: Float64Array.from([1, 2, 3, 0.1, 5, -6, 7, 8, 9.5, 3, 3, 3]) })
    const back = decodeStatistics(encodeStatistics(stats), 3, 4)
    expect(Array.from(back.mean)).toEqual(Array.from(stats.mean))
    expect(Array.from(back.covariance)).toEqual(Array.from(stats.covariance))
  })
})

describe('evaluateQuality with fashion-eval', () => {
  it('scores blank images far from the data and returns every metric', async () => {
    const e = await load()
    const reference = fashionMnistTestStatistics({ evaluatorSha256: e.sha256 })
    // 20 images: smooth random blobs (not clothes) in two "classes".
    const data = new Float32Array(20 * 784)
    for (let b = 0; b < 20; b++) {
      for (let i = 0; i < 784; i++) {
        const y = Math.floor(i / 28)
        const x = i % 28
        data[b * 784 + i] = Math.tanh(3 * Math.sin((x + b) / 4) * Math.cos((y - b) / 5)) * 1.2
      }
    }
    const images = new Tensor(data, [20, 1, 28, 28])
    const labels = Array.from({ length: 20 }, (_, i) => i % 2)
    const m = await evaluateQuality({ images, labels, evaluator: e, reference })
    expect(m.count).toBe(20)
    expect(m.accuracy).toBeGreaterThanOrEqual(0)
    expect(m.accuracy).toBeLessThanOrEqual(1)
    // The reference's floor at n = 200 is ~3: 20 synthetic images are much farther away.
    expect(m.frechetDistance).toBeGreaterThan(10)
    expect(m.saturation.clippedFraction).toBeGreaterThan(0)
    expect(m.reward).toBeLessThan(0)
    expect(m.diversity).toBeGreaterThan(0)
    const { features } = await e.evaluate(images, { batchSize: 7 })
    expect(features.count).toBe(20)
    expect(features.dim).toBe(256)
    // Batching does not change the features.
    const whole = await e.evaluate(images)
    expect(frechetDistance(featureStatistics(features), featureStatistics(whole.features))).toBeLessThan(1e-6)
  })
})
