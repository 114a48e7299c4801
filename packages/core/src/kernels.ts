// Numeric kernels for guiders and samplers. Hot loops run over contiguous Float32Arrays with no allocation
// per element; reductions accumulate in float64 (plain JS numbers), which keeps APG's projection and the
// unbiased std of guidance rescale well inside float32 reference tolerances.
import { GuidekitError } from './errors.js'
import { Tensor, assertSameShape } from './tensor.js'

/** A (coefficient, tensor) pair of a linear combination. Coefficients are scalars or one per batch item. */
export type Term = readonly [coefficient: number | ArrayLike<number>, tensor: Tensor]

/**
 * Fused linear combination `out = sum_k c_k * t_k` in one pass over memory. Coefficients may be one number
 * or one number per batch item (finite; anything else is `INVALID_ARGUMENT`). Writes into `out` when given (it may
 * alias an input), else allocates.
 *
 * @example
 * // CFG: D = D_u + w (D_c - D_u) = (1 - w) D_u + w D_c
 * const guided = combine([[1 - w, uncond], [w, cond]])
 */
export function combine(terms: readonly Term[], out?: Tensor): Tensor {
  const first = terms[0]
  if (!first) throw new GuidekitError('INVALID_ARGUMENT', 'combine needs at least one term.')
  const ref = first[1]
  assertSameShape('combine', ...terms.map((t) => t[1]), ...(out ? [out] : []))
  const batch = ref.batch
  terms.forEach(([c], k) => checkCoefficient(c, k, batch))
  const target = out ?? Tensor.zeros(ref.shape)
  const n = ref.sampleSize
  const o = target.data
  // Specialised loops for the common arities; a generic loop otherwise.
  for (let b = 0; b < batch; b++) {
    const start = b * n
    const end = start + n
    if (terms.length === 1) {
      const a = coefficientOf(terms, 0, b)
      const x = ref.data
      for (let i = start; i < end; i++) o[i] = a * (x[i] as number)
    } else if (terms.length === 2) {
      const a = coefficientOf(terms, 0, b)
      const c = coefficientOf(terms, 1, b)
      const x = ref.data
      const y = (terms[1] as Term)[1].data
      for (let i = start; i < end; i++) o[i] = a * (x[i] as number) + c * (y[i] as number)
    } else if (terms.length === 3) {
      const a = coefficientOf(terms, 0, b)
      const c = coefficientOf(terms, 1, b)
      const e = coefficientOf(terms, 2, b)
      const x = ref.data
      const y = (terms[1] as Term)[1].data
      const z = (terms[2] as Term)[1].data
      for (let i = start; i < end; i++) o[i] = a * (x[i] as number) + c * (y[i] as number) + e * (z[i] as number)
    } else {
      const cs = terms.map((_, k) => coefficientOf(terms, k, b))
      const ds = terms.map((t) => t[1].data)
      for (let i = start; i < end; i++) {
        let s = 0
        for (let k = 0; k < ds.length; k++) s += (cs[k] as number) * ((ds[k] as Float32Array)[i] as number)
        o[i] = s
      }
    }
  }
  return target
}

/** Term k's coefficient for batch item b. */
function coefficientOf(terms: readonly Term[], k: number, b: number): number {
  const c = (terms[k] as Term)[0]
  return typeof c === 'number' ? c : (c[b] as number)
}

/**
 * A coefficient is a finite number, or one finite number per batch item: a short list or a NaN would
 * silently fill the output with NaN (undefined * x), so both are rejected where they are made.
 */
function checkCoefficient(c: number | ArrayLike<number>, k: number, batch: number): void {
  if (typeof c === 'number') {
    if (!Number.isFinite(c)) throw new GuidekitError('INVALID_ARGUMENT', `combine: coefficient ${k} is ${c}; coefficients must be finite numbers.`, { details: { parameter: `terms[${k}]`, value: c } })
    return
  }
  if (c.length !== batch) {
    throw new GuidekitError('INVALID_ARGUMENT', `combine: coefficient ${k} lists ${c.length} values for a batch of ${batch}; pass one number, or one per batch item.`, {
      details: { parameter: `terms[${k}]`, value: c.length, expected: batch },
    })
  }
  for (let b = 0; b < batch; b++) {
    const v = c[b] as number
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw new GuidekitError('INVALID_ARGUMENT', `combine: coefficient ${k} is ${String(v)} for batch item ${b}; coefficients must be finite numbers.`, { details: { parameter: `terms[${k}][${b}]`, value: v } })
    }
  }
}

/** Per-sample dot product `<a, b>` over all non-batch dimensions (float64 accumulation). */
export function dot(a: Tensor, b: Tensor): Float64Array {
  assertSameShape('dot', a, b)
  const out = new Float64Array(a.batch)
  const n = a.sampleSize
  const x = a.data
  const y = b.data
  for (let s = 0; s < a.batch; s++) out[s] = dotRange(x, y, s * n, (s + 1) * n)
  return out
}

/** Sum of x[i] y[i] over [start, end) with four independent accumulators (more instruction-level parallelism). */
function dotRange(x: Float32Array, y: Float32Array, start: number, end: number): number {
  let a0 = 0
  let a1 = 0
  let a2 = 0
  let a3 = 0
  let i = start
  for (; i + 3 < end; i += 4) {
    a0 += (x[i] as number) * (y[i] as number)
    a1 += (x[i + 1] as number) * (y[i + 1] as number)
    a2 += (x[i + 2] as number) * (y[i + 2] as number)
    a3 += (x[i + 3] as number) * (y[i + 3] as number)
  }
  for (; i < end; i++) a0 += (x[i] as number) * (y[i] as number)
  return a0 + a1 + a2 + a3
}

/** Per-sample L2 norm over all non-batch dimensions. */
export function norm(a: Tensor): Float64Array {
  const out = dot(a, a)
  for (let i = 0; i < out.length; i++) out[i] = Math.sqrt(out[i] as number)
  return out
}

/**
 * Per-sample standard deviation over all non-batch dimensions, unbiased (N - 1), as `torch.std`.
 * Two passes (mean, then squared deviations) for accuracy.
 */
export function std(a: Tensor): Float64Array {
  const out = new Float64Array(a.batch)
  const n = a.sampleSize
  const x = a.data
  for (let s = 0; s < a.batch; s++) {
    const start = s * n
    const end = start + n
    let sum = 0
    for (let i = start; i < end; i++) sum += x[i] as number
    const mean = sum / n
    let sq = 0
    for (let i = start; i < end; i++) {
      const d = (x[i] as number) - mean
      sq += d * d
    }
    out[s] = n > 1 ? Math.sqrt(sq / (n - 1)) : Number.NaN
  }
  return out
}

/** Per-sample cosine similarity `<a,b> / (|a| |b|)`; 0 where either norm is 0. One pass. */
export function cosineSimilarity(a: Tensor, b: Tensor): Float64Array {
  assertSameShape('cosineSimilarity', a, b)
  const out = new Float64Array(a.batch)
  const n = a.sampleSize
  for (let s = 0; s < a.batch; s++) out[s] = cosineOfRange(a.data, b.data, s * n, (s + 1) * n)
  return out
}

/** Cosine similarity of two tensors flattened whole (batch included), as one number. */
export function cosineSimilarityFlat(a: Tensor, b: Tensor): number {
  assertSameShape('cosineSimilarityFlat', a, b)
  return cosineOfRange(a.data, b.data, 0, a.data.length)
}

/** `<x, y> / (|x| |y|)` over elements [start, end) (float64 sums; 0 when either part is all zeros). */
function cosineOfRange(x: Float32Array, y: Float32Array, start: number, end: number): number {
  let ab = 0
  let aa = 0
  let bb = 0
  for (let i = start; i < end; i++) {
    const p = x[i] as number
    const q = y[i] as number
    ab += p * q
    aa += p * p
    bb += q * q
  }
  const d = Math.sqrt(aa * bb)
  return d > 0 ? ab / d : 0
}

/** Index of the first NaN or infinite element, or -1 when all are finite. */
export function findNonFinite(a: Tensor | Float32Array): number {
  const x = a instanceof Tensor ? a.data : a
  const n = x.length
  // v * 0 is 0 for every finite v and NaN for NaN and +-Infinity: four branch-free sums say whether there is
  // one (2-3x faster than testing each element; sample() checks every prediction and step with it).
  let s0 = 0
  let s1 = 0
  let s2 = 0
  let s3 = 0
  let i = 0
  for (; i + 4 <= n; i += 4) {
    s0 += (x[i] as number) * 0
    s1 += (x[i + 1] as number) * 0
    s2 += (x[i + 2] as number) * 0
    s3 += (x[i + 3] as number) * 0
  }
  for (; i < n; i++) s0 += (x[i] as number) * 0
  if (s0 + s1 + s2 + s3 === 0) return -1
  for (let j = 0; j < n; j++) {
    const v = x[j] as number
    if (v - v !== 0) return j
  }
  return -1
}
