// Writes model-card.schema.json (the JSON Schema of guidekit model cards) from the zod schema.
// Run: pnpm --filter @guidekit/onnx card-schema   (a test fails when the committed file is stale)
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { modelCardJsonSchema } from '../src/card/schema.js'

const target = fileURLToPath(new URL('../model-card.schema.json', import.meta.url))
writeFileSync(target, `${JSON.stringify(modelCardJsonSchema(), null, 2)}\n`)
console.log(`wrote ${target}`)
