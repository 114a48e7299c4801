// Grouping a request's branches into one batched model call per model, and splitting the output back.
import { GuidekitError, type Tensor, gatherBatch } from '@guidekit/core'
import type { Branch } from '@guidekit/core'

/** One branch's slice of a batched call: which batch items of x it evaluates, and where they land. */
export interface Segment {
  readonly branchIndex: number
  readonly branch: Branch
  /** Indices into the request's x (all items unless the branch has `samples`). */
  readonly rows: readonly number[]
  /** Offset of the segment in the batched call. */
  readonly offset: number
}

/** The branches that go to one model in one call. */
export interface ModelCall {
  readonly model: string
  readonly segments: readonly Segment[]
  /** Total batch of the call. */
  readonly batch: number
}

/**
 * Groups branches by model name (in order of first appearance), so that each model runs once.
 * `resolve` maps a branch to its model name and throws for unknown names.
 */
export function planCalls(branches: readonly Branch[], batch: number, resolve: (branch: Branch) => string): ModelCall[] {
  if (branches.length === 0) throw new GuidekitError('INVALID_ARGUMENT', 'predict() needs at least one branch.')
  const all = Array.from({ length: batch }, (_, i) => i)
  const calls = new Map<string, { segments: Segment[]; batch: number }>()
  branches.forEach((branch, branchIndex) => {
    const model = resolve(branch)
    const rows = branch.samples ?? all
    for (const r of rows) {
      if (!Number.isInteger(r) || r < 0 || r >= batch) {
        throw new GuidekitError('INVALID_ARGUMENT', `Branch ${branchIndex} ('${branch.role}') asks for sample ${r}, but x has ${batch} samples (valid: 0..${batch - 1}).`, {
          details: { parameter: 'branches.samples', value: r },
        })
      }
    }
    let call = calls.get(model)
    if (!call) calls.set(model, (call = { segments: [], batch: 0 }))
    call.segments.push({ branchIndex, branch, rows, offset: call.batch })
    call.batch += rows.length
  })
  return [...calls].map(([model, c]) => ({ model, segments: c.segments, batch: c.batch }))
}

/** The batched x of one call: each segment's rows of x, concatenated (no copy when it is x itself). */
export function gatherCall(x: Tensor, call: ModelCall): Tensor {
  const first = call.segments[0]
  if (call.segments.length === 1 && first && first.rows.length === x.batch && first.rows.every((r, i) => r === i)) return x
  return gatherBatch(
    x,
    call.segments.flatMap((s) => s.rows),
  )
}

/** Per-row values (class labels, timesteps) of one call, from a function of the segment and the row. */
export function rowValues(call: ModelCall, value: (segment: Segment, row: number) => number): number[] {
  return call.segments.flatMap((s) => s.rows.map((r) => value(s, r)))
}

/** Splits a batched tensor into one zero-copy view per segment. */
export function splitCall(t: Tensor, call: ModelCall): Tensor[] {
  return call.segments.map((s) => t.batchSlice(s.offset, s.offset + s.rows.length))
}
