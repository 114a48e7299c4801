import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
import { Tensor, ddim, sample } from '@guidekit/core'
import type { Guider } from '@guidekit/core'
import { loadDiffusersPipeline, toRawImages } from '@guidekit/onnx'

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
const INT32 = 6
const INT64 = 7

type IoDims = [string, number, (string | number)[]]
/** Per ONNX file: opset, and inputs/outputs as [name, element type, dims (dim_param or dim_value)], checker included. */
function onnxIo(paths: string[]): { opset: number; inputs: IoDims[]; outputs: IoDims[] }[] {
  const code = [
    'import json, sys, onnx',
    'def io(vs): return [[v.name, v.type.tensor_type.elem_type, [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]] for v in vs]',
    'out = []',
    'for p in sys.argv[1:]:',
    '    m = onnx.load(p); onnx.checker.check_model(m)',
    '    out.append({"opset": m.opset_import[0].version, "inputs": io(m.graph.input), "outputs": io(m.graph.output)})',
    'print(json.dumps(out))',
  ].join('\n')
  return JSON.parse(execFileSync(python, ['-c', code, ...paths], { encoding: 'utf8' })) as ReturnType<typeof onnxIo>
}

// One train_sd.py smoke run shared by the layout test and the loader test (whichever runs first makes it).
let sdRun: ReturnType<typeof runSmoke> | undefined
const sdSmoke = (): ReturnType<typeof runSmoke> => (sdRun ??= runSmoke('train_sd.py', 'fashion-sd'))

function readJson(path: string): Record<string, unknown> {
  return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>
}

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

  it('train_sd.py exports fashion-sd in the Stable Diffusion 1.5 ONNX layout', { timeout: 180_000 }, () => {
    const { out, card, stdout } = sdSmoke()
    const dir = join(out, 'fashion-sd')
    expect(stdout).toMatch(/^FINAL fashion-sd: /m)
    expect(card).toMatchObject({ name: 'fashion-sd', cardVersion: 2, kind: 'text-to-image', folder: 'fashion-sd', parameterization: 'epsilon' })
    expect(card.defaults).toMatchObject({ steps: 2, sampler: 'ddim', spacing: 'leading', guidance: expect.stringMatching(/^cfg:scale=/) as unknown })
    expect(card.classes).toHaveLength(10)
    expect(card.image).toEqual({ channels: 1, height: 28, width: 28, range: [-1, 1] })
    expect(card.training.seed).toBe(0)
    expect(card.training.command).toBe('/usr/bin/python3 tooling/train/train_sd.py')

    // diffusers files
    const index = readJson(join(dir, 'model_index.json'))
    expect(index._class_name).toBe('OnnxStableDiffusionPipeline')
    for (const c of ['text_encoder', 'unet', 'vae_decoder', 'vae_encoder']) expect(index[c]).toEqual(['diffusers', 'OnnxRuntimeModel'])
    expect(index.tokenizer).toEqual(['transformers', 'CLIPTokenizer'])
    expect(readJson(join(dir, 'scheduler', 'scheduler_config.json'))).toMatchObject({
      beta_schedule: 'scaled_linear', beta_start: 0.00085, beta_end: 0.012, num_train_timesteps: 1000,
      prediction_type: 'epsilon', steps_offset: 1, set_alpha_to_one: false,
    })
    const arch = card.architecture as { textEncoder: { width: number }; vae: { scalingFactor: number } }
    for (const part of ['vae_encoder', 'vae_decoder']) {
      const vae = readJson(join(dir, part, 'config.json'))
      expect(vae).toMatchObject({ _class_name: 'AutoencoderKL', in_channels: 1, out_channels: 1, latent_channels: 4, sample_size: 28 })
      // the latent is 7x7: 28 / 2^(len(block_out_channels) - 1), diffusers' vae_scale_factor
      expect(28 / 2 ** ((vae.block_out_channels as number[]).length - 1)).toBe(7)
      expect(vae.scaling_factor).toBe(arch.vae.scalingFactor)
      expect(vae.scaling_factor).toBeGreaterThan(0)
    }

    // CLIP slow tokenizer: vocab + merges with the version header, SD1.5's special tokens
    const tok = join(dir, 'tokenizer')
    expect(readFileSync(join(tok, 'merges.txt'), 'utf8').split('\n')[0]).toBe('#version: 0.2')
    const vocab = readJson(join(tok, 'vocab.json')) as Record<string, number>
    const maxId = Math.max(...Object.values(vocab))
    expect(vocab['<|endoftext|>']).toBe(maxId) // the pooler's argmax finds the first EOS
    expect(vocab['<|startoftext|>']).toBe(maxId - 1)
    expect(readJson(join(tok, 'tokenizer_config.json'))).toMatchObject({ model_max_length: 77, pad_token: '<|endoftext|>', do_lower_case: true })
    expect(readJson(join(tok, 'special_tokens_map.json'))).toMatchObject({ pad_token: '<|endoftext|>' })

    // ONNX interfaces of diffusers' convert_stable_diffusion_checkpoint_to_onnx.py
    const width = arch.textEncoder.width
    const [text, unet, encoder, decoder] = onnxIo(['text_encoder', 'unet', 'vae_encoder', 'vae_decoder'].map((c) => join(dir, c, 'model.onnx')))
    for (const m of [text, unet, encoder, decoder]) expect(m?.opset).toBe(14)
    expect(text?.inputs).toEqual([['input_ids', INT32, ['batch', 'sequence']]])
    expect(text?.outputs.map(([n, t, d]) => [n, t, d.length, d.at(-1)])).toEqual([
      ['last_hidden_state', FLOAT, 3, width],
      ['pooler_output', FLOAT, 2, width],
    ])
    // batch dynamic; latent 4x7x7 and image 1x28x28 are the model's own sizes
    const batchFree = ([n, t, d]: IoDims) => [n, t, d.slice(1)]
    expect(unet?.inputs).toEqual([
      ['sample', FLOAT, ['batch', 4, 7, 7]],
      ['timestep', FLOAT, ['batch']],
      ['encoder_hidden_states', FLOAT, ['batch', 77, width]],
    ])
    expect(unet?.outputs.map(batchFree)).toEqual([['out_sample', FLOAT, [4, 7, 7]]])
    expect(encoder?.inputs).toEqual([['sample', FLOAT, ['batch', 1, 28, 28]]])
    expect(encoder?.outputs.map(batchFree)).toEqual([['latent_sample', FLOAT, [4, 7, 7]]])
    expect(decoder?.inputs).toEqual([['latent_sample', FLOAT, ['batch', 4, 7, 7]]])
    expect(decoder?.outputs.map(batchFree)).toEqual([['sample', FLOAT, [1, 28, 28]]])

    // size budget of the shipped folder, card metrics and grid
    const files = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => statSync(join(dir, f)).isFile())
    expect(files.reduce((a, f) => a + statSync(join(dir, f)).size, 0)).toBeLessThan(25e6)
    const metrics = card.metrics as {
      byScale: { cfgScale: number; accuracy: number; accuracy95: number[]; frechetDistance: number }[]
      negativePrompt: { negativePrompt: string; difference95: number[] }
      paraphrase: { accuracy: number }
      vaeReconstruction: { accuracy: number; originalAccuracy: number }
    }
    expect(metrics.byScale.map((r) => r.cfgScale)).toEqual([1.5, 3, 5, 7.5])
    for (const r of metrics.byScale) {
      expect(r.accuracy95[0]).toBeLessThanOrEqual(r.accuracy)
      expect(r.accuracy95[1]).toBeGreaterThanOrEqual(r.accuracy)
      expect(Number.isFinite(r.frechetDistance)).toBe(true)
    }
    expect(metrics.negativePrompt.negativePrompt).toBe('dark')
    expect(metrics.negativePrompt.difference95).toHaveLength(2)
    expect(Number.isFinite(metrics.paraphrase.accuracy)).toBe(true)
    expect(Number.isFinite(metrics.vaeReconstruction.accuracy)).toBe(true)
    const captions = card.captions as { trainTemplates: string[]; heldOutTemplates: string[]; trainSynonyms: string[][]; heldOutSynonyms: string[][] }
    expect(captions.heldOutTemplates.filter((t) => captions.trainTemplates.includes(t))).toEqual([])
    expect(captions.heldOutSynonyms.flat().filter((s) => captions.trainSynonyms.flat().includes(s))).toEqual([])
    expect(readFileSync(join(out, 'fashion-sd.grid.png')).subarray(1, 4).toString('latin1')).toBe('PNG')
  })

  // The same export through guidekit's loader, with no special case: what it reads from the VAE config and
  // the graphs, the tokenizer against the Python BPE that trained the model, and a short CFG run.
  it("fashion-sd's export loads, samples, decodes and encodes through loadDiffusersPipeline", { timeout: 240_000 }, async () => {
    const { out, card } = sdSmoke()
    const dir = join(out, 'fashion-sd')
    const sd = await loadDiffusersPipeline(dir, { sessionOptions: { threads: 1 } })
    try {
      const vae = readJson(join(dir, 'vae_decoder', 'config.json'))
      expect(sd.vae.path).toBe(join(dir, 'vae_decoder', 'config.json'))
      expect(sd.scalingFactor).toBe(vae.scaling_factor)
      expect(sd.scalingFactor).toBe((card.architecture as { vae: { scalingFactor: number } }).vae.scalingFactor)
      expect(sd).toMatchObject({ vaeScaleFactor: 4, latentChannels: 4, imageChannels: 1, imageSize: { height: 28, width: 28 }, hasEncoder: true, parameterization: 'epsilon' })
      expect(sd.latentShape({ batch: 2 })).toEqual([2, 4, 7, 7])
      expect(() => sd.latentShape({ batch: 1, height: 32, width: 32 })).toThrow(/must be 28 pixels/)

      // SD1.5's tokenizer conventions, and the ids the text encoder was trained on
      const { tokenizer } = sd
      expect(tokenizer.maxLength).toBe(77)
      expect(tokenizer.padTokenId).toBe(tokenizer.eosTokenId)
      const prompts = ['a photo of a sneaker', 'dark trousers', '', 'A Shiny, NEW handbag!', "someone's ankle boots 42"]
      const code = [
        'import json, sys',
        `sys.path.insert(0, ${JSON.stringify(trainDir)})`,
        'from clip_bpe import ClipBpe',
        'd = sys.argv[1]',
        'vocab = json.load(open(d + "/vocab.json"))',
        'merges = [tuple(l.split()) for l in open(d + "/merges.txt", encoding="utf-8").read().splitlines()[1:] if l.strip()]',
        'bpe = ClipBpe(vocab, merges)',
        'print(json.dumps([bpe.encode(p) for p in json.loads(sys.argv[2])]))',
      ].join('\n')
      const pythonIds = JSON.parse(execFileSync(python, ['-c', code, join(dir, 'tokenizer'), JSON.stringify(prompts)], { encoding: 'utf8' })) as number[][]
      expect(prompts.map((p) => tokenizer.encode(p).ids)).toEqual(pythonIds)

      const width = (card.architecture as { textEncoder: { width: number } }).textEncoder.width
      expect((await sd.encodePrompts(['a photo of a sneaker', ''])).shape).toEqual([2, 77, width])
      const denoiser = await sd.denoiser({ prompt: ['a photo of a sneaker', 'a photo of a bag'], negativePrompt: 'dark' })
      const cfg: Guider = {
        specificationVersion: 'v1',
        name: 'cfg(3)',
        start: () => ({
          async step(ctx) {
            const [c, u] = await ctx.predict([{ role: 'positive' }, { role: 'negative' }])
            const d = new Tensor(u!.denoised.data.map((v, i) => v + 3 * ((c!.denoised.data[i] as number) - v)), u!.denoised.shape)
            return { denoised: d, renoise: d }
          },
        }),
      }
      const result = await sample({ denoiser, guider: cfg, sampler: ddim(), plan: sd.plan({ steps: 3 }), shape: sd.latentShape({ batch: 2 }), seed: 1 })
      expect(denoiser.modelCalls).toBe(3)
      const images = await sd.decode(result.samples)
      expect(images.shape).toEqual([2, 1, 28, 28])
      expect(images.data.every((v) => v >= 0 && v <= 1)).toBe(true)
      expect(toRawImages(images, { range: [0, 1] }).map((i) => [i.channels, i.width, i.height])).toEqual([
        [1, 28, 28],
        [1, 28, 28],
      ])
      const latents = await sd.encode(images)
      expect(latents.shape).toEqual([2, 4, 7, 7])
      expect(latents.data.every(Number.isFinite)).toBe(true)
    } finally {
      await sd.dispose()
    }
  })
})
