// Turns parsed guidance specs into guiders. Every guidance package is imported lazily, so a program loads
// only what a run uses. No Node built-ins: the same code runs in the CLI and in a browser.
import { GuidekitError, interval, unguided } from '@guidekit/core'
import type { Guider } from '@guidekit/core'
import { usage } from './usage.js'
import { parseSpecList } from './spec-parser.js'
import type { SpecNode } from './spec-parser.js'

type ParamType =
  | { readonly kind: 'number'; readonly doc: string }
  | { readonly kind: 'integer'; readonly doc: string }
  | { readonly kind: 'enum'; readonly values: readonly string[]; readonly doc: string }
  | { readonly kind: 'range'; readonly doc: string }
  | { readonly kind: 'guider'; readonly doc: string }
  | { readonly kind: 'path'; readonly doc: string }

type Value = number | string | readonly [number, number] | Guider

interface Strategy {
  /** Canonical name first, then aliases. */
  readonly names: readonly string[]
  readonly summary: string
  /** Parameter name (kebab-case, as documented) -> type. */
  readonly params: Readonly<Record<string, ParamType>>
  /** Combinators wrap an inner guider: `name(params):inner` or `inner=...`. */
  readonly innerDefault?: string
  /** Needs the RL-fine-tuned model ('tuned' branches). */
  readonly needsTunedModel?: boolean
  build(values: ReadonlyMap<string, Value>, context: BuildContext): Promise<Guider>
}

/** What building a guider may need from the program: reading a file (LinearAG coefficients). */
export interface BuildContext {
  readonly readFile?: (path: string) => Promise<string>
}

const num = (doc: string): ParamType => ({ kind: 'number', doc })
const int = (doc: string): ParamType => ({ kind: 'integer', doc })

async function load<T>(pkg: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load()
  } catch (cause) {
    throw usage(`Guidance needs ${pkg}, which could not be loaded (${cause instanceof Error ? cause.message.split('\n')[0] : String(cause)}). Install it next to @guidekit/core.`)
  }
}

function exported<T>(module: Record<string, unknown>, name: string, pkg: string): T {
  const f = module[name]
  if (typeof f !== 'function') throw usage(`${pkg} does not export ${name}(); update ${pkg}.`)
  return f as T
}

/** Copies the given values into an options object under their option names (camelCase), skipping absent ones. */
function options(values: ReadonlyMap<string, Value>, rename: Readonly<Record<string, string>> = {}): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, value] of values) {
    if (key === 'inner') continue
    out[rename[key] ?? camel(key)] = value
  }
  return out
}

/** The build of a guider that one factory of `pkg` makes from the node's options, `scale` defaulting to `defaultScale`. */
function fromOptions(pkg: string, importer: () => Promise<Record<string, unknown>>, name: string, defaultScale: number): Strategy['build'] {
  return async (values) => {
    const m = await load(pkg, importer)
    const o = options(values)
    if (o.scale === undefined) o.scale = defaultScale
    return exported<(o: unknown) => Guider>(m, name, pkg)(o)
  }
}

const camel = (kebab: string): string => kebab.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())

const STRATEGIES: readonly Strategy[] = [
  {
    names: ['none', 'unguided'],
    summary: 'no guidance: the positive branch only (1 NFE per step)',
    params: {},
    build: () => Promise.resolve(unguided()),
  },
  {
    names: ['cfg'],
    summary: 'classifier-free guidance, D = D_u + scale (D_c - D_u) (arXiv 2207.12598)',
    params: {
      scale: num('paper scale w (1 = off); default 3'),
      rescale: num('guidance rescale phi in [0, 1] (arXiv 2305.08891)'),
      space: { kind: 'enum', values: ['epsilon', 'x0'], doc: 'where rescale is computed' },
    },
    build: fromOptions('@guidekit/cfg', () => import('@guidekit/cfg'), 'cfg', 3),
  },
  {
    names: ['cfg-zero-star', 'cfg-zero*', 'cfgzero'],
    summary: 'CFG-Zero* (optimized scale + zero-init steps, arXiv 2503.18886)',
    params: { scale: num('paper scale w; default 3'), 'zero-init-steps': int('first steps that output zero') },
    build: fromOptions('@guidekit/cfg', () => import('@guidekit/cfg'), 'cfgZeroStar', 3),
  },
  {
    names: ['tcfg', 'tangential-cfg'],
    summary: 'tangential-damping CFG (arXiv 2503.18137)',
    params: { scale: num('paper scale w; default 3') },
    build: fromOptions('@guidekit/cfg', () => import('@guidekit/cfg'), 'tangentialCfg', 3),
  },
  {
    names: ['cfg++', 'cfgpp', 'cfg-pp'],
    summary: 'CFG++: guided x0, re-noised with the unconditional prediction (arXiv 2406.08070)',
    params: { scale: num("the paper's lambda >= 0, typically 0..1; default 0.6") },
    build: fromOptions('@guidekit/cfg-pp', () => import('@guidekit/cfg-pp'), 'cfgPlusPlus', 0.6),
  },
  {
    names: ['apg'],
    summary: 'adaptive projected guidance (arXiv 2410.02416)',
    params: {
      scale: num('paper scale w; default 5'),
      eta: num('weight of the parallel component; default 0'),
      momentum: num('momentum beta in (-1, 1); default -0.5'),
      'norm-threshold': num('norm threshold r (0 = off); default 0'),
    },
    build: fromOptions('@guidekit/apg', () => import('@guidekit/apg'), 'apg', 5),
  },
  {
    names: ['adaptive', 'ag'],
    summary: 'adaptive guidance: stop the unconditional branch once cos(cond, uncond) >= threshold (arXiv 2312.12487)',
    params: {
      threshold: num('cosine threshold in (0, 1]; default 0.99'),
      space: { kind: 'enum', values: ['epsilon', 'x0'], doc: 'where the similarity is measured' },
      granularity: { kind: 'enum', values: ['sample', 'batch'], doc: 'switch per image or per batch' },
      inner: { kind: 'guider', doc: 'the guider it wraps; default cfg' },
    },
    innerDefault: 'cfg',
    async build(values) {
      const m = await load('@guidekit/adaptive', () => import('@guidekit/adaptive'))
      return exported<(inner: Guider, o: unknown) => Guider>(m, 'adaptive', '@guidekit/adaptive')(values.get('inner') as Guider, options(values))
    },
  },
  {
    names: ['linear-ag', 'linearag'],
    summary: 'LinearAG: predict the unconditional branch on alternate steps from fitted coefficients (arXiv 2312.12487; fit them with guidekit fit-linear-ag)',
    params: { coefficients: { kind: 'path', doc: 'the JSON file written by guidekit fit-linear-ag (required)' } },
    async build(values, context) {
      const file = values.get('coefficients') as string | undefined
      if (file === undefined) throw usage('linear-ag needs coefficients=<file.json>; write one with guidekit fit-linear-ag.')
      if (!context.readFile) throw usage('linear-ag reads its coefficients from a file, and this program gives the grammar no way to read files.')
      let json: unknown
      try {
        json = JSON.parse(await context.readFile(file))
      } catch (cause) {
        const code = (cause as { code?: string }).code
        throw usage(`linear-ag: cannot read coefficients ${file}: ${code === 'ENOENT' ? 'no such file' : cause instanceof Error ? cause.message : String(cause)}.`)
      }
      const m = await load('@guidekit/adaptive', () => import('@guidekit/adaptive'))
      return exported<(o: unknown) => Guider>(m, 'linearAG', '@guidekit/adaptive')({ coefficients: json })
    },
  },
  {
    names: ['rlg'],
    summary: "RL guidance: blend the base and the RL-fine-tuned model's guided predictions (needs --rl-model)",
    params: {
      scale: num('RLG weight w (0 = base model, 1 = the tuned model alone); default 1.5'),
      'tuned-only-steps': int('first steps that use the tuned model alone'),
      inner: { kind: 'guider', doc: 'the guider run on each model; default cfg' },
    },
    innerDefault: 'cfg',
    needsTunedModel: true,
    async build(values) {
      const m = await load('@guidekit/rlg', () => import('@guidekit/rlg'))
      const o = options(values)
      if (o.scale === undefined) o.scale = 1.5
      o.inner = values.get('inner')
      return exported<(o: unknown) => Guider>(m, 'rlg', '@guidekit/rlg')(o)
    },
  },
  {
    names: ['interval'],
    summary: 'run the inner guider only inside a window, the positive branch alone outside (arXiv 2404.07724)',
    params: {
      sigma: { kind: 'range', doc: 'a < sigma <= b (b may be inf)' },
      steps: { kind: 'range', doc: '0-based step indices a <= step < b' },
      fraction: { kind: 'range', doc: 'step fractions a..b' },
      inner: { kind: 'guider', doc: 'the guider it wraps; default cfg' },
    },
    innerDefault: 'cfg',
    build(values) {
      const windows = (['sigma', 'steps', 'fraction'] as const).filter((k) => values.has(k))
      if (windows.length !== 1) throw usage(`interval needs exactly one of sigma=a..b, steps=a..b or fraction=a..b, got ${windows.length === 0 ? 'none' : windows.join(' and ')}.`)
      const key = windows[0] as 'sigma' | 'steps' | 'fraction'
      return Promise.resolve(interval(values.get('inner') as Guider, { [key]: values.get(key) } as Parameters<typeof interval>[1]))
    },
  },
]

const normalize = (name: string): string => name.toLowerCase().replace(/[-_]/g, '')

function findStrategy(name: string): Strategy | undefined {
  const n = normalize(name)
  return STRATEGIES.find((s) => s.names.some((alias) => normalize(alias) === n))
}

function parseNumber(strategy: string, key: string, raw: string, integer: boolean): number {
  const v = /^[+-]?(inf|infinity)$/i.test(raw) ? (raw.startsWith('-') ? -Infinity : Infinity) : Number(raw)
  if (raw.trim() === '' || Number.isNaN(v) || (integer && !Number.isInteger(v))) {
    throw usage(`${strategy}: ${key} must be ${integer ? 'an integer' : 'a number'}, got "${raw}".`)
  }
  return v
}

/** A guider built from a spec, with what the run needs to know about it. */
export interface BuiltGuidance {
  readonly guider: Guider
  /** The spec as written (a label for grids and the PNG parameters). */
  readonly label: string
  readonly needsTunedModel: boolean
}

async function buildNode(node: SpecNode, what: string, context: BuildContext): Promise<BuiltGuidance> {
  const strategy = findStrategy(node.name)
  if (!strategy) {
    throw usage(`Unknown guidance "${node.name}" in ${what} "${node.text}"; known: ${STRATEGIES.map((s) => s.names[0]).join(', ')} (see guidekit generate --help).`)
  }
  const name = strategy.names[0] as string
  const values = new Map<string, Value>()
  let needsTunedModel = strategy.needsTunedModel === true
  const known = Object.keys(strategy.params)
  const setInner = async (inner: SpecNode): Promise<void> => {
    if (values.has('inner')) throw usage(`${name}: the inner guider is given twice in "${node.text}".`)
    const built = await buildNode(inner, what, context)
    needsTunedModel ||= built.needsTunedModel
    values.set('inner', built.guider)
  }
  for (const param of node.params) {
    const key = known.find((k) => normalize(k) === normalize(param.key))
    if (!key) {
      throw usage(`${name} has no parameter "${param.key}"${known.length ? `; its parameters: ${known.join(', ')}` : ' (it takes none)'}.`)
    }
    if (values.has(key)) throw usage(`${name}: ${key} is given twice in "${node.text}".`)
    const type = strategy.params[key] as ParamType
    const raw = param.value
    if (type.kind === 'guider') {
      await setInner(typeof raw === 'string' ? { name: raw, params: [], text: raw, at: param.at } : raw)
      continue
    }
    if (typeof raw !== 'string') throw usage(`${name}: ${key} takes a value, not a guider ("${raw.text}").`)
    switch (type.kind) {
      case 'number':
      case 'integer':
        values.set(key, parseNumber(name, key, raw, type.kind === 'integer'))
        break
      case 'path':
        values.set(key, raw)
        break
      case 'enum':
        if (!type.values.includes(raw)) throw usage(`${name}: ${key} must be one of ${type.values.join(', ')}, got "${raw}".`)
        values.set(key, raw)
        break
      case 'range': {
        const m = /^(.+?)\.\.(.+)$/.exec(raw)
        if (!m) throw usage(`${name}: ${key} must be a range a..b (e.g. ${key}=0.2..0.8), got "${raw}".`)
        values.set(key, [parseNumber(name, key, m[1] as string, false), parseNumber(name, key, m[2] as string, false)])
        break
      }
    }
  }
  if (node.inner) {
    if (strategy.innerDefault === undefined) {
      throw usage(`${name} does not wrap another guider, but "${node.text}" gives it one (${node.inner.text}); combinators: ${STRATEGIES.filter((s) => s.innerDefault).map((s) => s.names[0]).join(', ')}.`)
    }
    await setInner(node.inner)
  }
  if (strategy.innerDefault !== undefined && !values.has('inner')) await setInner({ name: strategy.innerDefault, params: [], text: strategy.innerDefault, at: node.at })
  let guider: Guider
  try {
    guider = await strategy.build(values, context)
  } catch (error) {
    // Name the flag and the spec: the package's message says which parameter and range.
    if (GuidekitError.isInstance(error) && error.code === 'INVALID_ARGUMENT' && !error.message.startsWith(what)) throw usage(`${what} "${node.text}": ${error.message}`)
    throw error
  }
  return { guider, label: node.text, needsTunedModel }
}

/**
 * Builds every guider of a guidance value (`;`-separated specs). Bad values are `INVALID_ARGUMENT`
 * errors whose one-line message names the spec and what is allowed.
 *
 * @example
 * await buildGuidance('adaptive(threshold=0.99):apg(scale=8,eta=0)')
 * await buildGuidance('linear-ag:coefficients=fit.json', { readFile: (p) => readFile(p, 'utf8') })
 */
export async function buildGuidance(source: string, options: { readonly what?: string } & BuildContext = {}): Promise<BuiltGuidance[]> {
  const what = options.what ?? '--guidance'
  const nodes = parseSpecList(source, what)
  const out: BuiltGuidance[] = []
  for (const node of nodes) out.push(await buildNode(node, what, options))
  return out
}

/** The help text listing every strategy and its parameters. */
export function guidanceHelp(): string {
  const lines: string[] = []
  for (const s of STRATEGIES) {
    const aliases = s.names.length > 1 ? ` (also ${s.names.slice(1).join(', ')})` : ''
    lines.push(`  ${s.names[0]}${aliases}: ${s.summary}`)
    for (const [key, type] of Object.entries(s.params)) {
      const values = type.kind === 'enum' ? ` (${type.values.join('|')})` : type.kind === 'range' ? ' (a..b)' : type.kind === 'path' ? ' (file)' : ''
      lines.push(`      ${key}${values}: ${type.doc}`)
    }
  }
  return lines.join('\n')
}
