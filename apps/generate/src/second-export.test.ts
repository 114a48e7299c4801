// Issue 10's proof that a card alone describes a model: the fashion DiT exported a second way (inputs x, t,
// y, output v, t in [0, 1]) samples byte-identical images to the shipped model through `guidekit generate`,
// and `grid` and draft attention run on it.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { built, pixels, run, scratch, shippedModels, summaryOf } from './__fixtures__/harness.js'
import { writeSecondExport } from './__fixtures__/second-export.js'

const { dir, fresh, remove } = scratch('second-export')
afterAll(remove)

/** The PNG's chunks other than text (IHDR, IDAT, ...): the image itself, without the metadata. */
function imageChunks(file: string): Buffer {
  const png = readFileSync(file)
  const parts: Buffer[] = []
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at)
    const type = png.toString('latin1', at + 4, at + 8)
    if (type !== 'tEXt' && type !== 'iTXt' && type !== 'zTXt') parts.push(png.subarray(at, at + 12 + length))
    at += 12 + length
  }
  return Buffer.concat(parts)
}

describe.skipIf(!built('fashion-dit'))('a second export of the fashion DiT, from its card alone', () => {
  const card = writeSecondExport({
    onnxPath: join(shippedModels, 'fashion-dit.onnx'),
    cardPath: join(shippedModels, 'fashion-dit.card.json'),
    folder: dir,
    name: 'fashion-dit-xty',
  })

  it('has the other interface: x, t, y -> v, timestep scale 1', () => {
    const c = JSON.parse(readFileSync(card, 'utf8')) as { onnx: { inputs: { name: string; role: string }[]; outputs: { name: string }[] }; schedule: { timestepScale: number } }
    expect(c.onnx.inputs.map((t) => [t.name, t.role])).toEqual([['x', 'sample'], ['t', 'timestep'], ['y', 'class']])
    expect(c.onnx.outputs.map((t) => t.name)).toEqual(['v'])
    expect(c.schedule.timestepScale).toBe(1)
  })

  it.each([
    ['dense attention', [] as string[]],
    ['draft attention', ['--attention', 'draft:keep=0.5']],
  ])('generate writes the same images as the shipped model (%s)', async (_what, extra) => {
    const common = ['generate', '--class', 'sneaker,bag,dress', '--count', '3', '--seed', '3', '--steps', '6', '--guidance', 'cfg:scale=3', '--json', '--quiet', ...extra]
    const a = fresh()
    const b = fresh()
    // --precision fp32: the shipped model may default to its int8 variant once that passed its gate; the second export is fp32.
    const shipped = await run([...common, '--model', 'fashion-dit', '--precision', 'fp32', '--out', a])
    const second = await run([...common, '--model', card, '--out', b])
    expect(shipped.stderr).toBe('')
    expect(second.stderr).toBe('')
    expect([shipped.code, second.code]).toEqual([0, 0])
    const [x, y] = [summaryOf(shipped), summaryOf(second)]
    expect(y.files).toHaveLength(3)
    if (extra.length > 0) expect(y.attention).toMatchObject({ sites: { 'fashion-dit-xty': 6 } })
    for (const [i, file] of y.files.entries()) {
      const reference = x.files[i] as string
      expect(Buffer.compare(await pixels(file), await pixels(reference))).toBe(0)
      expect(imageChunks(file).equals(imageChunks(reference))).toBe(true)
    }
  })

  it('grid runs on it', async () => {
    const out = fresh()
    const r = await run(['grid', '--model', card, '--columns', '2', '--steps', '4', '--guidance', 'cfg:scale=3; apg:scale=5', '--out', join(out, 'g.png'), '--json', '--quiet'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(summaryOf(r).rows.map((row) => [row.guidance, row.nfe])).toEqual([
      ['cfg:scale=3', 8],
      ['apg:scale=5', 8],
    ])
  })
})
