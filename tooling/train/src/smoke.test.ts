import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

// Runs each training script's --smoke mode (a few steps on a few hundred images, random evaluator,
// outputs in a temp dir) with Debian's PyTorch. Machines without it skip, saying why.
const python = '/usr/bin/python3'
const trainDir = fileURLToPath(new URL('..', import.meta.url))
const probe = spawnSync(python, ['-c', 'import torch, onnx'], { encoding: 'utf8' })
const skipReason =
  probe.error !== undefined
    ? `${python} not found (apt-get install python3-torch python3-onnx libopenblas0-pthread dataset-fashion-mnist)`
    : probe.status !== 0
      ? `${python} cannot import torch and onnx (apt-get install python3-torch python3-onnx)`
      : !existsSync('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz')
        ? 'Fashion-MNIST is missing (apt-get install dataset-fashion-mnist)'
        : undefined
if (skipReason !== undefined) console.warn(`tooling/train smoke tests skipped: ${skipReason}`)

const outRoot = mkdtempSync(join(tmpdir(), 'guidekit-train-smoke-'))
afterAll(() => rmSync(outRoot, { recursive: true, force: true }))

interface Io {
  name: string
  dtype: string
  shape: (number | string)[]
}
interface SmokeCard {
  name: string
  cardVersion: number
  kind: string
  parameterization: string
  nullClass: number | null
  onnx: { file: string; opset: number; inputs: Io[]; outputs: Io[] }
  training: { command: string; seed: number; images: number; wallSeconds: number }
  metrics: Record<string, unknown>
  architecture: Record<string, unknown>
  [key: string]: unknown
}

function runSmoke(script: string, name: string): { out: string; card: SmokeCard; stdout: string } {
  const out = join(outRoot, name)
  const stdout = execFileSync(python, [join(trainDir, script), '--smoke', '--threads', '1', '--out', out], {
    cwd: trainDir,
    encoding: 'utf8',
    timeout: 170_000,
  })
  const card = JSON.parse(readFileSync(join(out, `${name}.card.json`), 'utf8')) as SmokeCard
  return { out, card, stdout }
}

/** Input/output names and element types read back from the ONNX file by the onnx package (checker included). */
function onnxSignature(path: string): { inputs: [string, number][]; outputs: [string, number][]; opset: number } {
  const code = [
    'import json, sys, onnx',
    'm = onnx.load(sys.argv[1]); onnx.checker.check_model(m)',
    'sig = lambda vs: [[v.name, v.type.tensor_type.elem_type] for v in vs]',
    'print(json.dumps({"inputs": sig(m.graph.input), "outputs": sig(m.graph.output), "opset": m.opset_import[0].version}))',
  ].join('\n')
  return JSON.parse(execFileSync(python, ['-c', code, path], { encoding: 'utf8' })) as ReturnType<typeof onnxSignature>
}

const FLOAT = 1
const INT64 = 7

function expectCommon(card: SmokeCard, name: string, out: string, stdout: string): void {
  expect(card.name).toBe(name)
  expect(card.cardVersion).toBe(2)
  expect(card.onnx.file).toBe(`${name}.onnx`)
  expect(card.onnx.opset).toBe(17)
  expect(card.classes).toHaveLength(10)
  expect(card.image).toEqual({ channels: 1, height: 28, width: 28, range: [-1, 1] })
  expect(card.training.seed).toBe(0)
  expect(card.training.images).toBeGreaterThan(0)
  expect(card.training.command).toMatch(/^\/usr\/bin\/python3 tooling\/train\//)
  expect(typeof card.architecture.parameters).toBe('number')
  expect(stdout).toMatch(new RegExp(`^FINAL ${name}: `, 'm'))
  expect(existsSync(join(out, `${name}.onnx`))).toBe(true)
}

function expectGenerator(card: SmokeCard, name: string, out: string, scales = [1, 2, 3, 5]): void {
  expect(card.kind).toBe('generator')
  expect(card.nullClass).toBe(10)
  expect(card.onnx.inputs.map((i) => i.name)).toEqual(['sample', 'timestep', 'class_labels'])
  expect(card.onnx.outputs.map((o) => o.name)).toEqual(['out_sample'])
  const sig = onnxSignature(join(out, `${name}.onnx`))
  expect(sig.opset).toBe(17)
  expect(sig.inputs).toEqual([
    ['sample', FLOAT],
    ['timestep', FLOAT],
    ['class_labels', INT64],
  ])
  expect(sig.outputs).toEqual([['out_sample', FLOAT]])
  const byScale = (card.metrics as { byScale: { cfgScale: number; accuracy: number; frechetDistance: number }[] })
    .byScale
  expect(byScale.map((r) => r.cfgScale)).toEqual(expect.arrayContaining(scales))
  for (const row of byScale) {
    expect(row.accuracy).toBeGreaterThanOrEqual(0)
    expect(Number.isFinite(row.frechetDistance)).toBe(true)
  }
  const png = readFileSync(join(out, `${name}.grid.png`))
  expect(png.subarray(1, 4).toString('latin1')).toBe('PNG')
}

describe.skipIf(skipReason !== undefined)('training scripts, --smoke', () => {
  it('train_eval.py exports logits and features', { timeout: 180_000 }, () => {
    const { out, card, stdout } = runSmoke('train_eval.py', 'fashion-eval')
    expectCommon(card, 'fashion-eval', out, stdout)
    expect(card.kind).toBe('evaluator')
    expect(card.parameterization).toBe('classifier')
    const sig = onnxSignature(join(out, 'fashion-eval.onnx'))
    expect(sig.inputs).toEqual([['image', FLOAT]])
    expect(sig.outputs.map(([n]) => n)).toEqual(['logits', 'features'])
    expect(card.onnx.outputs[1]?.shape).toEqual(['batch', card.featureDim])
    expect(typeof card.metrics.testAccuracy).toBe('number')
  })

  it('train_dit.py exports a flow-velocity DiT with its token grid', { timeout: 180_000 }, () => {
    const { out, card, stdout } = runSmoke('train_dit.py', 'fashion-dit')
    expectCommon(card, 'fashion-dit', out, stdout)
    expectGenerator(card, 'fashion-dit', out)
    expect(card.parameterization).toBe('flow-velocity')
    expect(card.schedule).toMatchObject({ family: 'flow', trainSteps: 1000, shift: 1 })
    expect(card.architecture).toMatchObject({ type: 'dit', patchSize: 4, heads: 6, headDim: 32, prefixTokens: 0 })
    expect(card.architecture.tokenGrid).toEqual({ frames: 1, height: 7, width: 7 })
  })

  it('train_unet.py exports an epsilon UNet on the scaled_linear schedule', { timeout: 180_000 }, () => {
    const { out, card, stdout } = runSmoke('train_unet.py', 'fashion-unet')
    expectCommon(card, 'fashion-unet', out, stdout)
    expectGenerator(card, 'fashion-unet', out)
    expect(card.parameterization).toBe('epsilon')
    expect(card.schedule).toMatchObject({ family: 'vp', betaSchedule: 'scaled_linear', trainSteps: 1000 })
  })

  it('train_dit_rl.py fine-tunes and reports base and tuned reward', { timeout: 180_000 }, () => {
    const { out, card, stdout } = runSmoke('train_dit_rl.py', 'fashion-dit-rl')
    expectCommon(card, 'fashion-dit-rl', out, stdout)
    expectGenerator(card, 'fashion-dit-rl', out, [3])
    const reward = (card.metrics as { reward: { name: string; base: number; tuned: number; samples: number } }).reward
    expect(reward.name).toMatch(/PNG/)
    expect(Number.isFinite(reward.base)).toBe(true)
    expect(Number.isFinite(reward.tuned)).toBe(true)
    expect(reward.samples).toBeGreaterThan(0)
  })
})
