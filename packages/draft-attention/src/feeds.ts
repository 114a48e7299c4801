import { GuidekitError, check, checkNumber } from '@guidekit/core'
import type { DraftModelInfo } from './rewrite.js'
import {
  type DraftSelection,
  checkKeep,
  checkSelection,
  defaultMaxBlocksPerRow,
  globalPercentileEntries,
  rowTopkBlocks,
} from './selection.js'

/** A runtime feed in onnxruntime's terms: `new ort.Tensor(type, data, dims)`. */
export interface DraftFeed {
  readonly type: 'bool' | 'int64'
  readonly data: Uint8Array | BigInt64Array
  readonly dims: readonly number[]
}

/** Options of {@link draftFeeds}: chosen per `session.run` call. */
export interface DraftFeedsOptions {
  /** Fraction of block pairs to keep, in (0, 1]. */
  readonly keep: number
  /** Run the original dense attention at every rewritten site (e.g. the first steps). Default false. */
  readonly dense?: boolean
  /**
   * `'global-percentile'` models in `'capped'` mode (opset < 16) only: gathered blocks per row; default
   * `min(S, ceil(2 * keep * S))`. Larger is closer to the paper's rule and slower.
   */
  readonly maxBlocksPerRow?: number
}

/**
 * The extra inputs of a rewritten model for one call. Dense vs draft and the keep ratio are inputs, so
 * one session serves the paper's whole schedule (dense first steps, sparse after).
 *
 * @example
 * const extra = draftFeeds(info, { keep: 0.1, dense: step < 0.3 * steps })
 * for (const [name, f] of Object.entries(extra)) feeds[name] = new ort.Tensor(f.type, f.data, f.dims)
 */
export function draftFeeds(info: Pick<DraftModelInfo, 'blocks' | 'selection' | 'inputs' | 'globalPercentile'>, options: DraftFeedsOptions): Record<string, DraftFeed> {
  check(typeof info === 'object' && info !== null && Number.isInteger(info.blocks), 'info', info, 'the `info` returned by rewriteDraftAttention (or readDraftModelInfo)')
  const keep = checkKeep(options.keep)
  const S = info.blocks
  const selection = checkSelection(info.selection)
  let blocks: number
  const feeds: Record<string, DraftFeed> = {}
  if (selection === 'row-topk') blocks = rowTopkBlocks(keep, S)
  else {
    blocks = options.maxBlocksPerRow ?? defaultMaxBlocksPerRow(keep, S)
    checkNumber('maxBlocksPerRow', blocks, { min: 1, max: S, integer: true })
    feeds[info.inputs.globalBlocks] = { type: 'int64', data: BigInt64Array.of(BigInt(globalPercentileEntries(keep, S))), dims: [1] }
  }
  feeds[info.inputs.dense] = { type: 'bool', data: Uint8Array.of(options.dense ? 1 : 0), dims: [1] }
  // The exact global-percentile graph gathers the kept pairs themselves: no per-row block count.
  if (info.globalPercentile !== 'exact') feeds[info.inputs.blocks] = { type: 'int64', data: BigInt64Array.of(BigInt(blocks)), dims: [1] }
  return feeds
}

/** Parsed `--attention draft:...` options. */
export interface DraftAttentionSpec {
  /** Fraction of block pairs kept (default 0.1). */
  readonly keep: number
  /** Fraction of the first sampling steps run dense (default 0.3, as the paper's t > 925-945 rule). */
  readonly denseSteps: number
  /** First matched attention sites left dense (default 0). */
  readonly denseLayers: number
  /** Window in tokens; undefined = choose with {@link defaultWindow}. */
  readonly window?: { readonly height: number; readonly width: number }
  readonly selection: DraftSelection
}

/**
 * Parses `draft[:key=value,...]`, e.g. `draft:keep=0.1,dense-steps=0.3,dense-layers=1,window=2x2,
 * selection=global-percentile`. `dense` alone (or `none`) returns undefined: no rewrite.
 *
 * @example
 * parseDraftAttentionSpec('draft:keep=0.25,window=2x2') // { keep: 0.25, denseSteps: 0.3, ... }
 */
export function parseDraftAttentionSpec(spec: string): DraftAttentionSpec | undefined {
  check(typeof spec === 'string', 'attention', spec, "a string like 'draft:keep=0.1,dense-steps=0.3' or 'dense'")
  const trimmed = spec.trim()
  if (trimmed === 'dense' || trimmed === 'none' || trimmed === '') return undefined
  const [kind, rest = ''] = trimmed.split(/:(.*)/s, 2) as [string, string?]
  if (kind !== 'draft') {
    throw new GuidekitError('INVALID_ARGUMENT', `Unknown attention "${kind}"; use 'dense' or 'draft:keep=0.1,dense-steps=0.3'.`, { details: { spec } })
  }
  let keep = 0.1
  let denseSteps = 0.3
  let denseLayers = 0
  let window: { height: number; width: number } | undefined
  let selection: DraftSelection = 'row-topk'
  for (const part of rest.split(',').filter((p) => p.trim() !== '')) {
    const [key, value] = part.split('=', 2).map((x) => x.trim()) as [string, string | undefined]
    const num = () => Number(value)
    switch (key) {
      case 'keep':
        keep = checkKeep(num())
        break
      case 'dense-steps':
        denseSteps = checkNumber('dense-steps', num(), { min: 0, max: 1 })
        break
      case 'dense-layers':
        denseLayers = checkNumber('dense-layers', num(), { min: 0, integer: true })
        break
      case 'window': {
        const m = /^(\d+)x(\d+)$/.exec(value ?? '')
        check(m !== null && Number(m[1]) > 0 && Number(m[2]) > 0, 'window', value, "'HxW' in tokens, e.g. 8x8")
        window = { height: Number(m[1]), width: Number(m[2]) }
        break
      }
      case 'selection':
        selection = checkSelection(value)
        break
      default:
        throw new GuidekitError(
          'INVALID_ARGUMENT',
          `Unknown draft attention option "${key}"; known: keep, dense-steps, dense-layers, window, selection.`,
          { details: { spec, key } },
        )
    }
  }
  return { keep, denseSteps, denseLayers, selection, ...(window === undefined ? {} : { window }) }
}

/**
 * Whether step `index` (0-based) of `steps` runs dense under a `denseSteps` fraction: the first
 * `round(denseSteps * steps)` steps do (the paper: the high-noise ~30% of steps).
 */
export function isDenseStep(index: number, steps: number, denseSteps: number): boolean {
  checkNumber('steps', steps, { min: 1, integer: true })
  checkNumber('index', index, { min: 0, max: steps - 1, integer: true })
  checkNumber('denseSteps', denseSteps, { min: 0, max: 1 })
  return index < Math.round(denseSteps * steps)
}

/**
 * A window for a token grid when the user gives none. The paper's 8x16 windows (128-token blocks) need
 * large latents; small grids need small windows so that selection has blocks to choose from. Picks the
 * largest square window (16, 8, 4, 2, 1) leaving at least `minBlocksPerFrame` blocks per frame:
 * 32x32 -> 8x8 (16 blocks per frame); 7x7 -> 2x2 (16 blocks, padded to 8x8).
 */
export function defaultWindow(grid: { height: number; width: number }, minBlocksPerFrame = 16): { height: number; width: number } {
  for (const w of [16, 8, 4, 2, 1]) {
    if (w > grid.height || w > grid.width) continue
    if (Math.ceil(grid.height / w) * Math.ceil(grid.width / w) >= minBlocksPerFrame) return { height: w, width: w }
  }
  return { height: 1, width: 1 }
}
