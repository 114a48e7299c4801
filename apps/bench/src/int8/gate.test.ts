import { createHash } from 'node:crypto'
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parseGeneratorCard } from '@guidekit/onnx'
import { gateVerdict, writeGateToCards, type GateResult } from './gate.js'
import { int8Quality } from './models.js'

describe('int8 quality gate', () => {
  it('passes within 5% FD and 1 accuracy point of fp32, and fails just outside', () => {
    const fp32 = { accuracy: 0.9, frechetDistance: 4 }
    expect(gateVerdict(fp32, { accuracy: 0.89, frechetDistance: 4.2 })).toBe(true)
    expect(gateVerdict(fp32, { accuracy: 0.95, frechetDistance: 3 })).toBe(true)
    expect(gateVerdict(fp32, { accuracy: 0.9, frechetDistance: 4.21 })).toBe(false)
    expect(gateVerdict(fp32, { accuracy: 0.889, frechetDistance: 4 })).toBe(false)
  })
})

describe('int8Quality', () => {
  const dir = mkdtempSync(join(tmpdir(), 'guidekit-int8-quality-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const fp32 = join(dir, 'm.onnx')
  const int8 = join(dir, 'm-int8.onnx')
  writeFileSync(fp32, 'fp32 weights')
  writeFileSync(int8, 'int8 weights')
  const sha = { fp32: createHash('sha256').update('fp32 weights').digest('hex'), int8: createHash('sha256').update('int8 weights').digest('hex') }
  const pair = { name: 'm', fp32, int8 }
  const gate = (int8Sha: string) => ({ images: 100, passed: true, fp32: { accuracy: 0.94, frechetDistance: 5.18, sha256: sha.fp32 }, int8: { accuracy: 0.93, frechetDistance: 5.22, sha256: int8Sha } })

  it('reads the cached gate result of these exact weights, and ignores one of other weights', () => {
    writeFileSync(int8.replace('.onnx', '.card.json'), JSON.stringify({ name: 'm-int8' }))
    mkdirSync(join(dir, 'int8-gate'), { recursive: true })
    writeFileSync(join(dir, 'int8-gate', 'm.json'), JSON.stringify(gate(sha.int8)))
    expect(int8Quality(pair, dir)).toMatchObject({ images: 100, fdFp32: 5.18, fdInt8: 5.22, accFp32: 0.94, accInt8: 0.93, passed: true, source: expect.stringMatching(/^cached gate result/) as unknown })
    writeFileSync(join(dir, 'int8-gate', 'm.json'), JSON.stringify(gate('0'.repeat(64))))
    expect(int8Quality(pair, dir)).toBeUndefined()
  })

  it('prefers the gate recorded in the int8 card (metrics.qualityGate)', () => {
    writeFileSync(int8.replace('.onnx', '.card.json'), JSON.stringify({ name: 'm-int8', metrics: { qualityGate: { passed: true, images: 1000, int8Sha256: sha.int8, fp32: { accuracy: 0.913, frechetDistance: 3.78 }, int8: { accuracy: 0.91, frechetDistance: 3.9 } } } }))
    expect(int8Quality(pair, dir)).toMatchObject({ images: 1000, fdFp32: 3.78, fdInt8: 3.9, accFp32: 0.913, accInt8: 0.91, source: expect.stringMatching(/^int8 card/) as unknown })
  })
})

describe('writeGateToCards', () => {
  const dir = mkdtempSync(join(tmpdir(), 'guidekit-int8-cards-'))
  afterAll(() => rmSync(dir, { recursive: true, force: true }))
  const fixtureCard = JSON.parse(readFileSync(new URL('../../../../tooling/quantize/src/__fixtures__/tiny-dit.card.json', import.meta.url), 'utf8')) as Record<string, unknown>
  const pair = { fp32: join(dir, 'tiny-dit.onnx'), int8: join(dir, 'tiny-dit-int8.onnx') }
  const hash = (s: string) => createHash('sha256').update(s).digest('hex')
  writeFileSync(pair.fp32, 'fp32 weights')
  writeFileSync(pair.int8, 'int8 weights')
  const writeCards = (madeFrom: string) => {
    writeFileSync(join(dir, 'tiny-dit.card.json'), JSON.stringify(fixtureCard))
    writeFileSync(join(dir, 'tiny-dit-int8.card.json'), JSON.stringify({ ...fixtureCard, name: 'tiny-dit-int8', precision: 'int8', derivedFrom: 'tiny-dit', onnx: { ...(fixtureCard.onnx as object), file: 'tiny-dit-int8.onnx' }, quantization: { fp32: { file: 'tiny-dit.onnx', sha256: madeFrom } } }))
  }
  const side = (accuracy: number, frechetDistance: number, secondsPerImage: number, sha256: string) => ({ accuracy, frechetDistance, secondsPerImage, sha256 })
  const gate: GateResult = {
    model: 'fashion-dit', images: 1000, steps: 30, cfgScale: 3, batch: 50, threads: 2, sampler: 'euler (flow), uniform t from 1 to 0',
    fp32: side(0.988, 2.99, 0.0912, hash('fp32 weights')), int8: side(0.985, 3.05, 0.0487, hash('int8 weights')),
    passed: true, criteria: 'c', measuredAt: '2026-11-30T00:00:00.000Z', loadAverage: 3,
  }

  it('writes schema-valid cards: the int8 metrics, msPerImage and qualityGate, and msPerImage on fp32', () => {
    writeCards(hash('fp32 weights'))
    writeGateToCards(pair, gate)
    const int8 = parseGeneratorCard(JSON.parse(readFileSync(join(dir, 'tiny-dit-int8.card.json'), 'utf8')))
    const fp32 = parseGeneratorCard(JSON.parse(readFileSync(join(dir, 'tiny-dit.card.json'), 'utf8')))
    expect(int8.metrics?.msPerImage).toBe(48.7)
    expect(fp32.metrics?.msPerImage).toBe(91.2)
    expect(int8.metrics?.qualityGate).toMatchObject({ passed: true, images: 1000, fp32: { accuracy: 0.988, frechetDistance: 2.99 }, int8: { accuracy: 0.985, frechetDistance: 3.05 }, int8Sha256: hash('int8 weights') })
    expect(int8.metrics?.byScale).toEqual([{ cfgScale: 3, accuracy: 0.985, frechetDistance: 3.05 }])
    expect(int8Quality({ name: 'tiny-dit', ...pair }, dir)).toMatchObject({ images: 1000, fdInt8: 3.05, passed: true })
  })

  it('refuses a gate measured on other fp32 weights than the int8 model was made from', () => {
    writeCards('0'.repeat(64))
    expect(() => writeGateToCards(pair, gate)).toThrow(/Re-run pnpm quantize/)
  })
})
