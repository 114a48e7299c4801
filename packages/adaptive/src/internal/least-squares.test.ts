import { describe, expect, it } from 'vitest'
import { NormalEquations, solveLinearSystem } from './least-squares.js'

describe('solveLinearSystem', () => {
  it('solves a system that needs pivoting', () => {
    const x = solveLinearSystem(
      [
        [0, 2, 1],
        [1, 1, 1],
        [2, 1, 3],
      ],
      [5, 6, 13],
    )
    // solution (1, 2, 3)... check by substitution
    expect(x[0]! * 0 + x[1]! * 2 + x[2]! * 1).toBeCloseTo(5, 12)
    expect(x[0]! + x[1]! + x[2]!).toBeCloseTo(6, 12)
    expect(2 * x[0]! + x[1]! + 3 * x[2]!).toBeCloseTo(13, 12)
  })

  it('rejects singular systems with an explanation', () => {
    expect(() =>
      solveLinearSystem(
        [
          [1, 2],
          [2, 4],
        ],
        [1, 2],
      ),
    ).toThrow(/singular/)
  })
})

describe('NormalEquations', () => {
  it('recovers exact coefficients from noiseless data and reports zero residual', () => {
    const ls = new NormalEquations(3)
    const beta = [0.7, -1.2, 0.4]
    for (let i = 0; i < 50; i++) {
      const row = [Math.sin(i), Math.cos(3 * i), (i % 7) / 7]
      ls.add(row, row.reduce((s, v, k) => s + v * beta[k]!, 0))
    }
    const fit = ls.solve()
    fit.forEach((b, k) => expect(b).toBeCloseTo(beta[k]!, 9))
    expect(ls.residualRms(fit)).toBeLessThan(1e-7)
  })

  it('gives the least-squares line through noisy points', () => {
    // y = 2 x + 1 fitted with regressors (x, 1) on points (0, 1), (1, 3.5), (2, 4.5): slope 1.75, intercept 1.25
    const ls = new NormalEquations(2)
    ls.add([0, 1], 1)
    ls.add([1, 1], 3.5)
    ls.add([2, 1], 4.5)
    const [slope, intercept] = ls.solve()
    expect(slope).toBeCloseTo(1.75, 12)
    expect(intercept).toBeCloseTo(1.25, 12)
  })

  it('needs at least one observation per regressor', () => {
    const ls = new NormalEquations(3)
    ls.add([1, 2, 3], 1)
    expect(() => ls.solve()).toThrow(/observations/)
  })
})
