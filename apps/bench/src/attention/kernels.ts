import { buildAttentionModel, draftFeeds, rewriteDraftAttention, type DraftSelection } from '@guidekit/draft-attention'
import * as ort from 'onnxruntime-node'
import { localQK, randn, relL2, toPacked } from './data.js'
import { time } from './timing.js'

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
  /** Extra: ms vs the MHA baseline. */
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

export async function benchKernels(options: KernelBenchOptions): Promise<AttentionRow[]> {
  const { heads: H, headDim: D, threads, window } = options
  const sessionOptions: ort.InferenceSession.SessionOptions = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' }
  const rows: AttentionRow[] = []
  for (const n of options.sizes) {
    const grid = gridFor(n)
    const budget = n >= 16384 ? 0 : n >= 4096 ? 3000 : 1500
    const timing = { minRuns: n >= 16384 ? 2 : 5, maxRuns: n >= 16384 ? 3 : 15, budgetMs: budget }
    const random = { q: randn(H * n * D, 1), k: randn(H * n * D, 2), v: randn(H * n * D, 3) }
    const qk = localQK(H, grid, D, 3, 4)
    const local = { q: qk, k: qk, v: random.v }
    const feeds = (x: { q: Float32Array; k: Float32Array; v: Float32Array }, h = H, offset = 0) => {
      const size = h * n * D
      const cut = (a: Float32Array) => (h === H ? a : a.subarray(offset * n * D, offset * n * D + size))
      return {
        q: new ort.Tensor('float32', cut(x.q), [1, h, n, D]),
        k: new ort.Tensor('float32', cut(x.k), [1, h, n, D]),
        v: new ort.Tensor('float32', cut(x.v), [1, h, n, D]),
      }
    }

    // Dense MatMul graph. At N = 16384 the [H, N, N] scores alone are 8.6 GB (twice that with the softmax
    // output), so heads are run in chunks that fit memory; the time is the sum over chunks.
    const denseBytes = 2 * H * n * n * 4
    const chunk = denseBytes > 6e9 ? Math.max(1, Math.floor((H * 6e9) / denseBytes)) : H
    const dense = await ort.InferenceSession.create(buildAttentionModel({ kind: 'matmul-softmax', heads: chunk, tokens: n, headDim: D }), sessionOptions)
    const runDense = async (x: typeof random) => {
      const out = new Float32Array(H * n * D)
      for (let h0 = 0; h0 < H; h0 += chunk) out.set((await dense.run(feeds(x, chunk, h0))).out!.data as Float32Array, h0 * n * D)
      return out
    }
    const denseRandom = await runDense(random)
    const denseLocal = await runDense(local)
    const denseTime = await time(() => runDense(random), { ...timing, warmup: false })
    await dense.release()
    options.log(`N=${n} dense: ${denseTime.min.toFixed(1)} ms (min of ${denseTime.runs}${chunk < H ? `, ${H / chunk} head chunks` : ''})`)
    rows.push({ n, method: 'dense', keep: 1, ms: denseTime.min, speedupVsDense: 1, relErrRandom: 0, relErrLocal: 0 })

    // ORT MultiHeadAttention (MLAS flash path): packed [1, N, H*D] inputs.
    const mha = await ort.InferenceSession.create(buildAttentionModel({ kind: 'multi-head-attention', heads: H, tokens: n, headDim: D }), sessionOptions)
    const packed = (x: typeof random) => ({
      q: new ort.Tensor('float32', toPacked(x.q, 1, H, n, D), [1, n, H * D]),
      k: new ort.Tensor('float32', toPacked(x.k, 1, H, n, D), [1, n, H * D]),
      v: new ort.Tensor('float32', toPacked(x.v, 1, H, n, D), [1, n, H * D]),
    })
    const mhaRandomFeeds = packed(random)
    const mhaRandom = (await mha.run(mhaRandomFeeds)).out!.data as Float32Array
    const mhaLocal = (await mha.run(packed(local))).out!.data as Float32Array
    const mhaTime = await time(() => mha.run(mhaRandomFeeds), timing)
    await mha.release()
    rows.push({
      n,
      method: 'mha',
      keep: 1,
      ms: mhaTime.min,
      speedupVsDense: denseTime.min / mhaTime.min,
      relErrRandom: relL2(mhaRandom, toPacked(denseRandom, 1, H, n, D)),
      relErrLocal: relL2(mhaLocal, toPacked(denseLocal, 1, H, n, D)),
    })
    options.log(`N=${n} mha: ${mhaTime.min.toFixed(1)} ms`)

    // Draft attention: the dense MatMul graph rewritten by rewriteDraftAttention.
    const base = buildAttentionModel({ kind: 'matmul-softmax', heads: H, tokens: n, headDim: D })
    for (const selection of options.selections) {
      const rewritten = rewriteDraftAttention(base, { grid, window, selection })
      const session = await ort.InferenceSession.create(rewritten.model, sessionOptions)
      for (const keep of options.keeps) {
        const extra = Object.fromEntries(
          Object.entries(draftFeeds(rewritten.info, { keep })).map(([k, f]) => [k, new ort.Tensor(f.type, f.data as Uint8Array, [...f.dims])]),
        )
        const randomFeeds = { ...feeds(random), ...extra }
        const outRandom = (await session.run(randomFeeds)).out!.data as Float32Array
        const outLocal = (await session.run({ ...feeds(local), ...extra })).out!.data as Float32Array
        const t = await time(() => session.run(randomFeeds), timing)
        rows.push({
          n,
          method: 'draft',
          keep,
          ms: t.min,
          speedupVsDense: denseTime.min / t.min,
          relErrRandom: relL2(outRandom, denseRandom),
          relErrLocal: relL2(outLocal, denseLocal),
          selection,
          speedupVsMha: mhaTime.min / t.min,
        })
        options.log(`N=${n} draft ${selection} keep=${keep}: ${t.min.toFixed(1)} ms`)
      }
      await session.release()
    }
    for (const r of rows) if (r.n === n && r.method !== 'draft') r.speedupVsMha = mhaTime.min / r.ms
  }
  return rows
}
