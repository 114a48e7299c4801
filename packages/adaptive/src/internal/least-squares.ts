import { GuidekitError, check } from '@guidekit/core'

/**
 * Solves the square system `A x = b` by Gaussian elimination with partial pivoting (float64). Throws
 * `INVALID_ARGUMENT` when `A` is singular to working precision (a pivot below `1e-12` times the largest
 * entry).
 *
 * @example
 * solveLinearSystem([[2, 1], [1, 3]], [3, 5])   // [0.8, 1.4]
 */
export function solveLinearSystem(a: readonly (readonly number[])[], b: readonly number[]): number[] {
  const n = b.length
  check(n > 0 && a.length === n && a.every((row) => row.length === n), 'a', `${a.length}x${a[0]?.length ?? 0}`, `a ${n}x${n} matrix matching b`)
  const m = a.map((row, i) => [...row, b[i] as number])
  let scale = 0
  for (const row of m) for (let j = 0; j < n; j++) scale = Math.max(scale, Math.abs(row[j] as number))
  for (let col = 0; col < n; col++) {
    let pivot = col
    for (let r = col + 1; r < n; r++) if (Math.abs((m[r] as number[])[col] as number) > Math.abs((m[pivot] as number[])[col] as number)) pivot = r
    const p = (m[pivot] as number[])[col] as number
    if (!(Math.abs(p) > 1e-12 * scale)) {
      throw new GuidekitError('INVALID_ARGUMENT', `The least-squares system is singular (column ${col}); the regressors are linearly dependent. Record more varied trajectories or add a ridge term.`, {
        details: { parameter: 'a', column: col },
      })
    }
    ;[m[col], m[pivot]] = [m[pivot] as number[], m[col] as number[]]
    const pr = m[col] as number[]
    for (let r = col + 1; r < n; r++) {
      const row = m[r] as number[]
      const f = (row[col] as number) / p
      if (f === 0) continue
      for (let j = col; j <= n; j++) row[j] = (row[j] as number) - f * (pr[j] as number)
    }
  }
  const x = new Array<number>(n).fill(0)
  for (let r = n - 1; r >= 0; r--) {
    const row = m[r] as number[]
    let s = row[n] as number
    for (let j = r + 1; j < n; j++) s -= (row[j] as number) * (x[j] as number)
    x[r] = s / (row[r] as number)
  }
  return x
}

/**
 * Accumulates ordinary least squares `min |X beta - y|^2` through the normal equations `X^T X beta = X^T y`
 * (float64), one observation row at a time, without storing X. Fine for the handful of regressors of
 * LinearAG (the Gram matrix is K x K); `ridge` adds `ridge * I` for ill-conditioned data.
 *
 * @example
 * const ls = new NormalEquations(2); ls.add([1, 0], 2); ls.add([0, 1], 3); ls.add([1, 1], 5); ls.solve()  // [2, 3]
 */
export class NormalEquations {
  readonly size: number
  private readonly gram: Float64Array
  private readonly rhs: Float64Array
  private count = 0
  private yy = 0

  constructor(size: number) {
    check(Number.isInteger(size) && size >= 1, 'size', size, 'an integer >= 1')
    this.size = size
    this.gram = new Float64Array(size * size)
    this.rhs = new Float64Array(size)
  }

  /** Adds one observation `y ≈ row · beta`. */
  add(row: ArrayLike<number>, y: number): void {
    const k = this.size
    for (let i = 0; i < k; i++) {
      const ri = row[i] as number
      this.rhs[i] = (this.rhs[i] as number) + ri * y
      for (let j = i; j < k; j++) this.gram[i * k + j] = (this.gram[i * k + j] as number) + ri * (row[j] as number)
    }
    this.yy += y * y
    this.count++
  }

  /** Number of observations added. */
  get observations(): number {
    return this.count
  }

  /** Mean of the Gram matrix's diagonal (a scale for relative ridge terms). */
  get meanDiagonal(): number {
    let s = 0
    for (let i = 0; i < this.size; i++) s += this.gram[i * this.size + i] as number
    return s / this.size
  }

  /** The least-squares coefficients (`ridge` is absolute). */
  solve(ridge = 0): number[] {
    check(this.count >= this.size, 'observations', this.count, `at least ${this.size} (one per regressor)`)
    const k = this.size
    const a: number[][] = []
    for (let i = 0; i < k; i++) {
      const row: number[] = []
      for (let j = 0; j < k; j++) row.push((this.gram[Math.min(i, j) * k + Math.max(i, j)] as number) + (i === j ? ridge : 0))
      a.push(row)
    }
    return solveLinearSystem(a, [...this.rhs])
  }

  /** Root-mean-square residual of `beta` over the observations: `sqrt((y'y - 2 beta'X'y + beta'X'X beta)/n)`. */
  residualRms(beta: readonly number[]): number {
    const k = this.size
    let quad = 0
    let lin = 0
    for (let i = 0; i < k; i++) {
      lin += (beta[i] as number) * (this.rhs[i] as number)
      for (let j = 0; j < k; j++) quad += (beta[i] as number) * (beta[j] as number) * (this.gram[Math.min(i, j) * k + Math.max(i, j)] as number)
    }
    return Math.sqrt(Math.max(0, this.yy - 2 * lin + quad) / Math.max(1, this.count))
  }
}
