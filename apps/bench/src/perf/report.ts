// bench-results/perf.md: what is compared with what, in one table, with the command.
import { table } from '../timing.js'

const f = (v: number | null | undefined, d = 1) => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(d))

/** A benchmark child's `{ rows: [...] }` as a text table (row keys as columns); other shapes as JSON. */
function tableOf(v: unknown, title: string): string {
  if (!v) return ''
  const rows = (v as { rows?: Record<string, unknown>[] }).rows
  const cell = (x: unknown) => (typeof x === 'number' ? (Number.isInteger(x) ? String(x) : x.toPrecision(4)) : x === undefined ? '' : typeof x === 'string' ? x : JSON.stringify(x))
  const body = Array.isArray(rows) && rows.length
    ? table(Object.keys(rows[0] as object), rows.map((r) => Object.keys(rows[0] as object).map((k) => cell(r[k]))))
    : JSON.stringify(v, null, 2).slice(0, 4000)
  const rest = Object.fromEntries(Object.entries(v).filter(([k]) => k !== 'rows'))
  return `\n## ${title}\n\n\`\`\`\n${body}\n\`\`\`\n${Object.keys(rest).length ? `\n\`\`\`json\n${JSON.stringify(rest, null, 2).slice(0, 3000)}\n\`\`\`\n` : ''}`
}

// The fields of bench:perf's result the report reads.
interface PerfResult {
  readonly trajectory: { readonly steps: number; readonly batches: readonly number[]; readonly threads: number }
  readonly speedupVsTorchBest: number | null
  readonly shippedPrecision: string
  readonly torch: Readonly<Record<string, Readonly<Record<string, number>>>>
  readonly torchBest: Readonly<Record<string, { mode: string; msPerImage: number } | null>>
  readonly guidekit: Readonly<Record<string, Readonly<Record<string, number>>>>
  readonly speedupByPrecision: Readonly<Record<string, { byBatch: Readonly<Record<string, number | null>>; min: number | null }>>
  /** Per batch, fastest torch / shipped guidekit round by round (adjacent trajectories). */
  readonly speedupRounds?: Readonly<Record<string, readonly number[]>>
  /** Per batch, the speedup over the rounds with its 95% bootstrap interval (rounds resampled, paired). */
  readonly speedupInterval?: Readonly<Record<string, { rounds: number; speedup: number; interval: readonly [number, number] } | null>>
  readonly int8Quality: { images: number; fdFp32: number; fdInt8: number; accFp32: number; accInt8: number; passed: boolean; source: string } | null
  readonly guidanceOverheadRatio: number
  readonly cfgStepRatio: number
  readonly peakRssMb: number | null
  readonly unet: { batch: number; fp32: number; int8: number; speedup: number } | null
  readonly details: {
    readonly repeats: number
    readonly screening?: string
    readonly guidance: Readonly<Record<string, { ortRunMs: number; rows: readonly { guider: string; guidanceMs: number }[] }>>
    readonly steps: readonly { batch: number; singleMs: number; cfgMs: number; ratio: number }[]
    readonly torchVersion: string | null
    readonly torchNote?: string | undefined
    readonly int8Note?: string | undefined
    readonly unetNote?: string | undefined
    readonly appNote: string
    readonly ortVsTorchMaxAbsDiff: number | null
    readonly torchTrajectoryDiff: Readonly<Record<string, number>>
    readonly loadAverage: { start: number; end: number | undefined }
    readonly wallSeconds: number
  }
  readonly measuredAt: string
}

/** `batch 8 2.15x (95% interval 1.92-2.40 over 15 rounds; single rounds 1.6-2.7x, >= 2 in 11)` */
function roundsText(batch: number, ratios: readonly number[], s: { rounds: number; speedup: number; interval: readonly [number, number] } | null | undefined): string {
  if (ratios.length === 0) return `batch ${batch} n/a`
  const single = `single rounds ${f(Math.min(...ratios), 2)}-${f(Math.max(...ratios), 2)}x, >= 2 in ${ratios.filter((x) => x >= 2).length} of ${ratios.length}`
  return s ? `batch ${batch} ${f(s.speedup, 2)}x (95% interval ${f(s.interval[0], 2)}-${f(s.interval[1], 2)} over ${s.rounds} rounds; ${single})` : `batch ${batch} ${single}`
}

export function markdown(r: PerfResult, o: { command: string; kernels: unknown; attention: unknown }): { summary: string; file: string } {
  const b = r.trajectory.batches
  const rows: string[][] = []
  for (const [mode, cells] of Object.entries(r.torch)) rows.push([`PyTorch ${r.details.torchVersion ?? ''} ${mode}`, ...b.map((x) => f(cells[x]))])
  for (const [p, cells] of Object.entries(r.guidekit)) rows.push([`guidekit + ORT 1.30 ${p}${p === r.shippedPrecision ? ' (shipped)' : ''}`, ...b.map((x) => f(cells[x]))])
  for (const [p, s] of Object.entries(r.speedupByPrecision)) rows.push([`fastest torch / guidekit ${p}`, ...b.map((x) => `${f(s.byBatch[x], 2)}x`)])
  const trajectory = table(['ms per image', ...b.map((x) => `batch ${x}`)], rows)
  const q = r.int8Quality
  const g = r.details.guidance[r.shippedPrecision]
  const summary = table(
    ['measure', 'value', 'goal', 'detail'],
    [
      ['speedupVsTorchBest', `${f(r.speedupVsTorchBest, 2)}x`, '>= 2x', `shipped precision ${r.shippedPrecision}; fastest torch: ${b.map((x) => `batch ${x} ${r.torchBest[x]?.mode ?? 'n/a'}`).join(', ')}; over the rounds: ${b.map((x) => roundsText(x, r.speedupRounds?.[x] ?? [], r.speedupInterval?.[x])).join('; ')}${r.details.torchNote ? `; ${r.details.torchNote}` : ''}`],
      ['int8 quality gate', q ? (q.passed ? 'pass' : 'fail') : 'n/a', 'FD <= 1.05x, acc >= -1 pt', q ? `${q.images} images: FD ${f(q.fdFp32, 3)} -> ${f(q.fdInt8, 3)}, accuracy ${f(q.accFp32, 3)} -> ${f(q.accInt8, 3)} (${q.source})${q.images < 1000 ? '; preliminary: int8 ships after the 1000-image gate' : ''}` : (r.details.int8Note ?? '')],
      ['guidance arithmetic / model time', `${f(r.guidanceOverheadRatio * 100, 3)}%`, '<= 1%', g ? `${g.rows.map((x) => `${x.guider} ${f(x.guidanceMs, 4)} ms`).join(', ')} vs ORT run ${f(g.ortRunMs, 2)} ms (${r.shippedPrecision}, ${2 * (b[0] as number)} rows)` : ''],
      ['CFG step / single-branch step (batch 1)', `${f(r.cfgStepRatio, 2)}x`, '<= 1.3x', r.details.steps.map((x) => `batch ${x.batch}: ${f(x.cfgMs, 2)} vs ${f(x.singleMs, 2)} ms/step`).join(', ')],
      ['peak RSS of the sample app', r.peakRssMb === null ? 'n/a' : `${f(r.peakRssMb, 0)} MB`, '', r.details.appNote],
      ['fashion-unet int8 speedup', r.unet ? `${f(r.unet.speedup, 2)}x` : 'n/a', '', r.unet ? `DDIM ${r.trajectory.steps} steps, CFG 3, batch ${r.unet.batch}: fp32 ${f(r.unet.fp32)} vs int8 ${f(r.unet.int8)} ms/image` : (r.details.unetNote ?? '')],
    ],
  )
  const diffs = Object.entries(r.details.torchTrajectoryDiff).map(([k, v]) => `${k} ${v.toExponential(1)}`).join(', ')
  const file = `# Performance benchmark

Command: \`${o.command}\`, measured ${r.measuredAt} with ${r.trajectory.threads} threads (load average ${f(r.details.loadAverage.start, 2)} at the start, ${f(r.details.loadAverage.end, 2)} at the end: on a shared machine, absolute times vary between runs; the rows of one run are comparable); the whole run took ${r.details.wallSeconds} s.

**What is compared with what.** The same fashion-dit weights (PyTorch reads them from the shipped ONNX file), the same trajectory (Euler, ${r.trajectory.steps} steps, CFG 3 with both branches in one call of 2B rows, classes i mod 10), the same batch sizes and threads. PyTorch runs in every mode a user can pick in torch ${r.details.torchVersion ?? 'n/a'} on this CPU (fp32 eager, bf16 autocast, TorchScript trace + freeze in fp32 and bf16); guidekit + ONNX Runtime in each precision (int8: \`pnpm quantize\`) as the sample app runs it: one single-threaded session per thread in worker threads, each step's rows split into runs of at most 8 rows (\`sessionOptions.workers\`); the row "${r.shippedPrecision}, 1 session" is the same model in one session with all the threads. All are timed in rotating order after a warm-up, ${r.details.repeats} rounds (${r.details.screening ?? `${r.details.repeats} trajectories each`}); a cell is the median trajectory time / batch, and the speedup's 95% interval comes from resampling the rounds with replacement (each round's torch and guidekit times together). int8 counts as shipped only after passing the quality gate at 1000 images (\`pnpm bench:int8-gate\`).

\`\`\`
${trajectory}
\`\`\`

\`\`\`
${summary}
\`\`\`

ORT vs PyTorch fp32 on a fixed input: max |diff| ${r.details.ortVsTorchMaxAbsDiff === null ? 'n/a' : r.details.ortVsTorchMaxAbsDiff.toExponential(1)}. Each torch mode's final samples vs fp32 eager (max |diff| over one trajectory): ${diffs || 'n/a'}.
${tableOf(o.kernels, 'Kernels (apps/bench/src/kernels)')}${tableOf(o.attention, 'Attention (apps/bench/src/attention)')}`
  return { summary: `${trajectory}\n\n${summary}`, file }
}
