import { copyFileSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseGeneratorCard } from '@guidekit/onnx'
import { afterAll, describe, expect, it } from 'vitest'
import { pixels, pngTexts, recorded, run, scratch, summaryOf, tinyDit, tinyDitCard } from './__fixtures__/harness.js'
import { UsageError } from './errors.js'
import { choosePrecision, findVariants } from './precision.js'
import type { PrecisionVariant } from './precision.js'

const { fresh, remove } = scratch('precision')
afterAll(remove)

const base = JSON.parse(readFileSync(tinyDitCard, 'utf8')) as Record<string, unknown>
const card = (extra: Record<string, unknown>) => parseGeneratorCard({ ...base, ...extra })
const own = (ms?: number): PrecisionVariant => ({ precision: 'fp32', cardPath: '/m/tiny-dit.card.json', card: card(ms === undefined ? {} : { metrics: { msPerImage: ms } }) })
const int8 = (metrics: Record<string, unknown>): PrecisionVariant => ({
  precision: 'int8',
  cardPath: '/m/tiny-dit-int8.card.json',
  card: card({ name: 'tiny-dit-int8', precision: 'int8', derivedFrom: 'tiny-dit', metrics }),
})

describe('choosing a precision', () => {
  it('by default takes the fastest variant that passed its quality gate, else the model itself', () => {
    expect(choosePrecision([own(25)], undefined).variant.precision).toBe('fp32')
    expect(choosePrecision([own(25), int8({ msPerImage: 19, qualityGate: { passed: true } })], undefined)).toMatchObject({ variant: { precision: 'int8' }, reason: 'passed its quality gate, 19 vs 25 ms/image' })
    // failed its gate, slower, or not comparable: the model itself
    expect(choosePrecision([own(25), int8({ msPerImage: 19, qualityGate: { passed: false } })], undefined).variant.precision).toBe('fp32')
    expect(choosePrecision([own(25), int8({ msPerImage: 19 })], undefined).variant.precision).toBe('fp32')
    expect(choosePrecision([own(25), int8({ msPerImage: 30, qualityGate: { passed: true } })], undefined).variant.precision).toBe('fp32')
    expect(choosePrecision([own(), int8({ msPerImage: 19, qualityGate: { passed: true } })], undefined).variant.precision).toBe('fp32')
    expect(choosePrecision([own(25), int8({ qualityGate: { passed: true } })], undefined).variant.precision).toBe('fp32')
  })

  it('takes an explicit --precision, warning when that variant did not pass its gate', () => {
    const failed = int8({ msPerImage: 19, qualityGate: { passed: false } })
    const chosen = choosePrecision([own(25), failed], 'int8')
    expect(chosen.variant.precision).toBe('int8')
    expect(chosen.warning).toContain('tiny-dit-int8.card.json failed quality gate')
    expect(choosePrecision([own(25), int8({})], 'int8').warning).toMatch(/has no quality gate/)
    expect(choosePrecision([own(25), int8({ qualityGate: { passed: true } })], 'int8').warning).toBeUndefined()
    expect(choosePrecision([own(25), failed], 'fp32')).toMatchObject({ variant: { precision: 'fp32' } })
    expect(() => choosePrecision([own(25)], 'int8')).toThrow(UsageError)
    expect(() => choosePrecision([own(25)], 'int8')).toThrow(/tiny-dit has fp32 \(tiny-dit\.card\.json\); no int8 variant card \(tiny-dit-int8\.card\.json\)/)
  })
})

/** tiny-dit with an "int8" variant: the card of one, pointing at other weights (tiny-dit-rl's), so a test can tell which file ran. */
function modelWithVariant(variant: Record<string, unknown> | string, baseMs = 25): string {
  const folder = fresh()
  copyFileSync(tinyDit, join(folder, 'tiny-dit.onnx'))
  copyFileSync(tinyDit.replace('tiny-dit.onnx', 'tiny-dit-rl.onnx'), join(folder, 'tiny-dit-int8.onnx'))
  writeFileSync(join(folder, 'tiny-dit.card.json'), JSON.stringify({ ...base, metrics: { msPerImage: baseMs } }))
  writeFileSync(join(folder, 'tiny-dit-int8.card.json'), typeof variant === 'string' ? variant : JSON.stringify({ ...base, name: 'tiny-dit-int8', precision: 'int8', derivedFrom: 'tiny-dit', onnx: { ...(base.onnx as object), file: 'tiny-dit-int8.onnx' }, ...variant }))
  // a sibling that is not a variant of tiny-dit is ignored
  copyFileSync(tinyDit.replace('tiny-dit.onnx', 'tiny-dit-rl.card.json'), join(folder, 'tiny-dit-rl.card.json'))
  copyFileSync(tinyDit.replace('tiny-dit.onnx', 'tiny-dit-rl.onnx'), join(folder, 'tiny-dit-rl.onnx'))
  return join(folder, 'tiny-dit.card.json')
}

describe('--precision on a model with a variant card', () => {
  it('finds the variants next to the card and only those', () => {
    const path = modelWithVariant({ metrics: { msPerImage: 19, qualityGate: { passed: true } } })
    const variants = findVariants(path, parseGeneratorCard(JSON.parse(readFileSync(path, 'utf8'))))
    expect(variants.map((v) => [v.precision, v.card.name])).toEqual([
      ['fp32', 'tiny-dit'],
      ['int8', 'tiny-dit-int8'],
    ])
  })

  it('runs the variant that passed its gate by default and records the precision and the file', async () => {
    const path = modelWithVariant({ metrics: { msPerImage: 19, qualityGate: { passed: true } } })
    const out = fresh()
    const common = ['generate', '--class', 'coat', '--steps', '3', '--seed', '9', '--json', '--quiet']
    const chosen = await run([...common, '--model', path, '--out', join(out, 'default.png')])
    expect(chosen.code).toBe(0)
    expect(summaryOf(chosen).precision).toEqual({ precision: 'int8', file: 'tiny-dit-int8.onnx', reason: 'passed its quality gate, 19 vs 25 ms/image' })
    const texts = await pngTexts(join(out, 'default.png'))
    expect(texts.parameters).toMatch(/, Precision: int8, Model file: tiny-dit-int8\.onnx, /)
    expect(await recorded(join(out, 'default.png'))).toMatchObject({ precision: 'int8', modelFile: 'tiny-dit-int8.onnx', command: expect.stringContaining(' --precision int8 ') as unknown })
    // the variant's own weights ran (here tiny-dit-rl's), and --precision fp32 runs the model itself
    const rl = await run([...common, '--model', tinyDit.replace('tiny-dit.onnx', 'tiny-dit-rl.onnx'), '--out', join(out, 'rl.png')])
    const fp32 = await run([...common, '--model', path, '--precision', 'fp32', '--out', join(out, 'fp32.png')])
    const plain = await run([...common, '--model', tinyDit, '--out', join(out, 'plain.png')])
    expect([rl.code, fp32.code, plain.code]).toEqual([0, 0, 0])
    expect(summaryOf(fp32).precision).toMatchObject({ precision: 'fp32', file: 'tiny-dit.onnx', reason: '--precision' })
    expect(Buffer.compare(await pixels(join(out, 'default.png')), await pixels(join(out, 'rl.png')))).toBe(0)
    expect(Buffer.compare(await pixels(join(out, 'fp32.png')), await pixels(join(out, 'plain.png')))).toBe(0)
    expect(Buffer.compare(await pixels(join(out, 'default.png')), await pixels(join(out, 'fp32.png')))).not.toBe(0)
  })

  it('names files by precision, so fp32 and int8 results do not overwrite each other', async () => {
    const path = modelWithVariant({ metrics: { msPerImage: 19, qualityGate: { passed: true } } })
    const out = fresh()
    const a = await run(['generate', '--model', path, '--steps', '2', '--out', out, '--json', '--quiet'])
    const b = await run(['generate', '--model', path, '--steps', '2', '--precision', 'fp32', '--out', out, '--json', '--quiet'])
    expect([a.code, b.code]).toEqual([0, 0])
    expect(summaryOf(a).files[0]).not.toBe(summaryOf(b).files[0])
  })

  it('warns when an explicitly chosen variant failed its gate, and stays with the model by default', async () => {
    const path = modelWithVariant({ metrics: { msPerImage: 19, qualityGate: { passed: false, criteria: 'FD within 5%' } } })
    const byDefault = await run(['generate', '--model', path, '--steps', '2', '--out', fresh(), '--json', '--quiet'])
    expect(summaryOf(byDefault).precision.precision).toBe('fp32')
    const explicit = await run(['generate', '--model', path, '--steps', '2', '--precision', 'int8', '--out', fresh(), '--json'])
    expect(explicit.code).toBe(0)
    expect(explicit.stderr).toMatch(/^warning: tiny-dit-int8\.card\.json failed quality gate \(metrics\.qualityGate\); its images may differ in quality from fp32\.\n/)
  })

  it('refuses a broken variant card, naming it', async () => {
    const path = modelWithVariant('{ "derivedFrom": "tiny-dit", "name": "tiny-dit-int8" }')
    const r = await run(['generate', '--model', path, '--steps', '2', '--out', fresh()])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/^guidekit: Model card \S+tiny-dit-int8\.card\.json: '[^']+' [^\n]+\n$/)
  })
})
