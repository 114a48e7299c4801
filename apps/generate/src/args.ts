// Command-line arguments: a small strict parser (so every message names the option and the bad value,
// negative numbers included) and typed readers for the values.
import { UsageError } from './errors.js'

/** An option: a string value (`--steps 30`, `--steps=30`), repeatable or not, or a boolean flag. */
export interface OptionSpec {
  readonly type: 'string' | 'boolean'
  readonly multiple?: boolean
  readonly short?: string
}

export type OptionTable = Readonly<Record<string, OptionSpec>>

/** Parsed options: strings, string lists (repeatable options) and `true` for flags. */
export type Values = Readonly<Record<string, string | readonly string[] | true | undefined>>

/**
 * Parses `argv` against `options`. A value may start with `-` (`--seed -1` reaches the range check, which
 * says what is allowed); a value that is itself a long option (`--out --json`) means the value is missing.
 */
export function parseOptions(command: string, argv: readonly string[], options: OptionTable): Values {
  const values: Record<string, string | string[] | true> = {}
  const shorts = new Map(Object.entries(options).flatMap(([name, spec]) => (spec.short ? [[spec.short, name] as const] : [])))
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string
    let name: string
    let inline: string | undefined
    if (token.startsWith('--') && token.length > 2) {
      const eq = token.indexOf('=')
      name = eq < 0 ? token.slice(2) : token.slice(2, eq)
      inline = eq < 0 ? undefined : token.slice(eq + 1)
    } else if (/^-[a-zA-Z]$/.test(token) && shorts.has(token.slice(1))) {
      name = shorts.get(token.slice(1)) as string
    } else if (token.startsWith('-') && token.length > 1 && !/^-\d/.test(token)) {
      throw new UsageError(`Unknown option ${token} for guidekit ${command}; see guidekit ${command} --help.`)
    } else {
      throw new UsageError(`guidekit ${command} takes options only, got the argument ${JSON.stringify(token)}; values follow their option (e.g. --class ${token}); see guidekit ${command} --help.`)
    }
    const spec = options[name]
    if (!spec) throw new UsageError(`Unknown option --${name} for guidekit ${command}; see guidekit ${command} --help.`)
    if (spec.type === 'boolean') {
      if (inline !== undefined) throw new UsageError(`--${name} is a flag and takes no value, got --${name}=${inline}.`)
      values[name] = true
      continue
    }
    let value = inline
    if (value === undefined) {
      const next = argv[i + 1]
      if (next === undefined || (next.startsWith('--') && next.length > 2)) throw new UsageError(`--${name} needs a value; see guidekit ${command} --help.`)
      value = next
      i++
    }
    const previous = values[name]
    if (spec.multiple) values[name] = [...((previous as string[] | undefined) ?? []), value]
    else if (previous !== undefined) throw new UsageError(`--${name} is given twice (${JSON.stringify(previous)} and ${JSON.stringify(value)}); give it once.`)
    else values[name] = value
  }
  return values
}

const show = (raw: string): string => JSON.stringify(raw)

/** A single string option, trimmed of nothing; empty or blank values are rejected. */
export function stringOption(values: Values, name: string): string | undefined {
  const v = values[name]
  if (v === undefined) return undefined
  if (typeof v !== 'string') throw new UsageError(`--${name} takes one value.`)
  if (v.trim() === '') throw new UsageError(`--${name} must not be empty.`)
  return v
}

/** An integer option within [min, max]. */
export function integerOption(values: Values, name: string, range: { readonly min: number; readonly max: number }): number | undefined {
  const raw = stringOption(values, name)
  if (raw === undefined) return undefined
  const text = raw.trim()
  const v = /^[+-]?\d+$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isSafeInteger(v) || v < range.min || v > range.max) throw new UsageError(`--${name} must be an integer from ${range.min} to ${range.max}, got ${show(raw)}.`)
  return v
}

/** A finite number option within [min, max]. */
export function numberOption(values: Values, name: string, range: { readonly min: number; readonly max: number }): number | undefined {
  const raw = stringOption(values, name)
  if (raw === undefined) return undefined
  const v = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(raw.trim()) ? Number(raw) : Number.NaN
  if (!Number.isFinite(v) || v < range.min || v > range.max) throw new UsageError(`--${name} must be a number from ${range.min} to ${range.max}, got ${show(raw)}.`)
  return v
}

/** One of a few words. */
export function choiceOption<T extends string>(values: Values, name: string, choices: readonly T[]): T | undefined {
  const raw = stringOption(values, name)
  if (raw === undefined) return undefined
  if (!(choices as readonly string[]).includes(raw)) throw new UsageError(`--${name} must be ${choices.join(', ').replace(/, ([^,]*)$/, ' or $1')}, got ${show(raw)}.`)
  return raw as T
}

/** The values of a repeatable option, split on commas (`--class a,b --class c`); blank items are rejected. */
export function listOption(values: Values, name: string): string[] | undefined {
  const v = values[name]
  if (v === undefined) return undefined
  const raw = typeof v === 'string' ? [v] : (v as readonly string[])
  const items = raw.flatMap((r) => r.split(','))
  if (items.some((item) => item.trim() === '')) throw new UsageError(`--${name} has an empty item in ${show(raw.join(','))}; give comma-separated names or indices, e.g. --${name} sneaker,bag.`)
  return items.map((item) => item.trim())
}

/** `--size WIDTHxHEIGHT`. */
export function sizeOption(values: Values): { width: number; height: number } | undefined {
  const raw = stringOption(values, 'size')
  if (raw === undefined) return undefined
  const m = /^(\d{1,5})x(\d{1,5})$/.exec(raw.trim())
  const w = Number(m?.[1])
  const h = Number(m?.[2])
  if (!m || w < 8 || h < 8 || w > 4096 || h > 4096) throw new UsageError(`--size must be WIDTHxHEIGHT in pixels (8..4096), e.g. 512x512, got ${show(raw)}.`)
  return { width: w, height: h }
}
