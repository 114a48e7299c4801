// Where the int8 model of a shipped fp32 generator is: `<name>-int8.onnx` and its card next to the fp32 file
// (packages/models-fashion/models, or GUIDEKIT_MODELS_DIR), as `pnpm quantize` writes them. models-fashion
// does not register the int8 files (yet), so they are found by path.
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { FashionModelName } from '@guidekit/models-fashion'
import { modelPath } from '../quality/models.js'

export interface PrecisionPair {
  readonly name: string
  readonly fp32: string
  /** `undefined` when `pnpm quantize` has not been run for this model. */
  readonly int8: string | undefined
}

export function precisionPair(name: FashionModelName): PrecisionPair | undefined {
  const fp32 = modelPath(name)
  if (!fp32) return undefined
  const int8 = join(dirname(fp32), `${name}-int8.onnx`)
  return { name, fp32, int8: existsSync(int8) && existsSync(int8.replace(/\.onnx$/, '.card.json')) ? int8 : undefined }
}
