// The page's settings and their URL form (`?model=fashion-dit&class=Sneaker&...`), so a comparison can be
// shared as a link. Parsing never throws: a bad value falls back to its default and is reported.

/** The models the page offers (the shipped generators with a class-conditional card). */
export const PAGE_MODELS = ['fashion-dit', 'fashion-unet'] as const
export type PageModel = (typeof PAGE_MODELS)[number]

export const BACKENDS = ['auto', 'wasm'] as const
/** `auto`: WebGPU when the browser has an adapter, else WASM; `wasm`: WASM only (matches the Node CLI). */
export type Backend = (typeof BACKENDS)[number]

export interface PlaygroundState {
  readonly model: PageModel
  /** A class name of the model's card (e.g. `Sneaker`). */
  readonly className: string
  /** First seed; image i of every row uses seed + i, as `guidekit grid`. */
  readonly seed: number
  /** Images per row (seeds), as `guidekit grid --columns`. */
  readonly columns: number
  readonly steps: number
  /** The `--sampler` value, in the CLI grammar. */
  readonly sampler: string
  /** One guidance spec per row, in the CLI grammar. */
  readonly guidance: readonly string[]
  readonly backend: Backend
}

/** The CLI's defaults (`guidekit grid`), with one class for the whole grid. */
export const DEFAULT_STATE: PlaygroundState = {
  model: 'fashion-dit',
  className: 'Sneaker',
  seed: 0,
  columns: 4,
  steps: 30,
  sampler: 'euler',
  guidance: ['none', 'cfg:scale=3', 'cfg++:scale=0.6', 'apg:scale=5,eta=0,momentum=-0.5', 'adaptive(threshold=0.999):apg(scale=5,eta=0,momentum=-0.5)', 'rlg:scale=1.5,inner=cfg:scale=3'],
  backend: 'wasm',
}

export const LIMITS = { seed: [0, 2 ** 32 - 1], columns: [1, 8], steps: [1, 200] } as const

/** Splits a guidance value into specs: `;` separates them, as in the CLI; blank lines are ignored. */
export function splitGuidance(text: string): string[] {
  return text
    .split(/[;\n]/)
    .map((s) => s.trim())
    .filter((s) => s !== '')
}

function integer(raw: string | null, name: keyof typeof LIMITS, problems: string[]): number | undefined {
  if (raw === null) return undefined
  const [min, max] = LIMITS[name]
  const v = /^\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN
  if (Number.isSafeInteger(v) && v >= min && v <= max) return v
  problems.push(`${name} must be an integer from ${min} to ${max}, got "${raw}"; using ${DEFAULT_STATE[name]}.`)
  return undefined
}

function oneOf<T extends string>(raw: string | null, name: string, values: readonly T[], problems: string[]): T | undefined {
  if (raw === null) return undefined
  if ((values as readonly string[]).includes(raw)) return raw as T
  problems.push(`${name} must be one of ${values.join(', ')}, got "${raw}".`)
  return undefined
}

/**
 * Reads settings from a query string; missing values take the defaults. Values are checked for range and
 * form only: class names and specs are checked against the model and the grammar when a run starts.
 */
export function parseState(search: string): { state: PlaygroundState; problems: string[] } {
  const params = new URLSearchParams(search)
  const problems: string[] = []
  const guidance = params.get('guidance')
  const state: PlaygroundState = {
    model: oneOf(params.get('model'), 'model', PAGE_MODELS, problems) ?? DEFAULT_STATE.model,
    className: params.get('class')?.trim() || DEFAULT_STATE.className,
    seed: integer(params.get('seed'), 'seed', problems) ?? DEFAULT_STATE.seed,
    columns: integer(params.get('columns'), 'columns', problems) ?? DEFAULT_STATE.columns,
    steps: integer(params.get('steps'), 'steps', problems) ?? DEFAULT_STATE.steps,
    sampler: params.get('sampler')?.trim() || DEFAULT_STATE.sampler,
    guidance: guidance === null || splitGuidance(guidance).length === 0 ? DEFAULT_STATE.guidance : splitGuidance(guidance),
    backend: oneOf(params.get('backend'), 'backend', BACKENDS, problems) ?? DEFAULT_STATE.backend,
  }
  return { state, problems }
}

/** The query string of a state (every field, in a fixed order, so equal states give equal links). */
export function formatState(state: PlaygroundState): string {
  const params = new URLSearchParams()
  params.set('model', state.model)
  params.set('class', state.className)
  params.set('seed', String(state.seed))
  params.set('columns', String(state.columns))
  params.set('steps', String(state.steps))
  params.set('sampler', state.sampler)
  params.set('guidance', state.guidance.join('; '))
  params.set('backend', state.backend)
  return `?${params.toString()}`
}
