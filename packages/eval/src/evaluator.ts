import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { GuidekitError, Tensor } from '@guidekit/core'
import { openSession } from '@guidekit/onnx'
import type { OnnxSessionOptions } from '@guidekit/onnx'
import * as ort from 'onnxruntime-node'
import { imageShape } from './images.js'
import type { FeatureSet } from './statistics.js'

/** What the evaluator says about a set of images. */
export interface EvaluatorOutputs {
  /** Class logits, `[count, classes]`. */
  readonly logits: FeatureSet
  /** Penultimate-layer features, `[count, featureDim]` (the space of the Frechet distance). */
  readonly features: FeatureSet
}

/** A loaded evaluator model (ONNX input `image` [B,C,H,W] in [-1, 1]; outputs `logits` and `features`). */
export interface Evaluator {
  readonly path: string
  /** SHA-256 of the ONNX file: reference statistics are only valid for the evaluator that made them. */
  readonly sha256: string
  /** Runs the evaluator in batches; images are clamped to [-1, 1] first (what a saved PNG shows). */
  evaluate(images: Tensor, options?: { readonly batchSize?: number; readonly clamp?: boolean; readonly signal?: AbortSignal }): Promise<EvaluatorOutputs>
  /** Releases the session; safe to call more than once. */
  dispose(): Promise<void>
}

/** Options of {@link loadEvaluator}. */
export interface LoadEvaluatorOptions {
  readonly sessionOptions?: OnnxSessionOptions
  /** Input and output names; default `image`, `logits`, `features` (the `fashion-eval` card). */
  readonly names?: { readonly image?: string; readonly logits?: string; readonly features?: string }
}

/**
 * Loads an evaluator ONNX model, such as `fashion-eval` of `@guidekit/models-fashion`.
 *
 * @example
 * const evaluator = await loadEvaluator(fashionModel('fashion-eval').onnxPath)
 * const { logits, features } = await evaluator.evaluate(result.samples)
 */
export async function loadEvaluator(path: string, options: LoadEvaluatorOptions = {}): Promise<Evaluator> {
  const session = await openSession(path, options.sessionOptions)
  let released: Promise<void> | undefined
  const sha256 = createHash('sha256').update(readFileSync(path)).digest('hex')
  const imageName = options.names?.image ?? 'image'
  const logitsName = options.names?.logits ?? 'logits'
  const featuresName = options.names?.features ?? 'features'
  for (const [kind, names, wanted] of [
    ['input', session.inputNames, [imageName]],
    ['output', session.outputNames, [logitsName, featuresName]],
  ] as const) {
    for (const name of wanted) {
      if (!names.includes(name)) {
        await session.release()
        throw new GuidekitError('MODEL_INVALID', `${path} has no ${kind} '${name}' (its ${kind}s: ${names.join(', ')}); an evaluator takes 'image' and returns 'logits' and 'features'.`, {
          details: { path, kind, name },
        })
      }
    }
  }
  return {
    path,
    sha256,
    async evaluate(images, evalOptions = {}) {
      const { batch, size } = imageShape(images)
      const { batchSize = 250, clamp = true, signal } = evalOptions
      const logits: Float32Array[] = []
      const features: Float32Array[] = []
      let classes = 0
      let dim = 0
      for (let start = 0; start < batch; start += batchSize) {
        if (signal?.aborted) throw new GuidekitError('ABORTED', `Evaluation was aborted after ${start} of ${batch} images.`, { cause: signal.reason })
        const n = Math.min(batchSize, batch - start)
        const input = images.data.slice(start * size, (start + n) * size)
        if (clamp) for (let i = 0; i < input.length; i++) input[i] = Math.min(1, Math.max(-1, input[i] as number))
        const out = await session.run({ [imageName]: new ort.Tensor('float32', input, [n, ...images.shape.slice(1)]) })
        const lo = out[logitsName] as ort.Tensor
        const fe = out[featuresName] as ort.Tensor
        classes = lo.dims[1] as number
        dim = fe.dims[1] as number
        logits.push(lo.data as Float32Array)
        features.push(fe.data as Float32Array)
      }
      const join = (parts: Float32Array[], width: number): FeatureSet => {
        const data = new Float32Array(batch * width)
        let o = 0
        for (const p of parts) {
          data.set(p, o)
          o += p.length
        }
        return { count: batch, dim: width, data }
      }
      return { logits: join(logits, classes), features: join(features, dim) }
    },
    dispose: () => (released ??= session.release()),
  }
}

/** Reads images as a `Tensor` from Fashion-MNIST / MNIST IDX files (gzip or raw), scaled to [-1, 1]. */
export function readIdxImages(bytes: Uint8Array, limit?: number): Tensor {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (view.getUint32(0) !== 0x00000803) {
    throw new GuidekitError('INVALID_ARGUMENT', 'readIdxImages expects an IDX3 ubyte image file (magic 0x00000803); gunzip it first.', { details: { magic: view.getUint32(0) } })
  }
  const total = view.getUint32(4)
  const h = view.getUint32(8)
  const w = view.getUint32(12)
  const n = limit === undefined ? total : Math.min(limit, total)
  const data = new Float32Array(n * h * w)
  for (let i = 0; i < data.length; i++) data[i] = (bytes[16 + i] as number) / 127.5 - 1
  return new Tensor(data, [n, 1, h, w])
}

/** Reads labels from an IDX1 ubyte label file. */
export function readIdxLabels(bytes: Uint8Array, limit?: number): number[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  if (view.getUint32(0) !== 0x00000801) {
    throw new GuidekitError('INVALID_ARGUMENT', 'readIdxLabels expects an IDX1 ubyte label file (magic 0x00000801); gunzip it first.', { details: { magic: view.getUint32(0) } })
  }
  const total = view.getUint32(4)
  const n = limit === undefined ? total : Math.min(limit, total)
  return Array.from(bytes.subarray(8, 8 + n))
}
