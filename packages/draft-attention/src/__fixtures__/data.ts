import { testNormals, testUniforms } from '@guidekit/core/testing'

// Seeded test data (no Math.random), from core's test generator.
export { maxAbsDiff, relL2 } from '@guidekit/core/testing'
export { testUniforms as rng, testNormals as randn }

/**
 * "Spatially local" Q = K for a grid: Fourier features of (frame, row, col) times a temperature, so
 * attention concentrates near each token (as in video DiTs). Layout [H, L, D] with `prefix` random tokens.
 */
export function localQK(
  heads: number,
  grid: { frames: number; height: number; width: number },
  headDim: number,
  options: { temperature: number; seed: number; prefix?: number },
): Float32Array {
  const prefix = options.prefix ?? 0
  const L = prefix + grid.frames * grid.height * grid.width
  const out = new Float32Array(heads * L * headDim)
  const r = testUniforms(options.seed)
  for (let h = 0; h < heads; h++) {
    const freqs = Array.from({ length: headDim / 2 }, () => [r() * 2 - 1, (r() * 2 - 1) * 0.6, (r() * 2 - 1) * 0.6, r() * 2 * Math.PI] as const)
    for (let t = 0; t < L; t++) {
      const base = (h * L + t) * headDim
      if (t < prefix) {
        for (let c = 0; c < headDim; c++) out[base + c] = (r() * 2 - 1) * 0.5
        continue
      }
      const g = t - prefix
      const f = Math.floor(g / (grid.height * grid.width))
      const y = Math.floor(g / grid.width) % grid.height
      const x = g % grid.width
      for (let c = 0; c < headDim / 2; c++) {
        const [ff, fy, fx, ph] = freqs[c]!
        const angle = ff * f * 0.3 + fy * y + fx * x + ph
        out[base + 2 * c] = Math.cos(angle) * Math.sqrt(options.temperature)
        out[base + 2 * c + 1] = Math.sin(angle) * Math.sqrt(options.temperature)
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
      for (let l = 0; l < L; l++)
        for (let d = 0; d < D; d++) out[((b * L + l) * H + h) * D + d] = x[((b * H + h) * L + l) * D + d]!
  return out
}
