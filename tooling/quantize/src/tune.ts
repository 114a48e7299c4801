// pnpm quantize:tune [--models DIR] [--rows 16,128] [--repeats 20] [--out bench-results]
// pnpm quantize:tune --variants DIR [--card CARD] [--rows 16,128] [--repeats 10]
//
// ONNX Runtime session options measured on the fp32 and int8 generators in onnxruntime-node: threads,
// spinning, graph optimization level, memory arena. Each option set is one session; all sessions of a model
// are timed in rotating order on the same real inputs (medians of `repeats` calls). Then one profiled run
// per model (enableProfiling) says where the time goes by operator type, and what share the int8 kernels
// take (Amdahl: what is left if they were free). Writes <out>/int8-tuning.md and .json.
// --variants times every .onnx file of DIR (experiments.py writes them) against the first, alternating, as
// one-thread CPU time per call (less disturbed by other load than wall time) and 2-thread wall time, with
// each variant's deviation from the first on the same real inputs; prints a markdown table.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { readModelCard } from '@guidekit/onnx'
import * as ort from 'onnxruntime-node'
import { trainingFeeds, type ModelFeeds } from './data.js'

/** The option sets compared, each against ONNX Runtime's defaults plus 2 intra-op threads. */
export const OPTION_SETS: Record<string, ort.InferenceSession.SessionOptions> = {
  'threads 2 (baseline)': {},
  'threads 1': { intraOpNumThreads: 1 },
  'no spinning': { extra: { session: { intra_op: { allow_spinning: '0' } } } },
  'level extended': { graphOptimizationLevel: 'extended' },
  'level basic': { graphOptimizationLevel: 'basic' },
  'no memory arena': { enableCpuMemArena: false },
  'dynamic block base 4': { extra: { session: { dynamic_block_base: '4' } } },
}
const BASE: ort.InferenceSession.SessionOptions = { intraOpNumThreads: 2, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all' }

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
const feedsOf = (f: ModelFeeds) => ({
  sample: new ort.Tensor('float32', f.sample, [f.rows, 1, 28, 28]),
  timestep: new ort.Tensor('float32', f.timestep, [f.rows]),
  class_labels: new ort.Tensor('int64', f.classLabels, [f.rows]),
})

/** Milliseconds per call (median) of each option set on `path`, alternating sessions. */
async function timeOptions(path: string, feeds: ModelFeeds, repeats: number): Promise<Record<string, number>> {
  const names = Object.keys(OPTION_SETS)
  const sessions = []
  for (const n of names) sessions.push(await ort.InferenceSession.create(path, { ...BASE, ...OPTION_SETS[n] }))
  const f = feedsOf(feeds)
  const times = names.map(() => [] as number[])
  for (const s of sessions) for (let i = 0; i < 3; i++) await s.run(f)
  for (let r = 0; r < repeats; r++) {
    for (let k = 0; k < sessions.length; k++) {
      const i = (k + r) % sessions.length
      const t0 = performance.now()
      await (sessions[i] as ort.InferenceSession).run(f)
      times[i]?.push(performance.now() - t0)
    }
  }
  for (const s of sessions) await s.release()
  return Object.fromEntries(names.map((n, i) => [n, median(times[i] as number[])]))
}

/** Share of kernel time per operator type over `calls` profiled calls (baseline options). */
async function profile(path: string, feeds: ModelFeeds, calls: number): Promise<{ op: string; share: number; msPerCall: number }[]> {
  const dir = mkdtempSync(join(tmpdir(), 'guidekit-profile-'))
  try {
    const s = await ort.InferenceSession.create(path, { ...BASE, enableProfiling: true, profileFilePrefix: join(dir, 'p') })
    const f = feedsOf(feeds)
    for (let i = 0; i < calls; i++) await s.run(f)
    await s.release() // writes the profile
    const file = readdirSync(dir).find((n) => n.endsWith('.json'))
    const events = JSON.parse(readFileSync(join(dir, file as string), 'utf8')) as { cat?: string; name: string; dur: number; args?: { op_name?: string } }[]
    const runs = events.filter((e) => e.cat === 'Session' && e.name === 'model_run').length
    const byOp = new Map<string, number>()
    for (const e of events) if (e.cat === 'Node' && e.name.endsWith('_kernel_time')) byOp.set(e.args?.op_name ?? '?', (byOp.get(e.args?.op_name ?? '?') ?? 0) + e.dur)
    const total = [...byOp.values()].reduce((a, b) => a + b, 0)
    return [...byOp.entries()].sort((a, b) => b[1] - a[1]).map(([op, us]) => ({ op, share: us / total, msPerCall: us / 1000 / runs }))
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const INT8_OPS = new Set(['DynamicQuantizeMatMul', 'QLinearConv', 'MatMulIntegerToFloat', 'QGemm'])

/** One-thread CPU ms and 2-thread wall ms per call (medians) of every variant, and max |diff| from the first. */
async function timeVariants(paths: readonly string[], feeds: ModelFeeds, repeats: number): Promise<{ file: string; cpuMs: number; wallMs: number; maxAbsDiff: number }[]> {
  const one = await Promise.all(paths.map((p) => ort.InferenceSession.create(p, { ...BASE, intraOpNumThreads: 1 })))
  const two = await Promise.all(paths.map((p) => ort.InferenceSession.create(p, BASE)))
  const f = feedsOf(feeds)
  const outs: Float32Array[] = []
  for (const s of one) outs.push((await s.run(f)).out_sample?.data as Float32Array)
  const cpu = paths.map(() => [] as number[])
  const wall = paths.map(() => [] as number[])
  for (let r = 0; r < repeats; r++) {
    for (let k = 0; k < paths.length; k++) {
      const i = (k + r) % paths.length
      const c0 = process.cpuUsage()
      await (one[i] as ort.InferenceSession).run(f)
      const c = process.cpuUsage(c0)
      cpu[i]?.push((c.user + c.system) / 1000)
      const t0 = performance.now()
      await (two[i] as ort.InferenceSession).run(f)
      wall[i]?.push(performance.now() - t0)
    }
  }
  for (const s of [...one, ...two]) await s.release()
  const ref = outs[0] as Float32Array
  return paths.map((p, i) => ({ file: p.split('/').pop() as string, cpuMs: median(cpu[i] as number[]), wallMs: median(wall[i] as number[]), maxAbsDiff: (outs[i] as Float32Array).reduce((m, v, j) => Math.max(m, Math.abs(v - (ref[j] as number))), 0) }))
}

if (process.argv[1]?.endsWith('tune.ts')) {
  const { values } = parseArgs({ options: { models: { type: 'string', default: 'packages/models-fashion/models' }, variants: { type: 'string' }, card: { type: 'string', default: 'packages/models-fashion/models/fashion-dit.card.json' }, rows: { type: 'string', default: '16,128' }, repeats: { type: 'string', default: '20' }, out: { type: 'string', default: 'bench-results' } } })
  if (values.variants) {
    const dir = resolve(values.variants)
    const paths = readdirSync(dir).filter((n) => n.endsWith('.onnx')).sort().map((n) => join(dir, n))
    const card = readModelCard(resolve(values.card))
    for (const rows of (values.rows).split(',').map(Number)) {
      const res = await timeVariants(paths, trainingFeeds(card, { rows, offset: 50_000, seed: 12 }), Number(values.repeats))
      const base = res[0] as (typeof res)[number]
      console.log(`\n${rows} rows per call, load average ${(loadavg()[0] as number).toFixed(2)}\n\n| variant | 1-thread CPU ms | vs first | 2-thread wall ms | vs first | max abs diff |\n|---|---|---|---|---|---|\n${res.map((r) => `| ${r.file} | ${r.cpuMs.toFixed(2)} | ${(base.cpuMs / r.cpuMs).toFixed(2)}x | ${r.wallMs.toFixed(2)} | ${(base.wallMs / r.wallMs).toFixed(2)}x | ${r.maxAbsDiff.toExponential(2)} |`).join('\n')}`)
    }
    process.exit(0)
  }
  const dir = resolve(values.models)
  const rowsList = (values.rows).split(',').map(Number)
  const repeats = Number(values.repeats)
  const load = loadavg()[0] as number
  const result: Record<string, unknown> = { models: dir, repeats, baseOptions: BASE, loadAverageStart: load, measuredAt: new Date().toISOString() }
  const sections: string[] = []
  for (const name of ['fashion-dit', 'fashion-unet']) {
    const paths = { fp32: join(dir, `${name}.onnx`), int8: join(dir, `${name}-int8.onnx`) }
    const card = readModelCard(join(dir, `${name}.card.json`))
    for (const rows of rowsList) {
      const feeds = trainingFeeds(card, { rows, offset: 50_000, seed: 12 })
      for (const [precision, path] of Object.entries(paths)) {
        process.stderr.write(`[tune] ${name} ${precision} rows ${rows} ...\n`)
        const times = await timeOptions(path, feeds, repeats)
        const ops = await profile(path, feeds, 10)
        const int8Share = ops.filter((o) => INT8_OPS.has(o.op)).reduce((a, o) => a + o.share, 0)
        result[`${name}/${precision}/rows${rows}`] = { msPerCall: times, profile: ops, int8KernelShare: int8Share }
        const base = times['threads 2 (baseline)'] as number
        sections.push(`### ${name} ${precision}, ${rows} rows per call (a CFG batch of ${rows / 2})\n\n| options | ms per call | vs baseline |\n|---|---|---|\n${Object.entries(times).map(([k, v]) => `| ${k} | ${v.toFixed(2)} | ${(base / v).toFixed(2)}x |`).join('\n')}\n\nWhere the time goes (baseline options, kernel time by operator type${precision === 'int8' ? `; int8 kernels ${(int8Share * 100).toFixed(1)}%, so the float rest bounds the speedup at ${(1 / (1 - int8Share)).toFixed(2)}x even if they were free` : ''}): ${ops.slice(0, 10).map((o) => `${o.op} ${(o.share * 100).toFixed(1)}%`).join(', ')}.\n`)
      }
    }
  }
  const out = resolve(values.out)
  mkdirSync(out, { recursive: true })
  writeFileSync(join(out, 'int8-tuning.json'), `${JSON.stringify(result, null, 2)}\n`)
  writeFileSync(join(out, 'int8-tuning.md'), `# ONNX Runtime session tuning (fp32 and int8 generators)\n\nCommand: \`pnpm quantize:tune --repeats ${repeats}\` on ${dirname(join(dir, 'x'))}, measured ${String(result.measuredAt)}, load average ${load.toFixed(2)} at the start (shared machine: compare rows within one table). Baseline: onnxruntime-node 1.30 CPU, 2 intra-op threads, 1 inter-op thread, sequential, level all, spinning on, arena on. Inputs: Fashion-MNIST training images noised to the sampling timesteps, class and null label.\n\n${sections.join('\n')}`)
  process.stderr.write(`[tune] wrote ${join(out, 'int8-tuning.md')}\n`)
}
