// Makes reference/fashion-mnist-test.{json,f64}: the mean and covariance (float64) of fashion-eval features
// of the Fashion-MNIST test set, plus the metrics of the real images (the "data" row of the benchmarks).
//
//   pnpm --filter @guidekit/eval make-reference            # needs Debian's dataset-fashion-mnist
//   FASHION_MNIST_DIR=/path/to/idx pnpm --filter @guidekit/eval make-reference
//
// Run it again whenever fashion-eval is retrained: readReferenceStatistics rejects a reference whose
// evaluator sha256 differs from the loaded evaluator's.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'
import { Tensor } from '@guidekit/core'
import { fashionModel } from '@guidekit/models-fashion'
import {
  classAccuracy,
  compressibility,
  encodeStatistics,
  featureStatistics,
  frechetDistance,
  loadEvaluator,
  readIdxImages,
  readIdxLabels,
  saturationStatistics,
  withinClassDiversity,
} from '../src/index.js'
import type { ReferenceHeader } from '../src/index.js'

const dir = process.env.FASHION_MNIST_DIR ?? '/usr/share/datasets/fashion-mnist'
const out = fileURLToPath(new URL('../reference/', import.meta.url))
const images = readIdxImages(gunzipSync(readFileSync(join(dir, 't10k-images-idx3-ubyte.gz'))))
const labels = readIdxLabels(gunzipSync(readFileSync(join(dir, 't10k-labels-idx1-ubyte.gz'))))
const model = fashionModel('fashion-eval')
const evaluator = await loadEvaluator(model.onnxPath, { sessionOptions: { threads: 2 } })
const t0 = performance.now()
const { logits, features } = await evaluator.evaluate(images)
const stats = featureStatistics(features)
console.log(`evaluated ${features.count} test images in ${((performance.now() - t0) / 1000).toFixed(1)} s`)

// FD of the first n test images against all 10k: the floor a perfect generator reaches at sample size n.
const floor: Record<string, number> = {}
for (const n of [100, 200, 500, 1000, 2000]) {
  const sub = featureStatistics({ count: n, dim: features.dim, data: features.data.subarray(0, n * features.dim) })
  floor[n] = Number(frechetDistance(sub, stats).toFixed(4))
  console.log(`FD floor n=${n}: ${floor[n]}`)
}
const size = 28 * 28
const perClass = (n: number): { images: Tensor; labels: number[]; idx: number[] } => {
  const idx: number[] = []
  const seen = new Array<number>(10).fill(0)
  labels.forEach((l, i) => {
    if ((seen[l] as number) < n) {
      seen[l] = (seen[l] as number) + 1
      idx.push(i)
    }
  })
  const data = new Float32Array(idx.length * size)
  idx.forEach((i, k) => data.set(images.data.subarray(i * size, (i + 1) * size), k * size))
  return { images: new Tensor(data, [idx.length, 1, 28, 28]), labels: idx.map((i) => labels[i] as number), idx }
}
// Diversity and reward on 100 per class, the size of the benchmark's quick mode.
const hundred = perClass(100)
const hundredFeatures = new Float32Array(hundred.idx.length * features.dim)
hundred.idx.forEach((i, k) => hundredFeatures.set(features.data.subarray(i * features.dim, (i + 1) * features.dim), k * features.dim))
const header: ReferenceHeader = {
  format: 'guidekit.eval.reference/v1',
  dataset: 'Fashion-MNIST test set (10k), Debian dataset-fashion-mnist t10k-images-idx3-ubyte.gz',
  evaluator: { name: model.name, sha256: evaluator.sha256 },
  count: stats.count,
  dim: stats.dim,
  file: 'fashion-mnist-test.f64',
  data: {
    accuracy: classAccuracy(logits, labels),
    frechetFloor: floor,
    frechetFloorNote: 'FD of the first n test images vs all 10k: what a perfect generator scores with n samples',
    saturation: saturationStatistics(images),
    reward: compressibility(images).reduce((a, b) => a + b, 0) / images.batch,
    diversity100PerClass: withinClassDiversity({ count: hundred.idx.length, dim: features.dim, data: hundredFeatures }, hundred.labels).mean,
  },
  command: 'pnpm --filter @guidekit/eval make-reference (packages/eval/scripts/make-reference.ts)',
}
writeFileSync(join(out, 'fashion-mnist-test.f64'), encodeStatistics(stats))
writeFileSync(join(out, 'fashion-mnist-test.json'), `${JSON.stringify(header, null, 2)}\n`)
console.log(JSON.stringify(header.data, null, 2))
await evaluator.dispose()
