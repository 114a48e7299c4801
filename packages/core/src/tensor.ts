import ndarray from 'ndarray'
import type { NdArray } from 'ndarray'
import { GuidekitError, check } from './errors.js'

/**
 * A dense float32 tensor: a contiguous row-major `Float32Array` and its shape. The first dimension is the
 * batch; per-sample reductions run over all the others. Tensors are plain values: kernels write into
 * `data` in place only where their docs say so.
 *
 * @example
 * const x = Tensor.zeros([2, 4, 8, 8])
 * const first = x.batchSlice(0, 1)   // zero-copy view of sample 0
 */
export class Tensor {
  readonly data: Float32Array
  readonly shape: readonly number[]

  constructor(data: Float32Array, shape: readonly number[]) {
    check(shape.length >= 1 && shape.every((d) => Number.isInteger(d) && d >= 0), 'shape', shape, 'a list of non-negative integers with at least one dimension')
    const size = shape.reduce((a, b) => a * b, 1)
    if (data.length !== size) {
      throw new GuidekitError('SHAPE_MISMATCH', `Tensor data has ${data.length} elements but shape [${shape.join(', ')}] needs ${size}.`, {
        details: { length: data.length, shape },
      })
    }
    this.data = data
    // A frozen shape (another tensor's) is shared: it cannot change, and equal shapes then compare by reference.
    this.shape = Object.isFrozen(shape) ? shape : Object.freeze([...shape])
  }

  /** A tensor of zeros. */
  static zeros(shape: readonly number[]): Tensor {
    return new Tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape)
  }

  /** A tensor filled with `value`. */
  static full(shape: readonly number[], value: number): Tensor {
    const t = Tensor.zeros(shape)
    t.data.fill(value)
    return t
  }

  /** Copies a plain (nested or flat) number array into a tensor of the given shape. */
  static from(values: ArrayLike<number>, shape: readonly number[]): Tensor {
    return new Tensor(Float32Array.from(values), shape)
  }

  /**
   * Wraps an `ndarray` (the interop type). A contiguous row-major float32 ndarray is wrapped without a
   * copy; any other layout or dtype is copied.
   */
  static fromNdarray(array: NdArray): Tensor {
    const shape = array.shape
    const size = shape.reduce((a, b) => a * b, 1)
    let expected = 1
    let rowMajor = true
    for (let i = shape.length - 1; i >= 0; i--) {
      if ((shape[i] ?? 1) !== 1 && array.stride[i] !== expected) rowMajor = false
      expected *= shape[i] ?? 1
    }
    const data = array.data as unknown
    if (rowMajor && data instanceof Float32Array) {
      return new Tensor(data.subarray(array.offset, array.offset + size), shape)
    }
    const out = new Float32Array(size)
    const index = new Array<number>(shape.length).fill(0)
    for (let flat = 0; flat < size; flat++) {
      out[flat] = array.get(...index)
      for (let d = shape.length - 1; d >= 0; d--) {
        index[d] = (index[d] ?? 0) + 1
        if ((index[d] ?? 0) < (shape[d] ?? 1)) break
        index[d] = 0
      }
    }
    return new Tensor(out, shape)
  }

  /** A zero-copy `ndarray` view of this tensor. */
  toNdarray(): NdArray<Float32Array> {
    return ndarray(this.data, [...this.shape])
  }

  /** Number of elements. */
  get size(): number {
    return this.data.length
  }

  /** Size of the first (batch) dimension. */
  get batch(): number {
    return this.shape[0] ?? 1
  }

  /** Elements per batch item (product of all non-batch dimensions). */
  get sampleSize(): number {
    return this.batch === 0 ? 0 : this.data.length / this.batch
  }

  /** Zero-copy view of batch items `[start, end)`. */
  batchSlice(start: number, end: number = start + 1): Tensor {
    check(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end <= this.batch && start <= end, 'batch range', [start, end], `within [0, ${this.batch}]`)
    const n = this.sampleSize
    return new Tensor(this.data.subarray(start * n, end * n), [end - start, ...this.shape.slice(1)])
  }

  /** A deep copy. */
  clone(): Tensor {
    return new Tensor(this.data.slice(), this.shape)
  }

  /** A tensor with the same data and another shape of the same size (zero-copy). */
  reshape(shape: readonly number[]): Tensor {
    return new Tensor(this.data, shape)
  }

  /** True when both shapes are equal. */
  sameShape(other: Tensor): boolean {
    const a = this.shape
    const b = other.shape
    if (a === b) return true
    if (a.length !== b.length) return false
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
    return true
  }
}

/** Throws `SHAPE_MISMATCH` unless all tensors have the same shape. `what` names them in the message. */
export function assertSameShape(what: string, ...tensors: Tensor[]): void {
  const first = tensors[0]
  if (!first) return
  for (const t of tensors) {
    if (!first.sameShape(t)) {
      throw new GuidekitError(
        'SHAPE_MISMATCH',
        `${what}: shapes differ ([${first.shape.join(', ')}] vs [${t.shape.join(', ')}]); all tensors must have the same shape.`,
        { details: { shapes: tensors.map((x) => x.shape) } },
      )
    }
  }
}

/** Concatenates tensors along the batch dimension (one copy). */
export function concatBatch(tensors: readonly Tensor[]): Tensor {
  check(tensors.length > 0, 'tensors', tensors.length, 'a non-empty list')
  const first = tensors[0] as Tensor
  const tail = first.shape.slice(1)
  let batch = 0
  for (const t of tensors) {
    if (t.shape.length !== first.shape.length || t.shape.slice(1).some((d, i) => d !== tail[i])) {
      throw new GuidekitError('SHAPE_MISMATCH', `concatBatch: non-batch dimensions differ ([${first.shape.join(', ')}] vs [${t.shape.join(', ')}]).`)
    }
    batch += t.batch
  }
  const out = new Float32Array(batch * first.sampleSize)
  let offset = 0
  for (const t of tensors) {
    out.set(t.data, offset)
    offset += t.data.length
  }
  return new Tensor(out, [batch, ...tail])
}

/** Gathers the batch items at `indices` into a new tensor (one copy). */
export function gatherBatch(t: Tensor, indices: readonly number[]): Tensor {
  const n = t.sampleSize
  const out = new Float32Array(indices.length * n)
  indices.forEach((index, k) => {
    check(Number.isInteger(index) && index >= 0 && index < t.batch, 'batch index', index, `an integer in [0, ${t.batch})`)
    out.set(t.data.subarray(index * n, (index + 1) * n), k * n)
  })
  return new Tensor(out, [indices.length, ...t.shape.slice(1)])
}
