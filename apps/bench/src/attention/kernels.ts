import { buildAttentionModel, draftFeeds, rewriteDraftAttention, type DraftSelection } from '@guidekit/draft-attention'
import * as ort from 'onnxruntime-node'
import { localQK, randn, relL2, toPacked } from './data.js'

export interface AttentionRow {
  n: number
  method: 'dense' | 'mha' | 'draft'
  keep: number
  ms: number
  speedupVsDense: number
  relErrRandom: number
  relErrLocal: number
  /** Extra field on draft rows: which selection rule was measured. */
  selection?: DraftSelection
  /** Extra: speedup vs the MHA baseline. */
  speedupVsMha?: number
}

export interface KernelBenchOptions {
  sizes: readonly number[]
  heads: number
  headDim: number
  keeps: readonly number[]
  selections: readonly DraftSelection[]
  threads: number
  /** Draft window in tokens (default 8 x 16: the paper's 128-token blocks). */
  window: { height: number; width: number }
  log: (line: string) => void
}

/** Grid for N tokens: 32 x 32 frames (N / 1024 of them). */
export function gridFor(n: number): { frames: number; height: number; width: number } {
  if (n % 1024 === 0) return { frames: n / 1024, height: 32, width: 32 }
  const side = Math.round(Math.sqrt(n))
  return { frames: 1, height: side, width: n / side }
}

type Data = { q: Float32Array; k: Float32Array; v: Float32Array }
interface Method {
  row: Omit<AttentionRow, 'ms' | 'speedupVsDense' | 'relErrRandom' | 'relErrLocal'>
  /** Runs the method on data; returns the output as [H, N, D]. */
  run: (x: Data) => Promise<Float32Array>
  release: () => Promise<void>
  times: number[]
}

/**
 * Times every method for one N round-robin (one run of each per round, min over rounds): the machine is
 * shared, and interleaving makes load changes hit all methods alike, so the speedups stay meaningful.
 */
export async function benchKernels(options: KernelBenchOptions): Promise<AttentionRow[]> {
  const { heads: H, headDim: D, threads, window } = options
  const rows: AttentionRow[] = []
  for (const n of options.sizes) {
    // No spinning: each session has its own thread pool, and idle pools spinning after their run would
    // steal the cores from the next method's run in the round-robin.
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      graphOptimizationLevel: 'all',
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    }
    const grid = gridFor(n)
    const rounds = n >= 16384 ? 2 : n >= 4096 ? 5 : 10
    const random: Data = { q: randn(H * n * D, 1), k: randn(H * n * D, 2), v: randn(H * n * D, 3) }
    const qk = localQK(H, grid, D, 3, 4)
    const local: Data = { q: qk, k: qk, v: random.v }
    const feeds = (x: Data, h: number, offset: number) => {
      const cut = (a: Float32Array) => (h === H ? a : a.subarray(offset * n * D, (offset + h) * n * D))
      return {
        q: new ort.Tensor('float32', cut(x.q), [1, h, n, D]),
        k: new ort.Tensor('float32', cut(x.k), [1, h, n, D]),
        v: new ort.Tensor('float32', cut(x.v), [1, h, n, D]),
      }
    }
    const methods: Method[] = []

    // Dense MatMul graph. At N = 16384 the [H, N, N] scores are 8.6 GB (twice that with the softmax
    // output), so heads run in chunks that fit memory; the time is the sum over chunks.
    const denseBytes = 2 * H * n * n * 4
    const chunk = denseBytes > 6e9 ? Math.max(1, Math.floor((H * 6e9) / denseBytes)) : H
    const dense = await ort.InferenceSession.create(buildAttentionModel({ kind: 'matmul-softmax', heads: chunk, tokens: n, headDim: D }), sessionOptions)
    methods.push({
      row: { n, method: 'dense', keep: 1 },
      run: async (x) => {
        const out = new Float32Array(H * n * D)
        for (let h0 = 0; h0 < H; h0 += chunk) out.set((await dense.run(feeds(x, chunk, h0))).out!.data as Float32Array, h0 * n * D)
        return out
      },
      release: () => dense.release(),
      times: [],
    })
    if (chunk < H) options.log(`N=${n}: dense runs in ${H / chunk} head chunks (memory)`)

    // ORT MultiHeadAttention (MLAS flash path) on packed [1, N, H*D] inputs.
    const mha = await ort.InferenceSession.create(buildAttentionModel({ kind: 'multi-head-attention', heads: H, tokens: n, headDim: D }), sessionOptions)
    const packedCache = new Map<Data, Record<string, ort.Tensor>>()
    methods.push({
      row: { n, method: 'mha', keep: 1 },
      run: async (x) => {
        let f = packedCache.get(x)
        if (f === undefined) {
          f = {
            q: new ort.Tensor('float32', toPacked(x.q, 1, H, n, D), [1, n, H * D]),
            k: new ort.Tensor('float32', toPacked(x.k, 1, H, n, D), [1, n, H * D]),
            v: new ort.Tensor('float32', toPacked(x.v, 1, H, n, D), [1, n, H * D]),
          }
          packedCache.set(x, f)
        }
        const out = (await mha.run(f)).out!.data as Float32Array
        // Back to [H, N, D] for the error.
        const back = new Float32Array(out.length)
        for (let l = 0; l < n; l++) for (let h = 0; h < H; h++) back.set(out.subarray((l * H + h) * D, (l * H + h + 1) * D), (h * n + l) * D)
        return back
      },
      release: () => mha.release(),
      times: [],
    })

    // Draft attention: the dense MatMul graph rewritten by rewriteDraftAttention.
    const base = buildAttentionModel({ kind: 'matmul-softmax', heads: H, tokens: n, headDim: D })
    for (const selection of options.selections) {
      const rewritten = rewriteDraftAttention(base, { grid, window, selection })
      const session = await ort.InferenceSession.create(rewritten.model, sessionOptions)
      options.keeps.forEach((keep, i) => {
        const extra = Object.fromEntries(
          Object.entries(draftFeeds(rewritten.info, { keep })).map(([k, f]) => [k, new ort.Tensor(f.type, f.data as Uint8Array, [...f.dims])]),
        )
        methods.push({
          row: { n, method: 'draft', keep, selection },
          run: async (x) => (await session.run({ ...feeds(x, H, 0), ...extra })).out!.data as Float32Array,
          release: async () => {
            if (i === options.keeps.length - 1) await session.release()
          },
          times: [],
        })
      })
    }

    // Outputs for the errors (these runs are also the warm-up).
    const outputs = new Map<Method, { random: Float32Array; local: Float32Array }>()
    for (const m of methods) outputs.set(m, { random: await m.run(random), local: await m.run(local) })
    for (let r = 0; r < rounds; r++) {
      for (const m of methods) {
        const t = performance.now()
        await m.run(random)
        m.times.push(performance.now() - t)
      }
    }
    const min = (m: Method) => Math.min(...m.times)
    const denseMs = min(methods[0]!)
    const mhaMs = min(methods[1]!)
    const ref = outputs.get(methods[0]!)!
    for (const m of methods) {
      const o = outputs.get(m)!
      const ms = min(m)
      const row: AttentionRow = {
        ...m.row,
        ms,
        speedupVsDense: denseMs / ms,
        relErrRandom: m === methods[0] ? 0 : relL2(o.random, ref.random),
        relErrLocal: m === methods[0] ? 0 : relL2(o.local, ref.local),
        speedupVsMha: mhaMs / ms,
      }
      rows.push(row)
      options.log(`N=${n} ${m.row.method}${m.row.selection ? ` ${m.row.selection} keep=${m.row.keep}` : ''}: ${ms.toFixed(1)} ms (min of ${m.times.length})`)
      await m.release()
    }
  }
  return rows
}
