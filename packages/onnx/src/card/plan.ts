// The sampling plan of a card's model: the one place that turns a card's schedule (and its recommended
// spacing) into timesteps and sigmas, used by the CLI, the benchmarks and library users alike.
import { flowPlan, vpPlan, vpSchedule } from '@guidekit/core'
import type { SamplingPlan, TimestepSpacing, VpSchedule } from '@guidekit/core'
import type { GeneratorCard } from './schema.js'

/** The core VP schedule of a `'vp'` card (`undefined` for flow cards). */
export function scheduleFromCard(card: GeneratorCard): VpSchedule | undefined {
  const s = card.schedule
  if (s.family !== 'vp') return undefined
  return vpSchedule({ betaSchedule: s.betaSchedule, betaStart: s.betaStart, betaEnd: s.betaEnd, trainSteps: s.trainSteps })
}

/** Options of {@link planFromCard}. */
export interface CardPlanOptions {
  readonly steps: number
  /** VP timestep spacing; default the card's `defaults.spacing`, else `'linspace'` (rounded, 999 ... 0). */
  readonly spacing?: Exclude<TimestepSpacing, 'linspace-exclusive'>
  /** Karras sigmas (VP models); default the card's `defaults.karras`, else false. */
  readonly karras?: boolean
}

/**
 * The sampling plan for a card's model.
 * - Flow cards: core's `flowPlan` with the card's `shift` and `trainSteps`; the model timestep is
 *   `sigma * schedule.timestepScale` (default `trainSteps`).
 * - VP cards: `vpPlan` over the card's betas with the chosen spacing (rounded timesteps; `leading` with
 *   steps offset 1 as SD1.5), or Karras sigmas with log-sigma timesteps; the trajectory ends at sigma 0.
 *
 * @example
 * const plan = planFromCard(model.card, { steps: 30 })
 * const karras = planFromCard(unet.card, { steps: 20, karras: true })
 */
export function planFromCard(card: GeneratorCard, options: CardPlanOptions): SamplingPlan {
  const s = card.schedule
  if (s.family === 'flow') {
    return flowPlan({ steps: options.steps, shift: s.shift, trainSteps: s.trainSteps, ...(s.timestepScale === undefined ? {} : { timestepScale: s.timestepScale }) })
  }
  const spacing = options.spacing ?? card.defaults?.spacing ?? 'linspace'
  const karras = options.karras ?? card.defaults?.karras ?? false
  return vpPlan(scheduleFromCard(card) as VpSchedule, { steps: options.steps, spacing, karras, roundTimesteps: !karras })
}
