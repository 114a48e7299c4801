// Test-only helpers (not exported): fixture paths and the deterministic inputs of tooling/sd-miniature/build.py.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Tensor } from '@guidekit/core'

export const fixture = (...parts: string[]): string => fileURLToPath(new URL(`./${parts.join("/")}`, import.meta.url))

/** A tensor as the build script summarises it: shape, sum, sum of |x| and the first 8 values. */
export interface Summary {
  shape: number[]
  sum: number
  absSum: number
  first: number[]
}

/** A deterministic input of the build script: `detInput(shape, phase)`. */
export interface DetInputSpec {
  shape: number[]
  phase: number
}

/** golden.json: reference outputs of the fixture models, written by tooling/sd-miniature/build.py. */
export interface Golden {
  note: string
  tokenizer: { vocabSize: number; prompts: readonly string[]; ids: readonly (readonly number[])[]; longPrompt: string; longIds: readonly number[] }
  textEncoder: { prompts: readonly string[]; lastHiddenState: Summary; pooler: Summary }
  unet: { input: DetInputSpec; timestep: number; outSample: Summary }
  vaeDecoder: { input: DetInputSpec; sample: Summary }
  /** Per-item outputs of each class-conditional fixture model on `input` with `classLabels` at `timestep`. */
  classConditional: {
    input: DetInputSpec
    timestep: number
    classLabels: number[]
    'tiny-dit': Summary[]
    'tiny-dit-rl': Summary[]
    'tiny-unet': Summary[]
  }
}

export const golden = JSON.parse(readFileSync(fixture('golden.json'), 'utf8')) as Golden

/** sin(0.37 i + phase) in float32, the build script's `det_input`. */
export function detInput(shape: readonly number[], phase = 0): Tensor {
  const n = shape.reduce((a, b) => a * b, 1)
  const data = new Float32Array(n)
  for (let i = 0; i < n; i++) data[i] = Math.sin(0.37 * i + phase)
  return new Tensor(data, shape)
}

export function summarize(data: ArrayLike<number>): { sum: number; absSum: number; first: number[] } {
  let sum = 0
  let absSum = 0
  for (let i = 0; i < data.length; i++) {
    sum += data[i] as number
    absSum += Math.abs(data[i] as number)
  }
  return { sum, absSum, first: Array.from({ length: Math.min(8, data.length) }, (_, i) => data[i] as number) }
}
