import { describe, expect, it } from 'vitest'
import { guidanceRescale, predictPair } from './guidance-kit.js'
import { combine, std } from './kernels.js'
import { Tensor } from './tensor.js'
import { fakeStepContext, fromEpsilon } from './testing/index.js'

const c = Tensor.from([1, 2, 3, 4, 5, 6], [2, 3])
const u = Tensor.from([0, 1, 1, 2, 2, 2], [2, 3])

describe('guidanceRescale', () => {
  it('with phi = 1 gives the guided prediction the reference (unbiased) std, per sample', () => {
    const guided = combine([
      [-6.5, u],
      [7.5, c],
    ])
    const out = guidanceRescale(guided, c, 1)
    const sc = std(c)
    const so = std(out)
    expect(so[0]).toBeCloseTo(sc[0] as number, 5)
    expect(so[1]).toBeCloseTo(sc[1] as number, 5)
    // unbiased: std([1, 2, 3]) = 1
    expect(sc[0]).toBeCloseTo(1, 12)
  })

  it('blends with phi: phi = 0 is the identity', () => {
    const guided = Tensor.from([3, -1, 4, 1, 5, 9], [2, 3])
    expect([...guidanceRescale(guided, c, 0).data]).toEqual([...guided.data])
    const half = guidanceRescale(guided, c, 0.5)
    const full = guidanceRescale(guided, c, 1)
    half.data.forEach((v, i) => expect(v).toBeCloseTo(0.5 * (guided.data[i] as number) + 0.5 * (full.data[i] as number), 5))
  })

  it('leaves a constant prediction unchanged instead of dividing by std = 0', () => {
    const constant = Tensor.from([2, 2, 2, 5, 6, 7], [2, 3])
    const out = guidanceRescale(constant, c, 0.7)
    expect([...out.data.subarray(0, 3)]).toEqual([2, 2, 2])
    expect(out.data.every(Number.isFinite)).toBe(true)
  })

  it('rejects phi outside [0, 1] and mismatched shapes', () => {
    expect(() => guidanceRescale(c, c, 1.5)).toThrow(/rescale must be/)
    expect(() => guidanceRescale(c, Tensor.zeros([3, 2]), 0.5)).toThrow(/shape/)
  })
})

describe('predictPair', () => {
  it('asks for both branches in one call and returns them by name', async () => {
    const { ctx, calls } = fakeStepContext({ x: Tensor.zeros([2, 3]), predictions: { positive: fromEpsilon(c), negative: fromEpsilon(u) } })
    const { cond, uncond } = await predictPair(ctx, 'test')
    expect(calls).toEqual([[{ role: 'positive' }, { role: 'negative' }]])
    expect([...cond.noise.data]).toEqual([...c.data])
    expect([...uncond.noise.data]).toEqual([...u.data])
  })

  it('names the guider when a prediction has the wrong shape', async () => {
    const { ctx } = fakeStepContext({ x: Tensor.zeros([2, 3]), predictions: { positive: fromEpsilon(c), negative: fromEpsilon(Tensor.zeros([1, 3])) } })
    await expect(predictPair(ctx, 'myguider')).rejects.toMatchObject({ code: 'SHAPE_MISMATCH', message: expect.stringContaining('myguider') })
  })
})
