// What each output records: the A1111-style `parameters` text and a `guidekit` JSON chunk with the exact
// command that reproduces the file as typed.
import { readFileSync } from 'node:fs'
import { formatParameters } from '@guidekit/grammar'
import type { Conditioning, Engine } from './models.js'
import type { SamplingSettings } from './settings.js'

export const VERSION = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
  } catch {
    return '0.0.0'
  }
})()

/** A shell word: quoted unless it is plain. */
export const quote = (v: string): string => (/^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`)

/** The run's settings that every output records. */
export interface RunRecord {
  readonly engine: Engine
  readonly settings: SamplingSettings
  /** `--model` and `--rl-model` as typed. */
  readonly modelArg: string
  readonly rlModelArg: string | undefined
  readonly attention: string | undefined
  readonly size: { readonly width: number; readonly height: number } | undefined
}

/** Model-side fields shared by the parameters text and the JSON. */
function modelFields(r: RunRecord): [string, string | number][] {
  const fields: [string, string | number][] = [['Model', r.modelArg]]
  if (r.engine.precision) fields.push(['Precision', r.engine.precision.precision], ['Model file', r.engine.precision.file])
  if (r.engine.tunedName) fields.push(['RL model', r.rlModelArg ?? r.engine.tunedName])
  return fields
}

/** The `parameters` text (A1111 convention) of one image or a grid. */
export function parametersText(r: RunRecord, o: { label: string; guidance: string; seed: number; width: number; height: number; nfe: number; negativePrompt?: string | undefined; upscale?: number }): string {
  const s = r.settings
  const fields: [string, string | number][] = [['Steps', s.steps], ['Sampler', s.sampler.label]]
  if (s.spacing !== undefined) fields.push(['Spacing', s.spacing], ['Karras', s.karras ? 'yes' : 'no'])
  fields.push(['Guidance', o.guidance], ['Seed', o.seed], ['Size', `${o.width}x${o.height}`], ...modelFields(r), ['Attention', r.attention ?? 'dense'])
  if (o.upscale !== undefined && o.upscale > 1) fields.push(['Upscale', o.upscale])
  fields.push(['NFE', o.nfe], ['Version', `guidekit ${VERSION}`])
  return formatParameters({ label: o.label, fields, ...(o.negativePrompt === undefined ? {} : { negativePrompt: o.negativePrompt }) })
}

/** Sampling options, spelled out so a changed model default cannot change what the command makes. */
export function samplingArgs(r: RunRecord): string[] {
  const s = r.settings
  const args = ['--sampler', s.sampler.label, '--steps', String(s.steps)]
  if (s.spacing !== undefined) args.push('--spacing', s.spacing)
  if (s.karras) args.push('--karras')
  if (r.engine.precision) args.push('--precision', r.engine.precision.precision)
  if (r.attention !== undefined) args.push('--attention', r.attention)
  return args
}

/** `--model`, `--rl-model` and the conditioning of one image (or of a whole grid). */
export function modelArgs(r: RunRecord, c: Conditioning): string[] {
  const args = ['--model', r.modelArg]
  if (r.rlModelArg !== undefined) args.push('--rl-model', r.rlModelArg)
  if (c.classes) args.push('--class', c.classes.join(','))
  if (c.prompt !== undefined) args.push('--prompt', c.prompt)
  if (c.negativePrompt !== undefined) args.push('--negative-prompt', c.negativePrompt)
  if (r.size !== undefined) args.push('--size', `${r.size.width}x${r.size.height}`)
  return args
}

/** A command line: the invocation (e.g. `pnpm guidekit`) and the arguments, quoted for a POSIX shell. */
export const commandLine = (invocation: readonly string[], args: readonly string[]): string => [...invocation, ...args].map(quote).join(' ')
