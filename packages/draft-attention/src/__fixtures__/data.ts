// Seeded test data (no Math.random): mulberry32 + Box-Muller.
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function randn(n: number, seed: number): Float32Array {
  const r = rng(seed)
  const out = new Float32Array(n)
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r())
  return out
}

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
  const r = rng(options.seed)
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

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!))
  return m
}

export function relL2(a: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0
  let den = 0
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - ref[i]!) ** 2
    den += ref[i]! ** 2
  }
  return Math.sqrt(num / den)
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
