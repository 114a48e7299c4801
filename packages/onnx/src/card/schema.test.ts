import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { modelCardJsonSchema } from './schema.js'

describe('model-card.schema.json', () => {
  it('is the JSON Schema generated from the zod card schema (run `pnpm --filter @guidekit/onnx card-schema` when this fails)', () => {
    const committed: unknown = JSON.parse(readFileSync(new URL('../../model-card.schema.json', import.meta.url), 'utf8'))
    expect(committed).toEqual(modelCardJsonSchema())
  })
})
