// Runs in a fresh npm project with the packed tarballs installed: import every @guidekit package and
// sample the analytic toy model with the core (and CFG when @guidekit/cfg is installed).
import { readdirSync } from 'node:fs'

const names = readdirSync('node_modules/@guidekit').map((n) => `@guidekit/${n}`)
for (const name of names) {
  const mod = await import(name)
  const exports = Object.keys(mod)
  if (exports.length === 0) throw new Error(`${name} has no exports`)
  console.log(`imported ${name}: ${exports.length} exports`)
}
const core = await import('@guidekit/core')
let guider = core.unguided()
if (names.includes('@guidekit/cfg')) {
  const { cfg } = await import('@guidekit/cfg')
  guider = cfg({ scale: 3 })
}
const denoiser = core.gaussianDenoiser({ family: 'flow', means: { positive: 1, negative: 0 }, std: 0.5 })
const result = await core.sample({ denoiser, guider, sampler: core.euler(), plan: core.flowPlan({ steps: 10 }), shape: [2, 1, 8, 8], seed: 1 })
let sum = 0
for (const v of result.samples.data) sum += v
const mean = sum / result.samples.size
console.log(`sampled ${result.samples.shape.join('x')} with ${guider.name}: mean ${mean.toFixed(3)}, ${result.modelCalls} model calls, NFE ${result.nfe}`)
if (!Number.isFinite(mean) || mean < 0.5) throw new Error('unexpected sample mean')
