// Running a generator's ONNX graph on real inputs in onnxruntime-node: activation ranges for calibration,
// and the int8 model's deviation from the fp32 model it was made from.
import { GuidekitError } from '@guidekit/core'
import * as ort from 'onnxruntime-node'
import { IMAGES_PER_CALL, sliceFeeds, type ModelFeeds } from './data.js'

/** Rows per ONNX Runtime call: a CFG batch (class and null label) of IMAGES_PER_CALL images. */
const CHUNK = 2 * IMAGES_PER_CALL

export async function openSession(path: string, threads: number): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(path, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' })
  } catch (cause) {
    throw new GuidekitError('MODEL_INVALID', `onnxruntime-node 1.30 cannot load ${path}: ${cause instanceof Error ? cause.message.trim() : String(cause)}.`, { cause, details: { path } })
  }
}

function ortFeeds(f: ModelFeeds): Record<string, ort.Tensor> {
  return {
    sample: new ort.Tensor('float32', f.sample, [f.rows, 1, 28, 28]),
    timestep: new ort.Tensor('float32', f.timestep, [f.rows]),
    class_labels: new ort.Tensor('int64', f.classLabels, [f.rows]),
  }
}

/** Runs `session` over all rows in chunks, calling `visit` with each chunk's outputs. */
export async function runChunks(session: ort.InferenceSession, feeds: ModelFeeds, visit: (outputs: ort.InferenceSession.OnnxValueMapType, start: number, rows: number) => void): Promise<void> {
  for (let start = 0; start < feeds.rows; start += CHUNK) {
    const rows = Math.min(CHUNK, feeds.rows - start)
    visit(await session.run(ortFeeds(sliceFeeds(feeds, start, rows))), start, rows)
  }
}

/** Min and max of each named output of an instrumented model over all rows (MinMax calibration). */
export async function calibrate(instrumentedPath: string, tensors: readonly string[], feeds: ModelFeeds, threads: number): Promise<Record<string, [number, number]>> {
  const session = await openSession(instrumentedPath, threads)
  const ranges: Record<string, [number, number]> = Object.fromEntries(tensors.map((t) => [t, [Infinity, -Infinity]]))
  try {
    await runChunks(session, feeds, (outputs) => {
      for (const name of tensors) {
        const data = outputs[name]?.data as Float32Array | undefined
        if (!data) throw new GuidekitError('MODEL_INVALID', `the instrumented model has no output ${name}.`)
        const r = ranges[name] as [number, number]
        for (let i = 0; i < data.length; i++) {
          const v = data[i] as number
          if (v < r[0]) r[0] = v
          if (v > r[1]) r[1] = v
        }
      }
    })
  } finally {
    await session.release()
  }
  return ranges
}

/** How far the int8 model's output is from the fp32 model's on the same inputs. */
export interface Deviation {
  readonly rows: number
  readonly maxAbsDiff: number
  readonly rmsDiff: number
  /** rmsDiff / rms of the fp32 output. */
  readonly relativeRms: number
  /** Largest |output| of the fp32 model, for scale. */
  readonly maxAbsReference: number
}

export async function compareModels(fp32Path: string, int8Path: string, feeds: ModelFeeds, threads: number): Promise<Deviation> {
  const [a, b] = [await openSession(fp32Path, threads), await openSession(int8Path, threads)]
  let maxAbsDiff = 0
  let sumSq = 0
  let refSq = 0
  let maxAbsReference = 0
  let count = 0
  try {
    const reference: Float32Array[] = []
    await runChunks(a, feeds, (o) => void reference.push((o.out_sample?.data as Float32Array).slice()))
    let chunk = 0
    await runChunks(b, feeds, (o) => {
      const got = o.out_sample?.data as Float32Array
      const ref = reference[chunk++] as Float32Array
      for (let i = 0; i < ref.length; i++) {
        const d = (got[i] as number) - (ref[i] as number)
        if (!Number.isFinite(d)) throw new GuidekitError('NON_FINITE', `the int8 model produced ${got[i]} where the fp32 model gives ${ref[i]}.`)
        maxAbsDiff = Math.max(maxAbsDiff, Math.abs(d))
        maxAbsReference = Math.max(maxAbsReference, Math.abs(ref[i] as number))
        sumSq += d * d
        refSq += (ref[i] as number) ** 2
      }
      count += ref.length
    })
  } finally {
    await a.release()
    await b.release()
  }
  return { rows: feeds.rows, maxAbsDiff, rmsDiff: Math.sqrt(sumSq / count), relativeRms: Math.sqrt(sumSq / refSq), maxAbsReference }
}
