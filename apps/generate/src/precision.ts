// `--precision`: a model may ship reduced-precision variants, `<name>-<precision>.card.json` next to its
// card, with `precision` and `derivedFrom: '<name>'`. Explicit `--precision` picks one; by default the
// fastest variant that passed its quality gate is used (the model itself when none is measured faster).
import { readdirSync, readFileSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { readModelCard } from '@guidekit/onnx'
import type { GeneratorCard } from '@guidekit/onnx'
import { UsageError } from './errors.js'

/** One precision of a model: the model itself (`derivedFrom` unset) or a variant. */
export interface PrecisionVariant {
  readonly precision: string
  readonly cardPath: string
  readonly card: GeneratorCard
}

/** The chosen variant and why, for the PNG metadata and the JSON summary. */
export interface PrecisionChoice {
  readonly variant: PrecisionVariant
  readonly reason: string
  /** Set when an explicitly chosen variant did not pass its quality gate. */
  readonly warning?: string
}

const precisionOf = (card: GeneratorCard): string => card.precision ?? 'fp32'

/** The model's card and every variant card next to it that names the model in `derivedFrom`. */
export function findVariants(cardPath: string, card: GeneratorCard): PrecisionVariant[] {
  const found: PrecisionVariant[] = [{ precision: precisionOf(card), cardPath, card }]
  if (card.derivedFrom !== undefined) return found
  const folder = dirname(cardPath)
  const prefix = `${card.name}-`
  for (const file of readdirSync(folder).sort()) {
    if (!file.startsWith(prefix) || !file.endsWith('.card.json') || join(folder, file) === cardPath) continue
    const path = join(folder, file)
    // Only cards that declare themselves a variant of this model are read in full (a broken one is an error).
    let raw: unknown
    try {
      raw = JSON.parse(readFileSync(path, 'utf8'))
    } catch {
      continue
    }
    if ((raw as { derivedFrom?: unknown } | null)?.derivedFrom !== card.name) continue
    const variant = readModelCard(path)
    if (variant.kind !== 'generator') throw new UsageError(`${path} derives from ${card.name} but is not a generator card (kind '${variant.kind}').`)
    found.push({ precision: precisionOf(variant), cardPath: path, card: variant })
  }
  const seen = new Set<string>()
  for (const v of found) {
    if (seen.has(v.precision)) throw new UsageError(`${card.name} has two ${v.precision} cards in ${folder}; keep one per precision.`)
    seen.add(v.precision)
  }
  return found
}

/**
 * Picks the precision to run. Requested: that variant (a missing one is an error listing what exists; one
 * that failed its gate runs with a warning). Default: among the model and the variants whose
 * `metrics.qualityGate.passed` is true, the lowest `metrics.msPerImage`; the model itself unless a passing
 * variant is measured faster than it (both cards must carry `msPerImage`).
 */
export function choosePrecision(variants: readonly PrecisionVariant[], requested: string | undefined): PrecisionChoice {
  const own = variants[0] as PrecisionVariant
  const name = own.card.derivedFrom ?? own.card.name
  if (requested !== undefined) {
    const v = variants.find((x) => x.precision === requested)
    if (!v) throw new UsageError(`--precision ${requested}: ${name} has ${variants.map((x) => `${x.precision} (${basename(x.cardPath)})`).join(', ')}; no ${requested} variant card (${name}-${requested}.card.json) next to ${basename(own.cardPath)}.`)
    const gate = v.card.metrics?.qualityGate
    const warning = v === own || gate?.passed === true ? undefined : `${basename(v.cardPath)} ${gate ? 'failed' : 'has no'} quality gate (metrics.qualityGate); its images may differ in quality from ${own.precision}.`
    return { variant: v, reason: '--precision', ...(warning === undefined ? {} : { warning }) }
  }
  const ownSpeed = own.card.metrics?.msPerImage
  let best = own
  let bestSpeed = ownSpeed
  for (const v of variants.slice(1)) {
    const speed = v.card.metrics?.msPerImage
    if (v.card.metrics?.qualityGate?.passed !== true || speed === undefined || bestSpeed === undefined) continue
    if (speed < bestSpeed) {
      best = v
      bestSpeed = speed
    }
  }
  if (best === own) return { variant: own, reason: variants.length > 1 ? 'no variant passed its quality gate and is measured faster' : 'the only precision' }
  return { variant: best, reason: `passed its quality gate, ${bestSpeed} vs ${ownSpeed} ms/image` }
}
