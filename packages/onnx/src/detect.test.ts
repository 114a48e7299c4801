import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fixture } from './__fixtures__/helpers.js'
import { detectModelKind } from './detect.js'

describe('detectModelKind', () => {
  it('tells pipeline folders from card-described models', () => {
    expect(detectModelKind(fixture('sd-miniature'))).toBe('diffusers')
    expect(detectModelKind(fixture('class-conditional', 'tiny-dit.onnx'))).toBe('class-conditional')
    expect(detectModelKind(fixture('class-conditional', 'tiny-dit.card.json'))).toBe('class-conditional')
  })

  it('explains what is wrong otherwise', () => {
    const tmp = mkdtempSync(join(tmpdir(), 'guidekit-detect-'))
    writeFileSync(join(tmp, 'lonely.onnx'), '')
    expect(() => detectModelKind(join(tmp, 'missing'))).toThrow(expect.objectContaining({ code: 'MODEL_NOT_FOUND' }))
    expect(() => detectModelKind(tmp)).toThrow(/without model_index.json/)
    expect(() => detectModelKind(join(tmp, 'lonely.onnx'))).toThrow(/has no model card/)
  })
})
