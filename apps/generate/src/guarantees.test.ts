// What already held when guidekit was probed (issue 11), kept under test: concurrent runs into one folder
// give complete, identical files; the batch size and the thread count do not change a single byte (the
// shipped int8 DiT included: the worker threads split each step's rows by their count only).
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import sharp from 'sharp'
import { afterAll, describe, expect, it } from 'vitest'
import { built, launcher, listTree, pixels, run, runProcess, scratch, summaryOf, tinyDit } from './__fixtures__/harness.js'

const { fresh, remove } = scratch('guarantees')
afterAll(remove)

describe('output guarantees', () => {
  it('4 concurrent processes into one folder: complete files, identical where the settings are, no temporary file', async () => {
    const out = fresh()
    const args = (seed: string, ...extra: string[]) => [launcher, 'generate', '--model', tinyDit, '--steps', '8', '--count', '3', '--seed', seed, '--out', out, '--json', '--quiet', ...extra]
    // two runs with the same settings (--overwrite: both write the same names) and two with their own seeds
    const runs = await Promise.all([runProcess(process.execPath, args('0', '--overwrite')), runProcess(process.execPath, args('0', '--overwrite')), runProcess(process.execPath, args('10')), runProcess(process.execPath, args('20'))])
    expect(runs.map((r) => [r.code, r.stderr])).toEqual(runs.map(() => [0, '']))
    const files = listTree(out)
    expect(files).toHaveLength(9)
    expect(files.every((f) => f.endsWith('.png') && !f.startsWith('.'))).toBe(true)
    for (const f of files) expect((await sharp(join(out, f)).metadata()).height).toBe(28)
    const [a, b] = runs.map((r) => JSON.parse(r.stdout) as { files: string[] })
    expect(a?.files).toEqual(b?.files)
  })

  it('without --overwrite, a second identical run refuses before sampling and leaves the first files as they were', async () => {
    const out = fresh()
    const argv = ['generate', '--model', tinyDit, '--steps', '3', '--count', '2', '--out', out, '--json', '--quiet']
    const first = await run(argv)
    expect(first.code).toBe(0)
    const before = summaryOf(first).files.map((f) => readFileSync(f))
    const second = await run(argv)
    expect(second.code).toBe(2)
    expect(second.stderr).toMatch(/already exists; pass --overwrite/)
    expect(summaryOf(first).files.map((f) => readFileSync(f))).toEqual(before)
    expect(listTree(out)).toHaveLength(2)
  })

  it('batch size 1 and 8 give byte-identical images', async () => {
    const a = fresh()
    const b = fresh()
    const common = ['generate', '--model', tinyDit, '--steps', '5', '--count', '8', '--seed', '40', '--sampler', 'euler-a', '--json', '--quiet']
    const one = await run([...common, '--batch-size', '1', '--out', a])
    const eight = await run([...common, '--batch-size', '8', '--out', b])
    expect([one.code, eight.code]).toEqual([0, 0])
    expect(summaryOf(one).files.map((f) => f.slice(a.length))).toEqual(summaryOf(eight).files.map((f) => f.slice(b.length)))
    for (const [i, f] of summaryOf(one).files.entries()) expect(readFileSync(f).equals(readFileSync(summaryOf(eight).files[i] as string))).toBe(true)
  })

  it.skipIf(!built('fashion-dit-int8'))('the shipped int8 DiT: 1 and 2 threads give byte-identical images (rows are split by count, not by thread)', async () => {
    const common = ['generate', '--model', 'fashion-dit', '--precision', 'int8', '--steps', '4', '--count', '5', '--seed', '3', '--json', '--quiet']
    const a = fresh()
    const b = fresh()
    const one = await run([...common, '--threads', '1', '--out', a])
    const two = await run([...common, '--threads', '2', '--out', b])
    expect([one.code, two.code]).toEqual([0, 0])
    expect(summaryOf(one).files).toHaveLength(5)
    for (const [i, f] of summaryOf(one).files.entries()) expect(Buffer.compare(await pixels(f), await pixels(summaryOf(two).files[i] as string))).toBe(0)
  })

  it('1 and 2 threads give byte-identical images', async () => {
    const common = ['generate', '--model', tinyDit, '--steps', '5', '--count', '2', '--seed', '7', '--json', '--quiet']
    const a = fresh()
    const b = fresh()
    const one = await run([...common, '--threads', '1', '--out', a])
    const two = await run([...common, '--threads', '2', '--out', b])
    expect([one.code, two.code]).toEqual([0, 0])
    for (const [i, f] of summaryOf(one).files.entries()) expect(Buffer.compare(await pixels(f), await pixels(summaryOf(two).files[i] as string))).toBe(0)
  })
})
