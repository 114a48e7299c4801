import { existsSync, readFileSync, statSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { guidekitErrorOf } from '@guidekit/core/testing'
import { describe, expect, it } from 'vitest'
import { fashionModel, fashionModelNames } from './index.js'
import { fashionWebModel } from './web.js'

describe('fashionWebModel (browser entry)', () => {
  it.each(fashionModelNames)('%s: the URL is the shipped file and the card is the Node entry card', (name) => {
    const web = fashionWebModel(name)
    const node = fashionModel(name)
    expect(web.url.protocol).toBe('file:') // unbundled; a bundler rewrites it to the emitted asset
    expect(fileURLToPath(web.url)).toBe(node.onnxPath)
    expect(statSync(web.url).size).toBeGreaterThan(100_000)
    expect(web.card).toEqual(node.card)
    expect(fashionWebModel(name)).toBe(web)
  })

  it('names every file with a literal new URL(..., import.meta.url), which bundlers emit', () => {
    const source = readFileSync(new URL('./web.ts', import.meta.url), 'utf8')
    for (const name of fashionModelNames) {
      expect(source).toContain(`new URL('../models/${name}.onnx', import.meta.url)`)
      expect(existsSync(new URL(`../models/${name}.card.json`, import.meta.url))).toBe(true)
    }
  })

  it('rejects unknown names with INVALID_ARGUMENT', () => {
    // @ts-expect-error: not a shipped model
    const call = () => fashionWebModel('fashion-gan')
    expect(call).toThrow(/expected one of fashion-dit/)
    expect(guidekitErrorOf(call)?.code).toBe('INVALID_ARGUMENT')
  })
})
