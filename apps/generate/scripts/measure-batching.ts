// Batched vs unbatched model runs on one model, in one process, interleaved and repeated (warm sessions):
//   pnpm exec tsx --conditions=@guidekit/source apps/generate/scripts/measure-batching.ts [model] [steps] [repeats]
import { euler, sample } from '@guidekit/core'
import type { Denoiser, Prediction } from '@guidekit/core'
import { cfg } from '@guidekit/cfg'
import { loadEngine } from '../src/models.js'

const [model = 'fashion-dit', stepsArg = '30', repeatsArg = '3'] = process.argv.slice(2)
const steps = Number(stepsArg)
const repeats = Number(repeatsArg)
const engine = await loadEngine({ model, needsTunedModel: false, threads: 2 })
const unbatched = (inner: Denoiser): Denoiser => ({
  specificationVersion: 'v1',
  family: inner.family,
  async predict(request) {
    const out: Prediction[] = []
    for (const branch of request.branches) out.push(...(await inner.predict({ ...request, branches: [branch] })))
    return out
  },
})
const plan = engine.plan(steps, {})
const time = async (count: number, split: boolean): Promise<number> => {
  const base = await engine.denoiser({ classes: ['sneaker'] }, count)
  const t0 = performance.now()
  await sample({ denoiser: split ? unbatched(base) : base, guider: cfg({ scale: 3 }), sampler: euler(), plan, shape: engine.shape(count), seed: 1 })
  return (performance.now() - t0) / 1000 / count
}
await time(4, false) // warm-up
for (const count of [1, 4]) {
  const batched: number[] = []
  const split: number[] = []
  for (let r = 0; r < repeats; r++) {
    batched.push(await time(count, false))
    split.push(await time(count, true))
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] as number
  console.log(`batch ${count}: batched ${median(batched).toFixed(3)} s/img, unbatched ${median(split).toFixed(3)} s/img, ratio ${(median(split) / median(batched)).toFixed(2)}x (medians of ${repeats})`)
}
await engine.dispose()
