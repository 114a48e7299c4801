// The int8 rewrite on random-weight fixtures with the fashion DiT and UNet architectures
// (src/__fixtures__/make_fixtures.py): what it emits, that onnxruntime-node runs it, how close it stays to
// fp32 on real inputs, the card, and the errors. Needs /usr/bin/python3 with Debian's onnx and the
// Fashion-MNIST IDX files; skips, saying why, without them.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { GuidekitError } from '@guidekit/core'
import { parseGeneratorCard, readModelCard } from '@guidekit/onnx'
import * as ort from 'onnxruntime-node'
import { afterAll, describe, expect, it } from 'vitest'
import { quantizeModel } from './cli.js'
import { fashionMnistDir, trainingFeeds } from './data.js'
import { compareModels } from './measure.js'

const here = fileURLToPath(new URL('.', import.meta.url))
const fixtures = join(here, '__fixtures__')
const script = join(here, '..', 'quantize.py')
const python = existsSync('/usr/bin/python3') && spawnSync('/usr/bin/python3', ['-c', 'import onnx, numpy'], { encoding: 'utf8' }).status === 0
const data = existsSync(join(fashionMnistDir(), 'train-images-idx3-ubyte.gz'))
const why = !python ? '/usr/bin/python3 with onnx and numpy is missing' : !data ? `no Fashion-MNIST in ${fashionMnistDir()}` : ''
if (why) console.warn(`tooling/quantize tests skipped: ${why}`)

const work = mkdtempSync(join(tmpdir(), 'guidekit-quantize-test-'))
afterAll(() => rmSync(work, { recursive: true, force: true }))
/** A fixture model and card copied into a fresh folder (the int8 files are written next to them). */
function fixture(name: string): string {
  const dir = mkdtempSync(join(work, `${name}-`))
  for (const ext of ['onnx', 'card.json']) copyFileSync(join(fixtures, `${name}.${ext}`), join(dir, `${name}.${ext}`))
  return join(dir, `${name}.onnx`)
}
const run = (args: string[]) => spawnSync('/usr/bin/python3', [script, ...args], { encoding: 'utf8' })
/** Operator counts of the graph ONNX Runtime actually runs (after its QDQ fusions, level extended). */
async function optimizedOps(path: string): Promise<Record<string, number>> {
  const out = join(work, `optimized-${Math.random().toString(36).slice(2)}.onnx`)
  const s = await ort.InferenceSession.create(path, { graphOptimizationLevel: 'extended', optimizedModelFilePath: out })
  await s.release()
  const r = spawnSync('/usr/bin/python3', ['-c', `import onnx, json, collections; print(json.dumps(collections.Counter(n.op_type for n in onnx.load(${JSON.stringify(out)}).graph.node)))`], { encoding: 'utf8' })
  return JSON.parse(r.stdout) as Record<string, number>
}

describe.skipIf(why !== '')('quantize.py', () => {
  it('fuses the tanh GELU into one Gelu kernel, within the tanh approximation of the function', async () => {
    const src = fixture('tiny-dit')
    const fused = join(work, 'fused.onnx')
    const code = `import sys, onnx; sys.path.insert(0, ${JSON.stringify(join(here, '..'))})
from graph import Graph; from fusions import fuse_tanh_gelu
m = onnx.load(${JSON.stringify(src)}); g = Graph(m); n = fuse_tanh_gelu(g); g.finish(); onnx.checker.check_model(m); onnx.save(m, ${JSON.stringify(fused)})
print(n, sum(x.op_type == 'Tanh' for x in m.graph.node))`
    const r = spawnSync('/usr/bin/python3', ['-c', code], { encoding: 'utf8' })
    expect(r.stderr).toBe('')
    expect(r.stdout.trim()).toBe('2 0') // one GELU per block, no Tanh left
    const d = await compareModels(src, fused, trainingFeeds(readModelCard(src.replace('.onnx', '.card.json')), { rows: 64, offset: 0, seed: 1 }), 1)
    expect(d.maxAbsDiff).toBeGreaterThan(0) // erf, not tanh: not bit-identical
    expect(d.maxAbsDiff).toBeLessThan(2e-3) // the two GELUs differ by <= 4.7e-4 per activation
  })

  it('rejects a missing file, a file that is not ONNX, an int8 model, and Conv layers without ranges', () => {
    expect(run([join(work, 'nope.onnx'), '--out', join(work, 'x.onnx')]).stderr).toMatch(/^error MODEL_NOT_FOUND: .*nope\.onnx does not exist/)
    const notOnnx = run([join(fixtures, 'tiny-dit.card.json'), '--out', join(work, 'x.onnx')])
    expect(notOnnx.status).toBe(2)
    expect(notOnnx.stderr).toMatch(/^error MODEL_INVALID: /)
    const int8 = join(work, 'int8.onnx')
    expect(run([fixture('tiny-dit'), '--out', int8]).status).toBe(0)
    expect(run([int8, '--out', join(work, 'y.onnx')]).stderr).toMatch(/^error UNSUPPORTED: .*already quantized \(it has DynamicQuantizeMatMul\)/)
    expect(run([fixture('tiny-unet'), '--out', join(work, 'u.onnx')]).stderr).toMatch(/^error INVALID_ARGUMENT: .*needs calibrated activation ranges/)
  })
})

describe.skipIf(why !== '')('pnpm quantize', () => {
  it('makes an int8 DiT: every weight MatMul/Gemm as DynamicQuantizeMatMul, close to fp32, with a card that names its source', async () => {
    const src = fixture('tiny-dit')
    const r = await quantizeModel({ model: src, validationRows: 128, threads: 1 })
    const q = r.card.quantization as { operators: Record<string, number>; validation: { relativeRms: number; rows: number }; calibration: unknown }
    // tiny-dit: 2 blocks x (qkv, proj, fc1, fc2, ada) + t_embed 2 + final ada + out = 14
    expect(q.operators).toEqual({ DynamicQuantizeMatMul: 14, QLinearConv: 0, Gelu: 2, floatConv: 1 })
    expect(q.calibration).toBeNull()
    expect(q.validation.rows).toBe(128)
    expect(q.validation.relativeRms).toBeGreaterThan(0) // it is int8
    expect(q.validation.relativeRms).toBeLessThan(0.03)
    const card = JSON.parse(readFileSync(r.cardPath, 'utf8')) as Record<string, unknown>
    // The variant card the CLI's --precision finds: <name>-int8.card.json with derivedFrom = the fp32 model's name.
    expect(card).toMatchObject({ name: 'tiny-dit-int8', precision: 'int8', derivedFrom: 'tiny-dit', onnx: { file: 'tiny-dit-int8.onnx' }, quantization: { fp32: { file: 'tiny-dit.onnx' } } })
    expect((card.quantization as { fp32: { sha256: string } }).fp32.sha256).toBe(createHash('sha256').update(readFileSync(src)).digest('hex'))
    expect(card.metrics).toBeUndefined() // the gate adds the int8 model's own metrics
    expect(parseGeneratorCard(card).precision).toBe('int8')
    expect(readModelCard(r.cardPath).parameterization).toBe('flow-velocity') // still a valid guidekit card
  })

  it('makes an int8 UNet: calibrated QDQ convs that ONNX Runtime runs as QLinearConv, first and last conv kept fp32', async () => {
    const src = fixture('tiny-unet')
    const r = await quantizeModel({ model: src, calibrationRows: 128, validationRows: 128, threads: 1 })
    const q = r.card.quantization as { operators: Record<string, number>; validation: { relativeRms: number }; calibration: { rows: number } }
    expect(q.operators.QLinearConv).toBeGreaterThan(30)
    expect(q.operators.floatConv).toBe(2)
    const ops = await optimizedOps(r.onnxPath)
    expect(ops.QLinearConv).toBe(q.operators.QLinearConv)
    expect(ops.Conv).toBe(2)
    expect(q.calibration.rows).toBe(128)
    expect(q.validation.relativeRms).toBeGreaterThan(0)
    expect(q.validation.relativeRms).toBeLessThan(0.06)
  })

  it('refuses the evaluator and an already quantized card', async () => {
    const dir = mkdtempSync(join(work, 'eval-'))
    const evalCard = JSON.parse(readFileSync(join(fixtures, 'tiny-dit.card.json'), 'utf8')) as Record<string, unknown>
    writeFileSync(join(dir, 'e.card.json'), JSON.stringify({ ...evalCard, name: 'e', kind: 'evaluator', onnx: { ...(evalCard.onnx as object), file: 'e.onnx' } }))
    copyFileSync(join(fixtures, 'tiny-dit.onnx'), join(dir, 'e.onnx'))
    await expect(quantizeModel({ model: join(dir, 'e.onnx') })).rejects.toSatisfy((e: unknown) => GuidekitError.isInstance(e) && e.code === 'UNSUPPORTED' && /evaluator/.test(e.message))
    const int8 = await quantizeModel({ model: fixture('tiny-dit'), validationRows: 64, threads: 1 })
    await expect(quantizeModel({ model: int8.onnxPath })).rejects.toSatisfy((e: unknown) => GuidekitError.isInstance(e) && e.code === 'UNSUPPORTED' && /already a int8 model/.test(e.message))
  })
})
