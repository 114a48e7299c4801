import { describe, expect, it } from 'vitest'
import { classAccuracy, withinClassDiversity } from './classification.js'

describe('classAccuracy', () => {
  it('counts argmax hits', () => {
    const logits = { count: 3, dim: 3, data: Float32Array.from([5, 1, 0, 0, 2, 9, 1, 7, 3]) }
    expect(classAccuracy(logits, [0, 2, 2])).toBeCloseTo(2 / 3, 12)
    expect(() => classAccuracy(logits, [0, 1])).toThrow(/one entry per image/)
  })
})

describe('withinClassDiversity', () => {
  it('is the mean pairwise distance within each class, averaged over classes', () => {
    // Class 0: points (0,0), (3,4), (0,0): distances 5, 0, 5 -> 10/3. Class 1: (1,1), (1,2): 1. Class 2: one point (skipped).
    const features = { count: 6, dim: 2, data: Float32Array.from([0, 0, 3, 4, 1, 1, 0, 0, 1, 2, 9, 9]) }
    const d = withinClassDiversity(features, [0, 0, 1, 0, 1, 2])
    expect(d.byClass[0]).toBeCloseTo(10 / 3, 12)
    expect(d.byClass[1]).toBeCloseTo(1, 12)
    expect(d.byClass[2]).toBeUndefined()
    expect(d.mean).toBeCloseTo((10 / 3 + 1) / 2, 12)
  })

  it('is 0 for identical images (mode collapse)', () => {
    expect(withinClassDiversity({ count: 3, dim: 2, data: new Float32Array([1, 2, 1, 2, 1, 2]) }, [4, 4, 4]).mean).toBe(0)
  })
})
