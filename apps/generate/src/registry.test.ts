// `--model <name>` goes through @guidekit/models-fashion's registries. A registered text-to-image pipeline
// (`fashionPipelineNames` / `fashionPipeline(name)`: a diffusers ONNX folder with its card next to it; here
// the random-weight SD miniature, registered as `fashion-sd` in a mocked registry) runs exactly as
// `--model <folder>`, and `grid` runs every guidance strategy on it (rlg needs a class-conditional RL pair,
// so it is a usage error here).
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it, vi } from 'vitest'
import { pixels, recorded, run, scratch, summaryOf } from './__fixtures__/harness.js'
import type { Captured } from './__fixtures__/harness.js'
import type * as ModelsFashion from '@guidekit/models-fashion'

const registered = await vi.hoisted(async () => {
  const { cpSync, mkdtempSync, writeFileSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const path = await import('node:path')
  const { fileURLToPath } = await import('node:url')
  const dir = mkdtempSync(path.join(tmpdir(), 'guidekit-registry-'))
  const folder = path.join(dir, 'fashion-sd')
  cpSync(fileURLToPath(new URL('../../../packages/onnx/src/__fixtures__/sd-miniature', import.meta.url)), folder, { recursive: true })
  const card = path.join(dir, 'fashion-sd.card.json')
  const defaults = { steps: 3, guidance: 'cfg:scale=5', sampler: 'ddim' }
  writeFileSync(card, JSON.stringify({ name: 'fashion-sd', cardVersion: 2, kind: 'text-to-image', folder: 'fashion-sd', defaults }))
  return { dir, folder, card }
})

vi.mock('@guidekit/models-fashion', async (importOriginal) => {
  const real = await importOriginal<typeof ModelsFashion>()
  const { readModelCard } = await import('@guidekit/onnx')
  return {
    ...real,
    fashionPipelineNames: ['fashion-sd'],
    fashionPipeline: (name: string) => ({ name, folder: registered.folder, cardPath: registered.card, card: readModelCard(registered.card) }),
  }
})

const { fresh, remove } = scratch('registry')
afterAll(() => {
  remove()
  rmSync(registered.dir, { recursive: true, force: true })
})

const ok = (r: Captured): Captured => {
  expect(r.stderr).toBe('')
  expect(r.code).toBe(0)
  return r
}
const sd = ['--prompt', 'a photo of a sneaker', '--negative-prompt', 'dark', '--size', '32x32', '--seed', '4']

describe('--model <registered name>', () => {
  it('runs a registered diffusers folder exactly as --model <folder>', async () => {
    const out = fresh()
    const settings = [...sd, '--steps', '3', '--sampler', 'euler', '--guidance', 'cfg:scale=4', '--quiet', '--json']
    const byName = summaryOf(ok(await run(['generate', '--model', 'fashion-sd', ...settings, '--out', join(out, 'name.png')])))
    const byFolder = summaryOf(ok(await run(['generate', '--model', registered.folder, ...settings, '--out', join(out, 'folder.png')])))
    expect(byName).toMatchObject({ model: 'fashion-sd', nfe: 6 })
    expect(byFolder).toMatchObject({ model: 'fashion-sd', nfe: 6 })
    expect(Buffer.compare(await pixels(join(out, 'name.png')), await pixels(join(out, 'folder.png')))).toBe(0)
    const command = (await recorded(join(out, 'name.png'))).command
    expect(command).toContain('--model fashion-sd')
    expect(command).toContain('--negative-prompt dark --size 32x32')
  })

  it("uses the registered card's defaults when the run does not set them", async () => {
    const r = ok(await run(['generate', '--model', 'fashion-sd', ...sd, '--out', fresh(), '--quiet', '--json']))
    expect(summaryOf(r)).toMatchObject({ steps: 3, sampler: 'ddim', guidance: 'cfg:scale=5', nfe: 6 })
    expect(summaryOf(r).fromModel).toEqual(expect.arrayContaining(['steps', 'sampler', 'guidance']))
  })

  it('lists the registered generators (not the evaluator) when a name is unknown', async () => {
    const r = await run(['generate', '--model', 'fashion-xl', '--prompt', 'x', '--out', fresh()])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--model fashion-xl: not found\. Pass a shipped model \(fashion-dit, fashion-unet, fashion-dit-rl, fashion-sd\)/)
  })
})

describe('grid on a registered diffusers model', () => {
  it('runs the default rows (the rlg row left out: a diffusers folder has no RL pair)', async () => {
    const r = await run(['grid', '--model', 'fashion-sd', ...sd, '--columns', '2', '--out', join(fresh(), 'g.png'), '--json'])
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/leaving out the rlg row \(no RL model for fashion-sd/)
    const rows = summaryOf(r).rows
    expect(rows.map((row) => row.guidance.split(/[:(]/)[0])).toEqual(['none', 'cfg', 'cfg++', 'apg', 'adaptive'])
    expect(rows[1]?.guidance).toMatch(/^cfg:scale=5\b/) // the registered card's recommended guidance
    expect(rows.slice(0, 4).map((row) => row.nfe)).toEqual([3, 6, 6, 6])
    // Adaptive guidance drops the unconditional branch once cos >= threshold: between 1 and 2 NFE per step.
    expect(rows[4]?.nfe).toBeGreaterThanOrEqual(3)
    expect(rows[4]?.nfe).toBeLessThanOrEqual(6)
  })

  it('runs the other strategies too: CFG-Zero*, tangential CFG, interval, LinearAG with coefficients fitted on it', async () => {
    const dir = fresh()
    const coefficients = join(dir, 'linear-ag.json')
    ok(await run(['fit-linear-ag', '--model', 'fashion-sd', ...sd, '--steps', '4', '--count', '2', '--out', coefficients, '--quiet']))
    const guidance = `cfg-zero*:scale=3; tcfg:scale=3; interval(fraction=0..0.5):cfg(scale=3); linear-ag:coefficients=${coefficients}`
    const r = ok(await run(['grid', '--model', 'fashion-sd', ...sd, '--steps', '4', '--columns', '2', '--guidance', guidance, '--out', join(dir, 'g.png'), '--quiet', '--json']))
    const rows = summaryOf(r).rows
    expect(rows.map((row) => row.guidance.split(/[:(]/)[0])).toEqual(['cfg-zero*', 'tcfg', 'interval', 'linear-ag'])
    // CFG-Zero* asks nothing on its zero-init step; tangential CFG evaluates both branches on every step.
    expect(rows.map((row) => row.nfe).slice(0, 2)).toEqual([6, 8])
    // interval: CFG on the first half of the steps only; LinearAG predicts the unconditional branch on some steps.
    expect(rows[2]?.nfe).toBe(6)
    expect(rows[3]?.nfe).toBeLessThan(8)
  })

  it('rejects rlg on it before writing anything', async () => {
    const dir = fresh()
    const r = await run(['grid', '--model', 'fashion-sd', ...sd, '--guidance', 'rlg:scale=1.5', '--out', join(dir, 'g.png')])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/rlg needs a class-conditional base model/)
  })
})
