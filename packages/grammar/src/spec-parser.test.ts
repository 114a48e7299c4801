import { describe, expect, it } from 'vitest'
import { parseSpec, parseSpecList } from './spec-parser.js'
import type { SpecNode } from './spec-parser.js'

const params = (n: SpecNode) => Object.fromEntries(n.params.map((p) => [p.key, typeof p.value === 'string' ? p.value : `<${p.value.text}>`]))

describe('guidance spec grammar', () => {
  it('reads bare names, colon parameters and parenthesised parameters alike', () => {
    expect(parseSpec('cfg', 'g')).toMatchObject({ name: 'cfg', params: [] })
    const colon = parseSpec('apg:scale=8,eta=0,momentum=-0.5', 'g')
    const paren = parseSpec('apg( scale = 8, eta=0 , momentum=-0.5 )', 'g')
    expect(params(colon)).toEqual({ scale: '8', eta: '0', momentum: '-0.5' })
    expect(params(paren)).toEqual(params(colon))
    expect(parseSpec('cfg++:scale=0.6', 'g').name).toBe('cfg++')
    expect(params(parseSpec('cfg:interval=0.2..0.8', 'g'))).toEqual({ interval: '0.2..0.8' })
  })

  it('nests combinators with ":inner" and "inner=" in both forms', () => {
    const a = parseSpec('adaptive(threshold=0.99):apg(scale=8,eta=0)', 'g')
    expect(a.name).toBe('adaptive')
    expect(params(a)).toEqual({ threshold: '0.99' })
    expect(a.inner?.name).toBe('apg')
    expect(params(a.inner as SpecNode)).toEqual({ scale: '8', eta: '0' })
    expect(a.text).toBe('adaptive(threshold=0.99):apg(scale=8,eta=0)')

    const b = parseSpec('rlg:scale=1.5,inner=cfg:scale=3', 'g')
    expect(params(b)).toEqual({ scale: '1.5', inner: '<cfg:scale=3>' })
    const c = parseSpec('rlg(scale=1.5, inner=cfg(scale=3))', 'g')
    expect(params(c)).toEqual({ scale: '1.5', inner: '<cfg(scale=3)>' })
    const d = parseSpec('adaptive:threshold=0.9:apg:scale=8', 'g')
    expect(params(d)).toEqual({ threshold: '0.9' })
    expect(params(d.inner as SpecNode)).toEqual({ scale: '8' })
    expect(parseSpec('adaptive:apg', 'g').inner?.name).toBe('apg')
  })

  it('splits lists on ";" and keeps each spec text for labels', () => {
    const list = parseSpecList('cfg:scale=3; cfg++:scale=0.6 ;apg;', 'g')
    expect(list.map((n) => n.text)).toEqual(['cfg:scale=3', 'cfg++:scale=0.6', 'apg'])
  })

  it.each([
    ['', /expected a name/],
    ['apg:scale=8,eta', /expected '=' after "eta" at column 16/],
    ['apg(scale=8', /expected ',' or '\)', found the end/],
    ['apg(scale=)', /expected a value after "scale="/],
    ['apg)', /unexpected '\)'/],
    ['(cfg)', /expected a name/],
    ['cfg:scale=3,', /expected key=value, found the end/],
  ])('rejects %j with one positioned message', (source, message) => {
    const error = (() => {
      try {
        parseSpecList(source, '--guidance')
      } catch (e) {
        return e
      }
      return undefined
    })()
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' })
    expect(() => parseSpecList(source, '--guidance')).toThrow(message)
  })

  it('parseSpec insists on a single spec', () => {
    expect(() => parseSpec('cfg; apg', '--guidance')).toThrow(/takes one spec, got 2/)
  })
})
