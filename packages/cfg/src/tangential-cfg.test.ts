import { Tensor, combine, randn } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { fakeStepContext, fromEpsilon, startSession } from '@guidekit/core/testing'
import { cfgCombine, tangentialCfg, tangentialCombine } from './index.js'

/** u projected on the top right-singular vector of [c; u], by power iteration on the 2 x 2 Gram matrix. */
function reference(c: Float32Array, u: Float32Array, w: number): number[] {
  let y1 = 1
  let y2 = 0.5
  const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * (b[i] as number), 0)
  const g = [dot(c, c), dot(c, u), dot(u, u)] as const
  for (let k = 0; k < 500; k++) {
    const z1 = g[0] * y1 + g[1] * y2
    const z2 = g[1] * y1 + g[2] * y2
    const n = Math.hypot(z1, z2)
    y1 = z1 / n
    y2 = z2 / n
  }
  const v = Array.from(c, (ci, i) => y1 * ci + y2 * (u[i] as number))
  const vn = Math.hypot(...v)
  const uv = v.reduce((s, vi, i) => s + (u[i] as number) * vi, 0) / vn
  return v.map((vi, i) => {
    const up = (uv * vi) / vn
    return up + w * ((c[i] as number) - up)
  })
}

describe('tangential CFG', () => {
  it('matches an explicit projection on the top singular vector, per sample', () => {
    const c = randn([2, 3, 4, 4], 5)
    const u = combine([
      [0.8, c],
      [0.6, randn([2, 3, 4, 4], 6)],
    ])
    const out = tangentialCombine(c, u, 7.5)
    const n = c.sampleSize
    for (let b = 0; b < 2; b++) {
      const ref = reference(c.data.subarray(b * n, (b + 1) * n), u.data.subarray(b * n, (b + 1) * n), 7.5)
      ref.forEach((v, i) => expect(out.data[b * n + i]).toBeCloseTo(v, 3))
    }
  })

  it('is plain CFG when u is parallel to c, and w c when u is orthogonal and smaller', () => {
    const c = Tensor.from([1, 2, 3, 4], [1, 4])
    const parallel = Tensor.from([2, 4, 6, 8], [1, 4])
    tangentialCombine(c, parallel, 3).data.forEach((v, i) => expect(v).toBeCloseTo(cfgCombine(c, parallel, 3).data[i] as number, 5))
    const orthogonal = Tensor.from([0.2, -0.1, 0, 0], [1, 4])
    tangentialCombine(c, orthogonal, 3).data.forEach((v, i) => expect(v).toBeCloseTo(3 * (c.data[i] as number), 5))
  })

  it('runs as a guider in the model-output space and asks for one branch at w = 1', async () => {
    const c = randn([2, 6], 7)
    const u = randn([2, 6], 8)
    const x = Tensor.zeros([2, 6])
    const { ctx, calls } = fakeStepContext({ x, predictions: { positive: fromEpsilon(c), negative: fromEpsilon(u) } })
    const out = await startSession(tangentialCfg({ scale: 4 }), 10, x.shape).step(ctx)
    expect(calls[0]).toHaveLength(2)
    tangentialCombine(c, u, 4).data.forEach((v, i) => expect(out.denoised.data[i]).toBeCloseTo(-v, 5))
    const one = fakeStepContext({ x, predictions: { positive: fromEpsilon(c), negative: fromEpsilon(u) } })
    await startSession(tangentialCfg({ scale: 1 }), 10, x.shape).step(one.ctx)
    expect(one.calls).toEqual([[{ role: 'positive' }]])
  })
})
