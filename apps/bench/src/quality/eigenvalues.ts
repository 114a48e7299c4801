// Eigenvalues of symmetric matrices, fast enough for a thousand Frechet distances per configuration.
//
// @guidekit/eval computes one Frechet distance with cyclic Jacobi (about 0.3 s at 256 x 256, with
// eigenvectors and high relative accuracy for tiny eigenvalues). A bootstrap needs a thousand of them per
// row and only the eigenvalues, so here: Householder reduction to tridiagonal form (4/3 n^3 flops) and the
// implicit symmetric QL iteration with Wilkinson shifts on the tridiagonal matrix (O(n^2)), Golub & Van
// Loan, Matrix Computations, 4th ed., alg. 8.3.1 and 8.3.3. The absolute error of each eigenvalue is a
// small multiple of machine epsilon times the matrix norm; in tr(sqrt(C)) that moves the Frechet distance
// by far less than the bootstrap spread (checked against eval's Jacobi in the tests).

/**
 * Reduces the symmetric `n x n` row-major matrix `a` (its lower triangle is read and overwritten) to
 * tridiagonal form with Householder reflections; returns the diagonal and the sub-diagonal
 * (`offDiagonal[i]` couples rows i and i + 1). Only the lower triangle is touched, row by row, so every
 * inner loop is contiguous: the symmetric matrix-vector product reads each row once and scatters its
 * transpose part into the (small, cached) result vector.
 */
function tridiagonalize(a: Float64Array, n: number): { diagonal: Float64Array; offDiagonal: Float64Array } {
  const diagonal = new Float64Array(n)
  const offDiagonal = new Float64Array(n)
  const v = new Float64Array(n)
  const p = new Float64Array(n)
  for (let k = 0; k < n - 2; k++) {
    // x = a[k+1.., k]; reflect it onto alpha e_1.
    const x1 = a[(k + 1) * n + k] as number
    let tail = 0
    for (let j = k + 2; j < n; j++) tail += (a[j * n + k] as number) ** 2
    if (tail === 0) {
      offDiagonal[k] = x1
      continue
    }
    const norm = Math.sqrt(x1 * x1 + tail)
    const alpha = x1 > 0 ? -norm : norm
    v[k + 1] = x1 - alpha
    for (let j = k + 2; j < n; j++) v[j] = a[j * n + k] as number
    const beta = 2 / (tail + (v[k + 1] as number) ** 2)
    offDiagonal[k] = alpha
    // p = beta B v over the trailing block B = a[k+1.., k+1..], from its lower triangle.
    p.fill(0, k + 1)
    for (let i = k + 1; i < n; i++) {
      const row = i * n
      const vi = v[i] as number
      let s = (a[row + i] as number) * vi
      for (let j = k + 1; j < i; j++) {
        const aij = a[row + j] as number
        s += aij * (v[j] as number)
        p[j] = (p[j] as number) + aij * vi
      }
      p[i] = (p[i] as number) + s
    }
    let pv = 0
    for (let i = k + 1; i < n; i++) {
      p[i] = beta * (p[i] as number)
      pv += (p[i] as number) * (v[i] as number)
    }
    // w = p - (beta / 2)(p.v) v;  B -= v w^T + w v^T (w stored in p), lower triangle only.
    const half = (beta / 2) * pv
    for (let i = k + 1; i < n; i++) p[i] = (p[i] as number) - half * (v[i] as number)
    for (let i = k + 1; i < n; i++) {
      const row = i * n
      const vi = v[i] as number
      const wi = p[i] as number
      for (let j = k + 1; j <= i; j++) a[row + j] = (a[row + j] as number) - vi * (p[j] as number) - wi * (v[j] as number)
    }
  }
  for (let i = 0; i < n; i++) diagonal[i] = a[i * n + i] as number
  if (n >= 2) offDiagonal[n - 2] = a[(n - 1) * n + n - 2] as number
  offDiagonal[n - 1] = 0
  return { diagonal, offDiagonal }
}

/**
 * Eigenvalues of a symmetric tridiagonal matrix by implicit QL with Wilkinson shifts (`d` and `e` are
 * overwritten; `d` ends up holding the eigenvalues, unsorted).
 */
function tridiagonalEigenvalues(d: Float64Array, e: Float64Array): void {
  const n = d.length
  // Off-diagonal elements below eps ||T|| are set aside (the absolute accuracy the eigenvalues have anyway);
  // a test relative to the neighbouring diagonal alone would never deflate a rank-deficient matrix.
  let norm = 0
  for (let i = 0; i < n; i++) norm = Math.max(norm, Math.abs(d[i] as number) + Math.abs(e[i] as number) + (i > 0 ? Math.abs(e[i - 1] as number) : 0))
  const tolerance = Number.EPSILON * norm
  for (let l = 0; l < n; l++) {
    for (let iteration = 0; ; iteration++) {
      // The first negligible off-diagonal element at or after l splits the matrix.
      let m = l
      for (; m < n - 1; m++) if (Math.abs(e[m] as number) <= tolerance) break
      if (m === l) break
      if (iteration === 60) throw new Error(`symmetric QL did not converge for eigenvalue ${l} of ${n}; is the matrix finite?`)
      // Wilkinson shift from the leading 2 x 2 block, folded into the first rotation.
      let g = ((d[l + 1] as number) - (d[l] as number)) / (2 * (e[l] as number))
      let r = Math.hypot(g, 1)
      g = (d[m] as number) - (d[l] as number) + (e[l] as number) / (g + (g >= 0 ? r : -r))
      let s = 1
      let c = 1
      let p = 0
      let i = m - 1
      for (; i >= l; i--) {
        const f = s * (e[i] as number)
        const b = c * (e[i] as number)
        r = Math.hypot(f, g)
        e[i + 1] = r
        if (r === 0) {
          // Underflow: the matrix splits here; deflate and restart.
          d[i + 1] = (d[i + 1] as number) - p
          e[m] = 0
          break
        }
        s = f / r
        c = g / r
        g = (d[i + 1] as number) - p
        r = ((d[i] as number) - g) * s + 2 * c * b
        p = s * r
        d[i + 1] = g + p
        g = c * r - b
      }
      if (r === 0 && i >= l) continue
      d[l] = (d[l] as number) - p
      e[l] = g
      e[m] = 0
    }
  }
}

/**
 * The eigenvalues (ascending) of a symmetric `n x n` row-major matrix given by its lower triangle (the
 * upper triangle is not read); `a` is overwritten.
 *
 * @example
 * symmetricEigenvalues(new Float64Array([2, 1, 1, 2]), 2)   // [1, 3]
 */
export function symmetricEigenvalues(a: Float64Array, n: number): Float64Array {
  if (a.length !== n * n) throw new Error(`symmetricEigenvalues: expected ${n * n} values for n = ${n}, got ${a.length}`)
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) if (!Number.isFinite(a[i * n + j])) throw new Error(`symmetricEigenvalues: element (${i}, ${j}) is ${a[i * n + j]}; the matrix must be finite`)
  }
  const { diagonal, offDiagonal } = tridiagonalize(a, n)
  tridiagonalEigenvalues(diagonal, offDiagonal)
  return diagonal.sort()
}
