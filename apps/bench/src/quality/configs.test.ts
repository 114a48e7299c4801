import { flowPlan } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import type { AgCalibration } from './calibration.js'
import { buildConfigs, CLAIM_SAVING, fullGrid, quickGrid, textToImageGrid, type Config, type Grid } from './configs.js'

const calibration = { thresholds: { '0.15': 0.999, [String(CLAIM_SAVING)]: 0.995, '0.35': 0.99 } } as unknown as AgCalibration
const build = (grid: Grid, rl = true, draft = true) => buildConfigs({ generator: 'fashion-dit', samplers: ['euler'], grid, rl, draft, plan: (steps) => flowPlan({ steps }), calibration: () => calibration })
const work = (configs: readonly Config[]) => configs.reduce((s, c) => s + c.expectedNfe * Math.max(...c.sizes), 0)
const short = (c: Config) => c.id.split('__').slice(3).join(' ')

describe('the grids', () => {
  it('full run: only the rows a claim uses, each at 1000 images, 10 steps (210 image-NFE per image on fashion-dit)', () => {
    const configs = build(fullGrid)
    expect(configs.map(short)).toEqual([
      'cfg scale3',
      'cfg scale5',
      'apg scale5',
      expect.stringMatching(/^cfg\+\+ matched3_lambda/),
      'ag-cfg scale3_saving0.25_threshold0.995',
      'linear-ag scale3_saving0.25',
      'rlg scale3_weight0',
      'rlg scale3_weight1',
      'rlg scale3_weight2',
      'draft-attention scale3_keep0.5',
    ])
    expect(configs.every((c) => c.steps === 10 && c.sizes.length === 1 && c.sizes[0] === 1000)).toBe(true)
    expect(work(configs)).toBe(210_000)
  })

  it('--sweep adds the other points at that size and grows the claim rows from it', () => {
    const configs = build({ ...fullGrid, sweepImages: 200 })
    expect(configs.length).toBe(21)
    expect(configs.find((c) => short(c) === 'cfg scale7.5')?.sizes).toEqual([200])
    expect(configs.find((c) => short(c) === 'ag-cfg scale3_saving0.35_threshold0.99')?.sizes).toEqual([200])
    expect(configs.find((c) => short(c) === 'cfg scale3')?.sizes).toEqual([200, 1000])
  })

  it('quick: deciding rows grow to 200, claim rows to 100, the rest stay at 50', () => {
    const configs = build(quickGrid)
    expect(configs.find((c) => short(c) === 'cfg scale3')?.sizes).toEqual([50, 100, 200])
    expect(configs.find((c) => short(c) === 'apg scale5')?.sizes).toEqual([50, 100])
    expect(configs.find((c) => short(c) === 'cfg scale1')?.sizes).toEqual([50])
  })

  it('text-to-image: CFG at 4 scales and the rows its claims need, all at the claim size', () => {
    const configs = build(textToImageGrid(fullGrid), false, false)
    expect(configs.map(short)).toEqual(['cfg scale1.5', 'cfg scale3', 'cfg scale5', 'cfg scale7.5', 'apg scale5', expect.stringMatching(/^cfg\+\+ matched3_lambda/), 'ag-cfg scale5_saving0.25_threshold0.995'])
    expect(configs.every((c) => c.sizes.length === 1 && c.sizes[0] === 1000)).toBe(true)
    expect(work(configs)).toBe(135_000)
  })
})
