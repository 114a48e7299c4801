import { flowPlan, vpPlan, vpSchedule } from '@guidekit/core'
import type { SamplingPlan, VpPlanOptions, VpSchedule } from '@guidekit/core'
import type { ModelCard } from './model-card.js'

/** The core VP schedule of a `'vp'` card (`undefined` for flow cards). */
export function scheduleFromCard(card: ModelCard): VpSchedule | undefined {
  const s = card.schedule
  if (s.family !== 'vp') return undefined
  return vpSchedule({
    ...(s.betaSchedule === undefined ? {} : { betaSchedule: s.betaSchedule }),
    ...(s.betaStart === undefined ? {} : { betaStart: s.betaStart }),
    ...(s.betaEnd === undefined ? {} : { betaEnd: s.betaEnd }),
    ...(s.trainSteps === undefined ? {} : { trainSteps: s.trainSteps }),
  })
}

/**
 * A sampling plan for a card's model. Flow cards: core's `flowPlan` with the card's `shift` and
 * `trainSteps` (timestep = sigma * trainSteps). VP cards: `vpPlan` over the card's beta schedule with, by
 * default, `linspace` spacing rounded to integers (999 ... 0, as the fashion UNet was evaluated; it covers the
 * full noise range, arXiv 2305.08891), overridable with `vp`.
 *
 * @example
 * const plan = planFromCard(denoiser.card, { steps: 30 })
 */
export function planFromCard(card: ModelCard, options: { readonly steps: number; readonly vp?: Omit<VpPlanOptions, 'steps'> }): SamplingPlan {
  const s = card.schedule
  if (s.family === 'flow') {
    return flowPlan({ steps: options.steps, ...(s.shift === undefined ? {} : { shift: s.shift }), ...(s.trainSteps === undefined ? {} : { trainSteps: s.trainSteps }) })
  }
  return vpPlan(scheduleFromCard(card) as VpSchedule, { spacing: 'linspace', roundTimesteps: true, ...options.vp, steps: options.steps })
}
