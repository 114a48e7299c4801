// The sampling settings of a run: what the user chose, else what the model recommends (its card's
// `defaults`, or a diffusers pipeline's config), else guidekit's own defaults. One plan per run, built
// by the model (planFromCard / the pipeline's scheduler config).
import { readFile } from 'node:fs/promises'
import type { Sampler, SamplingPlan } from '@guidekit/core'
import { buildGuidance, buildSampler } from '@guidekit/grammar'
import type { BuiltGuidance } from '@guidekit/grammar'
import { choiceOption, integerOption } from './args.js'
import type { Values } from './args.js'
import { UsageError } from './errors.js'
import type { Engine, Spacing } from './models.js'

/** guidekit's own defaults, for models that recommend nothing. */
export const BUILT_IN = { steps: 30, guidance: 'cfg:scale=3', sampler: 'euler' } as const

export const SPACINGS: readonly Spacing[] = ['leading', 'trailing', 'linspace']

/** How a run samples, with every value resolved. */
export interface SamplingSettings {
  readonly steps: number
  readonly sampler: { readonly sampler: Sampler; readonly label: string }
  /** VP models: the timestep spacing and Karras sigmas (undefined for flow models). */
  readonly spacing: Spacing | undefined
  readonly karras: boolean | undefined
  readonly plan: SamplingPlan
  /** The settings taken from the model's recommendations, e.g. `['steps', 'sampler']`. */
  readonly fromModel: readonly string[]
}

/** Checks the syntax of the sampling options before any model is loaded. */
export function checkSamplingOptions(values: Values): void {
  integerOption(values, 'steps', { min: 1, max: 1000 })
  choiceOption(values, 'spacing', SPACINGS)
  const sampler = values.sampler
  if (typeof sampler === 'string') buildSampler(sampler, 'flow')
}

/** Resolves steps, sampler, spacing and Karras sigmas for the loaded model and builds its plan. */
export function samplingSettings(values: Values, engine: Engine): SamplingSettings {
  const d = engine.defaults
  const fromModel: string[] = []
  const pick = <T>(key: string, explicit: T | undefined, recommended: T | undefined, builtIn: T): T => {
    if (explicit !== undefined) return explicit
    if (recommended !== undefined) {
      fromModel.push(key)
      return recommended
    }
    return builtIn
  }
  const steps = pick('steps', integerOption(values, 'steps', { min: 1, max: 1000 }), d.steps, BUILT_IN.steps)
  const samplerSpec = pick('sampler', typeof values.sampler === 'string' ? values.sampler : undefined, d.sampler, BUILT_IN.sampler)
  let sampler: SamplingSettings['sampler']
  try {
    sampler = buildSampler(samplerSpec, engine.family)
  } catch (error) {
    if (values.sampler === undefined) throw new UsageError(`${engine.name}'s recommended sampler ${JSON.stringify(samplerSpec)} (${d.source}) is not usable: ${error instanceof Error ? error.message : String(error)}`)
    throw error
  }
  const spacingOption = choiceOption(values, 'spacing', SPACINGS)
  const karrasOption = values.karras === true ? true : undefined
  if (engine.family === 'flow') {
    const flag = spacingOption !== undefined ? `--spacing ${spacingOption}` : karrasOption ? '--karras' : undefined
    if (flag) throw new UsageError(`${flag} does not apply to ${engine.name}: it is a flow-matching model, whose timesteps follow sigma uniformly (spacing and Karras sigmas are for VP models).`)
  }
  const spacing = engine.family === 'vp' ? pick('spacing', spacingOption, d.spacing, 'linspace') : undefined
  const karras = engine.family === 'vp' ? pick('karras', karrasOption, d.karras, false) : undefined
  const plan = engine.plan(steps, { ...(spacing === undefined ? {} : { spacing }), ...(karras === undefined ? {} : { karras }) })
  return { steps, sampler, spacing, karras, plan, fromModel }
}

export const readText = (path: string): Promise<string> => readFile(path, 'utf8')

/** Builds `--guidance` specs (`;`-separated, or repeated), or undefined when none is given. */
export async function explicitGuidance(values: Values): Promise<BuiltGuidance[] | undefined> {
  const raw = values.guidance
  if (raw === undefined) return undefined
  const specs = typeof raw === 'string' ? [raw] : (raw as readonly string[])
  const rows: BuiltGuidance[] = []
  for (const spec of specs) rows.push(...(await buildGuidance(spec, { readFile: readText })))
  return rows
}

/** The model's recommended guidance (or guidekit's default), built. */
export async function recommendedGuidance(engine: Engine): Promise<BuiltGuidance> {
  const spec = engine.defaults.guidance ?? BUILT_IN.guidance
  try {
    const [built] = await buildGuidance(spec, { what: `${engine.name}'s recommended guidance`, readFile: readText })
    return built as BuiltGuidance
  } catch (error) {
    throw new UsageError(`${engine.name}'s recommended guidance ${JSON.stringify(spec)} (${engine.defaults.source}) is not usable: ${error instanceof Error ? error.message : String(error)}; pass --guidance.`)
  }
}
