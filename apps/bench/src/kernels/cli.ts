// Core kernel throughput: fused combine and per-sample reductions on 1-64 MB tensors, as GB/s next to a
// plain Float32Array.prototype.set copy measured in the same run. Usage: pnpm bench:kernels [--json] [--quick]
import { Tensor, combine, cosineSimilarity, dot, norm, randn, std } from '@guidekit/core'
import { table, timeMs } from '../timing.js'

const json = process.argv.includes('--json')
const quick = process.argv.includes('--quick')
const sizesMb = quick ? [1, 16] : [1, 4, 16, 64]

interface Row { sizeMb: number; op: string; ms: number; gbPerS: number; vsCopy: number }
const rows: Row[] = []
for (const mb of sizesMb) {
  const n = (mb * 1024 * 1024) / 4
  const shape = [4, n / 4]
  const a = randn(shape, 1)
  const b = randn(shape, 2)
  const c = randn(shape, 3)
  const out = Tensor.zeros(shape)
  const bytes = n * 4
  // Bytes each op must move (reads + writes) at minimum.
  const ops: [string, number, () => void][] = [
    ['copy (Float32Array.set)', 2 * bytes, () => out.data.set(a.data)],
    ['combine, 2 terms', 3 * bytes, () => combine([[0.5, a], [1.5, b]], out)],
    ['combine, 3 terms', 4 * bytes, () => combine([[0.5, a], [1.5, b], [-1, c]], out)],
    ['dot (per sample)', 2 * bytes, () => dot(a, b)],
    ['norm (per sample)', bytes, () => norm(a)],
    ['std (per sample, 2 passes)', 2 * bytes, () => std(a)],
    ['cosine (per sample)', 2 * bytes, () => cosineSimilarity(a, b)],
  ]
  let copyGb = 0
  for (const [op, moved, fn] of ops) {
    const ms = timeMs(fn, { minMs: quick ? 60 : 200 })
    const gb = moved / 1e9 / (ms / 1e3)
    if (op.startsWith('copy')) copyGb = gb
    rows.push({ sizeMb: mb, op, ms, gbPerS: gb, vsCopy: gb / copyGb })
  }
}
if (json) {
  console.log(JSON.stringify({ rows }, null, 2))
} else {
  console.log(`guidekit kernel throughput (node ${process.version}, ${process.arch}); GB/s counts the bytes each op must read and write\n`)
  console.log(table(['size', 'op', 'ms', 'GB/s', 'vs copy'], rows.map((r) => [`${r.sizeMb} MB`, r.op, r.ms.toFixed(3), r.gbPerS.toFixed(2), r.vsCopy.toFixed(2)])))
}
