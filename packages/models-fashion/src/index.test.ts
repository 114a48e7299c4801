import { createHash } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { cfg } from '@guidekit/cfg'
import { euler, sample } from '@guidekit/core'
import { guidekitErrorOf } from '@guidekit/core/testing'
import { loadClassConditionalDenoiser, openSession, parseGeneratorCard, planFromCard } from '@guidekit/onnx'
import { Tensor as OrtTensor } from 'onnxruntime-common'
import { fashionModel, fashionModelNames } from './index.js'

const generatorInputs = ['sample', 'timestep', 'class_labels']
const generators = ['fashion-dit', 'fashion-unet', 'fashion-dit-rl'] as const
// Reduced-precision variants ship as `<name>-int8.onnx` + `<name>-int8.card.json` next to the model (made by
// `pnpm quantize`, gated by `pnpm bench:int8-gate --write-card`); the CLI's --precision finds them there.
const int8CardOf = (name: string) => join(dirname(fashionModel('fashion-eval').cardPath), `${name}-int8.card.json`)
const int8Variants = generators.filter((name) => existsSync(int8CardOf(name)))
const sha256 = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex')

describe('fashionModel', () => {
  it.each(fashionModelNames)('%s: card parses and names its files', (name) => {
    const model = fashionModel(name)
    expect(model.name).toBe(name)
    expect(model.card.name).toBe(name)
    expect(model.card.cardVersion).toBe(2)
    expect(model.card.onnx.opset).toBe(17)
    expect(model.card.classes).toHaveLength(10)
    expect(model.card.image).toEqual({ channels: 1, height: 28, width: 28, range: [-1, 1] })
    expect(model.onnxPath).toBe(join(dirname(model.onnxPath), `${name}.onnx`))
    // An ONNX protobuf stores its input/output names verbatim; checking them catches a stale file.
    const bytes = readFileSync(model.onnxPath)
    expect(bytes.length).toBeGreaterThan(100_000)
    for (const io of [...model.card.onnx.inputs, ...model.card.onnx.outputs]) {
      expect(bytes.includes(Buffer.from(io.name)), `${io.name} in ${name}.onnx`).toBe(true)
      expect(io.shape[0]).toBe('batch')
    }
    expect(model.card.training?.wallSeconds).toBeGreaterThan(0)
    expect(model.card.training?.command).toMatch(/^\/usr\/bin\/python3 tooling\/train\/train_.*\.py$/)
  })

  it.each(['fashion-dit', 'fashion-unet', 'fashion-dit-rl'] as const)('%s: generator contract and metrics', (name) => {
    const { card, gridPath } = fashionModel(name)
    expect(card.kind).toBe('generator')
    expect(card.nullClass).toBe(10)
    expect(card.onnx.inputs.map((i) => i.name)).toEqual(generatorInputs)
    expect(card.onnx.inputs.map((i) => i.dtype)).toEqual(['float32', 'float32', 'int64'])
    expect(card.onnx.outputs).toEqual([{ name: 'out_sample', role: 'prediction', dtype: 'float32', shape: ['batch', 1, 28, 28] }])
    const metrics = card.metrics as { samples: number; steps: number; byScale: { cfgScale: number; accuracy: number; frechetDistance: number }[] }
    // every card has CFG 3 (the defaults and the targets); the base generators also no guidance and w = 2
    const scales = name === 'fashion-dit-rl' ? [3] : [1, 2, 3]
    expect(metrics.byScale.map((r) => r.cfgScale)).toEqual(expect.arrayContaining(scales))
    for (const row of metrics.byScale) {
      expect(row.accuracy).toBeGreaterThan(0.1) // better than chance for every scale
      expect(row.frechetDistance).toBeGreaterThan(0)
    }
    expect(metrics.samples).toBe(1000)
    expect(metrics.steps).toBe(30)
    expect(gridPath).toBeDefined()
    const png = readFileSync(gridPath as string)
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
  })

  it('fashion-dit declares flow velocity and its token grid', () => {
    const { card } = fashionModel('fashion-dit')
    expect(card.parameterization).toBe('flow-velocity')
    expect(card.schedule).toMatchObject({ family: 'flow', trainSteps: 1000, shift: 1 })
    expect(card.architecture).toMatchObject({
      type: 'dit',
      patchSize: 4,
      heads: 6,
      headDim: 32,
      tokenGrid: { frames: 1, height: 7, width: 7 },
      prefixTokens: 0,
    })
  })

  it('fashion-unet declares epsilon on the scaled_linear VP schedule', () => {
    const { card } = fashionModel('fashion-unet')
    expect(card.parameterization).toBe('epsilon')
    expect(card.schedule).toEqual(
      expect.objectContaining({ family: 'vp', betaSchedule: 'scaled_linear', betaStart: 0.00085, betaEnd: 0.012, trainSteps: 1000 }),
    )
  })

  it('fashion-dit-rl reports base and tuned reward', () => {
    const { reward } = fashionModel('fashion-dit-rl').card.metrics as { reward?: { samples: number; base: number; tuned: number } }
    expect(reward).toBeDefined()
    expect(reward?.samples).toBe(1000)
    expect(Number.isFinite(reward?.base)).toBe(true)
    expect(Number.isFinite(reward?.tuned)).toBe(true)
  })

  it('fashion-eval outputs logits and features', () => {
    const { card } = fashionModel('fashion-eval')
    expect(card.kind).toBe('evaluator')
    expect(card.onnx.inputs.map((i) => i.name)).toEqual(['image'])
    expect(card.onnx.outputs.map((o) => [o.name, o.shape])).toEqual([
      ['logits', ['batch', 10]],
      ['features', ['batch', card.featureDim]],
    ])
    expect(card.metrics?.testAccuracy).toBeGreaterThanOrEqual(0.9)
  })

  it('ships less than 60 MB of model files (int8 variants included)', () => {
    const variants = int8Variants.map((name) => int8CardOf(name).replace(/\.card\.json$/, '.onnx'))
    const total = [...fashionModelNames.map((name) => fashionModel(name).onnxPath), ...variants].reduce((sum, path) => sum + statSync(path).size, 0)
    expect(total).toBeLessThan(60e6)
  })

  it('rejects unknown names with a stable error code', () => {
    // @ts-expect-error: not a shipped model
    const call = () => fashionModel('fashion-gan')
    expect(call).toThrow(/expected one of fashion-dit/)
    expect(guidekitErrorOf(call)?.code).toBe('INVALID_ARGUMENT')
  })

  it('returns the same cached object', () => {
    expect(fashionModel('fashion-eval')).toBe(fashionModel('fashion-eval'))
    expect(existsSync(fashionModel('fashion-eval').onnxPath)).toBe(true)
  })

  // The cards are only worth their metrics if the files draw what the cards say: sample each generator
  // through guidekit with the card's own plan and let the shipped evaluator name the classes.
  const drawn = [
    ...(['fashion-dit', 'fashion-unet'] as const).map((name) => fashionModel(name)),
    ...int8Variants.filter((n) => n !== 'fashion-dit-rl').map((n) => {
      const cardPath = int8CardOf(n)
      return { name: `${n}-int8`, card: parseGeneratorCard(JSON.parse(readFileSync(cardPath, 'utf8')), cardPath), onnxPath: cardPath.replace(/\.card\.json$/, '.onnx') }
    }),
  ]
  it.each(drawn)('$name draws the classes it is asked for (shipped evaluator, CFG 3)', async ({ card, onnxPath }) => {
    const classes = Array.from({ length: 20 }, (_, i) => i % 10)
    const denoiser = await loadClassConditionalDenoiser({ model: onnxPath, classes, sessionOptions: { threads: 1 } })
    const evaluator = await openSession(fashionModel('fashion-eval').onnxPath, { threads: 1 })
    try {
      const result = await sample({ denoiser, guider: cfg({ scale: 3 }), sampler: euler(), plan: planFromCard(card, { steps: 12 }), shape: [20, 1, 28, 28], seed: 11 })
      const clamped = result.samples.data.map((v) => Math.min(1, Math.max(-1, v)))
      const { logits } = await evaluator.run({ image: new OrtTensor('float32', clamped, [20, 1, 28, 28]) })
      const scores = logits?.data as Float32Array
      const predicted = Array.from({ length: 20 }, (_, i) => {
        const row = [...scores.subarray(i * 10, i * 10 + 10)]
        return row.indexOf(Math.max(...row))
      })
      const correct = predicted.filter((p, i) => p === classes[i]).length
      expect(correct).toBeGreaterThanOrEqual(16)
    } finally {
      await denoiser.dispose()
      await evaluator.release()
    }
  })

  it('ships an int8 fashion-dit (the variant the CLI picks with --precision int8)', () => {
    expect(int8Variants).toContain('fashion-dit')
  })

  describe.each(int8Variants)('%s-int8', (name) => {
    const cardPath = int8CardOf(name)
    const raw = JSON.parse(readFileSync(cardPath, 'utf8')) as { quantization: { fp32: { file: string; sha256: string } } }
    const card = parseGeneratorCard(raw, cardPath)
    const own = fashionModel(name)
    const onnxPath = join(dirname(cardPath), card.onnx.file)

    it('is a variant card of its fp32 model: same interface, schedule, classes and defaults', () => {
      expect(card).toMatchObject({ name: `${name}-int8`, precision: 'int8', derivedFrom: name, cardVersion: 2 })
      expect(card.onnx.file).toBe(`${name}-int8.onnx`)
      expect(own.card.precision ?? 'fp32').toBe('fp32')
      for (const key of ['parameterization', 'schedule', 'image', 'classes', 'nullClass', 'defaults'] as const) expect(card[key], key).toEqual(own.card[key])
      expect(card.onnx.inputs).toEqual(own.card.onnx.inputs)
      expect(card.onnx.outputs).toEqual(own.card.onnx.outputs)
    })

    it('was made from the shipped fp32 weights (re-run pnpm quantize after retraining)', () => {
      expect(raw.quantization.fp32.file).toBe(`${name}.onnx`)
      expect(raw.quantization.fp32.sha256).toBe(sha256(own.onnxPath))
      const bytes = readFileSync(onnxPath)
      expect(bytes.includes(Buffer.from('DynamicQuantizeMatMul'))).toBe(true)
      expect(bytes.length).toBeLessThan(statSync(own.onnxPath).size / 2) // s8 weights: under half the fp32 file
    })

    it('passed its 1000-image quality gate on these weights, and both cards carry msPerImage', () => {
      const gate = card.metrics?.qualityGate as undefined | { passed: boolean; images: number; int8Sha256: string; fp32: { accuracy: number; frechetDistance: number }; int8: { accuracy: number; frechetDistance: number } }
      if (!gate) throw new Error(`no metrics.qualityGate in ${name}-int8.card.json: run pnpm bench:int8-gate --model ${name} --images 1000 --write-card`)
      expect(gate.images).toBe(1000)
      expect(gate.int8Sha256).toBe(sha256(onnxPath))
      expect(gate.passed).toBe(gate.int8.frechetDistance <= 1.05 * gate.fp32.frechetDistance && gate.int8.accuracy >= gate.fp32.accuracy - 0.01)
      expect(gate.passed).toBe(true)
      expect(card.metrics?.msPerImage).toBeGreaterThan(0)
      expect(own.card.metrics?.msPerImage).toBeGreaterThan(0)
    })
  })
})
