// IEEE 754 binary16 <-> binary32, bit-exact, round-to-nearest-even. Node 20 has no Float16Array, and ONNX
// Runtime exchanges float16 tensors as Uint16Array bit patterns.

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** Converts one float32 value to float16 bits (round to nearest even; overflow to +-inf; NaN stays NaN). */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value
  const x = u32[0] as number
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant !== 0 ? 0x200 | (mant >>> 13) : 0)
  const e = exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign
    mant |= 0x800000
    const shift = 14 - e
    const half = 1 << (shift - 1)
    const rest = mant & ((1 << shift) - 1)
    let h = mant >>> shift
    if (rest > half || (rest === half && (h & 1) === 1)) h++
    return sign | h
  }
  let h = (e << 10) | (mant >>> 13)
  const rest = mant & 0x1fff
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1) === 1)) h++ // a carry into the exponent is still exact (up to inf)
  return sign | h
}

/** Converts float16 bits to the float32 value they encode (exact). */
export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1
  const exp = (bits >>> 10) & 0x1f
  const mant = bits & 0x3ff
  if (exp === 0) return sign * mant * 2 ** -24
  if (exp === 0x1f) return mant === 0 ? sign * Infinity : Number.NaN
  return sign * (1 + mant / 1024) * 2 ** (exp - 15)
}

/**
 * Converts a float32 array to float16 bit patterns (for ONNX fp16 inputs).
 *
 * @example
 * const half = float32ToFloat16(tensor.data)  // Uint16Array for an ORT 'float16' tensor
 */
export function float32ToFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length)
  for (let i = 0; i < values.length; i++) out[i] = float32ToFloat16Bits(values[i] as number)
  return out
}

/** Converts float16 bit patterns (an ORT 'float16' tensor's data) to float32. */
export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length)
  for (let i = 0; i < bits.length; i++) out[i] = float16BitsToFloat32(bits[i] as number)
  return out
}
