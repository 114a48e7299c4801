import { Tensor, combine, randn } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { fakeStepContext, fromEpsilon, startSession } from '@guidekit/core/testing'
import { cfgZeroStar, cfgZeroStarAlpha, cfgZeroStarCombine, cfgZeroStarX0, cfgZeroStarX0Combine } from './index.js'

describe('CFG-Zero*', () => {
  const c = randn([2, 4, 3, 3], 1)
  const u = combine([
    [0.8, c],
    [0.6, randn([2, 4, 3, 3], 2)],
  ])

  it('alpha is <c, u>/(|u|^2 + 1e-8) per sample', () => {
    const alpha = cfgZeroStarAlpha(c, u)
    for (let b = 0; b < 2; b++) {
      let cu = 0
      let uu = 0
      const n = c.sampleSize
      for (let i = b * n; i < (b + 1) * n; i++) {
        cu += (c.data[i] as number) * (u.data[i] as number)
        uu += (u.data[i] as number) ** 2
      }
      expect(alpha[b]).toBeCloseTo(cu / (uu + 1e-8), 12)
    }
    // alpha is the least-squares scale of u towards c: the residual c - alpha u is orthogonal to u
    const r = cfgZeroStarCombine(c, u, 0) // = alpha u
    const resid = combine([
      [1, c],
      [-1, r],
    ])
    const n = c.sampleSize
    let dotRU = 0
    for (let i = 0; i < n; i++) dotRU += (resid.data[i] as number) * (u.data[i] as number)
    expect(Math.abs(dotRU)).toBeLessThan(1e-4)
  })

  it('outputs zero (x0 = x) on zero-init steps without asking the model, then guides', async () => {
    const x = randn([2, 4, 3, 3], 3)
    const session = startSession(cfgZeroStar({ scale: 5, zeroInitSteps: 1 }), 10, x.shape)
    const first = fakeStepContext({ x, sigma: 2, step: 0, predictions: { positive: fromEpsilon(c, x, 2), negative: fromEpsilon(u, x, 2) } })
    const out0 = await session.step(first.ctx)
    expect(first.calls).toEqual([])
    expect([...out0.denoised.data]).toEqual([...x.data])
    const second = fakeStepContext({ x, sigma: 2, step: 1, predictions: { positive: fromEpsilon(c, x, 2), negative: fromEpsilon(u, x, 2) } })
    const out1 = await session.step(second.ctx)
    expect(second.calls).toHaveLength(1)
    const pred = cfgZeroStarCombine(c, u, 5)
    out1.denoised.data.forEach((v, i) => expect(v).toBeCloseTo((x.data[i] as number) - 2 * (pred.data[i] as number), 4))
  })

  it('the x0 form (ComfyUI node) differs from the epsilon form by (alpha - 1)(1 - s) x', async () => {
    const x = randn([2, 4, 3, 3], 4)
    const sigma = 1.7
    const predictions = { positive: fromEpsilon(c, x, sigma), negative: fromEpsilon(u, x, sigma) }
    const eps = await startSession(cfgZeroStar({ scale: 4, zeroInitSteps: 0 }), 10, x.shape).step(fakeStepContext({ x, sigma, predictions }).ctx)
    const x0 = await startSession(cfgZeroStarX0({ scale: 4 }), 10, x.shape).step(fakeStepContext({ x, sigma, predictions }).ctx)
    const alpha = cfgZeroStarAlpha(c, u)
    const n = x.sampleSize
    x0.denoised.data.forEach((v, i) => {
      const a = alpha[Math.floor(i / n)] as number
      expect(v - (eps.denoised.data[i] as number)).toBeCloseTo((a - 1) * (1 - 4) * (x.data[i] as number), 4)
    })
    const direct = cfgZeroStarX0Combine(x, predictions.positive.denoised, predictions.negative.denoised, 4)
    expect([...direct.data]).toEqual([...x0.denoised.data])
  })

  it('rejects a negative zeroInitSteps and a NaN scale', () => {
    expect(() => cfgZeroStar({ scale: 5, zeroInitSteps: -1 })).toThrow(/zeroInitSteps/)
    expect(() => cfgZeroStarX0({ scale: Number.NaN })).toThrow(/scale/)
  })

  it('keeps Tensor shapes', () => {
    expect(cfgZeroStarCombine(c, u, 3).shape).toEqual(c.shape)
    expect(cfgZeroStarAlpha(Tensor.zeros([3, 2]), Tensor.zeros([3, 2])).length).toBe(3)
  })
})
