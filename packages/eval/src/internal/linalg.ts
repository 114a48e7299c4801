import { GuidekitError } from '@guidekit/core'

/** Eigenvalues (ascending) and eigenvectors (column k of the row-major `vectors` belongs to `values[k]`). */
export interface SymmetricEigen {
  readonly n: number
  readonly values: Float64Array
  readonly vectors: Float64Array
  /** Jacobi sweeps it took to converge. */
  readonly sweeps: number
}

function checkSquare(name: string, data: Float64Array, n: number): void {
  if (!Number.isInteger(n) || n < 1 || data.length !== n * n) {
    throw new GuidekitError('SHAPE_MISMATCH', `${name} must hold n*n = ${n * n} values for n = ${n}, got ${data.length}.`, { details: { parameter: name, n, length: data.length } })
  }
}

/**
 * Eigendecomposition of a real symmetric matrix, `A = V diag(values) V^T`, by the cyclic Jacobi method in
 * float64 (Golub & Van Loan, Matrix Computations, 4th ed., alg. 8.5.3, with Rutishauser's rotation
 * formulas). Jacobi is chosen over tridiagonal QL because it is short, unconditionally stable and
 * computes small eigenvalues of positive semi-definite matrices to high relative accuracy, which is what
 * the square roots in the Frechet distance need. Only the lower triangle of `a` is read (the input is
 * symmetrised as `(A + A^T) / 2` first), and `a` is not modified.
 *
 * A 256 x 256 covariance converges in 7-9 sweeps (~0.3 s in Node).
 *
 * @example
 * const { values, vectors } = symmetricEigen(new Float64Array([2, 1, 1, 2]), 2)   // values [1, 3]
 */
export function symmetricEigen(a: Float64Array, n: number, options: { readonly maxSweeps?: number; readonly tolerance?: number } = {}): SymmetricEigen {
  checkSquare('a', a, n)
  const { maxSweeps = 60, tolerance = 1e-15 } = options
  const m = new Float64Array(n * n)
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      const v = ((a[i * n + j] as number) + (a[j * n + i] as number)) / 2
      if (!Number.isFinite(v)) throw new GuidekitError('NON_FINITE', `symmetricEigen: element (${i}, ${j}) is ${v}; the matrix must be finite.`, { details: { row: i, column: j } })
      m[i * n + j] = v
      m[j * n + i] = v
    }
  }
  const v = new Float64Array(n * n)
  for (let i = 0; i < n; i++) v[i * n + i] = 1
  let frob = 0
  for (let i = 0; i < n * n; i++) frob += (m[i] as number) ** 2
  let sweeps = 0
  for (; sweeps < maxSweeps; sweeps++) {
    let off = 0
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) off += (m[i * n + j] as number) ** 2
    if (off <= tolerance * tolerance * frob || off === 0) break
    for (let p = 0; p < n - 1; p++) {
      for (let q = p + 1; q < n; q++) {
        const apq = m[p * n + q] as number
        if (apq === 0) continue
        const app = m[p * n + p] as number
        const aqq = m[q * n + q] as number
        // Skip rotations that cannot change the diagonal in float64 (standard "threshold" test, after sweep 4).
        if (sweeps > 3 && Math.abs(apq) * 1e17 <= Math.abs(app) && Math.abs(apq) * 1e17 <= Math.abs(aqq)) {
          m[p * n + q] = 0
          m[q * n + p] = 0
          continue
        }
        const theta = (aqq - app) / (2 * apq)
        const t = (theta >= 0 ? 1 : -1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1))
        const c = 1 / Math.sqrt(t * t + 1)
        const s = t * c
        const tau = s / (1 + c)
        m[p * n + p] = app - t * apq
        m[q * n + q] = aqq + t * apq
        m[p * n + q] = 0
        m[q * n + p] = 0
        for (let k = 0; k < n; k++) {
          if (k === p || k === q) continue
          const akp = m[k * n + p] as number
          const akq = m[k * n + q] as number
          const np = akp - s * (akq + tau * akp)
          const nq = akq + s * (akp - tau * akq)
          m[k * n + p] = np
          m[p * n + k] = np
          m[k * n + q] = nq
          m[q * n + k] = nq
        }
        for (let k = 0; k < n; k++) {
          const vkp = v[k * n + p] as number
          const vkq = v[k * n + q] as number
          v[k * n + p] = vkp - s * (vkq + tau * vkp)
          v[k * n + q] = vkq + s * (vkp - tau * vkq)
        }
      }
    }
  }
  if (sweeps === maxSweeps) {
    throw new GuidekitError('NON_FINITE', `symmetricEigen did not converge in ${maxSweeps} Jacobi sweeps (n = ${n}); is the matrix finite and well scaled?`, { details: { n, maxSweeps } })
  }
  // Sort ascending, permuting the eigenvector columns with the values.
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => (m[x * n + x] as number) - (m[y * n + y] as number))
  const values = new Float64Array(n)
  const vectors = new Float64Array(n * n)
  order.forEach((src, dst) => {
    values[dst] = m[src * n + src] as number
    for (let k = 0; k < n; k++) vectors[k * n + dst] = v[k * n + src] as number
  })
  return { n, values, vectors, sweeps }
}

/** `V diag(f(values)) V^T` for an eigendecomposition. */
export function fromEigen(eigen: SymmetricEigen, f: (value: number) => number): Float64Array {
  const { n, values, vectors } = eigen
  const fv = values.map(f)
  const out = new Float64Array(n * n)
  const row = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) row[k] = (vectors[i * n + k] as number) * (fv[k] as number)
    for (let j = 0; j <= i; j++) {
      let s = 0
      for (let k = 0; k < n; k++) s += (row[k] as number) * (vectors[j * n + k] as number)
      out[i * n + j] = s
      out[j * n + i] = s
    }
  }
  return out
}

/**
 * The principal square root of a symmetric positive semi-definite matrix, `V diag(sqrt(max(values, 0))) V^T`.
 * Eigenvalues below zero (round-off of a singular covariance) are clamped to 0.
 *
 * @example
 * sqrtmPsd(new Float64Array([4, 0, 0, 9]), 2)   // [2, 0, 0, 3]
 */
export function sqrtmPsd(a: Float64Array, n: number): Float64Array {
  return fromEigen(symmetricEigen(a, n), (x) => Math.sqrt(Math.max(x, 0)))
}

/** `A B` for row-major `n x n` float64 matrices. */
export function matmul(a: Float64Array, b: Float64Array, n: number): Float64Array {
  checkSquare('a', a, n)
  checkSquare('b', b, n)
  const out = new Float64Array(n * n)
  for (let i = 0; i < n; i++) {
    for (let k = 0; k < n; k++) {
      const aik = a[i * n + k] as number
      if (aik === 0) continue
      for (let j = 0; j < n; j++) out[i * n + j] = (out[i * n + j] as number) + aik * (b[k * n + j] as number)
    }
  }
  return out
}
