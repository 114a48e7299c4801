import { GuidekitError, euler, flowPlan, gaussianDenoiser, sample } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { buildGuidance, guidanceHelp } from './guidance.js'

const one = async (spec: string) => {
  const [g] = await buildGuidance(spec)
  return g!
}

describe('buildGuidance', () => {
  it('reaches every guidance package from a spec string, with the parameters given', async () => {
    expect((await one('none')).guider.name).toBe('unguided')
    expect((await one('cfg:scale=4.5,rescale=0.7')).guider.name).toMatch(/^cfg\(scale=4\.5, rescale=0\.7/)
    expect((await one('interval(sigma=0.2..0.8):cfg(scale=3)')).guider.name).toMatch(/sigma=\(0\.2, 0\.8\]/)
    expect((await one('cfg-zero-star:scale=4')).guider.name).toMatch(/4/)
    expect((await one('tcfg:scale=4')).guider.name).toMatch(/4/)
    expect((await one('cfg++:scale=0.4')).guider.name).toBe('cfg++(scale=0.4)')
    expect((await one('apg:scale=8,eta=0,momentum=-0.5,norm-threshold=15')).guider.name).toMatch(/apg\(scale=8, eta=0, momentum=-0\.5, normThreshold=15/)
    expect((await one('apg:normThreshold=15')).guider.name).toMatch(/normThreshold=15/)
    const ag = await one('adaptive(threshold=0.95):apg(scale=8,eta=0)')
    expect(ag.guider.name).toMatch(/^adaptive\(apg\(scale=8.*threshold=0\.95/)
    expect(ag.needsTunedModel).toBe(false)
    const r = await one('rlg:scale=1.5,inner=cfg:scale=3')
    expect(r.guider.name).toMatch(/^rlg\(cfg\(scale=3\), scale=1\.5/)
    expect(r.needsTunedModel).toBe(true)
    expect((await one('adaptive:rlg(scale=2):cfg(scale=2)')).needsTunedModel).toBe(true)
    expect((await one('interval(sigma=0.2..inf):apg(scale=6)')).guider.name).toMatch(/apg/)
  })

  it('gives combinators a cfg inner guider by default', async () => {
    expect((await one('adaptive')).guider.name).toMatch(/^adaptive\(cfg\(scale=3\)/)
  })

  it('labels each guider with the spec as written', async () => {
    const list = await buildGuidance('cfg:scale=3; apg(scale=8, eta=0)')
    expect(list.map((g) => g.label)).toEqual(['cfg:scale=3', 'apg(scale=8, eta=0)'])
  })

  it.each([
    ['nope:scale=3', /Unknown guidance "nope".*known: none, cfg/],
    ['cfg:scael=3', /cfg has no parameter "scael"; its parameters: scale, rescale/],
    ['cfg:scale=abc', /cfg: scale must be a number, got "abc"/],
    ['cfg:scale=3,scale=4', /scale is given twice/],
    ['cfg:space=v', /space must be one of epsilon, x0/],
    ['interval(sigma=0.5):cfg', /sigma must be a range a\.\.b/],
    ['apg:scale=8:cfg', /apg does not wrap another guider/],
    ['interval:cfg', /interval needs exactly one of sigma=a\.\.b/],
    ['rlg:tuned-only-steps=1.5', /tuned-only-steps must be an integer/],
    ['linear-ag:coefficients=f.json', /no way to read files/],
  ])('rejects %j with a usage error', async (spec, message) => {
    const error = await buildGuidance(spec).catch((e: unknown) => e)
    expect(GuidekitError.isInstance(error)).toBe(true)
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' })
    expect((error as Error).message).toMatch(message)
  })

  it.each(['cfg:rescale=2', 'apg:momentum=1.5', 'adaptive(threshold=1.5):cfg', 'cfg++:scale=-1'])(
    'reports out-of-range %j with the package\'s range check, naming the spec',
    async (spec) => {
      const error = await buildGuidance(spec).catch((e: unknown) => e)
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' })
      expect((error as Error).message).toMatch(new RegExp(`^--guidance "${spec.replace(/[()+]/g, '\\$&')}": \\w+ must be`))
    },
  )

  it('passes the parameters through: sampled means on the Gaussian toy follow the scale and weight', async () => {
    const mean = async (spec: string, models?: Record<string, Record<string, number>>) => {
      const denoiser = gaussianDenoiser({ family: 'flow', means: { positive: 1, negative: 0 }, std: 0.1, ...(models ? { models } : {}) })
      const { guider } = await one(spec)
      const r = await sample({ denoiser, guider, sampler: euler(), plan: flowPlan({ steps: 40 }), shape: [4, 1, 8, 8], seed: 3 })
      return r.samples.data.reduce((a, v) => a + v, 0) / r.samples.data.length
    }
    expect(await mean('none')).toBeCloseTo(1, 1)
    expect(await mean('cfg:scale=3')).toBeCloseTo(3, 1)
    const models = { base: { positive: 1, negative: 0 }, tuned: { positive: 2, negative: 0 } }
    // RLG: D = D_base + w (D_tuned - D_base) with the inner guider off (scale 1): 1 + 1.5 * (2 - 1)
    expect(await mean('rlg:scale=1.5,inner=cfg:scale=1', models)).toBeCloseTo(2.5, 1)
  })

  it('documents every strategy and parameter in the help text', () => {
    const help = guidanceHelp()
    for (const word of ['cfg', 'cfg++', 'apg', 'adaptive', 'rlg', 'interval', 'norm-threshold', 'zero-init-steps', 'tuned-only-steps', 'space']) expect(help).toContain(word)
  })
})
