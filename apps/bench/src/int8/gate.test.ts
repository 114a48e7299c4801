import { createHash } from 'node:crypto'
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { gateVerdict } from './gate.js'
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
    expect(int8Quality(pair, dir)).toMatchObject({ images: 100, fdFp32: 5.18, fdInt8: 5.22, accFp32: 0.94, accInt8: 0.93, passed: true, source: expect.stringMatching(/^cached gate result/) })
    writeFileSync(join(dir, 'int8-gate', 'm.json'), JSON.stringify(gate('0'.repeat(64))))
    expect(int8Quality(pair, dir)).toBeUndefined()
  })

  it('prefers the gate recorded in the int8 card', () => {
    writeFileSync(int8.replace('.onnx', '.card.json'), JSON.stringify({ name: 'm-int8', metrics: { byScale: [{ cfgScale: 3, accuracy: 0.91, frechetDistance: 3.9 }] }, gate: { passed: true, images: 1000, int8Sha256: sha.int8, fp32: { accuracy: 0.913, frechetDistance: 3.78 } } }))
    expect(int8Quality(pair, dir)).toMatchObject({ images: 1000, fdFp32: 3.78, fdInt8: 3.9, accFp32: 0.913, accInt8: 0.91, source: expect.stringMatching(/^int8 card/) })
  })
})
