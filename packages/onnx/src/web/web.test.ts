// The browser entry, run in Node: onnxruntime-web's WASM build is the same binary a browser runs (here on
// one thread), so these tests check the loader and measure WASM against onnxruntime-node's native CPU code.
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { cfg } from '@guidekit/cfg'
import { GuidekitError, Tensor, euler, sample } from '@guidekit/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { detInput, fixture, golden, summarize } from '../__fixtures__/helpers.js'
import { loadClassConditionalDenoiser as loadNodeDenoiser } from '../node/load.js'
import { planFromCard } from '../card/plan.js'
import { toRawImages } from '../image.js'
import { loadClassConditionalDenoiser, loadClassConditionalModel, openWebSession } from './index.js'

const wasm = { executionProviders: ['wasm'] as const, threads: 1 }
const ditBytes = readFileSync(fixture('class-conditional', 'tiny-dit.onnx'))
const ditCard = JSON.parse(readFileSync(fixture('class-conditional', 'tiny-dit.card.json'), 'utf8')) as Record<string, unknown>
const shipped = (file: string) => new URL(`../../../models-fashion/models/${file}`, import.meta.url)

async function code(promise: Promise<unknown>): Promise<string> {
  try {
    await promise
  } catch (error) {
    if (GuidekitError.isInstance(error)) return error.code
    throw error
  }
  return 'no error'
}

// A local server for the URL loader: /ok/* serves the fixtures, /spa/* answers everything with an HTML page.
let server: Server
let base = ''
const requests: string[] = []
beforeAll(async () => {
  server = createServer((req, res) => {
    const path = req.url ?? '/'
    requests.push(path)
    if (path.startsWith('/spa/')) {
      res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>app</title>')
    } else if (path === '/ok/tiny-dit.onnx') {
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(ditBytes)
    } else if (path === '/ok/tiny-dit.card.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(ditCard))
    } else if (path === '/ok/broken.card.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"name": ')
    } else if (path === '/ok/wrong.card.json') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ...ditCard, parameterization: 'sideways' }))
    } else {
      res.writeHead(404).end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

describe('@guidekit/onnx/web', () => {
  it('loads a model from bytes and a card object, reports WASM, and matches the golden outputs', async () => {
    const model = await loadClassConditionalModel({ model: new Uint8Array(ditBytes), card: ditCard }, { sessionOptions: wasm })
    expect(model.runtime).toEqual({ executionProvider: 'wasm', threads: 1, crossOriginIsolated: false })
    expect(model.embeddingRows).toBe(11)
    const denoiser = await loadClassConditionalDenoiser({ model, classes: [3, 3, 7] })
    const x = detInput([3, 1, 28, 28])
    const sigma = 0.7
    const g = (golden as { classConditional: { timestep: number; 'tiny-dit': { sum: number; absSum: number; first: number[] }[] } }).classConditional
    const preds = await denoiser.predict({ x, sigma, timestep: g.timestep, step: 0, steps: 1, branches: [{ role: 'positive', samples: [0] }, { role: 'negative', samples: [1] }, { role: 'positive', samples: [2] }] })
    preds.forEach((p, i) => {
      const xi = x.batchSlice(i)
      const velocity = Float32Array.from(xi.data, (v, k) => (v - (p.denoised.data[k] as number)) / sigma)
      const s = summarize(velocity)
      const expected = g['tiny-dit'][i] as { absSum: number; first: number[] }
      expect(Math.abs(s.absSum - expected.absSum) / expected.absSum).toBeLessThan(1e-4)
      s.first.forEach((v, k) => expect(Math.abs(v - (expected.first[k] as number))).toBeLessThan(1e-4))
    })
    await denoiser.dispose()
    // The model was passed in loaded: the denoiser does not release it.
    expect(model.session.inputNames).toContain('sample')
    await model.dispose()
  })

  it('fetches the card and the model from URLs, checking the card before downloading the model', async () => {
    const model = await loadClassConditionalModel({ model: `${base}/ok/tiny-dit.onnx`, card: `${base}/ok/tiny-dit.card.json` }, { sessionOptions: wasm })
    expect(model.name).toBe('tiny-dit.onnx')
    expect(model.where).toBe(`${base}/ok/tiny-dit.card.json`)
    expect((await model.modelBytes()).byteLength).toBe(ditBytes.byteLength)
    await model.dispose()

    requests.length = 0
    await expect(code(loadClassConditionalModel({ model: `${base}/ok/tiny-dit.onnx`, card: `${base}/ok/wrong.card.json` }, { sessionOptions: wasm }))).resolves.toBe('MODEL_INVALID')
    expect(requests).toEqual(['/ok/wrong.card.json'])
    await expect(code(loadClassConditionalModel({ model: `${base}/ok/tiny-dit.onnx`, card: `${base}/ok/broken.card.json` }))).resolves.toBe('MODEL_INVALID')
    await expect(code(loadClassConditionalModel({ model: `${base}/ok/missing.onnx`, card: ditCard }))).resolves.toBe('MODEL_NOT_FOUND')
    // A single-page app's fallback answers missing files with its HTML page.
    await expect(loadClassConditionalModel({ model: `${base}/spa/fashion-dit.onnx`, card: ditCard })).rejects.toThrow(/is an HTML page, not an ONNX model/)
    await expect(code(loadClassConditionalModel({ model: 'http://127.0.0.1:1/x.onnx', card: ditCard }))).resolves.toBe('IO_ERROR')
    const aborted = AbortSignal.abort()
    await expect(code(loadClassConditionalModel({ model: `${base}/ok/tiny-dit.onnx`, card: ditCard }, { signal: aborted }))).resolves.toBe('ABORTED')
  })

  it('rejects bad sources and options with stable codes', async () => {
    // @ts-expect-error: a path string needs a card
    await expect(code(loadClassConditionalModel('tiny-dit.onnx'))).resolves.toBe('INVALID_ARGUMENT')
    // @ts-expect-error: not a provider of the browser entry
    await expect(code(openWebSession(new Uint8Array(ditBytes), { executionProviders: ['cuda'] }))).resolves.toBe('INVALID_ARGUMENT')
    await expect(code(openWebSession(new Uint8Array(ditBytes), { threads: 0 }))).resolves.toBe('INVALID_ARGUMENT')
    // Node has no WebGPU adapter: asking for WebGPU alone cannot be met.
    await expect(code(openWebSession(new Uint8Array(ditBytes), { executionProviders: ['webgpu'] }))).resolves.toBe('UNSUPPORTED')
    await expect(code(openWebSession(new Uint8Array([1, 2, 3]), wasm))).resolves.toBe('MODEL_INVALID')
    await expect(code(loadClassConditionalDenoiser({ classes: [0] }))).resolves.toBe('INVALID_ARGUMENT')
  })

  // WASM (onnxruntime-web) and native (onnxruntime-node) kernels may differ in the last float bits; this
  // measures by how much on the shipped DiT, per prediction and after a whole CFG trajectory.
  it('fashion-dit on WASM matches onnxruntime-node: predictions and 8-step CFG images', async () => {
    const card = JSON.parse(readFileSync(shipped('fashion-dit.card.json'), 'utf8')) as Record<string, unknown>
    const classes = [7, 7, 0, 9]
    const web = await loadClassConditionalDenoiser({ model: { model: new Uint8Array(readFileSync(shipped('fashion-dit.onnx'))), card }, classes, sessionOptions: wasm })
    const native = await loadNodeDenoiser({ model: shipped('fashion-dit.onnx').pathname, classes, sessionOptions: { threads: 1 } })
    try {
      const x = detInput([4, 1, 28, 28])
      let maxPrediction = 0
      for (const sigma of [0.9, 0.5, 0.1]) {
        const request = { x, sigma, timestep: Math.fround(sigma * 1000), step: 0, steps: 1, branches: [{ role: 'positive' }, { role: 'negative' }] }
        const [a, b] = [await web.predict(request), await native.predict(request)]
        a.forEach((p, i) => p.denoised.data.forEach((v, k) => (maxPrediction = Math.max(maxPrediction, Math.abs(v - (b[i]?.denoised.data[k] as number))))))
      }
      const run = (denoiser: typeof web) => sample({ denoiser, guider: cfg({ scale: 3 }), sampler: euler(), plan: planFromCard(web.card, { steps: 8 }), shape: [4, 1, 28, 28], seed: 0 })
      const [sa, sb] = [await run(web), await run(native)]
      const maxSample = sa.samples.data.reduce((m, v, k) => Math.max(m, Math.abs(v - (sb.samples.data[k] as number))), 0)
      const [pa, pb] = [toRawImages(sa.samples), toRawImages(sb.samples)]
      let maxPixel = 0
      let differing = 0
      pa.forEach((img, i) => img.data.forEach((v, k) => {
        const d = Math.abs(v - (pb[i]?.data[k] as number))
        maxPixel = Math.max(maxPixel, d)
        if (d > 0) differing++
      }))
      console.log(`fashion-dit WASM vs native: max |denoised| difference ${maxPrediction.toExponential(2)}; 8-step CFG samples ${maxSample.toExponential(2)}; pixels: max ${maxPixel}, ${differing}/${4 * 784} differ`)
      expect(maxPrediction).toBeLessThan(1e-4)
      expect(maxSample).toBeLessThan(1e-3)
      expect(maxPixel).toBeLessThanOrEqual(1)
      expect(sa.samples).toBeInstanceOf(Tensor)
    } finally {
      await web.dispose()
      await native.dispose()
    }
  })
})
