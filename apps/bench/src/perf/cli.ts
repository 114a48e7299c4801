// pnpm bench:perf [--json] [--quick] [--threads 2] [--batch 8] [--steps 10] [--no-torch] [--no-tables] [--out bench-results]
//
// On the fashion DiT, in one run, as ratios:
// - guidance arithmetic / model time per step (goal <= 1%): the guider's and sampler's work on cached
//   predictions, against ONNX Runtime's run of the batched CFG call;
// - CFG step / single-branch step, branches batched (goal <= 1.3x): sample() with cfg vs unguided;
// - guidekit + ORT vs PyTorch eager on the same weights, sampler, steps and batch (goal >= 2x; null when
//   Debian's torch is absent);
// - peak RSS of the sample app (apps/generate) generating 8 images;
// - the kernel table (apps/bench/src/kernels) and the attention table (apps/bench/src/attention), run as
//   child processes.
// --json prints one object (guidanceOverheadRatio, cfgStepRatio, torchSpeedup, peakRssMb, ...); the
// markdown goes to bench-results/perf.md and the object to bench-results/perf.json.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { apg } from '@guidekit/apg'
import { cfg } from '@guidekit/cfg'
import { cfgPlusPlus } from '@guidekit/cfg-pp'
import { Tensor, euler, randn, sample, unguided, type Guider, type Prediction, type StepContext } from '@guidekit/core'
import { classConditionalDenoiser, loadClassConditionalModel, planFromCard } from '@guidekit/onnx'
import * as ort from 'onnxruntime-node'
import { modelPath } from '../quality/models.js'
import { table, timeMs } from '../timing.js'

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    threads: { type: 'string' },
    batch: { type: 'string', default: '8' },
    steps: { type: 'string', default: '10' },
    'no-torch': { type: 'boolean', default: false },
    'no-tables': { type: 'boolean', default: false },
    'no-app': { type: 'boolean', default: false },
    out: { type: 'string', default: 'bench-results' },
  },
})
const log = (line: string) => process.stderr.write(`${line}\n`)
const root = resolve(fileURLToPath(new URL('../../../..', import.meta.url)))
const threads = Number(values.threads ?? availableParallelism())
const B = Number(values.batch)
const steps = Number(values.steps)
const repeats = values.quick ? 3 : 5
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

const ditPath = modelPath('fashion-dit')
if (!ditPath) {
  log('fashion-dit is not trained yet (packages/models-fashion/models/fashion-dit.onnx): nothing to measure.')
  process.exit(2)
}
const sessionOptions = { threads, interOpThreads: 1, graphOptimizationLevel: 'all' as const }
const model = await loadClassConditionalModel(ditPath, { sessionOptions })
const classes = Array.from({ length: B }, (_, i) => i % 10)
const denoiser = await classConditionalDenoiser({ model, classes })
const plan = planFromCard(model.card, { steps })
const shape = [B, 1, 28, 28]

// ---- 1. guidance arithmetic vs model time per step --------------------------------------------------
log(`[perf] model time per step (batch ${B}, CFG = ${2 * B} rows) ...`)
const x = randn(shape, 3)
const sigma = plan.sigmas[3] as number
const timestep = plan.timesteps[3] as number
const feeds = {
  sample: new ort.Tensor('float32', x.data.slice(), shape),
  timestep: new ort.Tensor('float32', new Float32Array(2 * B).fill(timestep), [2 * B]),
  class_labels: new ort.Tensor('int64', BigInt64Array.from([...classes, ...classes.map(() => 10)].map(BigInt)), [2 * B]),
}
feeds.sample = new ort.Tensor('float32', new Float32Array([...x.data, ...x.data]), [2 * B, 1, 28, 28])
// ORT's run alone and the denoiser's predict (feeds, run, conversion) timed in alternation after a warm-up,
// so both see the same machine state (the machine is shared).
let cached: Prediction[] = []
for (let i = 0; i < 3; i++) {
  await model.session.run(feeds)
  cached = await denoiser.predict({ x, sigma, timestep, step: 0, steps: 1, branches: [{ role: 'positive' }, { role: 'negative' }] })
}
const runTimes: number[] = []
const predictTimes: number[] = []
for (let i = 0; i < repeats * 3; i++) {
  let t0 = performance.now()
  await model.session.run(feeds)
  runTimes.push(performance.now() - t0)
  t0 = performance.now()
  cached = await denoiser.predict({ x, sigma, timestep, step: 0, steps: 1, branches: [{ role: 'positive' }, { role: 'negative' }] })
  predictTimes.push(performance.now() - t0)
}
const ortRunMs = median(runTimes)
const predictMs = median(predictTimes)
// The guider's step on cached predictions (what guidance adds per step), plus the sampler's update.
const guiders: [string, Guider][] = [
  ['cfg w=3', cfg({ scale: 3 })],
  ['apg w=5', apg({ scale: 5, eta: 0, momentum: -0.5 })],
  ['cfg++ lambda=0.8', cfgPlusPlus({ scale: 0.8 })],
]
const samplerSession = euler().start({ steps, sigmas: plan.sigmas, family: plan.family, noise: { next: (s: readonly number[]) => Tensor.zeros(s) } } as never)
const guidanceRows: { guider: string; guidanceMs: number; ratio: number }[] = []
for (const [name, guider] of guiders) {
  const session = guider.start({ steps, sigmas: plan.sigmas, timesteps: plan.timesteps, family: plan.family, shape })
  const ctx: StepContext = { step: 3, steps, sigma, sigmaNext: plan.sigmas[4] as number, timestep, family: plan.family, x, predict: async (branches) => (branches.length === 2 ? cached : branches.map((b) => cached[b.role === 'positive' ? 0 : 1] as Prediction)) }
  // timeMs wants a synchronous function; the guider's step is async (it awaits ctx.predict), so batches of
  // awaited steps are timed here, and the sampler's (synchronous) update with timeMs.
  const n = 200
  const per: number[] = []
  let guided = await session.step(ctx)
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now()
    for (let i = 0; i < n; i++) guided = await session.step(ctx)
    per.push((performance.now() - t0) / n)
  }
  const last = guided
  const samplerMs = timeMs(() => void samplerSession.step({ step: 3, x, sigma, sigmaNext: plan.sigmas[4] as number, guided: last }), { minMs: 50 })
  const ms = median(per) + samplerMs
  guidanceRows.push({ guider: name, guidanceMs: ms, ratio: ms / ortRunMs })
}
const guidanceOverheadRatio = Math.max(...guidanceRows.map((r) => r.ratio))
const edgeMs = predictMs - ortRunMs

// ---- 2. CFG step vs single-branch step (batched branches) --------------------------------------------
log('[perf] CFG vs single-branch sampling (batch 1 and batch B) ...')
async function sampleMs(guider: Guider, batch: number): Promise<number> {
  const d = denoiser.withClasses(classes.slice(0, batch))
  const times: number[] = []
  for (let r = 0; r < repeats; r++) {
    const res = await sample({ denoiser: d, guider, sampler: euler(), plan, shape: [batch, 1, 28, 28], seed: 1 })
    times.push(res.elapsedMs)
  }
  return median(times) / steps
}
const stepRows: { batch: number; singleMs: number; cfgMs: number; ratio: number }[] = []
for (const batch of [1, B]) {
  await sampleMs(unguided(), batch) // warm-up for this shape
  const singleMs = await sampleMs(unguided(), batch)
  await sampleMs(cfg({ scale: 3 }), batch)
  const cfgMs = await sampleMs(cfg({ scale: 3 }), batch)
  stepRows.push({ batch, singleMs, cfgMs, ratio: cfgMs / singleMs })
}
const cfgStepRatio = (stepRows[0] as { ratio: number }).ratio

// ---- 3. PyTorch eager on the same weights ----------------------------------------------------------
let torch: null | { secondsPerImage: number; torch: string; maxAbsDiff: number; guidekitSecondsPerImage: number } = null
let torchNote = ''
if (!values['no-torch'] && existsSync('/usr/bin/python3') && spawnSync('/usr/bin/python3', ['-c', 'import torch, onnx'], { encoding: 'utf8' }).status === 0) {
  log('[perf] PyTorch eager baseline ...')
  const dir = mkdtempSync(join(tmpdir(), 'guidekit-perf-'))
  try {
    const planFile = join(dir, 'plan.json')
    writeFileSync(planFile, JSON.stringify({ sigmas: [...plan.sigmas], timesteps: [...plan.timesteps] }))
    const r = spawnSync('/usr/bin/python3', [join(root, 'apps/bench/src/perf/torch_dit.py'), '--onnx', ditPath, '--plan', planFile, '--batch', String(B), '--scale', '3', '--threads', String(threads), '--repeats', String(repeats)], { encoding: 'utf8', maxBuffer: 1 << 26 })
    if (r.status !== 0) torchNote = `torch_dit.py failed: ${r.stderr.trim().split('\n').slice(-1)[0]}`
    else {
      const out = JSON.parse(r.stdout.trim().split('\n').slice(-1)[0] as string) as { secondsPerImage: number; torch: string; check: number[] }
      // The same fixed input through ORT: x[i] = sin(0.37 i), t = [500, 250], labels [3, 10].
      const xs = new Float32Array(2 * 784).map((_, i) => Math.sin(0.37 * i))
      const check = await model.session.run({
        sample: new ort.Tensor('float32', xs, [2, 1, 28, 28]),
        timestep: new ort.Tensor('float32', Float32Array.of(500, 250), [2]),
        class_labels: new ort.Tensor('int64', BigInt64Array.of(3n, 10n), [2]),
      })
      const o = check.out_sample?.data as Float32Array
      const maxAbsDiff = out.check.reduce((m, v, i) => Math.max(m, Math.abs(v - (o[i] as number))), 0)
      const gk: number[] = []
      const d = denoiser.withClasses(classes)
      for (let i = 0; i <= repeats; i++) {
        const t0 = performance.now()
        await sample({ denoiser: d, guider: cfg({ scale: 3 }), sampler: euler(), plan, shape, seed: 0 })
        if (i > 0) gk.push(performance.now() - t0)
      }
      torch = { secondsPerImage: out.secondsPerImage, torch: out.torch, maxAbsDiff, guidekitSecondsPerImage: median(gk) / 1000 / B }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
} else torchNote = values['no-torch'] ? 'skipped (--no-torch)' : 'PyTorch (Debian python3-torch + python3-onnx) is not installed'
const torchSpeedup = torch ? torch.secondsPerImage / torch.guidekitSecondsPerImage : null

// ---- 4. peak RSS of the sample app ------------------------------------------------------------------
let peakRssMb: number | null = null
let appNote = ''
if (!values['no-app']) {
  log('[perf] peak RSS of apps/generate (8 images) ...')
  const dir = mkdtempSync(join(tmpdir(), 'guidekit-app-'))
  try {
    const cmd = [process.execPath, '--conditions=@guidekit/source', '--import', 'tsx', join(root, 'apps/generate/src/cli.ts'), 'generate', '--model', ditPath, '--count', '8', '--steps', String(steps), '--guidance', 'cfg:scale=3', '--threads', String(threads), '--out', dir, '--quiet']
    const r = existsSync('/usr/bin/time') ? spawnSync('/usr/bin/time', ['-v', ...cmd], { encoding: 'utf8', cwd: root }) : undefined
    const m = r && /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)
    if (r && r.status === 0 && m) peakRssMb = Number(m[1]) / 1024
    else appNote = r ? `the app failed (exit ${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' ')}` : '/usr/bin/time is not installed'
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

// ---- 5. kernel and attention tables ----------------------------------------------------------------
function childJson(script: string, args: string[]): unknown {
  const r = spawnSync(process.execPath, ['--conditions=@guidekit/source', '--import', 'tsx', join(root, script), '--json', ...args], { encoding: 'utf8', cwd: root, maxBuffer: 1 << 26 })
  if (r.status !== 0) return { error: `${script} exited ${r.status}: ${r.stderr.trim().split('\n').slice(-2).join(' ')}` }
  try {
    return JSON.parse(r.stdout)
  } catch {
    return { error: `${script} printed no JSON` }
  }
}
let kernels: unknown = null
let attention: unknown = null
if (!values['no-tables']) {
  log('[perf] kernel table ...')
  kernels = childJson('apps/bench/src/kernels/cli.ts', values.quick ? ['--quick'] : [])
  log('[perf] attention table ...')
  attention = childJson('apps/bench/src/attention/cli.ts', ['--threads', String(threads), ...(values.quick ? ['--sizes', '1024,4096', '--no-e2e'] : [])])
}

const result = {
  model: 'fashion-dit',
  threads,
  batch: B,
  steps,
  sampler: 'euler',
  guidanceOverheadRatio,
  cfgStepRatio,
  torchSpeedup,
  peakRssMb,
  goals: { guidanceOverheadRatio: '<= 0.01', cfgStepRatio: '<= 1.3', torchSpeedup: '>= 2' },
  details: {
    ortRunMs,
    predictMs,
    denoiserEdgeMs: edgeMs,
    guidance: guidanceRows,
    steps: stepRows,
    torch,
    torchNote: torchNote || undefined,
    appNote: appNote || undefined,
  },
  kernels,
  attention,
  measuredAt: new Date().toISOString(),
}

const f = (v: number | null | undefined, d = 3) => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(d))
const summary = table(
  ['measure', 'value', 'goal', 'detail'],
  [
    ['guidance arithmetic / model time per step', `${f(guidanceOverheadRatio * 100, 3)}%`, '<= 1%', guidanceRows.map((r) => `${r.guider}: ${f(r.guidanceMs, 4)} ms`).join(', ') + ` vs ORT run ${f(ortRunMs, 2)} ms (batch ${2 * B} rows)`],
    ['CFG step / single-branch step (batch 1)', `${f(cfgStepRatio, 2)}x`, '<= 1.3x', stepRows.map((r) => `batch ${r.batch}: ${f(r.cfgMs, 2)} vs ${f(r.singleMs, 2)} ms/step = ${f(r.ratio, 2)}x`).join(', ')],
    ['PyTorch eager time / guidekit+ORT time', torchSpeedup === null ? 'null' : `${f(torchSpeedup, 2)}x`, '>= 2x', torch ? `torch ${torch.torch}: ${f(torch.secondsPerImage * 1000, 1)} ms/img vs guidekit ${f(torch.guidekitSecondsPerImage * 1000, 1)} ms/img (CFG 3, ${steps} Euler steps, batch ${B}); max |ORT - torch| = ${torch.maxAbsDiff.toExponential(1)}` : torchNote],
    ['peak RSS of the sample app', peakRssMb === null ? 'null' : `${f(peakRssMb, 0)} MB`, '', peakRssMb === null ? appNote : `guidekit generate --count 8 --steps ${steps} (cfg 3)`],
    ['denoiser edge (gather, convert) per CFG call', `${f(edgeMs, 3)} ms`, '', `predict ${f(predictMs, 2)} ms - ORT run ${f(ortRunMs, 2)} ms`],
  ],
)
const out = resolve(values.out)
mkdirSync(out, { recursive: true })
writeFileSync(join(out, 'perf.json'), `${JSON.stringify(result, null, 2)}\n`)
/** A child's `{ rows: [...] }` as a text table (keys of the rows as columns); other shapes as JSON. */
const tableOf = (v: unknown, title: string): string => {
  if (!v) return ''
  const rows = (v as { rows?: Record<string, unknown>[] }).rows
  const cell = (x: unknown) => (typeof x === 'number' ? (Number.isInteger(x) ? String(x) : x.toPrecision(4)) : x === undefined ? '' : String(x))
  const body = Array.isArray(rows) && rows.length
    ? table(Object.keys(rows[0] as object), rows.map((r) => Object.keys(rows[0] as object).map((k) => cell(r[k]))))
    : JSON.stringify(v, null, 2).slice(0, 4000)
  const rest = Object.fromEntries(Object.entries(v as object).filter(([k]) => k !== 'rows'))
  return `\n## ${title}\n\n\`\`\`\n${body}\n\`\`\`\n${Object.keys(rest).length ? `\n\`\`\`json\n${JSON.stringify(rest, null, 2).slice(0, 3000)}\n\`\`\`\n` : ''}`
}
writeFileSync(
  join(out, 'perf.md'),
  `# Performance benchmark\n\nCommand: \`pnpm bench:perf${values.quick ? ' --quick' : ''}\`, fashion-dit, ${threads} threads, measured ${result.measuredAt} on a shared 2-core machine.\n\n\`\`\`\n${summary}\n\`\`\`\n${tableOf(kernels, 'Kernels (apps/bench/src/kernels)')}${tableOf(attention, 'Attention (apps/bench/src/attention)')}`,
)
if (values.json) console.log(JSON.stringify(result))
else console.log(summary)
await denoiser.dispose()
await model.dispose()
