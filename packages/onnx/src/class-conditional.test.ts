import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GuidekitError, Tensor } from '@guidekit/core'
import { afterAll, describe, expect, it } from 'vitest'
import { fixture, golden, detInput, summarize } from './__fixtures__/helpers.js'
import type { Summary } from './__fixtures__/helpers.js'
import { classLabel } from './card/classes.js'
import { parseGeneratorCard } from './card/parse.js'
import { classConditionalDenoiser } from './class-conditional/denoiser.js'
import { readModelCard } from './node/files.js'
import { loadClassConditionalDenoiser, loadClassConditionalModel } from './node/load.js'

const dit = fixture('class-conditional', 'tiny-dit.onnx')
const ditRl = fixture('class-conditional', 'tiny-dit-rl.onnx')
const unet = fixture('class-conditional', 'tiny-unet.onnx')
const ditFp16 = fixture('class-conditional', 'tiny-dit-fp16.onnx')
const g = golden.classConditional
const T = g.timestep as number
// golden outputs were computed on x = detInput([3,1,28,28]) with labels [3, 10, 7] at timestep 700
const x3 = detInput([3, 1, 28, 28])

function expectClose(actual: ArrayLike<number>, expected: Summary, tolerance = 1e-4): void {
  const s = summarize(actual)
  expect(s.sum).toBeCloseTo(expected.sum, 2)
  expect(Math.abs(s.absSum - expected.absSum) / expected.absSum).toBeLessThan(tolerance)
  s.first.forEach((v, i) => expect(Math.abs(v - (expected.first[i] as number))).toBeLessThan(1e-4))
}

/** The model output (velocity / epsilon) recovered from a prediction. */
const velocity = (x: Tensor, denoised: Tensor, sigma: number) => Float32Array.from(x.data, (xi, i) => (xi - (denoised.data[i] as number)) / sigma)

const disposers: (() => Promise<void>)[] = []
afterAll(async () => {
  for (const d of disposers) await d()
})

describe('loadClassConditionalDenoiser / classConditionalDenoiser', () => {
  it('batches positive and negative branches into one run and converts flow velocity at the edge', async () => {
    const d = await loadClassConditionalDenoiser({ model: dit, classes: [3, 3, 7], sessionOptions: { threads: 1, graphOptimizationLevel: 'all' } })
    disposers.push(() => d.dispose())
    expect(d.family).toBe('flow')
    expect(d.nullClass).toBe(10)
    const sigma = 0.7
    // items: [x0 pos(3), x1 neg(10), x2 pos(7)] reproduce the golden labels [3, 10, 7]
    const preds = await d.predict({ step: 0, steps: 1,
      x: x3,
      sigma,
      timestep: T,
      branches: [
        { role: 'positive', samples: [0] },
        { role: 'negative', samples: [1] },
        { role: 'positive', samples: [2] },
      ],
    })
    expect(d.modelCalls).toBe(1)
    preds.forEach((p, i) => {
      const xi = x3.batchSlice(i)
      expect(p.denoised.shape).toEqual([1, 1, 28, 28])
      expectClose(velocity(xi, p.denoised, sigma), g['tiny-dit'][i])
      // noise = x + (1 - sigma) v
      const v = velocity(xi, p.denoised, sigma)
      expect(p.noise.data[5]).toBeCloseTo((xi.data[5] as number) + (1 - sigma) * (v[5] as number), 4)
    })
  })

  it('gives the same predictions batched as one branch at a time', async () => {
    const d = await loadClassConditionalDenoiser({ model: dit, classes: [3, 7, 3] })
    disposers.push(() => d.dispose())
    const x = detInput([3, 1, 28, 28], 0.5)
    const req = { x, sigma: 0.4, timestep: 400, step: 0, steps: 1 }
    const both = await d.predict({ ...req, branches: [{ role: 'positive' }, { role: 'negative' }] })
    const pos = await d.predict({ ...req, branches: [{ role: 'positive' }] })
    const neg = await d.predict({ ...req, branches: [{ role: 'negative' }] })
    expect(d.modelCalls).toBe(3)
    for (const [a, b] of [
      [both[0], pos[0]],
      [both[1], neg[0]],
    ] as const) {
      expect(a?.denoised.shape).toEqual([3, 1, 28, 28])
      a?.denoised.data.forEach((v, i) => expect(Math.abs(v - (b?.denoised.data[i] as number))).toBeLessThan(1e-5))
    }
    // different classes give different predictions
    expect(both[0]?.denoised.data[10]).not.toBeCloseTo(both[1]?.denoised.data[10] as number, 5)
  })

  it('scales the input of VP (epsilon) models and returns x0 = x - sigma * eps', async () => {
    const d = await loadClassConditionalDenoiser({ model: unet, classes: [3, 10, 7] })
    disposers.push(() => d.dispose())
    expect(d.family).toBe('vp')
    const sigma = 2
    const scale = Math.sqrt(1 + sigma * sigma)
    // the sampler's x is the VE cast: x = x_vp * sqrt(1 + sigma^2); the model must see x_vp = golden input
    const x = new Tensor(x3.data.map((v) => v * scale), x3.shape)
    const [p] = await d.predict({ step: 0, steps: 1, x, sigma, timestep: T, branches: [{ role: 'positive' }] })
    for (let i = 0; i < 3; i++) {
      const item = p!.noise.batchSlice(i)
      expectClose(item.data, g['tiny-unet'][i], 1e-4)
      const xi = x.batchSlice(i)
      expect(p!.denoised.batchSlice(i).data[3]).toBeCloseTo((xi.data[3] as number) - sigma * (item.data[3] as number), 4)
    }
  })

  it('serves concurrent predictions (two trajectories at once) like sequential ones', async () => {
    const d = await loadClassConditionalDenoiser({ model: dit, classes: [3, 7, 1] })
    disposers.push(() => d.dispose())
    const reqs = [0.2, 0.9].map((sigma) => ({ x: detInput([3, 1, 28, 28], sigma), sigma, timestep: sigma * 1000, step: 0, steps: 1, branches: [{ role: 'positive' }, { role: 'negative' }] }))
    const together = await Promise.all(reqs.map((r) => d.predict(r)))
    for (const [i, r] of reqs.entries()) {
      const alone = await d.predict(r)
      expect(Array.from(together[i]![1]!.denoised.data)).toEqual(Array.from(alone[1]!.denoised.data))
    }
  })

  it('feeds zero-copy views (batch slices with a byte offset) correctly', async () => {
    const d = await loadClassConditionalDenoiser({ model: dit, classes: [10] })
    disposers.push(() => d.dispose())
    const view = x3.batchSlice(1, 2) // item 1 of the golden input, at a non-zero byteOffset
    expect(view.data.byteOffset).toBeGreaterThan(0)
    const [p] = await d.predict({ step: 0, steps: 1, x: view, sigma: 0.7, timestep: T, branches: [{ role: 'positive' }] })
    expectClose(velocity(view, p!.denoised, 0.7), g['tiny-dit'][1])
  })

  it('runs two models (RL guidance) with one batched call each', async () => {
    const d = await loadClassConditionalDenoiser({ models: { base: dit, tuned: ditRl }, classes: [3] })
    disposers.push(() => d.dispose())
    const x = x3.batchSlice(0, 1)
    const preds = await d.predict({ step: 0, steps: 1,
      x,
      sigma: 0.7,
      timestep: T,
      branches: [
        { role: 'positive', model: 'base' },
        { role: 'negative', model: 'base' },
        { role: 'positive', model: 'tuned' },
        { role: 'negative', model: 'tuned' },
      ],
    })
    expect(d.modelCalls).toBe(2)
    expectClose(velocity(x, preds[0]!.denoised, 0.7), g['tiny-dit'][0])
    expectClose(velocity(x, preds[2]!.denoised, 0.7), g['tiny-dit-rl'][0])
    await expect(d.predict({ step: 0, steps: 1, x, sigma: 0.7, timestep: T, branches: [{ role: 'positive', model: 'other' }] })).rejects.toThrow(/model 'other'/)
  })

  it('maps model "base" to the single model and shares loaded sessions across class sets', async () => {
    const model = await loadClassConditionalModel(dit)
    disposers.push(() => model.dispose())
    const d = classConditionalDenoiser({ model, classes: [3] })
    const e = d.withClasses([7])
    const x = x3.batchSlice(0, 1)
    const [a] = await d.predict({ step: 0, steps: 1, x, sigma: 0.7, timestep: T, branches: [{ role: 'positive', model: 'base' }] })
    const [b] = await e.predict({ step: 0, steps: 1, x, sigma: 0.7, timestep: T, branches: [{ role: 'positive' }] })
    expect(a!.denoised.data[0]).not.toBeCloseTo(b!.denoised.data[0] as number, 5)
    await d.dispose() // does not release a model it did not load
    await e.predict({ step: 0, steps: 1, x, sigma: 0.7, timestep: T, branches: [{ role: 'positive' }] })
  })

  it('runs fp16 models through float16 conversion at the edge', async () => {
    const d = await loadClassConditionalDenoiser({ model: ditFp16, classes: [3, 10, 7] })
    disposers.push(() => d.dispose())
    const [p] = await d.predict({ step: 0, steps: 1, x: x3, sigma: 0.7, timestep: T, branches: [{ role: 'positive' }] })
    for (let i = 0; i < 3; i++) {
      const v = velocity(x3.batchSlice(i), p!.denoised.batchSlice(i), 0.7)
      const expected = g['tiny-dit'][i] as Summary
      const s = summarize(v)
      // fp16 has ~3 significant digits
      expect(Math.abs(s.absSum - expected.absSum) / expected.absSum).toBeLessThan(5e-3)
      s.first.forEach((vi, k) => expect(Math.abs(vi - (expected.first[k] as number))).toBeLessThan(2e-2))
    }
  })

  it('rejects bad inputs with clear errors', async () => {
    const d = await loadClassConditionalDenoiser({ model: dit, classes: [3, 7] })
    disposers.push(() => d.dispose())
    const wrong = Tensor.zeros([2, 1, 32, 32])
    await expect(d.predict({ step: 0, steps: 1, x: wrong, sigma: 0.5, timestep: 500, branches: [{ role: 'positive' }] })).rejects.toMatchObject({ code: 'INPUT_MISMATCH' })
    const x = Tensor.zeros([2, 1, 28, 28])
    await expect(d.predict({ step: 0, steps: 1, x, sigma: 0.5, timestep: 500, branches: [{ role: 'style' }] })).rejects.toThrow(/Unknown branch role 'style'/)
    await expect(d.predict({ step: 0, steps: 1, x, sigma: 0.5, timestep: 500, branches: [{ role: 'positive', samples: [2] }] })).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
    await expect(loadClassConditionalDenoiser({ model: dit, classes: [12] })).rejects.toThrow(/classes must be integer labels in 0..9/)
    const controller = new AbortController()
    controller.abort()
    await expect(d.predict({ step: 0, steps: 1, x, sigma: 0.5, timestep: 500, branches: [{ role: 'positive' }], signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' })
  })

  it('names the input, expected and actual when a session does not match its card', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'guidekit-onnx-'))
    const card = JSON.parse(readFileSync(fixture('class-conditional', 'tiny-dit.card.json'), 'utf8'))
    // a card that is consistent in itself (32x32 everywhere) but not with the session (28x28)
    const card32 = structuredClone(card)
    card32.image = { ...card.image, height: 32, width: 32 }
    card32.onnx.inputs[0].shape = ['batch', 1, 32, 32]
    card32.onnx.outputs[0].shape = ['batch', 1, 32, 32]
    copyFileSync(dit, join(dir, 'm.onnx'))
    writeFileSync(join(dir, 'm.card.json'), JSON.stringify(card32))
    const error = await loadClassConditionalModel(join(dir, 'm.onnx')).catch((e: unknown) => e)
    expect(GuidekitError.isInstance(error)).toBe(true)
    expect((error as GuidekitError).code).toBe('INPUT_MISMATCH')
    expect((error as Error).message).toMatch(/input 'sample' has shape \[batch, 1, 28, 28\], but its card .* expects \[batch, 1, 32, 32\]/)
    // a card that contradicts itself is refused before any session opens
    card.onnx.inputs[0].shape = ['batch', 1, 32, 32]
    writeFileSync(join(dir, 'm.card.json'), JSON.stringify(card))
    await expect(loadClassConditionalModel(join(dir, 'm.onnx'))).rejects.toMatchObject({ code: 'MODEL_INVALID', message: expect.stringMatching(/'onnx.inputs 'sample'.shape' is \["batch",1,32,32\], but image is 1x28x28/) })

    card.onnx.inputs[0].shape = ['batch', 1, 28, 28]
    card.onnx.inputs[2].dtype = 'int32'
    writeFileSync(join(dir, 'm.card.json'), JSON.stringify(card))
    await expect(loadClassConditionalModel(join(dir, 'm.onnx'))).rejects.toThrow(/input 'class_labels' has dtype int64, but its card .* expects int32/)

    writeFileSync(join(dir, 'bad.onnx'), 'not an onnx file')
    writeFileSync(join(dir, 'bad.card.json'), JSON.stringify({ ...card, onnx: { ...card.onnx, file: 'bad.onnx' } }))
    await expect(loadClassConditionalModel(join(dir, 'bad.onnx'))).rejects.toMatchObject({ code: 'MODEL_INVALID' })
    await expect(loadClassConditionalModel(join(dir, 'missing.onnx'))).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' })
    await expect(loadClassConditionalModel({ path: dit, card: { ...card, parameterization: 'banana' } })).rejects.toThrow(/'parameterization' must be one of/)
    await expect(loadClassConditionalModel({ path: dit, card: { ...card, schedule: { family: 'vp' } } })).rejects.toThrow(/'parameterization' is 'flow-velocity' but schedule.family is 'vp'/)
    // an evaluator card (as @guidekit/models-fashion ships for its classifier) is refused with its own message
    const evaluator = { ...card, kind: 'evaluator', parameterization: 'classifier', nullClass: null, schedule: undefined }
    await expect(loadClassConditionalModel({ path: dit, card: evaluator })).rejects.toThrow(/'kind' is 'evaluator', not 'generator'/)
  })
})

describe('classLabel', () => {
  it('resolves class names and indices, and lists valid names otherwise', () => {
    const card = parseGeneratorCard(readModelCard(fixture('class-conditional', 'tiny-dit.card.json')))
    expect(classLabel(card, 'sneaker')).toBe(7)
    expect(classLabel(card, 'Ankle boot')).toBe(9)
    expect(classLabel(card, '3')).toBe(3)
    expect(classLabel(card, 4)).toBe(4)
    expect(() => classLabel(card, 'hat')).toThrow(/Unknown class "hat".*7 "Sneaker"/)
    expect(() => classLabel(card, 10)).toThrow(/Unknown class 10/)
  })
})
