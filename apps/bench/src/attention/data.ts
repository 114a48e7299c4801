import { testUniforms } from '@guidekit/core/testing'

// Seeded benchmark data: random Gaussian Q/K/V and "spatially local" Q = K (Fourier features of the
// token's frame/row/column, as in the reference's section 5.2), so attention concentrates near each token.
export { testNormals as randn, relL2 } from '@guidekit/core/testing'

/** Q = K with locality, layout [H, L, D]; `temperature` scales the logits (3 = fairly peaked). */
export function localQK(heads: number, grid: { frames: number; height: number; width: number }, headDim: number, temperature: number, seed: number): Float32Array {
  const L = grid.frames * grid.height * grid.width
  const out = new Float32Array(heads * L * headDim)
  const r = testUniforms(seed)
  // logits q.k / sqrt(D) = temperature * mean(cos(angle differences)) * 2 ... scale features so that
  // q.q / sqrt(D) = temperature * sqrt(D) / 2 * (2 / D) * D ... keep it simple: |q|^2 / sqrt(D) = temperature * 8.
  const amp = Math.sqrt((temperature * 8 * Math.sqrt(headDim)) / (headDim / 2))
  for (let h = 0; h < heads; h++) {
    const freqs = Array.from({ length: headDim / 2 }, () => [(r() * 2 - 1) * 0.6, (r() * 2 - 1) * 0.6, (r() * 2 - 1) * 0.6, r() * 2 * Math.PI] as const)
    for (let t = 0; t < L; t++) {
      const f = Math.floor(t / (grid.height * grid.width))
      const y = Math.floor(t / grid.width) % grid.height
      const x = t % grid.width
      const base = (h * L + t) * headDim
      for (let c = 0; c < headDim / 2; c++) {
        const [ff, fy, fx, ph] = freqs[c]!
        const angle = ff * f + fy * y + fx * x + ph
        out[base + 2 * c] = Math.cos(angle) * amp
        out[base + 2 * c + 1] = Math.sin(angle) * amp
      }
    }
  }
  return out
}

/** [B, H, L, D] -> [B, L, H*D]. */
export function toPacked(x: Float32Array, B: number, H: number, L: number, D: number): Float32Array {
  const out = new Float32Array(x.length)
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let l = 0; l < L; l++) {
        const src = ((b * H + h) * L + l) * D
        out.set(x.subarray(src, src + D), ((b * L + l) * H + h) * D)
      }
  return out
}
