import { readFileSync, existsSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { GuidekitError } from '@guidekit/core'
import type { Parameterization } from '@guidekit/core'

/** One input or output declared by a model card. A dimension that is a string, null or <= 0 is dynamic. */
export interface ModelCardTensor {
  readonly name: string
  readonly dtype: string
  readonly shape: readonly (number | string | null)[]
}

/** Training schedule declared by a card. */
export type ModelCardSchedule =
  | { readonly family: 'flow'; readonly trainSteps?: number; readonly shift?: number }
  | {
      readonly family: 'vp'
      readonly betaSchedule?: 'scaled_linear' | 'linear' | 'squaredcos_cap_v2'
      readonly betaStart?: number
      readonly betaEnd?: number
      readonly trainSteps?: number
    }

/**
 * The JSON card shipped next to each guidekit model (`<name>.card.json`): what the model is, what it
 * predicts, its training schedule and its ONNX interface. The denoiser checks the session against it.
 */
export interface ModelCard {
  readonly name: string
  readonly kind: 'generator' | 'evaluator'
  readonly architecture?: Readonly<Record<string, unknown>>
  readonly parameterization: Parameterization
  readonly schedule: ModelCardSchedule
  readonly onnx: {
    readonly file: string
    readonly opset?: number
    readonly inputs: readonly ModelCardTensor[]
    readonly outputs: readonly ModelCardTensor[]
  }
  readonly image: { readonly channels: number; readonly height: number; readonly width: number; readonly range: readonly [number, number] }
  /** Class names, index = label. */
  readonly classes?: readonly string[]
  /** The label of the unconditional ("null") class. */
  readonly nullClass?: number
  readonly training?: Readonly<Record<string, unknown>>
  readonly metrics?: Readonly<Record<string, unknown>>
}

const parameterizations: readonly Parameterization[] = ['epsilon', 'v', 'x0', 'flow-velocity']

function invalid(where: string, field: string, expected: string, value: unknown): never {
  throw new GuidekitError('MODEL_INVALID', `Model card ${where}: '${field}' must be ${expected}, got ${JSON.stringify(value)}. Fix the card or regenerate it with the training tooling.`, {
    details: { card: where, field, value },
  })
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function checkTensors(where: string, field: string, value: unknown): void {
  if (!Array.isArray(value) || value.length === 0) invalid(where, field, 'a non-empty list of {name, dtype, shape}', value)
  value.forEach((t: unknown, i) => {
    if (!isRecord(t) || typeof t.name !== 'string' || typeof t.dtype !== 'string' || !Array.isArray(t.shape)) {
      invalid(where, `${field}[${i}]`, 'an object {name: string, dtype: string, shape: array}', t)
    }
  })
}

/**
 * Validates a parsed card (the fields the runtime relies on) and returns it typed. `where` names the card
 * in error messages.
 */
export function parseModelCard(value: unknown, where = 'card'): ModelCard {
  if (!isRecord(value)) invalid(where, '(root)', 'a JSON object', value)
  if (typeof value.name !== 'string') invalid(where, 'name', 'a string', value.name)
  if (value.kind !== undefined && value.kind !== 'generator' && value.kind !== 'evaluator') invalid(where, 'kind', "'generator' or 'evaluator'", value.kind)
  // Evaluators (classifiers) have no noise schedule; only generators need these.
  if (value.kind !== 'evaluator') {
    if (!parameterizations.includes(value.parameterization as Parameterization)) {
      invalid(where, 'parameterization', parameterizations.map((p) => `'${p}'`).join(', '), value.parameterization)
    }
    const schedule = value.schedule
    if (!isRecord(schedule) || (schedule.family !== 'vp' && schedule.family !== 'flow')) invalid(where, 'schedule.family', "'vp' or 'flow'", isRecord(schedule) ? schedule.family : schedule)
  }
  const onnx = value.onnx
  if (!isRecord(onnx)) invalid(where, 'onnx', 'an object {file, inputs, outputs}', onnx)
  if (typeof onnx.file !== 'string') invalid(where, 'onnx.file', 'a file name', onnx.file)
  checkTensors(where, 'onnx.inputs', onnx.inputs)
  checkTensors(where, 'onnx.outputs', onnx.outputs)
  const image = value.image
  if (!isRecord(image) || ![image.channels, image.height, image.width].every((d) => Number.isInteger(d) && (d as number) > 0)) {
    invalid(where, 'image', 'an object {channels, height, width, range} with positive integer sizes', image)
  }
  if (value.nullClass !== undefined && value.nullClass !== null && !Number.isInteger(value.nullClass)) invalid(where, 'nullClass', 'an integer label or null', value.nullClass)
  if (value.classes !== undefined && (!Array.isArray(value.classes) || !value.classes.every((c) => typeof c === 'string'))) {
    invalid(where, 'classes', 'a list of class names', value.classes)
  }
  const { nullClass, ...rest } = value
  return { kind: 'generator', ...rest, ...(nullClass === null || nullClass === undefined ? {} : { nullClass }), image: { range: [-1, 1], ...image } } as unknown as ModelCard
}

/** Reads and validates a `<name>.card.json` file. */
export function readModelCard(path: string): ModelCard {
  if (!existsSync(path)) {
    throw new GuidekitError('MODEL_NOT_FOUND', `Model card not found: ${path}. guidekit models ship a <name>.card.json next to <name>.onnx; pass { path, card } to supply one.`, {
      details: { path },
    })
  }
  let json: unknown
  try {
    json = JSON.parse(readFileSync(path, 'utf8'))
  } catch (cause) {
    throw new GuidekitError('MODEL_INVALID', `Model card ${path} is not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}.`, { cause, details: { path } })
  }
  return parseModelCard(json, path)
}

/**
 * Where a model's card and ONNX file are: `x.onnx` -> card `x.card.json`; `x.card.json` -> its `onnx.file`,
 * relative to the card.
 */
export function locateModel(path: string): { onnxPath: string; cardPath: string } {
  if (path.endsWith('.card.json')) {
    const card = readModelCard(path)
    return { onnxPath: resolve(dirname(path), card.onnx.file), cardPath: path }
  }
  const base = path.endsWith('.onnx') ? path.slice(0, -'.onnx'.length) : path
  return { onnxPath: path.endsWith('.onnx') ? path : `${base}.onnx`, cardPath: `${base}.card.json` }
}

/**
 * The label of a class given by index or name (case-insensitive); throws `INVALID_ARGUMENT` listing the
 * valid names.
 *
 * @example
 * classLabel(card, 'sneaker')  // 7 for Fashion-MNIST
 */
export function classLabel(card: ModelCard, value: string | number): number {
  const names = card.classes ?? []
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value >= 0 && value < names.length) return value
  } else {
    const trimmed = value.trim()
    if (/^\d+$/.test(trimmed) && Number(trimmed) < names.length) return Number(trimmed)
    const i = names.findIndex((n) => n.toLowerCase() === trimmed.toLowerCase())
    if (i >= 0) return i
  }
  throw new GuidekitError(
    'INVALID_ARGUMENT',
    `Unknown class ${JSON.stringify(value)} for model '${card.name}'. Valid classes: ${names.map((n, i) => `${i} ${JSON.stringify(n)}`).join(', ')}.`,
    { details: { parameter: 'class', value, classes: names } },
  )
}
