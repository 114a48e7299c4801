// Issue 11's "done when": every bad input, across the CLI, model cards and the libraries, gives a stable
// exit code or error code and one line that names the bad value, and writes nothing.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cfg } from '@guidekit/cfg'
import { apg } from '@guidekit/apg'
import { GuidekitError, Tensor, combine, euler, flowPlan, sample, vpSchedule } from '@guidekit/core'
import type { Guider } from '@guidekit/core'
import { parseDraftAttentionSpec } from '@guidekit/draft-attention'
import { buildGuidance, buildSampler } from '@guidekit/grammar'
import { classConditionalDenoiser, classLabel, loadClassConditionalModel, parseGeneratorCard, parseModelCard, planFromCard, toRawImages } from '@guidekit/onnx'
import { afterAll, describe, expect, it } from 'vitest'
import { attnDit, listTree, run, scratch, sdMiniature, tinyDit, tinyDitCard, tinyUnet } from './__fixtures__/harness.js'

const { dir, fresh, remove } = scratch('bad-input')
afterAll(remove)

// Files the cases point at.
const plainFile = join(dir, 'plain-file')
writeFileSync(plainFile, 'x')
const emptyFolder = join(dir, 'empty-model')
mkdirSync(emptyFolder)
const corrupt = join(dir, 'corrupt')
mkdirSync(corrupt)
writeFileSync(join(corrupt, 'broken.onnx'), 'this is not an onnx file')
writeFileSync(join(corrupt, 'broken.card.json'), readFileSync(tinyDitCard, 'utf8').replace('"tiny-dit.onnx"', '"broken.onnx"'))
const notAModel = join(dir, 'model.txt')
writeFileSync(notAModel, 'x')
const lone = join(dir, 'lone')
mkdirSync(lone)
copyFileSync(tinyUnet, join(lone, 'tiny-unet.onnx'))
copyFileSync(tinyUnet.replace('.onnx', '.card.json'), join(lone, 'tiny-unet.card.json'))
const existing = join(dir, 'existing.png')
writeFileSync(existing, 'an earlier result')

const baseCard = JSON.parse(readFileSync(tinyDitCard, 'utf8')) as Record<string, unknown>
let cards = 0
/** A copy of tiny-dit with its card changed by `edit`: the path of the card. */
function cardWith(edit: (card: Record<string, unknown>) => unknown): string {
  const folder = join(dir, `card-${cards++}`)
  mkdirSync(folder)
  copyFileSync(tinyDit, join(folder, 'tiny-dit.onnx'))
  const card = structuredClone(baseCard)
  const edited = edit(card) ?? card
  writeFileSync(join(folder, 'tiny-dit.card.json'), typeof edited === 'string' ? edited : JSON.stringify(edited))
  return join(folder, 'tiny-dit.card.json')
}
const at = (card: Record<string, unknown>, key: string): Record<string, unknown> => card[key] as Record<string, unknown>

type Case = readonly [what: string, argv: (out: string) => string[], message: RegExp]

/** `command` with the case's options, plus defaults for the options the case does not give. */
function withDefaults(command: string, defaults: Readonly<Record<string, string>>, args: readonly string[], out: string): string[] {
  const given = new Set(args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]))
  const argv = [command]
  for (const [flag, value] of Object.entries({ ...defaults, '--out': out })) if (!given.has(flag)) argv.push(flag, value)
  return [...argv, ...args, '--quiet']
}
const gen = (...args: string[]) => (out: string) => withDefaults('generate', { '--model': tinyDit, '--steps': '2' }, args, out)
const genWith = (model: string, ...args: string[]) => (out: string) => withDefaults('generate', { '--model': model, '--steps': '2' }, args, out)
const grid = (...args: string[]) => (out: string) => withDefaults('grid', { '--model': tinyDit, '--steps': '2', '--columns': '2' }, args, out)
const fit = (...args: string[]) => (out: string) => withDefaults('fit-linear-ag', { '--model': tinyDit, '--steps': '2' }, args, out)
const plain = (...argv: string[]) => () => argv

const CLI: readonly Case[] = [
  // numbers, negative ones included (they used to be "ambiguous")
  ['negative steps', gen('--steps', '-3'), /--steps must be an integer from 1 to 1000, got "-3"/],
  ['negative count', gen('--count', '-1'), /--count must be an integer from 1 to 1000, got "-1"/],
  ['negative seed', gen('--seed', '-1'), /--seed must be an integer from 0 to 4294967295, got "-1"/],
  ['negative batch size', gen('--batch-size', '-2'), /--batch-size must be an integer from 1 to 256, got "-2"/],
  ['negative threads', gen('--threads', '-1'), /--threads must be an integer from 1 to 256, got "-1"/],
  ['negative class', gen('--class', '-1'), /Unknown class "-1" for model 'tiny-dit'/],
  ['zero steps', gen('--steps', '0'), /--steps must be an integer from 1 to 1000, got "0"/],
  ['too many steps', gen('--steps', '1001'), /got "1001"/],
  ['fractional steps', gen('--steps', '2.5'), /--steps must be an integer .*got "2\.5"/],
  ['steps not a number', gen('--steps', 'abc'), /got "abc"/],
  ['zero count', gen('--count', '0'), /--count must be an integer from 1 to 1000, got "0"/],
  ['too many images', gen('--count', '1001'), /got "1001"/],
  ['count not a number', gen('--count', 'many'), /--count must be an integer .*got "many"/],
  ['seed past 2^32', gen('--seed', '4294967296'), /--seed must be an integer from 0 to 4294967295, got "4294967296"/],
  ['seeds that overflow', gen('--seed', '4294967295', '--count', '2'), /--seed 4294967295 with --count 2 would reach seed 4294967296/],
  ['zero upscale', gen('--upscale', '0'), /--upscale must be an integer from 1 to 16, got "0"/],
  ['upscale too large', gen('--upscale', '17'), /got "17"/],
  ['batch too large', gen('--batch-size', '257'), /got "257"/],
  ['zero threads', gen('--threads', '0'), /--threads must be an integer from 1 to 256, got "0"/],
  ['zero columns', grid('--columns', '0'), /--columns must be an integer from 1 to 16, got "0"/],
  ['too many columns', grid('--columns', '17'), /got "17"/],
  ['cell too small', grid('--cell', '4'), /--cell must be an integer from 8 to 1024, got "4"/],
  ['grid seeds that overflow', grid('--seed', '4294967295'), /--seed 4294967295 with --columns 2 would reach seed 4294967296/],
  // guidance
  ['two strategies in generate', gen('--guidance', 'cfg; apg'), /guidekit generate takes one guidance strategy, got 2 \("cfg", "apg"\)/],
  ['repeated --guidance in generate', gen('--guidance', 'cfg', '--guidance', 'apg'), /takes one guidance strategy, got 2/],
  ['a scale that makes sampling diverge', gen('--guidance', 'cfg:scale=1e30'), /--guidance "cfg:scale=1e30" made sampling diverge: .*guider cfg\(scale=1e\+30\)/],
  ['unknown strategy', gen('--guidance', 'pag:scale=3'), /Unknown guidance "pag"/],
  ['malformed guidance', gen('--guidance', 'apg:scale=8,eta'), /Malformed --guidance "apg:scale=8,eta": expected '=' after "eta"/],
  ['rescale out of range', gen('--guidance', 'cfg:rescale=3'), /rescale must be .*got 3/],
  ['unbalanced parentheses', grid('--guidance', 'adaptive(threshold=0.9:apg'), /Malformed --guidance "adaptive\(threshold=0\.9:apg"/],
  ['scale not a number', gen('--guidance', 'cfg:scale=abc'), /cfg: scale must be a number, got "abc"/],
  ['momentum out of range', gen('--guidance', 'apg:momentum=2'), /momentum must be .*got 2/],
  ['threshold out of range', gen('--guidance', 'adaptive:threshold=0'), /threshold must be .*got 0/],
  ['unknown parameter', gen('--guidance', 'cfg:foo=1'), /cfg has no parameter "foo"/],
  ['linear-ag without coefficients', gen('--guidance', 'linear-ag'), /linear-ag needs coefficients=<file\.json>/],
  ['linear-ag with a missing file', gen('--guidance', `linear-ag:coefficients=${join(dir, 'none.json')}`), /cannot read coefficients .*none\.json: no such file/],
  ['rlg without an RL model', genWith(tinyUnet, '--guidance', 'rlg:scale=2'), /rlg needs an RL-fine-tuned model: pass --rl-model <path> \(there is no tiny-unet-rl\.card\.json next to tiny-unet\.card\.json\)/],
  ['an explicit rlg row without an RL model', (out) => ['grid', '--model', join(lone, 'tiny-unet.onnx'), '--guidance', 'cfg; rlg', '--out', out], /rlg needs an RL-fine-tuned model/],
  // classes, prompts, sizes
  ['empty class', gen('--class', ''), /--class has an empty item in ""/],
  ['only commas', gen('--class', ',,,'), /--class has an empty item in ",,,"/],
  ['an empty item', gen('--class', 'sneaker,,bag'), /--class has an empty item in "sneaker,,bag"/],
  ['unknown class name', gen('--class', 'hat'), /Unknown class "hat" for model 'tiny-dit'\. Valid classes: 0 "T-shirt\/top"/],
  ['class index out of range', gen('--class', '10'), /Unknown class "10"/],
  ['unknown class as prompt', gen('--prompt', 'hat'), /Unknown class "hat"/],
  ['negative prompt on a class model', gen('--negative-prompt', 'blurry'), /--negative-prompt "blurry" needs a text-to-image model/],
  ['size on a class model', gen('--size', '28x29'), /--size 28x29 does not apply: tiny-dit is class-conditional and makes 28x28 images/],
  ['malformed size', gen('--size', '10'), /--size must be WIDTHxHEIGHT .*got "10"/],
  ['size too small', gen('--size', '0x0'), /got "0x0"/],
  ['class on a diffusers folder', genWith(sdMiniature, '--class', '3'), /--class "3" is for class-conditional models/],
  ['no prompt for a diffusers folder', genWith(sdMiniature), /sd-miniature is a text-to-image pipeline: pass --prompt/],
  // samplers and plans
  ['unknown sampler', gen('--sampler', 'heun'), /Unknown sampler "heun"/],
  ['unknown sampler parameter', gen('--sampler', 'euler:eta=1'), /Sampler euler has no parameter "eta"/],
  ['flow sampler on a VP model', genWith(tinyUnet, '--sampler', 'flow-euler'), /Sampler flow-euler needs a flow model; this model is 'vp'/],
  ['unknown spacing', gen('--spacing', 'middle'), /--spacing must be leading, trailing or linspace, got "middle"/],
  ['spacing on a flow model', gen('--spacing', 'trailing'), /--spacing trailing does not apply to tiny-dit: it is a flow-matching model/],
  ['karras on a flow model', gen('--karras'), /--karras does not apply to tiny-dit/],
  // precision
  ['unknown precision', gen('--precision', 'int4'), /--precision must be fp32, fp16 or int8, got "int4"/],
  ['a precision the model does not have', gen('--precision', 'int8'), /--precision int8: tiny-dit has fp32 \(tiny-dit\.card\.json\); no int8 variant card \(tiny-dit-int8\.card\.json\)/],
  ['precision on a diffusers folder', genWith(sdMiniature, '--prompt', 'a cat', '--precision', 'fp16'), /--precision fp16 does not apply to diffusers folders/],
  // attention
  ['dense layers beyond the model', genWith(attnDit, '--attention', 'draft:dense-layers=99'), /denseLayers is 99, but tiny-attn-dit has 2 attention sites, so none would use draft attention; pass denseLayers from 0 to 1\./],
  ['keep out of range', genWith(attnDit, '--attention', 'draft:keep=2'), /--attention "draft:keep=2": .*keep.*2/],
  ['unknown attention', gen('--attention', 'sparse'), /Unknown attention "sparse"/],
  ['draft attention without a token grid', genWith(tinyUnet, '--attention', 'draft:keep=0.25'), /works on DiT models whose card declares architecture\.tokenGrid; tiny-unet/],
  // models
  ['missing model', genWith(join(dir, 'nope.onnx')), /--model \S+nope\.onnx: not found/],
  ['folder that is not a model', genWith(emptyFolder), /--model \S+empty-model is a folder without model_index\.json/],
  ['corrupt ONNX', genWith(join(corrupt, 'broken.onnx')), /broken\.onnx/],
  ['not a model file', genWith(notAModel), /--model \S+model\.txt: expected a \.onnx file, a \.card\.json file or a diffusers folder/],
  ['missing RL model', gen('--guidance', 'rlg', '--rl-model', join(dir, 'no-rl.onnx')), /--rl-model \S+no-rl\.onnx: not found/],
  ['empty model', gen('--model', ''), /--model must not be empty/],
  // output locations
  ['output to a device', plain('generate', '--model', tinyDit, '--steps', '2', '--out', '/dev/null', '--json', '--quiet'), /--out \/dev\/null is a character device, not a folder/],
  ['output where folders cannot be made', plain('generate', '--model', tinyDit, '--steps', '2', '--out', '/proc/guidekit-forbidden/'), /Cannot (create the folder \/proc\/guidekit-forbidden|write the images .*: \/proc is not writable)/],
  ['output under a file', gen('--out', join(plainFile, 'x.png')), /plain-file is a file, not a folder/],
  ['a file name too long', gen('--out', join(dir, `${'n'.repeat(300)}.png`)), /the file name is 304 bytes, more than 255/],
  ['an existing file', gen('--out', existing), /existing\.png already exists; pass --overwrite/],
  ['empty output', gen('--out', ''), /--out must not be empty/],
  ['grid output not a png', grid('--out', join(dir, 'grid.jpg')), /--out for grid must be a \.png file or a folder, got ".*grid\.jpg"/],
  ['coefficients output not json', fit('--out', join(dir, 'fit.txt')), /--out for fit-linear-ag must be a \.json file or a folder, got ".*fit\.txt"/],
  // the command line itself
  ['unknown option', gen('--colour', 'red'), /Unknown option --colour for guidekit generate/],
  ['unknown short option', gen('-x'), /Unknown option -x for guidekit generate/],
  ['unknown command', plain('paint'), /Unknown command "paint"/],
  ['help for an unknown command', plain('help', 'paint'), /Unknown command "paint"/],
  ['a stray argument', gen('sneaker'), /takes options only, got the argument "sneaker"/],
  ['a missing value', plain('generate', '--steps'), /--steps needs a value/],
  ['an option as a value', plain('generate', '--out', '--json'), /--out needs a value/],
  ['a flag with a value', gen('--json=yes'), /--json is a flag and takes no value, got --json=yes/],
  ['an option given twice', gen('--seed', '5', '--seed', '6'), /--seed is given twice \("5" and "6"\)/],
  ['guidance for fit-linear-ag', fit('--guidance', 'cfg'), /fit-linear-ag records plain CFG at --scale; it takes no --guidance/],
  ['unknown regression space', fit('--space', 'y'), /--space must be epsilon or x0, got "y"/],
  ['fit scale not a number', fit('--scale', 'nan'), /--scale must be a number from 0 to 1000, got "nan"/],
  ['too few trajectories', fit('--count', '1'), /--count must be an integer from 2 to 4096, got "1"/],
]

const CARDS: readonly (readonly [what: string, card: () => string, message: RegExp])[] = [
  ['a null class that is a real class', () => cardWith((c) => void (c.nullClass = 7)), /'nullClass' is 7, a real class \(classes\[7\] = "Sneaker"\)/],
  ['a null class outside the embedding', () => cardWith((c) => void (c.nullClass = 99)), /nullClass is 99, but tiny-dit\.onnx's class embedding has 11 rows/],
  ['a negative null class', () => cardWith((c) => void (c.nullClass = -1)), /'nullClass' must be a label >= 0 .*\(got -1\)/],
  ['an image range that is not numbers', () => cardWith((c) => void (at(c, 'image').range = 'abc')), /'image\.range' .*\(got "abc"\)/],
  ['an empty image range', () => cardWith((c) => void (at(c, 'image').range = [1, 1])), /'image\.range' must be \[low, high\] with high > low.*\(got \[1,1\]\)/],
  ['a negative shift', () => cardWith((c) => void (at(c, 'schedule').shift = -5)), /'schedule\.shift' must be > 0 .*\(got -5\)/],
  ['zero train steps', () => cardWith((c) => void (at(c, 'schedule').trainSteps = 0)), /'schedule\.trainSteps' must be an integer >= 2 .*\(got 0\)/],
  ['epsilon on a flow schedule', () => cardWith((c) => void (c.parameterization = 'epsilon')), /'parameterization' is 'epsilon' on a 'flow' schedule/],
  ['an ONNX file outside the card folder', () => cardWith((c) => void (at(c, 'onnx').file = '../../../etc/passwd')), /'onnx\.file' is "\.\.\/\.\.\/\.\.\/etc\/passwd", which is outside the card's folder/],
  ['duplicate class names', () => cardWith((c) => void ((c.classes as string[])[1] = 'T-shirt/top')), /'classes' has duplicate names/],
  ['a card that is not JSON', () => cardWith(() => '{ "name": "tiny-dit", '), /tiny-dit\.card\.json is not valid JSON/],
  ['a card without a parameterization', () => cardWith((c) => void delete c.parameterization), /'parameterization' must be one of .*\(got undefined\)/],
  ['a sample input of the wrong dtype', () => cardWith((c) => void ((at(c, 'onnx').inputs as Record<string, unknown>[])[0]!.dtype = 'int64')), /'onnx\.inputs\[0\]\.dtype' is int64 for the sample 'sample'/],
  ['an unknown card version', () => cardWith((c) => void (c.cardVersion = 3)), /'cardVersion' .*\(got 3\)/],
  ['a quality gate without a boolean verdict', () => cardWith((c) => void (c.metrics = { qualityGate: { passed: 'yes' } })), /'metrics\.qualityGate\.passed' must be a boolean \(got "yes"\)/],
  ['a timestep scale of zero', () => cardWith((c) => void (at(c, 'schedule').timestepScale = 0)), /'schedule\.timestepScale' must be > 0.*\(got 0\)/],
  ['a class beyond a nameless card', () => cardWith((c) => void delete c.classes), /Unknown class "12" for model 'tiny-dit'\. Valid classes: 0\.\.9\./],
]

const codeOf = async (f: () => unknown): Promise<{ code: string; message: string } | undefined> => {
  try {
    await f()
  } catch (e) {
    if (GuidekitError.isInstance(e)) return { code: e.code, message: e.message }
    return { code: `not a GuidekitError: ${String(e)}`, message: '' }
  }
  return undefined
}

const nullGuider = { specificationVersion: 'v1', name: 'broken', start: () => ({ step: () => Promise.resolve(undefined) }) } as unknown as Guider
const toy = () => ({ specificationVersion: 'v1' as const, family: 'flow' as const, predict: () => Promise.resolve([]) })
const image = new Tensor(new Float32Array(4), [1, 1, 2, 2])

const LIBRARY: readonly (readonly [what: string, f: () => unknown, code: string, message: RegExp])[] = [
  ['combine with a short per-sample list', () => combine([[[1], Tensor.zeros([2, 3])]]), 'INVALID_ARGUMENT', /coefficient 0 lists 1 values for a batch of 2/],
  ['combine with a NaN coefficient', () => combine([[Number.NaN, Tensor.zeros([2, 3])]]), 'INVALID_ARGUMENT', /coefficient 0 is NaN/],
  ['toRawImages with NaN', () => toRawImages(new Tensor(Float32Array.of(0, Number.NaN, 0, 0), [1, 1, 2, 2])), 'NON_FINITE', /hold NaN at element 1/],
  ['toRawImages with a string range', () => toRawImages(image, { range: ['abc', 1] as unknown as [number, number] }), 'INVALID_ARGUMENT', /got \["abc",1\]/],
  ['sample() with an empty guider', () => sample({ denoiser: toy(), guider: {} as Guider, sampler: euler(), plan: flowPlan({ steps: 2 }), shape: [1, 4] }), 'INVALID_ARGUMENT', /guider must be a Guider .*got an empty object/],
  ['a guider step that returns nothing', () => sample({ denoiser: toy(), guider: nullGuider, sampler: euler(), plan: flowPlan({ steps: 2 }), shape: [1, 4] }), 'INVALID_ARGUMENT', /broken/],
  ['cfg with a NaN scale', () => cfg({ scale: Number.NaN }), 'INVALID_ARGUMENT', /scale must be .*got NaN/],
  ['apg with momentum 2', () => apg({ scale: 5, momentum: 2 }), 'INVALID_ARGUMENT', /momentum must be .*got 2/],
  ['a plan of zero steps', () => flowPlan({ steps: 0 }), 'INVALID_ARGUMENT', /steps must be .*got 0/],
  ['a beta below zero', () => vpSchedule({ betaStart: -1 }), 'INVALID_ARGUMENT', /betaStart .*-1/],
  ['a card that is not an object', () => parseModelCard(42, 'x.card.json'), 'MODEL_INVALID', /must be a JSON object, got 42/],
  ['an unknown class name', () => classLabel(parseGeneratorCard(baseCard), 'hat'), 'INVALID_ARGUMENT', /Unknown class "hat"/],
  ['planFromCard with zero steps', () => planFromCard(parseGeneratorCard(baseCard), { steps: 0 }), 'INVALID_ARGUMENT', /steps must be .*got 0/],
  ['a draft spec with keep 2', () => parseDraftAttentionSpec('draft:keep=2'), 'INVALID_ARGUMENT', /keep.*2/],
  ['an unknown sampler', () => buildSampler('heun', 'flow'), 'INVALID_ARGUMENT', /Unknown sampler "heun"/],
  ['an unknown guidance', () => buildGuidance('pag'), 'INVALID_ARGUMENT', /Unknown guidance "pag"/],
  ['a null class beyond the embedding', async () => {
    const model = await loadClassConditionalModel(tinyDit, { sessionOptions: { threads: 1 } })
    try {
      classConditionalDenoiser({ model, classes: [0], nullClass: 99 })
    } finally {
      await model.dispose()
    }
  }, 'INVALID_ARGUMENT', /nullClass 99 does not fit tiny-dit: .*below 11/],
]

describe('bad input', () => {
  it('covers at least 80 cases across the CLI, cards and the libraries', () => {
    expect(CLI.length + CARDS.length + LIBRARY.length).toBeGreaterThanOrEqual(80)
  })

  it.each(CLI)('CLI: %s -> exit 2, one line naming the value, nothing written', async (_what, argv, message) => {
    const out = fresh()
    const before = listTree(dir).filter((f) => !f.startsWith('run-'))
    const r = await run(argv(join(out, 'made')))
    expect(r.stderr).toMatch(/^guidekit: [^\n]+\n$/)
    expect(r.stderr).toMatch(message)
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(listTree(out)).toEqual([])
    expect(listTree(dir).filter((f) => !f.startsWith('run-'))).toEqual(before)
  })

  it.each(CARDS)('card: %s -> exit 2, one line naming the card, the field and the value, nothing written', async (_what, card, message) => {
    const out = fresh()
    const path = card()
    const r = await run(['generate', '--model', path, '--steps', '2', '--class', '12', '--out', join(out, 'made')])
    expect(r.stderr).toMatch(/^guidekit: [^\n]+\n$/)
    expect(r.stderr).toMatch(message)
    expect(r.code).toBe(2)
    expect(listTree(out)).toEqual([])
  })

  it.each(LIBRARY)('library: %s -> %s naming the value', async (_what, f, code, message) => {
    const failure = await codeOf(f)
    expect(failure?.code).toBe(code)
    expect(failure?.message).toMatch(message)
    expect(failure?.message).not.toMatch(/\n/)
  })
})
