// Parsing a model card: structure (the zod schema), then the rules between fields, each failure a
// MODEL_INVALID error naming the card, the field and the fix.
import { GuidekitError } from '@guidekit/core'
import type { z } from 'zod'
import { modelCardSchema, type AnyModelCard, type GeneratorCard, type ModelCardTensor } from './schema.js'

function invalid(where: string, field: string, problem: string, fix: string, value?: unknown): never {
  throw new GuidekitError('MODEL_INVALID', `Model card ${where}: '${field}' ${problem}. ${fix}`, { details: { card: where, field, ...(value === undefined ? {} : { value }) } })
}

const FIX = 'Fix the card (its JSON Schema is @guidekit/onnx/model-card.schema.json) or regenerate it with the training tooling.'

function show(value: unknown): string {
  const text = JSON.stringify(value)
  if (text === undefined) return String(value)
  return text.length > 80 ? `${text.slice(0, 77)}...` : text
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root
  for (const k of path) v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[k] : undefined
  return v
}

/** zod's wording ("Invalid option: expected one of ...") turned into "must be ..." sentences. */
function plainMessage(message: string): string {
  const expected = /^(?:Invalid (?:input|option|value)|Too (?:small|big)): expected (.*?)(?:, received \w+)?$/.exec(message)
  if (expected) return `must be ${(expected[1] as string).replace(/^(number|string|boolean|array|object) to (have|be) /, '').replace(/^(number|string|boolean|array)$/, 'a $1').replace(/^object$/, 'an object')}`
  return message.startsWith('must') ? message : `is invalid: ${message}`
}

/** The most useful zod issue: for a union, the one from the branch the card's `kind` selects. */
function firstIssue(error: z.ZodError, root: unknown): z.core.$ZodIssue {
  const issue = error.issues[0] as z.core.$ZodIssue
  if (issue.code !== 'invalid_union' || issue.path.length > 0) return issue
  const kind = valueAt(root, ['kind'])
  const branch = kind === 'evaluator' ? 0 : kind === 'text-to-image' ? 1 : 2
  const inner = issue.errors[branch]?.[0]
  return inner ?? issue
}

/**
 * Validates a parsed JSON card and returns it with defaults filled in. `where` names the card in error
 * messages (its path, or a description). Structural problems and contradictions between fields (a
 * velocity model on a VP schedule, a null class that is a real class, an epsilon model on a flow schedule)
 * are `MODEL_INVALID`.
 *
 * @example
 * const card = parseModelCard(JSON.parse(text), 'my-dit.card.json')
 */
export function parseModelCard(value: unknown, where = 'card'): AnyModelCard {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) invalid(where, '(root)', `must be a JSON object, got ${show(value)}`, FIX, value)
  const result = modelCardSchema.safeParse(value)
  if (!result.success) {
    const issue = firstIssue(result.error, value)
    const field = issue.path.length === 0 ? '(root)' : issue.path.map(String).join('.')
    const got = valueAt(value, issue.path)
    invalid(where, field, `${plainMessage(issue.message)} (got ${show(got)})`, FIX, got)
  }
  const card = result.data
  if (card.kind === 'generator') checkGenerator(card, where)
  return card
}

/** {@link parseModelCard} for a class-conditional generator: other kinds are `MODEL_INVALID`. */
export function parseGeneratorCard(value: unknown, where = 'card'): GeneratorCard {
  const card = parseModelCard(value, where)
  if (card.kind !== 'generator') {
    invalid(where, 'kind', `is '${card.kind}', not 'generator'`, card.kind === 'evaluator' ? 'An evaluator classifies images; pass a generator model.' : 'Load a text-to-image folder with loadDiffusersPipeline.')
  }
  return card
}

function checkGenerator(card: GeneratorCard, where: string): void {
  const { parameterization: p, schedule } = card
  if (p === 'flow-velocity' && schedule.family !== 'flow') invalid(where, 'parameterization', `is 'flow-velocity' but schedule.family is '${schedule.family}'`, "Velocity models need schedule.family 'flow'.")
  if (p === 'v' && schedule.family !== 'vp') invalid(where, 'parameterization', `is 'v' but schedule.family is 'flow'`, "v-prediction is defined for 'vp' schedules; flow models predict 'flow-velocity'.")
  if (p === 'epsilon' && schedule.family === 'flow') {
    invalid(where, 'parameterization', "is 'epsilon' on a 'flow' schedule, where x0 cannot be recovered at sigma = 1", "Use 'flow-velocity' for flow-matching models, or schedule.family 'vp' for DDPM-style epsilon models.")
  }
  const { classes, nullClass } = card
  if (classes && nullClass !== undefined && nullClass !== null && nullClass < classes.length) {
    invalid(
      where,
      'nullClass',
      `is ${nullClass}, a real class (classes[${nullClass}] = ${show(classes[nullClass])})`,
      `The unconditional branch needs a label of its own, usually ${classes.length} (the label after the last class).`,
      nullClass,
    )
  }
  if (classes && new Set(classes.map((c) => c.toLowerCase())).size !== classes.length) invalid(where, 'classes', 'has duplicate names', 'Give each class a distinct name.')
  const names = card.onnx.inputs.map((t) => t.name)
  if (new Set(names).size !== names.length) invalid(where, 'onnx.inputs', 'lists an input name twice', 'List each input once.')
  classConditionalIo(card, where)
}

/** The tensors guidekit feeds and reads for a class-conditional generator, resolved from the card. */
export interface ClassConditionalIo {
  readonly sample: ModelCardTensor
  readonly timestep: ModelCardTensor
  readonly class: ModelCardTensor
  readonly prediction: ModelCardTensor
}

/** Names used when a card declares no roles (the interface of the first guidekit cards and diffusers UNets). */
export const DEFAULT_IO_NAMES = { sample: 'sample', timestep: 'timestep', class: 'class_labels', prediction: 'out_sample' } as const

const DTYPES = {
  sample: ['float32', 'float16'],
  timestep: ['float32', 'float16', 'int64', 'int32'],
  class: ['int64', 'int32'],
  prediction: ['float32', 'float16'],
} as const

/**
 * Which card input is the sample, the timestep and the class, and which output is the prediction: by
 * `role` where the card gives one, else by the default names (`sample`, `timestep`, `class_labels` ->
 * `out_sample`; a single output is the prediction). Checks each one's dtype and rank.
 */
export function classConditionalIo(card: GeneratorCard, where = 'card'): ClassConditionalIo {
  const pick = (list: readonly ModelCardTensor[], field: 'onnx.inputs' | 'onnx.outputs', role: keyof typeof DTYPES): ModelCardTensor => {
    const byRole = list.filter((t) => t.role === role)
    if (byRole.length > 1) invalid(where, field, `gives role '${role}' to ${byRole.length} tensors (${byRole.map((t) => t.name).join(', ')})`, 'Give each role to one tensor.')
    let spec = byRole[0] ?? list.find((t) => t.role === undefined && t.name === DEFAULT_IO_NAMES[role])
    if (!spec && role === 'prediction' && list.length === 1) spec = list[0]
    if (!spec) {
      invalid(
        where,
        field,
        `has no ${role === 'prediction' ? 'output' : 'input'} with role '${role}' (and none named '${DEFAULT_IO_NAMES[role]}'); it lists ${list.map((t) => t.name).join(', ')}`,
        `Add "role": "${role}" to the ${role === 'prediction' ? 'output that holds the model prediction' : `input that takes the ${role}`}.`,
      )
    }
    const index = list.indexOf(spec)
    const allowed: readonly string[] = DTYPES[role]
    if (!allowed.includes(spec.dtype)) invalid(where, `${field}[${index}].dtype`, `is ${spec.dtype} for the ${role} '${spec.name}'`, `guidekit feeds/reads the ${role} as ${allowed.join(' or ')}.`, spec.dtype)
    return spec
  }
  const sample = pick(card.onnx.inputs, 'onnx.inputs', 'sample')
  const timestep = pick(card.onnx.inputs, 'onnx.inputs', 'timestep')
  const klass = pick(card.onnx.inputs, 'onnx.inputs', 'class')
  const prediction = pick(card.onnx.outputs, 'onnx.outputs', 'prediction')
  const { channels, height, width } = card.image
  for (const [t, field] of [
    [sample, 'onnx.inputs'],
    [prediction, 'onnx.outputs'],
  ] as const) {
    const fixed = [channels, height, width]
    const ok = t.shape.length === 4 && t.shape.slice(1).every((d, i) => typeof d !== 'number' || d <= 0 || d === fixed[i])
    if (!ok) invalid(where, `${field} '${t.name}'.shape`, `is ${show(t.shape)}, but image is ${channels}x${height}x${width}`, `Declare [batch, ${channels}, ${height}, ${width}].`, t.shape)
  }
  if (timestep.shape.length > 1) invalid(where, `onnx.inputs '${timestep.name}'.shape`, `has rank ${timestep.shape.length}`, 'The timestep is a scalar [] or one value per batch item [batch].', timestep.shape)
  if (klass.shape.length !== 1) invalid(where, `onnx.inputs '${klass.name}'.shape`, `has rank ${klass.shape.length}`, 'Class labels are one integer per batch item: [batch].', klass.shape)
  return { sample, timestep, class: klass, prediction }
}
