import { spawn, spawnSync } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import sharp from 'sharp'
import { afterAll, describe, expect, it } from 'vitest'
import { main } from './main.js'

const fixtures = fileURLToPath(new URL('../../../packages/onnx/src/__fixtures__/', import.meta.url))
const tinyDit = join(fixtures, 'class-conditional', 'tiny-dit.onnx')
const tinyUnet = join(fixtures, 'class-conditional', 'tiny-unet.onnx')
const sdMiniature = join(fixtures, 'sd-miniature')
const attnDit = fileURLToPath(new URL('./__fixtures__/tiny-attn-dit.onnx', import.meta.url))
const root = fileURLToPath(new URL('../../../', import.meta.url))

const dir = mkdtempSync(join(tmpdir(), 'guidekit-cli-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))
let n = 0
const fresh = (): string => {
  const d = join(dir, `run-${n++}`)
  mkdirSync(d)
  return d
}

interface Captured {
  code: number
  stdout: string
  stderr: string
}

function stream(tty = false) {
  const chunks: string[] = []
  return { chunks, stream: { write: (c: string) => chunks.push(c), isTTY: tty, columns: 100 } }
}

async function run(argv: string[], options: { signal?: AbortSignal; tty?: boolean } = {}): Promise<Captured> {
  const out = stream()
  const err = stream(options.tty)
  const code = await main(argv, { stdout: out.stream, stderr: err.stream, ...(options.signal ? { signal: options.signal } : {}) })
  return { code, stdout: out.chunks.join(''), stderr: err.chunks.join('') }
}

const pixels = async (file: string) => (await sharp(file).raw().toBuffer({ resolveWithObject: true })).data

describe('guidekit generate', () => {
  it('writes PNGs with the parameters embedded and a --json summary', async () => {
    const out = fresh()
    const r = await run(['generate', '--model', tinyDit, '--class', 'sneaker,bag', '--count', '3', '--seed', '5', '--steps', '4', '--guidance', 'apg:scale=8,eta=0,momentum=-0.5', '--out', `${out}/`, '--json', '--threads', '1'])
    expect(r.stderr).not.toMatch(/error/i)
    expect(r.code).toBe(0)
    const summary = JSON.parse(r.stdout)
    expect(summary).toMatchObject({ command: 'generate', model: 'tiny-dit', seeds: [5, 6, 7], labels: ['Sneaker', 'Bag', 'Sneaker'], nfe: 8, modelCalls: 4, branchEvaluations: 8, batched: true })
    expect(summary.seconds).toBeGreaterThan(0)
    expect(summary.files).toHaveLength(3)
    for (const f of summary.files) expect(existsSync(f)).toBe(true)
    expect(readdirSync(out).filter((f) => f.startsWith('.'))).toEqual([])
    const meta = await sharp(summary.files[1]).metadata()
    expect([meta.width, meta.height, meta.format]).toEqual([28, 28, 'png'])
    const parameters = meta.comments?.find((c) => c.keyword === 'parameters')?.text
    expect(parameters).toBe(
      `Bag\nSteps: 4, Sampler: euler, Guidance: "apg:scale=8,eta=0,momentum=-0.5", Seed: 6, Size: 28x28, Model: ${tinyDit}, Attention: dense, NFE: 8, Version: guidekit 0.0.0`,
    )
  })

  it('accepts class names loosely and indices', async () => {
    const r = await run(['generate', '--model', tinyDit, '--class', 'ankle-boot, t_shirt/top,4', '--count', '3', '--steps', '1', '--out', `${fresh()}/`, '--json', '--quiet'])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout).labels).toEqual(['Ankle boot', 'T-shirt/top', 'Coat'])
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
    expect(JSON.parse(r.stdout)).toMatchObject({ nfe: 6, modelCalls: 3 })
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
    expect(JSON.parse(sparse.stdout).attention).toEqual({ spec: 'draft:keep=0.25,dense-steps=0.5', sites: { 'tiny-attn-dit': 2 }, denseRuns: 2, sparseRuns: 2 })
    expect(Buffer.compare(await pixels(join(out, 'all.png')), await pixels(join(out, 'dense.png')))).toBe(0)
    expect(Buffer.compare(await pixels(join(out, 'sparse.png')), await pixels(join(out, 'dense.png')))).not.toBe(0)
  })

  it('rewrites both models of rlg for draft attention', async () => {
    const r = await run(['generate', '--model', attnDit, '--rl-model', attnDit, '--guidance', 'rlg:scale=1.5,inner=cfg:scale=3', '--attention', 'draft:keep=0.5,dense-steps=0.5', '--steps', '4', '--out', join(fresh(), 'r.png'), '--json', '--quiet'])
    expect(r.code).toBe(0)
    // two models x 4 steps, the first 2 steps dense
    expect(JSON.parse(r.stdout)).toMatchObject({ nfe: 16, modelCalls: 8, attention: { denseRuns: 4, sparseRuns: 4 } })
  })

  it('counts one model run per branch with --unbatched, with the same images', async () => {
    const out = fresh()
    const a = await run(['generate', '--model', tinyDit, '--steps', '3', '--count', '2', '--out', join(out, 'a.png'), '--json', '--quiet'])
    const b = await run(['generate', '--model', tinyDit, '--steps', '3', '--count', '2', '--out', join(out, 'b.png'), '--json', '--quiet', '--unbatched'])
    expect(JSON.parse(a.stdout)).toMatchObject({ modelCalls: 3, nfe: 6, batched: true })
    expect(JSON.parse(b.stdout)).toMatchObject({ modelCalls: 6, nfe: 6, batched: false })
    expect(Buffer.compare(await pixels(join(out, 'a-0.png')), await pixels(join(out, 'b-0.png')))).toBe(0)
  })

  it('draws a progress bar on a TTY', async () => {
    const out = fresh()
    const r = await run(['generate', '--model', tinyDit, '--steps', '3', '--out', join(out, 'p.png')], { tty: true })
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/\r\x1b\[2K\[#+\] 3\/3 /)
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
    const summary = JSON.parse(r.stdout)
    expect(summary.rlModel).toBe('tiny-dit-rl')
    expect(summary.rows.map((row: { guidance: string; nfe: number; modelCalls: number }) => [row.guidance, row.nfe, row.modelCalls])).toEqual([
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
    const r = await run(['grid', '--model', join(lone, 'tiny-dit.onnx'), '--steps', '2', '--columns', '2', '--out', join(out, 'g.png'), '--json', '--quiet'])
    expect(r.code).toBe(0)
    expect(r.stderr).toMatch(/^note: leaving out the rlg row/)
    expect(JSON.parse(r.stdout).rows.map((row: { guidance: string }) => row.guidance.split(/[:(]/)[0])).toEqual(['none', 'cfg', 'cfg++', 'apg', 'adaptive'])
  })
})

// The trained models ship in @guidekit/models-fashion; these run once they are built.
const shipped = fileURLToPath(new URL('../../../packages/models-fashion/models/', import.meta.url))
const built = (name: string): boolean => existsSync(join(shipped, `${name}.onnx`)) && existsSync(join(shipped, `${name}.card.json`))

describe('the shipped fashion models', () => {
  it.skipIf(!built('fashion-dit'))('the DiT is the default model and runs draft attention on its 7x7 token grid', async () => {
    const out = fresh()
    const base = await run(['generate', '--class', 'sneaker', '--steps', '3', '--out', join(out, 'a.png'), '--json', '--quiet'])
    expect(base.code).toBe(0)
    expect(JSON.parse(base.stdout)).toMatchObject({ model: 'fashion-dit', nfe: 6 })
    const draft = await run(['generate', '--class', 'sneaker', '--steps', '4', '--attention', 'draft:keep=0.25,dense-steps=0.25', '--out', join(out, 'b.png'), '--json', '--quiet'])
    expect(draft.code).toBe(0)
    expect(JSON.parse(draft.stdout).attention).toMatchObject({ sites: { 'fashion-dit': 6 }, denseRuns: 1, sparseRuns: 3 })
  })

  it.skipIf(!built('fashion-dit') || !built('fashion-dit-rl'))('rlg uses the shipped RL model by default', async () => {
    const rl = await run(['generate', '--class', 'sneaker', '--steps', '3', '--guidance', 'rlg:scale=1.5,inner=cfg:scale=3', '--out', join(fresh(), 'c.png'), '--json', '--quiet'])
    expect(rl.code).toBe(0)
    expect(JSON.parse(rl.stdout)).toMatchObject({ rlModel: 'fashion-dit-rl', nfe: 12, modelCalls: 6 })
  })

  it.skipIf(!built('fashion-unet'))('the UNet (VP, epsilon) samples with DDIM', async () => {
    const r = await run(['generate', '--model', 'fashion-unet', '--class', 'bag', '--steps', '4', '--sampler', 'ddim', '--out', join(fresh(), 'u.png'), '--json', '--quiet'])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ model: 'fashion-unet', nfe: 8 })
  })
})

describe('guidekit fit-linear-ag', () => {
  it('fits LinearAG coefficients that linear-ag then uses with fewer evaluations than CFG', async () => {
    const out = fresh()
    const file = join(out, 'lag.json')
    const fit = await run(['fit-linear-ag', '--model', tinyDit, '--steps', '6', '--count', '4', '--batch-size', '2', '--scale', '3', '--out', file, '--json', '--quiet'])
    expect(fit.code).toBe(0)
    expect(JSON.parse(fit.stdout)).toMatchObject({ steps: 6, sampler: 'euler', trajectories: 4, predictedSteps: 3 })
    const lag = await run(['generate', '--model', tinyDit, '--steps', '6', '--guidance', `linear-ag:coefficients=${file}`, '--out', join(out, 'a.png'), '--json', '--quiet'])
    expect(lag.code).toBe(0)
    // CFG would be 12: steps 1, 3 and 5 predict the unconditional branch instead of running it
    expect(JSON.parse(lag.stdout)).toMatchObject({ nfe: 9, guider: 'linear-ag(scale=3, steps=6)' })
    const wrongSteps = await run(['generate', '--model', tinyDit, '--steps', '8', '--guidance', `linear-ag:coefficients=${file}`, '--out', join(out, 'b.png'), '--quiet'])
    expect(wrongSteps.code).toBe(2)
    expect(wrongSteps.stderr).toMatch(/^guidekit: .*fitted for 6 steps, this run has 8/)
    expect(existsSync(join(out, 'b.png'))).toBe(false)
  })
})

describe('bad input: one clear line, exit code 2', () => {
  const corrupt = join(dir, 'corrupt')
  mkdirSync(corrupt)
  writeFileSync(join(corrupt, 'broken.onnx'), 'this is not an onnx file')
  copyFileSync(tinyDit.replace('.onnx', '.card.json'), join(corrupt, 'broken.card.json'))
  const notAFolder = join(dir, 'plain-file')
  writeFileSync(notAFolder, 'x')
  const emptyFolder = join(dir, 'empty-model')
  mkdirSync(emptyFolder)

  it.each([
    ['unknown model folder', ['generate', '--model', emptyFolder], /is a folder without model_index\.json/],
    ['missing model', ['generate', '--model', join(dir, 'nope.onnx')], /Model not found: .*nope\.onnx/],
    ['corrupt ONNX', ['generate', '--model', join(corrupt, 'broken.onnx')], /ONNX Runtime could not load .*broken\.onnx/],
    ['unknown class', ['generate', '--model', tinyDit, '--class', 'hat'], /Unknown class "hat" for model 'tiny-dit'\. Valid classes: 0 "T-shirt\/top"/],
    ['class index out of range', ['generate', '--model', tinyDit, '--class', '12'], /Unknown class "12"/],
    ['steps out of range', ['generate', '--model', tinyDit, '--steps', '0'], /--steps must be an integer from 1 to 1000, got "0"/],
    ['count not a number', ['generate', '--model', tinyDit, '--count', 'many'], /--count must be an integer/],
    ['guidance scale out of range', ['generate', '--model', tinyDit, '--guidance', 'cfg:rescale=3'], /rescale must be/],
    ['malformed guidance', ['generate', '--model', tinyDit, '--guidance', 'apg:scale=8,eta'], /Malformed --guidance "apg:scale=8,eta": expected '=' after "eta"/],
    ['unknown strategy', ['generate', '--guidance', 'pag:scale=3'], /Unknown guidance "pag"/],
    ['unbalanced parentheses', ['grid', '--guidance', 'adaptive(threshold=0.9:apg'], /Malformed --guidance/],
    ['unknown sampler', ['generate', '--model', tinyDit, '--sampler', 'heun'], /Unknown sampler "heun"/],
    ['unwritable output path', ['generate', '--model', tinyDit, '--out', join(notAFolder, 'x.png')], /Cannot write to .*plain-file: a parent is a file/],
    ['grid output not a png', ['grid', '--model', tinyDit, '--out', join(dir, 'grid.jpg')], /--out for grid must be a \.png file/],
    ['unknown option', ['generate', '--colour', 'red'], /Unknown option --colour for guidekit generate/],
    ['unknown command', ['paint'], /Unknown command "paint"/],
    ['negative prompt on a class model', ['generate', '--model', tinyDit, '--negative-prompt', 'blurry'], /--negative-prompt needs a text-to-image model/],
    ['draft attention on a model without a token grid', ['generate', '--model', tinyUnet, '--attention', 'draft:keep=0.25'], /works on DiT models whose card declares architecture\.tokenGrid/],
    ['linear-ag without coefficients', ['generate', '--model', tinyDit, '--guidance', 'linear-ag'], /linear-ag needs coefficients=<file\.json>/],
    ['linear-ag with a missing file', ['generate', '--model', tinyDit, '--guidance', `linear-ag:coefficients=${join(dir, 'none.json')}`], /cannot read coefficients .*none\.json: no such file/],
    ['malformed attention', ['generate', '--model', attnDit, '--attention', 'draft:keep=2'], /keep/],
    ['prompt on a diffusers folder missing', ['generate', '--model', sdMiniature, '--class', '3'], /--class is for class-conditional models/],
  ])('%s', async (_what, argv, message) => {
    const r = await run(argv as string[])
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/^guidekit: [^\n]+\n$/)
    expect(r.stderr).toMatch(message)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('rlg with a model that has no RL sibling says how to pass one', async () => {
    const r = await run(['generate', '--model', tinyUnet, '--guidance', 'rlg:scale=2'])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^guidekit: rlg needs an RL-fine-tuned model: pass --rl-model <path> \(no tiny-unet-rl\.onnx next to tiny-unet\.onnx\)\.\n$/)
  })
})

describe('help and exit codes', () => {
  it('prints help for every command, with the grammar and the exit codes', async () => {
    for (const argv of [['--help'], ['help'], ['generate', '--help'], ['grid', '-h'], ['help', 'grid']]) {
      const r = await run(argv)
      expect(r.code).toBe(0)
      expect(r.stdout).toMatch(/Exit codes:\n {2}0 {4}success/)
    }
    const g = await run(['generate', '--help'])
    expect(g.stdout).toContain('adaptive(threshold=0.99):apg(scale=8,eta=0)')
    expect(g.stdout).toContain('--attention')
    expect((await run([])).code).toBe(2)
  })

  it('exits 130 on SIGINT through the launcher and leaves no file', async () => {
    const out = fresh()
    const child = spawn(process.execPath, [join(root, 'apps/generate/bin/guidekit.mjs'), 'generate', '--model', tinyDit, '--steps', '1000', '--count', '32', '--out', join(out, 'x.png')], { cwd: root })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
      if (stderr.includes('sampling...')) child.kill('SIGINT')
    })
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve))
    expect(code).toBe(130)
    expect(stderr).toMatch(/guidekit: Interrupted; no partial files were written\.\n$/)
    expect(readdirSync(out)).toEqual([])
  })

  it('runs as a separate process through the workspace launcher, with the documented exit code', () => {
    const r = spawnSync(process.execPath, [join(root, 'apps/generate/bin/guidekit.mjs'), 'generate', '--model', join(dir, 'missing-folder')], { encoding: 'utf8', cwd: root })
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/^guidekit: Model not found: [^\n]+\n$/)
  })
})

