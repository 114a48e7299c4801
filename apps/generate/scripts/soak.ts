// The soak benchmark (issue 11): many `guidekit generate` runs in ONE process, each loading the model,
// sampling, writing a PNG and disposing everything, with the resident set size every --every runs. Flat
// RSS means nothing leaks: not the ONNX Runtime sessions, not the sharp encoders, not the tensors.
//   pnpm bench:soak [--generations 1000] [--every 100] [--model <path>] [--steps 4] [--json]
// Default model: the tiny random-weight DiT fixture of @guidekit/onnx (28x28, the fashion DiT's interface),
// so 1,000 generations take minutes on 2 cores; pass --model fashion-dit for the shipped model.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { main } from '../src/main.js'

const { values } = parseArgs({
  options: {
    generations: { type: 'string', default: '1000' },
    every: { type: 'string', default: '100' },
    model: { type: 'string', default: fileURLToPath(new URL('../../../packages/onnx/src/__fixtures__/class-conditional/tiny-dit.onnx', import.meta.url)) },
    steps: { type: 'string', default: '4' },
    json: { type: 'boolean', default: false },
  },
})
const generations = Number(values.generations)
const every = Number(values.every)
const steps = Number(values.steps)
if (!Number.isInteger(generations) || generations < 1 || !Number.isInteger(every) || every < 1 || !Number.isInteger(steps) || steps < 1) {
  console.error('bench:soak: --generations, --every and --steps must be positive integers')
  process.exit(2)
}

// The strategies cycle, so every guider family's code runs in the loop.
const GUIDANCE = ['cfg:scale=3', 'apg:scale=5,eta=0,momentum=-0.5', 'cfg++:scale=0.6', 'adaptive(threshold=0.99):cfg(scale=3)']
const out = mkdtempSync(join(tmpdir(), 'guidekit-soak-'))
const sink = { write: () => true }
const mb = (bytes: number) => Math.round((bytes / 2 ** 20) * 10) / 10

interface Row {
  readonly generations: number
  readonly rssMb: number
  readonly heapUsedMb: number
  readonly externalMb: number
  readonly seconds: number
  readonly msPerGeneration: number
}
const rows: Row[] = []
const t0 = performance.now()
let last = t0
const record = (n: number) => {
  const m = process.memoryUsage()
  const now = performance.now()
  rows.push({ generations: n, rssMb: mb(m.rss), heapUsedMb: mb(m.heapUsed), externalMb: mb(m.external), seconds: Math.round((now - t0) / 100) / 10, msPerGeneration: n === 0 ? 0 : Math.round((now - last) / every) })
  last = now
  if (!values.json) console.error(`[soak] ${n}/${generations}: RSS ${mb(m.rss)} MB`)
}
try {
  record(0)
  for (let i = 1; i <= generations; i++) {
    const argv = ['generate', '--model', values.model, '--steps', String(steps), '--seed', String(i), '--class', String(i % 10), '--guidance', GUIDANCE[i % GUIDANCE.length] as string, '--out', out, '--quiet']
    const code = await main(argv, { stdout: sink, stderr: { write: (s: string) => process.stderr.write(s) } })
    if (code !== 0) throw new Error(`generation ${i} exited ${code}`)
    if (i % every === 0) {
      if (readdirSync(out).length !== every) throw new Error(`expected ${every} PNGs after generation ${i}, found ${readdirSync(out).length}`)
      rmSync(out, { recursive: true })
      record(i)
    }
  }
} finally {
  rmSync(out, { recursive: true, force: true })
}

const first = rows[1] ?? rows[0]
const lastRow = rows[rows.length - 1] as Row
if (values.json) console.log(JSON.stringify({ generations, every, steps, model: values.model, rows }))
else {
  console.log(`| generations | RSS (MB) | heap used (MB) | external (MB) | elapsed (s) | ms / generation |`)
  console.log(`| ---: | ---: | ---: | ---: | ---: | ---: |`)
  for (const r of rows) console.log(`| ${r.generations} | ${r.rssMb} | ${r.heapUsedMb} | ${r.externalMb} | ${r.seconds} | ${r.generations === 0 ? '' : r.msPerGeneration} |`)
  console.log(`\nRSS after ${first?.generations} generations ${first?.rssMb} MB, after ${lastRow.generations} ${lastRow.rssMb} MB (${(lastRow.rssMb - (first?.rssMb ?? 0)).toFixed(1)} MB).`)
}
