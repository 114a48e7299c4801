// Seeded test and benchmark data, and the error measures tests compare with. Not the noise contract of
// `RandomStream` (that one is xoshiro128** and must never change): a small, fast generator whose values
// the fixtures of several packages and the benchmarks were written against.

/**
 * Uniforms in [0, 1) from mulberry32, seeded by a 32-bit integer; no `Math.random`.
 *
 * @example
 * const r = testUniforms(7)
 * const u = r() // the same value for seed 7 every run
 */
export function testUniforms(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * `n` standard normals from {@link testUniforms} by Box-Muller (one normal per pair of uniforms):
 * `z = sqrt(-2 ln(u1 + 1e-12)) cos(2 pi u2)`.
 *
 * @example
 * const q = testNormals(2 * 64 * 32, 11) // [H, L, D] queries
 */
export function testNormals(n: number, seed: number): Float32Array {
  const r = testUniforms(seed)
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r())
  return out
}

/**
 * Relative L2 error `||a - ref|| / ||ref||`.
 *
 * @example
 * expect(relL2(sparse, dense)).toBeLessThan(0.05)
 */
export function relL2(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0
  let den = 0
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - ref[i]!) ** 2
    den += ref[i]! ** 2
  }
  return Math.sqrt(num / den)
}

/**
 * Largest absolute difference `max_i |a_i - b_i|`.
 *
 * @example
 * expect(maxAbsDiff(onnxOut, referenceOut)).toBeLessThan(1e-5)
 */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
  return m
}
