// pnpm bench:attention [--json] [--sizes 1024,4096,16384] [--window 8x16] [--threads 2] [--no-e2e] [--dit path.onnx]
// Attention alone (dense MatMul graph, ORT MultiHeadAttention, draft attention at 10% / 25% kept) and a
// large-grid DiT end to end (dense vs draft seconds per step).
import { availableParallelism } from 'node:os'
import { parseArgs } from 'node:util'
import type { DraftSelection } from '@guidekit/draft-attention'
import { benchEndToEnd, defaultDitPath, ensureDit, type E2eResult } from './e2e.js'
import { benchKernels } from './kernels.js'

const { values } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    sizes: { type: 'string', default: '1024,4096,16384' },
    keeps: { type: 'string', default: '0.1,0.25' },
    selections: { type: 'string', default: 'row-topk,global-percentile' },
    threads: { type: 'string' },
    window: { type: 'string', default: '8x16' },
    e2e: { type: 'boolean', default: true },
    'no-e2e': { type: 'boolean', default: false },
    kernels: { type: 'boolean', default: true },
    'no-kernels': { type: 'boolean', default: false },
    dit: { type: 'string', default: defaultDitPath },
    'e2e-keep': { type: 'string', default: '0.1' },
    'e2e-steps': { type: 'string', default: '4' },
    'e2e-batch': { type: 'string', default: '2' },
    'e2e-selection': { type: 'string', default: 'row-topk' },
  },
})

const log = (line: string) => process.stderr.write(`${line}\n`)
const threads = Number(values.threads ?? availableParallelism())
const [wh, ww] = values.window.split('x').map(Number) as [number, number]
const window = { height: wh, width: ww }
const rows = values['no-kernels']
  ? []
  : await benchKernels({
      sizes: values.sizes.split(',').map(Number),
      heads: 8,
      headDim: 64,
      keeps: values.keeps.split(',').map(Number),
      selections: values.selections.split(',') as DraftSelection[],
      threads,
      window,
      log,
    })

let e2e: E2eResult | null = null
if (!values['no-e2e']) {
  if (ensureDit(values.dit, log)) {
    e2e = await benchEndToEnd({
      path: values.dit,
      keep: Number(values['e2e-keep']),
      selection: values['e2e-selection'] as DraftSelection,
      steps: Number(values['e2e-steps']),
      batch: Number(values['e2e-batch']),
      threads,
      window,
      log,
    })
  } else log('end-to-end skipped: no DiT model and no PyTorch to export one')
}

if (values.json) {
  process.stdout.write(`${JSON.stringify({ rows, e2e }, null, 2)}\n`)
} else {
  const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : '-')
  const lines = [
    `attention alone: H=8, D=64, fp32, batch 1, ${threads} threads, window ${window.height}x${window.width} (${window.height * window.width}-token blocks); min ms`,
    '| N | method | selection | keep | ms | vs dense | vs MHA | relErr random | relErr local |',
    '|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.n} | ${r.method} | ${r.selection ?? ''} | ${r.keep} | ${fmt(r.ms, 1)} | ${fmt(r.speedupVsDense)}x | ${fmt(r.speedupVsMha ?? NaN)}x | ${r.relErrRandom.toExponential(2)} | ${r.relErrLocal.toExponential(2)} |`,
    ),
  ]
  if (e2e !== null) {
    lines.push(
      '',
      `end to end: ${e2e.model} (${e2e.tokens} tokens, ${e2e.sites} attention sites, window ${e2e.window.height}x${e2e.window.width}), batch ${e2e.batch}, ${e2e.steps} steps, keep ${e2e.keep} (${e2e.selection}); median s/step`,
      '| dense s/step | draft s/step | speedup | rewritten, dense input s/step | run with first 30% of steps dense | relErr final sample |',
      '|---|---|---|---|---|---|',
      `| ${fmt(e2e.denseSecondsPerStep, 3)} | ${fmt(e2e.draftSecondsPerStep, 3)} | ${fmt(e2e.speedup)}x | ${fmt(e2e.rewrittenDenseSecondsPerStep, 3)} | ${fmt(e2e.speedupWithDenseSteps30)}x | ${e2e.relErrFinal.toExponential(2)} |`,
    )
  }
  process.stdout.write(`${lines.join('\n')}\n`)
}
