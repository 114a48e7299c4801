// Seeded Gaussian noise, reproducible bit for bit.
//
// Generator (documented contract; changing it is a breaking change):
// - Each image has its own stream, seeded by an integer seed in [0, 2^53).
// - State: xoshiro128** (four 32-bit words), initialised by four rounds of splitmix32 over
//   `(seed mod 2^32) XOR mix(floor(seed / 2^32))`.
// - Normals: Box-Muller on two 32-bit draws a, b: u1 = (a + 1) / 2^32 in (0, 1], u2 = b / 2^32,
//   r = sqrt(-2 ln u1), z0 = r cos(2 pi u2), z1 = r sin(2 pi u2); values are emitted in pairs, in order,
//   then rounded to float32.
// - Integer arithmetic is exact in JS; Math.log / Math.cos / Math.sin come from V8's own fdlibm port, which
//   gives the same bits on every OS and CPU. Same seed, same bytes.
// - A batch generated with seeds [s, s + 1, ..., s + n - 1] equals n single-image runs with those seeds:
//   `seedsFor(s, n)` is that list, and every random draw of image i (initial noise and any sampler noise)
//   comes from stream i only.
import { GuidekitError, check } from './errors.js'
import type { NoiseSource } from './contracts.js'
import { Tensor } from './tensor.js'

function splitmix32(state: number): [number, number] {
  const next = (state + 0x9e3779b9) | 0
  let z = next
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  z ^= z >>> 16
  return [next, z >>> 0]
}

/** One seeded stream of uniform 32-bit integers and standard normals. */
export class RandomStream {
  private s0: number
  private s1: number
  private s2: number
  private s3: number
  private spare = 0
  private hasSpare = false

  constructor(seed: number) {
    check(Number.isSafeInteger(seed) && seed >= 0, 'seed', seed, 'an integer in [0, 2^53)')
    const lo = seed % 0x100000000
    const hi = Math.floor(seed / 0x100000000)
    let st = (lo ^ Math.imul(hi, 0x9e3779b1)) | 0
    const words: number[] = []
    for (let i = 0; i < 4; i++) {
      const [next, z] = splitmix32(st)
      st = next
      words.push(z)
    }
    ;[this.s0, this.s1, this.s2, this.s3] = words as [number, number, number, number]
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1
  }

  /** A stream with an explicit xoshiro128** state (for tests against the reference generator). */
  static fromState(state: readonly [number, number, number, number]): RandomStream {
    const stream = new RandomStream(0)
    ;[stream.s0, stream.s1, stream.s2, stream.s3] = state.map((w) => w | 0) as [number, number, number, number]
    return stream
  }

  /** Next uniform 32-bit unsigned integer (xoshiro128**). */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0
    const t = this.s1 << 9
    this.s2 ^= this.s0
    this.s3 ^= this.s1
    this.s1 ^= this.s2
    this.s0 ^= this.s3
    this.s2 ^= t
    this.s3 = rotl(this.s3, 11)
    return result
  }

  /** Next standard normal (Box-Muller, see the module comment). */
  nextNormal(): number {
    if (this.hasSpare) {
      this.hasSpare = false
      return this.spare
    }
    const u1 = (this.nextUint32() + 1) / 4294967296
    const u2 = this.nextUint32() / 4294967296
    const r = Math.sqrt(-2 * Math.log(u1))
    const theta = 2 * Math.PI * u2
    this.spare = r * Math.sin(theta)
    this.hasSpare = true
    return r * Math.cos(theta)
  }

  /** Fills `out` with standard normals rounded to float32. */
  fillNormal(out: Float32Array): void {
    for (let i = 0; i < out.length; i++) out[i] = this.nextNormal()
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k))
}

/** The seeds of a batch of `count` images started from `seed`: `[seed, seed + 1, ...]`. */
export function seedsFor(seed: number, count: number): number[] {
  check(Number.isSafeInteger(seed) && seed >= 0, 'seed', seed, 'an integer in [0, 2^53)')
  check(Number.isInteger(count) && count >= 1, 'count', count, 'an integer >= 1')
  check(Number.isSafeInteger(seed + count - 1), 'seed + count - 1', seed + count - 1, 'below 2^53')
  return Array.from({ length: count }, (_, i) => seed + i)
}

/**
 * A noise source with one independent stream per batch item.
 *
 * @example
 * const noise = seededNoise(seedsFor(42, 4))
 * const latents = noise.next([4, 1, 28, 28])   // item i from stream 42 + i
 */
export function seededNoise(seeds: readonly number[]): NoiseSource & { readonly seeds: readonly number[] } {
  const streams = seeds.map((s) => new RandomStream(s))
  return {
    seeds: [...seeds],
    next(shape: readonly number[]): Tensor {
      if (shape[0] !== streams.length) {
        throw new GuidekitError('SHAPE_MISMATCH', `Noise requested for batch ${shape[0]} but the source has ${streams.length} seeded streams; pass one seed per image.`)
      }
      const t = Tensor.zeros(shape)
      const n = t.sampleSize
      streams.forEach((stream, i) => stream.fillNormal(t.data.subarray(i * n, (i + 1) * n)))
      return t
    },
  }
}

/** Standard normal noise of `shape` from one seed per batch item (`seedsFor(seed, shape[0])`). */
export function randn(shape: readonly number[], seed: number): Tensor {
  return seededNoise(seedsFor(seed, shape[0] ?? 1)).next(shape)
}
