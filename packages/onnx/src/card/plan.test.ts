import { describe, expect, it } from 'vitest'
import { fixture } from '../__fixtures__/helpers.js'
import { readModelCard } from '../node/files.js'
import { parseGeneratorCard } from './parse.js'
import { planFromCard, scheduleFromCard } from './plan.js'

describe('planFromCard', () => {
  it('gives flow plans with timestep = sigma * 1000 for flow cards', () => {
    const card = parseGeneratorCard(readModelCard(fixture('class-conditional', 'tiny-dit.card.json')))
    const plan = planFromCard(card, { steps: 10 })
    expect(plan.family).toBe('flow')
    expect(plan.sigmas).toHaveLength(11)
    expect(plan.sigmas[0]).toBeCloseTo(1, 10)
    expect(plan.timesteps[3]).toBeCloseTo((plan.sigmas[3] as number) * 1000, 9)
    expect(scheduleFromCard(card)).toBeUndefined()
  })

  it('gives VP plans over the card schedule, rounded linspace 999 -> 0 by default', () => {
    const card = parseGeneratorCard(readModelCard(fixture('class-conditional', 'tiny-unet.card.json')))
    const plan = planFromCard(card, { steps: 30 })
    expect(plan.family).toBe('vp')
    expect(plan.timesteps[0]).toBe(999)
    expect(plan.timesteps[29]).toBe(0)
    expect(plan.timesteps.every((t) => Number.isInteger(t))).toBe(true)
    const schedule = scheduleFromCard(card)!
    // linear betas 1e-4 -> 0.02 (the fixture card): sigma_999 = sqrt((1 - abar) / abar)
    expect(plan.sigmas[0]).toBeCloseTo(schedule.sigmas[999] as number, 6)
    expect(planFromCard(card, { steps: 20, spacing: 'leading' }).timesteps[0]).toBe(951)
  })
})
