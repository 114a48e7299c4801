import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { GuidekitError } from '@guidekit/core'
import { Tensor as OrtTensor, type InferenceSession } from 'onnxruntime-common'
import { afterAll, describe, expect, it } from 'vitest'
import { fixture } from '../__fixtures__/helpers.js'
import { openSession } from '../session.js'
import { runsOf } from './pool.js'

const dit = fixture('class-conditional', 'tiny-dit.onnx')
const int8Dit = join(fileURLToPath(new URL('../../../models-fashion/models', import.meta.url)), 'fashion-dit-int8.onnx')
const open: InferenceSession[] = []
afterAll(async () => {
  await Promise.all(open.map((s) => s.release()))
})

function feeds(rows: number): Record<string, OrtTensor> {
  return {
    sample: new OrtTensor('float32', Float32Array.from({ length: rows * 784 }, (_, i) => Math.sin(0.37 * i)), [rows, 1, 28, 28]),
    timestep: new OrtTensor('float32', Float32Array.from({ length: rows }, (_, i) => 40 + 97 * i), [rows]),
    class_labels: new OrtTensor('int64', BigInt64Array.from({ length: rows }, (_, i) => BigInt(i % 11)), [rows]),
  }
}

async function session(path: string, options: Parameters<typeof openSession>[1]): Promise<InferenceSession> {
  const s = await openSession(path, options)
  open.push(s)
  return s
}

describe('runsOf', () => {
  it('splits rows into runs of at most 8, at least 2 from 2 rows on, contiguous and covering', () => {
    expect(runsOf(1)).toEqual([[0, 1]])
    expect(runsOf(2)).toEqual([[0, 1], [1, 2]])
    expect(runsOf(16)).toEqual([[0, 8], [8, 16]])
    expect(runsOf(17)).toEqual([[0, 6], [6, 12], [12, 17]])
    for (const rows of [3, 9, 100, 128, 257]) {
      const runs = runsOf(rows)
      expect(runs[0]?.[0]).toBe(0)
      expect(runs.at(-1)?.[1]).toBe(rows)
      runs.forEach(([a, b], i) => {
        expect(b - a).toBeGreaterThan(0)
        expect(b - a).toBeLessThanOrEqual(8)
        if (i > 0) expect(a).toBe(runs[i - 1]?.[1])
      })
    }
  })
})

describe('sessions in worker threads (workers > 1)', () => {
  it('give a float model the same numbers as one session, for any batch and any number of workers', async () => {
    const one = await session(dit, { threads: 1 })
    const two = await session(dit, { workers: 2 })
    const three = await session(dit, { workers: 3 })
    expect(two.inputNames).toEqual(one.inputNames)
    expect(two.outputNames).toEqual(one.outputNames)
    for (const rows of [1, 2, 5, 19]) {
      const f = feeds(rows)
      const [a, b, c] = await Promise.all([one, two, three].map(async (s) => (await s.run(f)).out_sample as OrtTensor))
      expect(b?.dims).toEqual(a?.dims)
      expect(Array.from(b?.data as Float32Array)).toEqual(Array.from(a?.data as Float32Array))
      expect(Array.from(c?.data as Float32Array)).toEqual(Array.from(a?.data as Float32Array))
    }
  })

  it.runIf(existsSync(int8Dit))('give an int8 model the same bytes for 1, 2 or 3 workers (the split depends on the rows only)', async () => {
    const pools = await Promise.all([1, 2, 3].map((workers) => session(int8Dit, { workers })))
    const f = feeds(18)
    const outs = await Promise.all(pools.map(async (s) => Array.from((await s.run(f)).out_sample?.data as Float32Array)))
    expect(outs[1]).toEqual(outs[0])
    expect(outs[2]).toEqual(outs[0])
  })

  it('run calls made at the same time without mixing them up', async () => {
    const one = await session(dit, { threads: 1 })
    const pool = await session(dit, { workers: 2 })
    const calls = [3, 7, 2, 9].map((rows) => feeds(rows))
    const [expected, actual] = await Promise.all([Promise.all(calls.map((f) => one.run(f))), Promise.all(calls.map((f) => pool.run(f)))])
    actual.forEach((r, i) => expect(Array.from(r.out_sample?.data as Float32Array)).toEqual(Array.from(expected[i]?.out_sample?.data as Float32Array)))
  })

  it('turn a failing run into an error and keep working', async () => {
    const pool = await session(dit, { workers: 2 })
    const bad = { ...feeds(4), sample: new OrtTensor('float32', new Float32Array(4 * 100), [4, 1, 10, 10]) }
    await expect(pool.run(bad)).rejects.toThrow(/sample|dimension|shape/i)
    expect((await pool.run(feeds(4))).out_sample?.dims).toEqual([4, 1, 28, 28])
  })

  it('report a file ONNX Runtime cannot load as MODEL_INVALID, and a missing one as MODEL_NOT_FOUND', async () => {
    const notOnnx = fixture('class-conditional', 'tiny-dit.card.json')
    await expect(openSession(notOnnx, { workers: 2 })).rejects.toMatchObject({ code: 'MODEL_INVALID' })
    await expect(openSession('/nonexistent/model.onnx', { workers: 2 })).rejects.toMatchObject({ code: 'MODEL_NOT_FOUND' })
  })

  it('reject a workers count that is not a positive integer', async () => {
    for (const workers of [0, 1.5, -2, Number.NaN]) {
      const error = await openSession(dit, { workers }).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(GuidekitError)
      expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' })
      expect(String((error as Error).message)).toMatch(/sessionOptions\.workers/)
    }
  })

  it('refuse to run after release, and release twice without error', async () => {
    const pool = await openSession(dit, { workers: 2 })
    await pool.release()
    await pool.release()
    await expect(pool.run(feeds(2))).rejects.toThrow(/released/)
  })
})
