import { readFileSync } from 'node:fs'
import { GuidekitError } from '@guidekit/core'
import { describe, expect, it } from 'vitest'
import { fixture } from '../__fixtures__/helpers.js'
import { parseGeneratorCard } from './parse.js'

const base = JSON.parse(readFileSync(fixture('class-conditional', 'tiny-dit.card.json'), 'utf8')) as Record<string, unknown>
const variant = (extra: Record<string, unknown>) => ({ ...base, name: 'tiny-dit-int8', precision: 'int8', derivedFrom: 'tiny-dit', ...extra })

function failure(card: unknown): { code: string; message: string } | undefined {
  try {
    parseGeneratorCard(card, 'tiny-dit-int8.card.json')
  } catch (e) {
    if (GuidekitError.isInstance(e)) return { code: e.code, message: e.message }
    throw e
  }
  return undefined
}

describe('reduced-precision cards: precision, derivedFrom and the metrics guidekit reads', () => {
  it('accepts a variant with its speed and its quality gate (other metrics stay free-form)', () => {
    const card = parseGeneratorCard(variant({ metrics: { msPerImage: 19.5, qualityGate: { passed: true, criteria: 'FD within 5%', fdRatio: 1.01 }, byScale: [] } }))
    expect(card.precision).toBe('int8')
    expect(card.derivedFrom).toBe('tiny-dit')
    expect(card.metrics?.msPerImage).toBe(19.5)
    expect(card.metrics?.qualityGate).toMatchObject({ passed: true, fdRatio: 1.01 })
  })

  it.each([
    ['a gate without a verdict', { metrics: { qualityGate: { criteria: 'x' } } }, /'metrics\.qualityGate\.passed'/],
    ['a verdict that is not a boolean', { metrics: { qualityGate: { passed: 'yes' } } }, /'metrics\.qualityGate\.passed' must be a boolean/],
    ['a speed that is not positive', { metrics: { msPerImage: 0 } }, /'metrics\.msPerImage' must be > 0/],
    ['a speed that is not a number', { metrics: { msPerImage: 'fast' } }, /'metrics\.msPerImage'/],
    ['an unknown precision', { precision: 'int4' }, /'precision' must be one of/],
    ['an empty derivedFrom', { derivedFrom: '' }, /'derivedFrom'/],
  ])('rejects %s as MODEL_INVALID naming the field', (_what, extra, message) => {
    const f = failure(variant(extra))
    expect(f?.code).toBe('MODEL_INVALID')
    expect(f?.message).toMatch(message)
    expect(f?.message).toMatch(/^Model card tiny-dit-int8\.card\.json: /)
  })
})
