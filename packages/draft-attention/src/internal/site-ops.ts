import type { NodeEmitter } from '@guidekit/onnx/graph'
import type { DraftGeometry } from '../layout.js'

/** End bound of a Slice that runs to the end of an axis. */
export const INT64_MAX = Number.MAX_SAFE_INTEGER
/** Additive logit bias of a masked key (exp underflows to 0). */
export const MASKED = -1e9

/** The emitter of one site's draft branch, its geometry and the small helpers every stage uses. */
export interface SiteOps {
  readonly e: NodeEmitter
  readonly geo: DraftGeometry
  /** An int64 initializer (shapes, axes, indices). */
  readonly i64: (values: number[], hint?: string) => string
  /** Concat along axis 0 (shape tensors). */
  readonly concat: (parts: string[], hint?: string) => string
  /** `x[:, start:end]` on axis 1 (the token axis of [H', L, D]). */
  readonly slice1: (x: string, start: number, end: number) => string
}

/** {@link SiteOps} plus the facts of the site known after its inputs are brought to [H', L, D]. */
export interface Site extends SiteOps {
  /** Head dimension of Q/K and of V, as int64 `[1]` shape tensors. */
  readonly d: string
  readonly dv: string
  /** Logit scale, a float scalar tensor. */
  readonly scale: string
  /** `softmax(q kT * scale + bias) v` over the last axis. */
  readonly attention: (q: string, kT: string, v: string, bias?: string) => string
}

export function siteOps(e: NodeEmitter, geo: DraftGeometry): SiteOps {
  const i64 = (values: number[], hint = 'shape') => e.int64(values, hint)
  return {
    e,
    geo,
    i64,
    concat: (parts, hint = 'shape') => e.op1('Concat', parts, { axis: { i: 0 } }, hint),
    slice1: (x, start, end) => e.op1('Slice', [x, i64([start]), i64([end]), i64([1])], {}, 'slice'),
  }
}

export function site(ops: SiteOps, d: string, dv: string, scale: string): Site {
  const { e } = ops
  return {
    ...ops,
    d,
    dv,
    scale,
    attention: (q, kT, v, bias) => {
      let s = e.op1('Mul', [e.op1('MatMul', [q, kT], {}, 'scores'), scale], {}, 'scaled')
      if (bias !== undefined) s = e.op1('Add', [s, bias], {}, 'masked')
      return e.op1('MatMul', [e.op1('Softmax', [s], { axis: { i: -1 } }), v], {}, 'attn')
    },
  }
}

/** The tensors of the block stage: queries and keys as [H', S, b, D], keys and values as [H' S, b, D]. */
export interface Blocks {
  readonly qb: string
  readonly kb: string
  readonly kf: string
  readonly vf: string
}

/** Where block j of (batch, head) h sits in the flat [H' S, b, D] tensors: row h * S + j. */
export interface HeadOffsets {
  /** H' as an int64 scalar. */
  readonly hCount: string
  /** `h * S` as int64 [H', 1, 1]. */
  readonly offsets: string
}

/** The text (prefix + suffix) tokens, which stay dense: their queries and the keys/values every block sees. */
export interface TextTokens {
  /** Text queries [H', T, D]. */
  readonly qt: string
  /** Text keys/values as [H', 1, T, D], appended to every block's key set. */
  readonly ktext: string
  readonly vtext: string
  /** T = prefix + suffix tokens. */
  readonly count: number
}
