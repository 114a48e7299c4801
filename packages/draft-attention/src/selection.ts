import { check, checkNumber } from '@guidekit/core'

/**
 * How draft-map entries become kept blocks.
 *
 * - `'global-percentile'`: the paper's rule (`draft_attention.py::attention_percentile_mask_headwise`).
 *   Per head, keep every block pair whose draft probability is at least the threshold that keeps a
 *   `keep` fraction of all S x S pairs; the number of key blocks per query block varies.
 * - `'row-topk'`: keep the `round(keep * S)` most probable key blocks of every query block. Not the
 *   paper's rule, but the compute per row is fixed, which is what makes it fast in a static graph.
 */
export type DraftSelection = 'global-percentile' | 'row-topk'

/** The selection rules, for validation and CLI help. */
export const draftSelections: readonly DraftSelection[] = ['global-percentile', 'row-topk']

export function checkSelection(selection: unknown): DraftSelection {
  check(
    selection === 'global-percentile' || selection === 'row-topk',
    'selection',
    selection,
    `one of ${draftSelections.map((s) => `'${s}'`).join(', ')}`,
  )
  return selection
}

export function checkKeep(keep: unknown): number {
  return checkNumber('keep', keep, { min: 0, max: 1, minExclusive: true })
}

/** Key blocks per query block for `'row-topk'`: `clamp(round(keep * blocks), 1, blocks)`. */
export function rowTopkBlocks(keep: number, blocks: number): number {
  checkKeep(keep)
  return Math.min(blocks, Math.max(1, Math.round(keep * blocks)))
}

/**
 * Block pairs kept per head by `'global-percentile'`, exactly as upstream: `k = int((1 - keep) * S^2)`
 * smallest pairs are candidates for dropping, the threshold is the largest of them and pairs `>=` it are
 * kept, i.e. the `S^2 - k + 1` largest (all of them when `k = 0`). Upstream keeps nothing when `k >= S^2`;
 * here at least the row maxima survive (see {@link defaultMaxBlocksPerRow}).
 */
export function globalPercentileEntries(keep: number, blocks: number): number {
  checkKeep(keep)
  const n = blocks * blocks
  const k = Math.floor((1 - keep) * n)
  if (k <= 0) return n
  return Math.max(1, n - k + 1)
}

/**
 * The per-row cap used by the in-graph `'global-percentile'` selection: a static graph needs a fixed
 * number of gathered blocks per row, so each row keeps its blocks above the head's threshold among its
 * `maxBlocksPerRow` best. Default `min(S, ceil(2 * keep * S))`: rows may hold twice the average.
 */
export function defaultMaxBlocksPerRow(keep: number, blocks: number): number {
  checkKeep(keep)
  return Math.min(blocks, Math.max(1, Math.ceil(2 * keep * blocks)))
}
