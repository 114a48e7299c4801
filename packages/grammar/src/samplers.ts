import { ddim, dpmpp2m, euler, eulerAncestral, flowMatchEuler } from '@guidekit/core'
import type { NoiseFamily, Sampler } from '@guidekit/core'
import { usage } from './usage.js'
import { parseSpec } from './spec-parser.js'

interface SamplerEntry {
  readonly names: readonly string[]
  readonly summary: string
  readonly params: readonly string[]
  build(params: Readonly<Record<string, number>>): Sampler
}

const SAMPLERS: readonly SamplerEntry[] = [
  { names: ['euler'], summary: 'Euler (deterministic; flow-matching Euler on flow models)', params: [], build: () => euler() },
  { names: ['euler-a', 'euler-ancestral'], summary: 'Euler ancestral, eta (default 1) = noise re-injected', params: ['eta'], build: (p) => eulerAncestral(p.eta === undefined ? {} : { eta: p.eta }) },
  { names: ['ddim'], summary: 'DDIM, eta (default 0)', params: ['eta'], build: (p) => ddim(p.eta === undefined ? {} : { eta: p.eta }) },
  { names: ['dpmpp-2m', 'dpm++2m', 'dpmpp2m'], summary: 'DPM-Solver++(2M)', params: [], build: () => dpmpp2m() },
  { names: ['flow-euler', 'flow-match-euler'], summary: 'flow-matching Euler (flow models only)', params: [], build: () => flowMatchEuler() },
]

const normalize = (s: string): string => s.toLowerCase().replace(/[-_]/g, '')

/** Parses `--sampler` (e.g. `euler`, `euler-a:eta=0.5`, `dpmpp-2m`). */
export function buildSampler(source: string, family: NoiseFamily): { sampler: Sampler; label: string } {
  const node = parseSpec(source, '--sampler')
  const entry = SAMPLERS.find((s) => s.names.some((n) => normalize(n) === normalize(node.name)))
  if (!entry) throw usage(`Unknown sampler "${node.name}"; known: ${SAMPLERS.map((s) => s.names[0]).join(', ')}.`)
  if (node.inner) throw usage(`--sampler "${source}": a sampler takes parameters only.`)
  const params: Record<string, number> = {}
  for (const p of node.params) {
    const key = entry.params.find((k) => normalize(k) === normalize(p.key))
    if (!key) throw usage(`Sampler ${entry.names[0]} has no parameter "${p.key}"${entry.params.length ? `; its parameters: ${entry.params.join(', ')}` : ''}.`)
    const v = typeof p.value === 'string' ? Number(p.value) : Number.NaN
    if (!Number.isFinite(v)) throw usage(`Sampler ${entry.names[0]}: ${key} must be a number, got "${typeof p.value === 'string' ? p.value : p.value.text}".`)
    params[key] = v
  }
  if (entry.names[0] === 'flow-euler' && family !== 'flow') throw usage(`Sampler flow-euler needs a flow model; this model is '${family}' (use euler).`)
  return { sampler: entry.build(params), label: node.text }
}

export function samplerHelp(): string {
  return SAMPLERS.map((s) => `  ${s.names[0]}${s.params.length ? `[:${s.params.map((p) => `${p}=N`).join(',')}]` : ''}: ${s.summary}`).join('\n')
}
