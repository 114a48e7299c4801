// Batched vs unbatched branches: one ONNX run with both CFG branches (batch 2B) against one run per branch
// (two runs of batch B), through the real denoiser. Prints a table.
//
//   pnpm --filter @guidekit/onnx bench:batching [--model path.onnx] [--threads N] [--iterations N] [--batches 1,4]
//
// Default model: @guidekit/models-fashion's fashion-dit.onnx when it exists, else the tiny test fixture.
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { randn } from '@guidekit/core'
import { loadClassConditionalDenoiser } from '../src/index.js'

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : undefined
}

const shipped = fileURLToPath(new URL('../../models-fashion/models/fashion-dit.onnx', import.meta.url))
const tiny = fileURLToPath(new URL('../src/__fixtures__/class-conditional/tiny-dit.onnx', import.meta.url))
const model = arg('model') ?? (existsSync(shipped) ? shipped : tiny)
const threads = arg('threads') === undefined ? undefined : Number(arg('threads'))
const iterations = Number(arg('iterations') ?? 40)
const batches = (arg('batches') ?? '1,4').split(',').map(Number)

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

const denoiser0 = await loadClassConditionalDenoiser({ model, classes: [0], sessionOptions: { ...(threads === undefined ? {} : { threads }), graphOptimizationLevel: 'all' } })
const { channels, height, width } = denoiser0.card.image
console.log(`model ${model}`)
console.log(`threads ${threads ?? 'ORT default'}, ${iterations} iterations (median), node ${process.version}`)
console.log('')
console.log('| images per branch | batched: 1 run of batch 2B (ms) | unbatched: 2 runs of batch B (ms) | unbatched / batched |')
console.log('|---:|---:|---:|---:|')
for (const B of batches) {
  const d = denoiser0.withClasses(Array.from({ length: B }, (_, i) => i % 10))
  const x = randn([B, channels, height, width], 1)
  const request = { x, sigma: 0.6, timestep: 600 }
  const both = [{ role: 'positive' }, { role: 'negative' }] as const
  for (let i = 0; i < 5; i++) {
    await d.predict({ step: 0, steps: 1, ...request, branches: both })
    await d.predict({ step: 0, steps: 1, ...request, branches: [both[0]] })
  }
  const batched: number[] = []
  const unbatched: number[] = []
  for (let i = 0; i < iterations; i++) {
    // interleave so that background load affects both equally
    let t = performance.now()
    await d.predict({ step: 0, steps: 1, ...request, branches: both })
    batched.push(performance.now() - t)
    t = performance.now()
    await d.predict({ step: 0, steps: 1, ...request, branches: [both[0]] })
    await d.predict({ step: 0, steps: 1, ...request, branches: [both[1]] })
    unbatched.push(performance.now() - t)
  }
  const b = median(batched)
  const u = median(unbatched)
  console.log(`| ${B} | ${b.toFixed(2)} | ${u.toFixed(2)} | ${(u / b).toFixed(2)}x |`)
}
await denoiser0.dispose()
