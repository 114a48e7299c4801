// One model in several worker threads, each with its own ONNX Runtime session; every call's batch is split
// between them. onnxruntime-node runs the calls of one JavaScript thread one after the other, and for the
// small runs of a sampling step its intra-op threads leave cores waiting on each other; N single-threaded
// sessions on N cores run N parts of the batch at once (`pnpm bench:perf`, five 15-round runs: 1.11-1.22x at
// batch 64, 1.05-1.15x at batch 8).
import { createRequire } from 'node:module'
import { Worker } from 'node:worker_threads'
import type { InferenceSession, Tensor as OrtTensorType } from 'onnxruntime-common'
import { Tensor as OrtTensor } from 'onnxruntime-common'

/** What one worker holds and answers: plain JavaScript (CommonJS), evaluated in the worker. */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const ort = require(workerData.ort)
const reason = (e) => String((e && e.message) || e)
ort.InferenceSession.create(workerData.model, workerData.options).then((session) => {
  const meta = (list) => list.map((m) => ({ ...m, shape: m.shape ? [...m.shape] : undefined }))
  parentPort.postMessage({ type: 'ready', inputMetadata: meta(session.inputMetadata), outputMetadata: meta(session.outputMetadata) })
  parentPort.on('message', async (message) => {
    if (message.type === 'release') {
      await session.release()
      parentPort.postMessage({ type: 'released' })
      return
    }
    try {
      const feeds = {}
      for (const [name, t] of Object.entries(message.feeds)) feeds[name] = new ort.Tensor(t.type, t.data, t.dims)
      const result = message.options ? await session.run(feeds, message.options) : await session.run(feeds)
      const outputs = {}
      const transfer = []
      for (const [name, t] of Object.entries(result)) {
        outputs[name] = { type: t.type, data: t.data, dims: [...t.dims] }
        if (ArrayBuffer.isView(t.data)) transfer.push(t.data.buffer)
      }
      parentPort.postMessage({ type: 'result', outputs }, transfer)
    } catch (e) {
      parentPort.postMessage({ type: 'result', error: reason(e) })
    }
  })
}, (e) => parentPort.postMessage({ type: 'failed', error: reason(e) }))
`

interface WireTensor {
  readonly type: OrtTensorType.Type
  readonly data: OrtTensorType.DataType
  readonly dims: readonly number[]
}

type Reply =
  | { type: 'ready'; inputMetadata: InferenceSession.ValueMetadata[]; outputMetadata: InferenceSession.ValueMetadata[] }
  | { type: 'failed'; error: string }
  | { type: 'result'; outputs?: Record<string, WireTensor>; error?: string }
  | { type: 'released' }

/** One worker thread and its session; calls are answered in order. */
class PoolWorker {
  private readonly worker: Worker
  private readonly waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = []
  private dead: Error | undefined

  constructor(model: string | Uint8Array, options: InferenceSession.SessionOptions, ortPath: string) {
    // execArgv []: the worker's code is plain CommonJS; loaders of the parent (tsx, ...) are not needed.
    this.worker = new Worker(WORKER_SOURCE, { eval: true, execArgv: [], workerData: { model, options, ort: ortPath } })
    this.worker.unref() // an idle pool never keeps the process alive
    this.worker.on('message', (reply: Reply) => this.waiting.shift()?.resolve(reply))
    const fail = (error: Error) => {
      this.dead ??= error
      for (const w of this.waiting.splice(0)) w.reject(this.dead)
    }
    this.worker.on('error', fail)
    this.worker.on('exit', (code) => fail(new Error(`the worker thread exited (code ${code})`)))
  }

  /** The next reply (the worker is referenced while one is awaited). */
  next(): Promise<Reply> {
    if (this.dead) return Promise.reject(this.dead)
    this.worker.ref()
    return new Promise<Reply>((resolve, reject) => this.waiting.push({ resolve, reject })).finally(() => {
      if (this.waiting.length === 0) this.worker.unref()
    })
  }

  send(message: unknown, transfer: ArrayBuffer[] = []): Promise<Reply> {
    const reply = this.next()
    this.worker.postMessage(message, transfer)
    return reply
  }

  terminate(): Promise<number> {
    return this.worker.terminate()
  }
}

/**
 * How a call's rows are split: into runs of at most 8 rows, and at least 2 runs when there are 2 rows or
 * more; the workers take the runs from a queue. The split depends on the number of rows only, never on the
 * number of workers, so results do not depend on it either (an int8 model quantizes each run's
 * activations with one scale: rows in one run share it). Measured on this 2-core machine, one thread, the
 * int8 DiT: per-row cost is flat from 2 to 32 rows per run (1.45-1.5 ms) and 15-25% higher at 64; the
 * activations of 8 rows (1.2 MB for the MLP) stay in a core's L2 cache.
 * @internal exported for tests
 */
export function runsOf(rows: number): [number, number][] {
  return splitRows(rows, Math.max(Math.min(rows, 2), Math.ceil(rows / 8)))
}

/** Typed array constructor of an ONNX Runtime tensor type. */
type ArrayCtor = new (length: number) => OrtTensorType.DataType & { set(a: ArrayLike<number | bigint>, offset?: number): void }

function rowsOf(dims: readonly number[]): number {
  return dims.slice(1).reduce((a, b) => a * b, 1)
}

/** Splits `batch` rows into at most `parts` contiguous ranges of near-equal size. */
function splitRows(batch: number, parts: number): [number, number][] {
  const n = Math.max(1, Math.min(parts, batch))
  const out: [number, number][] = []
  for (let i = 0, start = 0; i < n; i++) {
    const size = Math.floor(batch / n) + (i < batch % n ? 1 : 0)
    out.push([start, start + size])
    start += size
  }
  return out
}

/**
 * Opens `workers` sessions of `model` in worker threads and returns them as one ONNX Runtime session:
 * `run` splits the feeds whose first dimension is the model's free batch dimension into runs of rows
 * ({@link runsOf}; other feeds go whole to every run), runs them on the workers at once and concatenates the
 * outputs. A float model gives the same numbers as one session; an int8 model with dynamic activation
 * quantization the same as one session given each run's rows. `release()` ends the threads.
 */
export async function openWorkerPool(model: string | Uint8Array, options: InferenceSession.SessionOptions, workers: number): Promise<InferenceSession> {
  const ortPath = createRequire(import.meta.url).resolve('onnxruntime-node')
  const pool = Array.from({ length: workers }, () => new PoolWorker(model, options, ortPath))
  const ready = await Promise.allSettled(pool.map((w) => w.next()))
  const first = ready.find((r) => r.status === 'rejected' || r.value.type !== 'ready')
  if (first) {
    await Promise.all(pool.map((w) => w.terminate()))
    throw new Error(first.status === 'rejected' ? String(first.reason instanceof Error ? first.reason.message : first.reason) : (first.value as { error: string }).error)
  }
  const meta = (ready[0] as PromiseFulfilledResult<Reply & { type: 'ready' }>).value
  // The batch is the free first dimension (a name such as 'batch') of the first input that has one; the
  // inputs with that same first dimension are split, the others go whole to every part.
  const firstDim = (m: InferenceSession.ValueMetadata) => (m.isTensor && m.shape.length > 0 ? m.shape[0] : undefined)
  const symbol = meta.inputMetadata.map(firstDim).find((d) => typeof d === 'string')
  const batchedInputs = new Set(symbol === undefined ? [] : meta.inputMetadata.filter((m) => firstDim(m) === symbol).map((m) => m.name))
  let released: Promise<void> | undefined

  const run = async (feeds: InferenceSession.FeedsType, runOptions?: InferenceSession.RunOptions): Promise<InferenceSession.ReturnType> => {
    if (released) throw new Error('the session was released')
    const split = Object.entries(feeds).filter(([name]) => batchedInputs.has(name))
    const batch = split[0]?.[1].dims[0] ?? 1
    const parts = split.length === 0 ? [[0, batch] as [number, number]] : runsOf(batch)
    const message = ([start, end]: [number, number]) => {
      const wire: Record<string, WireTensor> = {}
      const transfer: ArrayBuffer[] = []
      for (const [name, t] of Object.entries(feeds)) {
        if (batchedInputs.has(name) && t.dims[0] === batch) {
          const n = rowsOf(t.dims)
          const data = (t.data as Float32Array).slice(start * n, end * n)
          wire[name] = { type: t.type, data, dims: [end - start, ...t.dims.slice(1)] }
          transfer.push(data.buffer)
        } else {
          wire[name] = { type: t.type, data: t.data, dims: [...t.dims] }
        }
      }
      return { message: { type: 'run', feeds: wire, ...(runOptions ? { options: runOptions } : {}) }, transfer }
    }
    // A queue: each worker takes the next part when it is done with one, so a slower core gets fewer parts.
    const replies = new Array<Reply>(parts.length)
    let next = 0
    await Promise.all(
      pool.slice(0, parts.length).map(async (worker) => {
        while (next < parts.length) {
          const i = next++
          const m = message(parts[i] as [number, number])
          replies[i] = await worker.send(m.message, m.transfer)
        }
      }),
    )
    const results = replies.map((r) => {
      if (r.type !== 'result' || !r.outputs) throw new Error(r.type === 'result' && r.error ? r.error : 'the worker thread gave no result')
      return r.outputs
    })
    const out: Record<string, OrtTensor> = {}
    for (const name of Object.keys(results[0] as Record<string, WireTensor>)) {
      const pieces = results.map((r) => r[name] as WireTensor)
      const head = pieces[0] as WireTensor
      if (pieces.length === 1 || !(ArrayBuffer.isView(head.data) && pieces.every((p, i) => p.dims[0] === (parts[i] as [number, number])[1] - (parts[i] as [number, number])[0]))) {
        out[name] = new OrtTensor(head.type, head.data, [...head.dims])
        continue
      }
      const Ctor = head.data.constructor as ArrayCtor
      const data = new Ctor(pieces.reduce((a, p) => a + (p.data as Float32Array).length, 0))
      let offset = 0
      for (const p of pieces) {
        data.set(p.data as Float32Array, offset)
        offset += (p.data as Float32Array).length
      }
      out[name] = new OrtTensor(head.type, data, [batch, ...head.dims.slice(1)])
    }
    return out
  }

  const unsupported = (what: string) => () => {
    throw new Error(`${what} is not available on a session split across worker threads`)
  }
  const session = {
    inputNames: meta.inputMetadata.map((m) => m.name),
    outputNames: meta.outputMetadata.map((m) => m.name),
    inputMetadata: meta.inputMetadata,
    outputMetadata: meta.outputMetadata,
    run: (feeds: InferenceSession.FeedsType, a?: unknown, b?: unknown) => {
      if (Array.isArray(a) || (a !== undefined && b !== undefined)) return Promise.reject(new Error('fetches are not supported on a session split across worker threads; read the outputs you need from the result'))
      return run(feeds, a as InferenceSession.RunOptions | undefined)
    },
    release: () =>
      (released ??= Promise.all(pool.map((w) => w.send({ type: 'release' }).catch(() => undefined)))
        .then(() => Promise.all(pool.map((w) => w.terminate())))
        .then(() => undefined)),
    startProfiling: unsupported('startProfiling'),
    endProfiling: unsupported('endProfiling'),
  }
  return session
}
