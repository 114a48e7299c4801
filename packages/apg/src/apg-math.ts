import { Tensor, assertSameShape, check, checkNumber } from '@guidekit/core'

/** Which dimensions APG's norms and dot products run over. */
export type NormDim = number | readonly number[]

/**
 * APG's momentum buffer update (arXiv 2410.02416, Alg. 1; diffusers `MomentumBuffer.update`):
 * `runningAverage = diff + momentum * runningAverage`, starting from 0 (pass `null` on the first step).
 * Returns a new tensor. `momentum < 0` is the paper's "reverse momentum" (recommended -0.5).
 *
 * @example
 * let ra = null; ra = apgMomentumUpdate(ra, diff, -0.5)
 */
export function apgMomentumUpdate(runningAverage: Tensor | null, diff: Tensor, momentum: number): Tensor {
  checkNumber('momentum', momentum, { min: -1, max: 1, minExclusive: true, maxExclusive: true })
  if (runningAverage === null) return diff.clone()
  assertSameShape('apgMomentumUpdate (runningAverage, diff)', runningAverage, diff)
  const out = new Float32Array(diff.size)
  const d = diff.data
  const r = runningAverage.data
  for (let i = 0; i < out.length; i++) out[i] = (d[i] as number) + momentum * (r[i] as number)
  return new Tensor(out, diff.shape)
}

/**
 * The branch difference as the guiders use it, `a - b + momentum * previous` (`previous` null: `a - b`),
 * given to {@link apgGuided} unmade: it is computed in the reduction pass.
 */
export interface BranchDifference {
  readonly a: Tensor
  readonly b: Tensor
  readonly previous: Tensor | null
  readonly momentum: number
}

/** `a - b + momentum * previous` in one pass, rounded to float32 like every stored tensor. */
function differenceOf(diff: BranchDifference): Tensor {
  const { a, b, previous, momentum } = diff
  const out = new Float32Array(a.size)
  const x = a.data
  const y = b.data
  if (previous === null) {
    for (let i = 0; i < out.length; i++) out[i] = (x[i] as number) - (y[i] as number)
  } else {
    const r = previous.data
    for (let i = 0; i < out.length; i++) out[i] = (x[i] as number) - (y[i] as number) + momentum * (r[i] as number)
  }
  return new Tensor(out, a.shape)
}

/** Options of {@link apgDirection}. */
export interface ApgDirectionOptions {
  /** Weight of the parallel component (paper eta; 0 removes it, 1 keeps it). */
  readonly eta: number
  /** Norm threshold r: `diff <- diff * min(1, r / |diff|)`; 0 disables. */
  readonly normThreshold?: number
  /**
   * Dimensions of the norms and dot products, diffusers' `norm_dim` (indices into the full shape, batch
   * = 0; negative counts from the end). Default: all non-batch dimensions (per sample).
   */
  readonly normDim?: NormDim
}

/**
 * APG's modified guidance direction (Sadat et al., arXiv 2410.02416, eqs. 7-9; diffusers
 * `normalized_guidance`): clamp `diff` to norm r (if r > 0), split it against `v = cond / max(|cond|, 1e-12)`
 * (`F.normalize`) into `par = <diff, v> v` and `orth = diff - par`, and return `orth + eta * par`.
 * Reductions accumulate in float64 (the reference projects in float64).
 *
 * @example
 * const g = apgDirection(diff, cond, { eta: 0, normThreshold: 15 })   // then D = D_c + (w - 1) g
 */
export function apgDirection(diff: Tensor, cond: Tensor, options: ApgDirectionOptions): Tensor {
  return apgGuided(diff, cond, options, null, 1).guided
}

/**
 * `base + weight * apgDirection(diff, cond, options)` with the sum made in the direction's own output pass
 * (`base` null: the direction times `weight`): what the guiders return, one pass and one tensor fewer.
 * `diff` may be given as the branches it comes from ({@link BranchDifference}): then it is made in the
 * reduction pass (two passes in all) and returned with the result, for the guider's momentum buffer.
 */
export function apgGuided(diff: Tensor | BranchDifference, cond: Tensor, options: ApgDirectionOptions, base: Tensor | null, weight: number): { guided: Tensor; diff: Tensor } {
  const eta = checkNumber('eta', options.eta, { min: 0 })
  const threshold = checkNumber('normThreshold', options.normThreshold ?? 0, { min: 0 })
  const made = diff instanceof Tensor ? diff : null
  const branches = diff instanceof Tensor ? null : diff
  if (branches) assertSameShape('apgGuided (cond, a, b, previous)', cond, branches.a, branches.b, ...(branches.previous ? [branches.previous] : []))
  else assertSameShape('apgDirection (diff, cond)', made as Tensor, cond)
  if (base !== null) assertSameShape('apgGuided (cond, base)', cond, base)
  const { groups, index } = reductionGroups(cond.shape, options.normDim)
  const dd = new Float64Array(groups)
  const dc = new Float64Array(groups)
  const cc = new Float64Array(groups)
  const c = cond.data
  const n = c.length
  let d: Float32Array
  if (index === null && branches) {
    // The difference made and reduced in one pass (float32-rounded as stored, so the sums are the same).
    d = new Float32Array(n)
    const x = branches.a.data
    const y = branches.b.data
    const r = branches.previous?.data
    const m = branches.momentum
    const per = cond.sampleSize
    // Two copies of the loop (with and without the momentum term): a test inside the loop made it 1.3-1.7x
    // slower in V8.
    for (let g = 0; g < groups; g++) {
      let a = 0
      let b = 0
      let e = 0
      const end = (g + 1) * per
      if (r) {
        for (let i = g * per; i < end; i++) {
          const di = Math.fround((x[i] as number) - (y[i] as number) + m * (r[i] as number))
          const ci = c[i] as number
          d[i] = di
          a += di * di
          b += di * ci
          e += ci * ci
        }
      } else {
        for (let i = g * per; i < end; i++) {
          const di = Math.fround((x[i] as number) - (y[i] as number))
          const ci = c[i] as number
          d[i] = di
          a += di * di
          b += di * ci
          e += ci * ci
        }
      }
      dd[g] = a
      dc[g] = b
      cc[g] = e
    }
  } else {
    // A given difference, or reduction groups other than one per sample: one loop over the elements (the
    // same additions in the same order as the loop above, per group).
    d = (made ?? differenceOf(branches as BranchDifference)).data
    const per = cond.sampleSize
    for (let i = 0; i < n; i++) {
      const g = index === null ? (i / per) | 0 : (index[i] as number)
      const di = d[i] as number
      const ci = c[i] as number
      dd[g] = (dd[g] as number) + di * di
      dc[g] = (dc[g] as number) + di * ci
      cc[g] = (cc[g] as number) + ci * ci
    }
  }
  // Per group: s = min(1, r/|d|) (r/0 = inf gives 1, as torch); k = <s d, c> / max(|c|, 1e-12)^2;
  // orth + eta par = s d - (1 - eta) k c, both scaled by `weight`.
  const s = new Float64Array(groups)
  const k = new Float64Array(groups)
  for (let g = 0; g < groups; g++) {
    const sg = threshold > 0 ? Math.min(1, threshold / Math.sqrt(dd[g] as number)) : 1
    const cn = Math.max(Math.sqrt(cc[g] as number), 1e-12)
    s[g] = weight * sg
    k[g] = (weight * (1 - eta) * sg * (dc[g] as number)) / (cn * cn)
  }
  const out = new Float32Array(n)
  if (index === null) {
    const per = cond.sampleSize
    const b = base?.data
    for (let g = 0; g < groups; g++) {
      const sg = s[g] as number
      const kg = k[g] as number
      const end = (g + 1) * per
      if (b) for (let i = g * per; i < end; i++) out[i] = (b[i] as number) + sg * (d[i] as number) - kg * (c[i] as number)
      else for (let i = g * per; i < end; i++) out[i] = sg * (d[i] as number) - kg * (c[i] as number)
    }
  } else {
    if (base !== null) out.set(base.data)
    for (let i = 0; i < n; i++) {
      const g = index[i] as number
      out[i] = (out[i] as number) + (s[g] as number) * (d[i] as number) - (k[g] as number) * (c[i] as number)
    }
  }
  return { guided: new Tensor(out, cond.shape), diff: made ?? new Tensor(d, cond.shape) }
}

const groupCache = new Map<string, { groups: number; index: Int32Array }>()

/** The reduction groups of `normDim`: `index === null` means one group per batch item (contiguous). */
function reductionGroups(shape: readonly number[], normDim: NormDim | undefined): { groups: number; index: Int32Array | null } {
  const batch = shape[0] ?? 1
  if (normDim === undefined) return { groups: batch, index: null }
  const rank = shape.length
  const raw = typeof normDim === 'number' ? [normDim] : [...normDim]
  check(raw.length > 0, 'normDim', normDim, 'a dimension index or a non-empty list of them')
  const dims = raw.map((dim) => {
    check(Number.isInteger(dim) && dim >= -rank && dim < rank, 'normDim', normDim, `dimension indices in [${-rank}, ${rank - 1}]`)
    return dim < 0 ? dim + rank : dim
  })
  const reduced = new Set(dims)
  if (reduced.size === rank - 1 && !reduced.has(0)) return { groups: batch, index: null }
  const key = `${shape.join(',')}|${[...reduced].sort().join(',')}`
  const cached = groupCache.get(key)
  if (cached) return cached
  // Group id = the row-major index over the kept dimensions.
  const size = shape.reduce((a, b) => a * b, 1)
  const index = new Int32Array(size)
  const kept = shape.map((_, i) => i).filter((i) => !reduced.has(i))
  const groups = kept.reduce((a, i) => a * (shape[i] as number), 1)
  const coord = new Array<number>(rank).fill(0)
  for (let flat = 0; flat < size; flat++) {
    let g = 0
    for (const i of kept) g = g * (shape[i] as number) + (coord[i] as number)
    index[flat] = g
    for (let dim = rank - 1; dim >= 0; dim--) {
      coord[dim] = (coord[dim] as number) + 1
      if ((coord[dim] as number) < (shape[dim] as number)) break
      coord[dim] = 0
    }
  }
  const result = { groups, index }
  if (groupCache.size > 64) groupCache.clear()
  groupCache.set(key, result)
  return result
}
