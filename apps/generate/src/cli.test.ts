import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import sharp from 'sharp'
import { afterAll, describe, expect, it } from 'vitest'
import { attnDit, built, pixels, pngTexts, recorded, run, scratch, sdMiniature, stream, summaryOf, tinyDit, tinyUnet } from './__fixtures__/harness.js'
import { main } from './main.js'

const { fresh, remove } = scratch('cli')
afterAll(remove)

describe('guidekit generate', () => {
  it('writes PNGs with the parameters embedded and a --json summary', async () => {
    const out = fresh()
    const r = await run(['generate', '--model', tinyDit, '--class', 'sneaker,bag', '--count', '3', '--seed', '5', '--steps', '4', '--guidance', 'apg:scale=8,eta=0,momentum=-0.5', '--out', `${out}/`, '--json', '--threads', '1'])
    expect(r.stderr).not.toMatch(/error/i)
    expect(r.code).toBe(0)
    const summary = summaryOf(r)
    expect(summary).toMatchObject({ command: 'generate', model: 'tiny-dit', seeds: [5, 6, 7], labels: ['Sneaker', 'Bag', 'Sneaker'], nfe: 8, modelCalls: 4, branchEvaluations: 8, batched: true })
    expect(summary.seconds).toBeGreaterThan(0)
    expect(summary.files).toHaveLength(3)
    for (const f of summary.files) expect(existsSync(f)).toBe(true)
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([])
    const meta = await sharp(summary.files[1]).metadata()
    expect([meta.width, meta.height, meta.format]).toEqual([28, 28, 'png'])
    const parameters = meta.comments?.find((c) => c.keyword === 'parameters')?.text
    expect(parameters).toBe(
      `Bag\nSteps: 4, Sampler: euler, Guidance: "apg:scale=8,eta=0,momentum=-0.5", Seed: 6, Size: 28x28, Model: ${tinyDit}, Precision: fp32, Model file: tiny-dit.onnx, Attention: dense, NFE: 8, Version: guidekit 0.0.0`,
    )
  })

  it('accepts class names loosely and indices', async () => {
    const r = await run(['generate', '--model', tinyDit, '--class', 'ankle-boot, t_shirt/top,4', '--count', '3', '--steps', '1', '--out', `${fresh()}/`, '--json', '--quiet'])
    expect(r.code).toBe(0)
    expect(summaryOf(r).labels).toEqual(['Ankle boot', 'T-shirt/top', 'Coat'])
  })

  it('reproduces an image of a batch from the command stored in its PNG', async () => {
    const out = fresh()
    const batch = await run(['generate', '--model', tinyDit, '--class', 'coat', '--count', '3', '--seed', '11', '--steps', '5', '--guidance', 'cfg:scale=4', '--out', join(out, 'b.png'), '--quiet'])
    expect(batch.code).toBe(0)
    const second = join(out, 'b-12.png')
    const stored = JSON.parse((await sharp(second).metadata()).comments!.find((c) => c.keyword === 'guidekit')!.text) as { command: string; seed: number }
    expect(stored.seed).toBe(12)
    expect(stored.command).toContain('--seed 12')
    // Replay the stored command (split the way a shell would; the values here need no quoting).
    const argv = stored.command.split(' ').slice(1)
    const single = await run([...argv, '--out', join(out, 'again.png'), '--quiet'])
    expect(single.code).toBe(0)
    expect(Buffer.compare(await pixels(join(out, 'again.png')), await pixels(second))).toBe(0)
  })

  it('runs a diffusers SD ONNX folder end to end (prompt, negative prompt, size)', async () => {
    const out = fresh()
    const r = await run(['generate', '--model', sdMiniature, '--prompt', 'a photo of a cat', '--negative-prompt', 'blurry', '--size', '64x48', '--steps', '3', '--sampler', 'dpmpp-2m', '--out', join(out, 'sd.png'), '--json', '--quiet'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(summaryOf(r)).toMatchObject({ nfe: 6, modelCalls: 3 })
    const meta = await sharp(join(out, 'sd.png')).metadata()
    expect([meta.width, meta.height, meta.channels]).toEqual([64, 48, 3])
    expect(meta.comments?.[0]?.text).toMatch(/^a photo of a cat\nNegative prompt: blurry\nSteps: 3, Sampler: dpmpp-2m/)
  })

  it('feeds draft attention to a DiT and matches dense attention when every block is kept', async () => {
    const out = fresh()
    const common = ['generate', '--model', attnDit, '--class', '3', '--steps', '4', '--seed', '2', '--quiet']
    const dense = await run([...common, '--out', join(out, 'dense.png')])
    const all = await run([...common, '--attention', 'draft:keep=1,dense-steps=0', '--out', join(out, 'all.png')])
    const sparse = await run([...common, '--attention', 'draft:keep=0.25,dense-steps=0.5', '--out', join(out, 'sparse.png'), '--json'])
    expect([dense.code, all.code, sparse.code]).toEqual([0, 0, 0])
    expect(summaryOf(sparse).attention).toEqual({ spec: 'draft:keep=0.25,dense-steps=0.5', sites: { 'tiny-attn-dit': 2 }, denseRuns: 2, sparseRuns: 2 })
    expect(Buffer.compare(await pixels(join(out, 'all.png')), await pixels(join(out, 'dense.png')))).toBe(0)
    expect(Buffer.compare(await pixels(join(out, 'sparse.png')), await pixels(join(out, 'dense.png')))).not.toBe(0)
  })

  it('rewrites both models of rlg for draft attention', async () => {
    const r = await run(['generate', '--model', attnDit, '--rl-model', attnDit, '--guidance', 'rlg:scale=1.5,inner=cfg:scale=3', '--attention', 'draft:keep=0.5,dense-steps=0.5', '--steps', '4', '--out', join(fresh(), 'r.png'), '--json', '--quiet'])
    expect(r.code).toBe(0)
    // two models x 4 steps, the first 2 steps dense
    expect(summaryOf(r)).toMatchObject({ nfe: 16, modelCalls: 8, attention: { denseRuns: 4, sparseRuns: 4 } })
  })

  it('counts one model run per branch with --unbatched, with the same images', async () => {
    const out = fresh()
    const a = await run(['generate', '--model', tinyDit, '--steps', '3', '--count', '2', '--out', join(out, 'a.png'), '--json', '--quiet'])
    const b = await run(['generate', '--model', tinyDit, '--steps', '3', '--count', '2', '--out', join(out, 'b.png'), '--json', '--quiet', '--unbatched'])
    expect(summaryOf(a)).toMatchObject({ modelCalls: 3, nfe: 6, batched: true })
    expect(summaryOf(b)).toMatchObject({ modelCalls: 6, nfe: 6, batched: false })
    expect(Buffer.compare(await pixels(join(out, 'a-0.png')), await pixels(join(out, 'b-0.png')))).toBe(0)
  })

  it('draws a progress bar on a TTY', async () => {
    const out = fresh()
    const r = await run(['generate', '--model', tinyDit, '--steps', '3', '--out', join(out, 'p.png')], { tty: true })
    expect(r.code).toBe(0)
    expect(r.stderr).toContain(`\r\u001b[2K[`)
    expect(r.stderr).toMatch(/\[#+\] 3\/3 /)
  })

  it('stops on abort with exit 130 and leaves no file behind', async () => {
    const out = fresh()
    const controller = new AbortController()
    const err = stream(true)
    // Abort from the progress bar's first redraw: mid-run, after the first step.
    const stderr = { ...err.stream, write: (c: string) => (c.includes('1/30') && controller.abort(), err.chunks.push(c)) }
    const code = await main(['generate', '--model', tinyDit, '--count', '2', '--out', join(out, 'x.png')], { stdout: stream().stream, stderr, signal: controller.signal })
    expect(code).toBe(130)
    expect(err.chunks.join('')).toMatch(/guidekit: Interrupted; no partial files were written\.\n$/)
    expect(readdirSync(out)).toEqual([])
  })
})

describe('guidekit grid', () => {
  it('writes a labelled contact sheet: one row per strategy, one column per seed, RLG with the sibling RL model', async () => {
    const out = fresh()
    const file = join(out, 'grid.png')
    const r = await run(['grid', '--model', tinyDit, '--guidance', 'cfg:scale=3; apg:scale=5', '--guidance', 'rlg:scale=1.5,inner=cfg:scale=3', '--columns', '3', '--steps', '3', '--out', file, '--json', '--quiet'])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const summary = summaryOf(r)
    expect(summary.rlModel).toBe('tiny-dit-rl')
    expect(summary.rows.map((row) => [row.guidance, row.nfe, row.modelCalls])).toEqual([
      ['cfg:scale=3', 6, 3],
      ['apg:scale=5', 6, 3],
      ['rlg:scale=1.5,inner=cfg:scale=3', 12, 6],
    ])
    const meta = await sharp(file).metadata()
    // 28 px images upscaled x4 to 112 px cells; 3 columns, 3 rows plus the header
    expect(meta.width).toBeGreaterThan(3 * 112)
    expect(meta.height).toBeGreaterThan(3 * 112)
    expect(meta.comments?.find((c) => c.keyword === 'parameters')?.text).toMatch(/^grid: cfg:scale=3; apg:scale=5; rlg/)
    // The labels are drawn: the label column is not blank.
    const { data, info } = await sharp(file).raw().toBuffer({ resolveWithObject: true })
    let dark = 0
    for (let y = 60; y < info.height; y++) for (let x = 0; x < 100; x++) if ((data[(y * info.width + x) * info.channels] as number) < 128) dark++
    expect(dark).toBeGreaterThan(50)
  })

  it('leaves the default rlg row out when no RL model exists', async () => {
    const out = fresh()
    const lone = join(out, 'model')
    mkdirSync(lone)
    copyFileSync(tinyDit, join(lone, 'tiny-dit.onnx'))
    copyFileSync(tinyDit.replace('.onnx', '.card.json'), join(lone, 'tiny-dit.card.json'))
    const r = await run(['grid', '--model', join(lone, 'tiny-dit.onnx'), '--steps', '2', '--columns', '2', '--out', join(out, 'g.png'), '--json'])
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/^note: leaving out the rlg row \(no RL model for .*tiny-dit\.onnx; pass --rl-model to include it\)\n/)
    expect(summaryOf(r).rows.map((row) => row.guidance.split(/[:(]/)[0])).toEqual(['none', 'cfg', 'cfg++', 'apg', 'adaptive'])
  })
})

// The trained models ship in @guidekit/models-fashion; these run once they are built.
describe('the shipped fashion models', () => {
  it.skipIf(!built('fashion-dit'))('the DiT is the default model and runs draft attention on its 7x7 token grid', async () => {
    const out = fresh()
    const base = await run(['generate', '--class', 'sneaker', '--steps', '3', '--out', join(out, 'a.png'), '--json', '--quiet'])
    expect(base.code).toBe(0)
    // The default precision is the fastest that passed its quality gate: fashion-dit or its int8 variant.
    const ran = summaryOf(base).precision?.precision === 'int8' ? 'fashion-dit-int8' : 'fashion-dit'
    expect(summaryOf(base)).toMatchObject({ model: ran, nfe: 6 })
    const draft = await run(['generate', '--class', 'sneaker', '--steps', '4', '--attention', 'draft:keep=0.25,dense-steps=0.25', '--out', join(out, 'b.png'), '--json', '--quiet'])
    expect(draft.code).toBe(0)
    expect(summaryOf(draft).attention).toMatchObject({ sites: { [ran]: 6 }, denseRuns: 1, sparseRuns: 3 })
  })

  it.skipIf(!built('fashion-dit') || !built('fashion-dit-rl'))('rlg uses the shipped RL model by default', async () => {
    const rl = await run(['generate', '--class', 'sneaker', '--steps', '3', '--guidance', 'rlg:scale=1.5,inner=cfg:scale=3', '--out', join(fresh(), 'c.png'), '--json', '--quiet'])
    expect(rl.code).toBe(0)
    expect(summaryOf(rl)).toMatchObject({ rlModel: 'fashion-dit-rl', nfe: 12, modelCalls: 6 })
  })

  it.skipIf(!built('fashion-unet'))('the UNet (VP, epsilon) samples with DDIM, in each precision it ships', async () => {
    const r = await run(['generate', '--model', 'fashion-unet', '--class', 'bag', '--steps', '4', '--sampler', 'ddim', '--out', join(fresh(), 'u.png'), '--json', '--quiet'])
    expect(r.code).toBe(0)
    const s = summaryOf(r)
    expect(s).toMatchObject({ nfe: 8 })
    expect(s.model).toBe(s.precision?.precision === 'int8' ? 'fashion-unet-int8' : 'fashion-unet')
    for (const precision of ['fp32', 'int8'] as const) {
      const p = await run(['generate', '--model', 'fashion-unet', '--precision', precision, '--class', 'bag', '--steps', '4', '--sampler', 'ddim', '--out', join(fresh(), `u-${precision}.png`), '--json', '--quiet'])
      expect(p.code).toBe(0)
      expect(summaryOf(p)).toMatchObject({ model: precision === 'int8' ? 'fashion-unet-int8' : 'fashion-unet', precision: { precision } })
    }
  })
})

describe('guidekit fit-linear-ag', () => {
  it('fits LinearAG coefficients that linear-ag then uses with fewer evaluations than CFG', async () => {
    const out = fresh()
    const file = join(out, 'lag.json')
    const fit = await run(['fit-linear-ag', '--model', tinyDit, '--steps', '6', '--count', '4', '--batch-size', '2', '--scale', '3', '--out', file, '--json', '--quiet'])
    expect(fit.code).toBe(0)
    expect(summaryOf(fit)).toMatchObject({ steps: 6, sampler: 'euler', trajectories: 4, predictedSteps: 3 })
    const lag = await run(['generate', '--model', tinyDit, '--steps', '6', '--guidance', `linear-ag:coefficients=${file}`, '--out', join(out, 'a.png'), '--json', '--quiet'])
    expect(lag.code).toBe(0)
    // CFG would be 12: steps 1, 3 and 5 predict the unconditional branch instead of running it
    expect(summaryOf(lag)).toMatchObject({ nfe: 9, guider: 'linear-ag(scale=3, steps=6)' })
    const wrongSteps = await run(['generate', '--model', tinyDit, '--steps', '8', '--guidance', `linear-ag:coefficients=${file}`, '--out', join(out, 'b.png'), '--quiet'])
    expect(wrongSteps.code).toBe(2)
    expect(wrongSteps.stderr).toMatch(/^guidekit: .*fitted for 6 steps, this run has 8/)
    expect(existsSync(join(out, 'b.png'))).toBe(false)
  })
})

/** A copy of a tiny model whose card is changed by `edit`; returns the card path. */
function withCard(onnx: string, edit: (card: Record<string, unknown>) => void): string {
  const folder = fresh()
  const name = onnx.slice(onnx.lastIndexOf('/') + 1, -'.onnx'.length)
  copyFileSync(onnx, join(folder, `${name}.onnx`))
  const card = JSON.parse(readFileSync(onnx.replace('.onnx', '.card.json'), 'utf8')) as Record<string, unknown>
  edit(card)
  writeFileSync(join(folder, `${name}.card.json`), JSON.stringify(card))
  return join(folder, `${name}.card.json`)
}

describe('what the model recommends', () => {
  it("uses the card's defaults for every setting not given, and records them", async () => {
    const card = withCard(tinyDit, (c) => void (c.defaults = { steps: 3, guidance: 'apg:scale=4,eta=0', sampler: 'euler-a' }))
    const out = fresh()
    const r = await run(['generate', '--model', card, '--out', out, '--json', '--quiet'])
    expect(r.code).toBe(0)
    expect(summaryOf(r)).toMatchObject({ steps: 3, guidance: 'apg:scale=4,eta=0', sampler: 'euler-a', fromModel: ['steps', 'sampler', 'guidance'] })
    const file = summaryOf(r).files[0] as string
    expect((await recorded(file)).command).toContain(' --guidance apg:scale=4,eta=0 --sampler euler-a --steps 3 ')
    // what the user gives wins
    const own = await run(['generate', '--model', card, '--steps', '2', '--sampler', 'euler', '--out', out, '--json', '--quiet'])
    expect(summaryOf(own)).toMatchObject({ steps: 2, sampler: 'euler', fromModel: ['guidance'] })
  })

  it('takes spacing and Karras sigmas from a VP card or the flags, into the plan and the metadata', async () => {
    const card = withCard(tinyUnet, (c) => void (c.defaults = { steps: 4, sampler: 'ddim', spacing: 'trailing' }))
    const out = fresh()
    const byCard = await run(['generate', '--model', card, '--out', join(out, 'a.png'), '--json', '--quiet'])
    const leading = await run(['generate', '--model', card, '--spacing', 'leading', '--out', join(out, 'b.png'), '--json', '--quiet'])
    const karras = await run(['generate', '--model', card, '--sampler', 'euler', '--karras', '--out', join(out, 'c.png'), '--json', '--quiet'])
    expect([byCard.code, leading.code, karras.code]).toEqual([0, 0, 0])
    expect(summaryOf(byCard)).toMatchObject({ spacing: 'trailing', karras: false, fromModel: ['steps', 'sampler', 'spacing'] })
    expect(summaryOf(leading)).toMatchObject({ spacing: 'leading' })
    expect(summaryOf(karras)).toMatchObject({ karras: true })
    expect((await pngTexts(join(out, 'a.png'))).parameters).toMatch(/Steps: 4, Sampler: ddim, Spacing: trailing, Karras: no, /)
    expect((await pngTexts(join(out, 'c.png'))).parameters).toMatch(/Karras: yes/)
    expect((await recorded(join(out, 'c.png'))).command).toMatch(/ --spacing trailing --karras /)
    expect(Buffer.compare(await pixels(join(out, 'a.png')), await pixels(join(out, 'b.png')))).not.toBe(0)
  })

  it('diffusers folders without a card: the scheduler config and diffusers pipeline defaults (50 steps, CFG 7.5)', async () => {
    const r = await run(['generate', '--model', sdMiniature, '--prompt', 'a cat', '--size', '32x32', '--out', fresh(), '--json', '--quiet'])
    expect(r.code).toBe(0)
    expect(summaryOf(r)).toMatchObject({ steps: 50, guidance: 'cfg:scale=7.5', sampler: 'euler', spacing: 'leading', fromModel: ['steps', 'spacing', 'guidance'] })
  })
})

describe('cards without class names', () => {
  it('take class indices, default to every class the embedding holds, and name the valid range', async () => {
    const card = withCard(tinyDit, (c) => void delete c.classes)
    const out = fresh()
    const all = await run(['generate', '--model', card, '--count', '11', '--steps', '1', '--out', out, '--json', '--quiet'])
    expect(all.stderr).toBe('')
    expect(all.code).toBe(0)
    expect(summaryOf(all).labels).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '0'])
    const one = await run(['generate', '--model', card, '--class', '3', '--steps', '1', '--out', out, '--json', '--quiet'])
    expect(summaryOf(one).labels).toEqual(['3'])
    expect((await recorded(summaryOf(one).files[0] as string)).command).toContain(' --class 3 ')
  })
})

describe('outputs', () => {
  it("records each image's own NFE for adaptive guidance", async () => {
    const r = await run(['generate', '--model', tinyDit, '--class', 'bag,coat,sandal,trouser', '--count', '4', '--steps', '12', '--guidance', 'adaptive(threshold=0.9,space=x0):cfg(scale=3)', '--out', fresh(), '--json', '--quiet'])
    expect(r.code).toBe(0)
    const summary = summaryOf(r)
    expect(summary.imageNfe).toHaveLength(4)
    expect(summary.imageNfe.reduce((a, v) => a + v, 0) / 4).toBeCloseTo(summary.nfe, 12)
    for (const [i, file] of summary.files.entries()) {
      expect((await recorded(file)).nfe).toBe(summary.imageNfe[i])
      expect((await pngTexts(file)).parameters).toContain(`, NFE: ${summary.imageNfe[i]}, `)
    }
  })

  it('names files apart when the sampler, steps or attention differ, so comparisons keep every result', async () => {
    const out = fresh()
    const common = ['generate', '--model', attnDit, '--class', '1', '--out', out, '--json', '--quiet']
    const runs = [await run([...common, '--steps', '2']), await run([...common, '--steps', '3']), await run([...common, '--steps', '2', '--sampler', 'euler-a']), await run([...common, '--steps', '2', '--attention', 'draft:keep=0.5'])]
    expect(runs.map((r) => r.code)).toEqual([0, 0, 0, 0])
    expect(new Set(runs.map((r) => summaryOf(r).files[0])).size).toBe(4)
    expect(readdirSync(out)).toHaveLength(4)
  })

  it('--overwrite replaces an existing file', async () => {
    const file = join(fresh(), 'x.png')
    writeFileSync(file, 'old')
    const r = await run(['generate', '--model', tinyDit, '--steps', '2', '--out', file, '--overwrite', '--quiet'])
    expect(r.code).toBe(0)
    expect((await pngTexts(file)).parameters).toMatch(/^T-shirt\/top\n/)
  })
})
