// Type tests: one vocabulary across the guidance packages (a renamed option must not compile).
import { apg, apgComfy, apgDiffusers } from '@guidekit/apg'
import { adaptive } from './index.js'
import { cfgPlusPlus } from '@guidekit/cfg-pp'
import type { Guider } from '@guidekit/core'
import { rlg } from '@guidekit/rlg'
import { describe, expectTypeOf, it } from 'vitest'
import { cfg, cfgZeroStar } from '@guidekit/cfg'

describe('one vocabulary', () => {
  it('every strength is scale and every guider is a Guider', () => {
    expectTypeOf(cfg({ scale: 3, rescale: 0.7, space: 'x0' })).toEqualTypeOf<Guider>()
    expectTypeOf(cfgPlusPlus({ scale: 0.6 })).toEqualTypeOf<Guider>()
    expectTypeOf(apg({ scale: 5 })).toEqualTypeOf<Guider>()
    expectTypeOf(apgDiffusers({ scale: 7.5, rescale: 0.5 })).toEqualTypeOf<Guider>()
    expectTypeOf(apgComfy({ scale: 6 })).toEqualTypeOf<Guider>()
    expectTypeOf(rlg({ scale: 1.5, inner: cfg({ scale: 3 }), tunedOnlySteps: 2 })).toEqualTypeOf<Guider>()
    expectTypeOf(cfgZeroStar({ scale: 4, zeroInitSteps: 1 })).toEqualTypeOf<Guider>()
    expectTypeOf(adaptive(apg({ scale: 5 }), { threshold: 0.99, space: 'x0' })).toEqualTypeOf<Guider>()
  })

  it('the old names do not compile', () => {
    // @ts-expect-error: cfgPlusPlus takes scale (the paper's lambda)
    cfgPlusPlus({ lambda: 0.6 })
    // @ts-expect-error: rlg takes scale
    rlg({ weight: 1.5, inner: cfg({ scale: 3 }) })
    // @ts-expect-error: apgDiffusers takes scale
    apgDiffusers({ guidanceScale: 7.5 })
    // @ts-expect-error: apgComfy takes scale
    apgComfy({ cfg: 6 })
    // @ts-expect-error: cfg's rescale space is space
    cfg({ scale: 3, rescaleSpace: 'x0' })
    // @ts-expect-error: windows are interval(guider, window) in core
    cfg({ scale: 3, sigmaInterval: { min: 0.2, max: 5 } })
    // @ts-expect-error: combinators need a guider
    adaptive({ scale: 3 })
  })
})
