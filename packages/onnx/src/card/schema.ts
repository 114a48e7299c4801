// The one model-card schema of guidekit: what a model is, what it predicts, its noise schedule, its ONNX
// interface and (for the shipped models) how it was trained and measured. Written with zod; the JSON
// Schema shipped in the package (`model-card.schema.json`) is generated from it, and the Python training
// tooling validates every card it writes against that file.
import { z } from 'zod'

/** The card version written by current tooling. Version 1 cards (no roles, no timestepScale) stay valid. */
export const CARD_VERSION = 2

const finite = z.number().refine(Number.isFinite, { error: 'must be a finite number' })
const positiveInt = z.number().int().min(1)

/** Roles of a class-conditional generator's inputs. */
export const inputRoles = ['sample', 'timestep', 'class'] as const
export type InputRole = (typeof inputRoles)[number]

/** One input or output of the ONNX graph. A dimension that is a string, null or <= 0 is dynamic. */
export const tensorSpecSchema = z.object({
  name: z.string().min(1, { error: 'must be a non-empty name' }),
  role: z.enum([...inputRoles, 'prediction']).optional().describe('what guidekit feeds (sample, timestep, class) or reads (prediction); names are free'),
  dtype: z.enum(['float32', 'float16', 'int64', 'int32', 'float64', 'uint8', 'int8', 'bool']),
  shape: z.array(z.union([z.number().int(), z.string(), z.null()])),
})

const flowScheduleSchema = z.looseObject({
  family: z.literal('flow'),
  trainSteps: z.number().int().min(2, { error: 'must be an integer >= 2 (1000 for most models)' }).default(1000),
  shift: finite.refine((v) => v > 0, { error: 'must be > 0 (1 is unshifted; SD3 uses 3)' }).default(1),
  timestepScale: finite
    .refine((v) => v > 0, { error: 'must be > 0: the model input is sigma * timestepScale (1000 for SD3-style models, 1 for a timestep in [0, 1])' })
    .optional()
    .describe('the model timestep input is sigma * timestepScale; default trainSteps (1000)'),
})

const vpScheduleSchema = z.looseObject({
  family: z.literal('vp'),
  betaSchedule: z.enum(['scaled_linear', 'linear', 'squaredcos_cap_v2']).default('scaled_linear'),
  betaStart: finite.refine((v) => v > 0 && v < 1, { error: 'must be in (0, 1)' }).default(0.00085),
  betaEnd: finite.refine((v) => v > 0 && v < 1, { error: 'must be in (0, 1)' }).default(0.012),
  trainSteps: z.number().int().min(2, { error: 'must be an integer >= 2 (1000 for most models)' }).default(1000),
})

/** Sampling defaults a model recommends; the CLI uses them when the user does not choose. */
export const cardDefaultsSchema = z.object({
  steps: positiveInt.max(1000).optional(),
  guidance: z.string().min(1).optional().describe('a guidance spec in the CLI grammar, e.g. cfg:scale=3'),
  sampler: z.string().min(1).optional().describe('a sampler spec in the CLI grammar, e.g. euler or ddim:eta=0'),
  spacing: z.enum(['leading', 'trailing', 'linspace']).optional().describe('VP timestep spacing (flow plans ignore it)'),
  karras: z.boolean().optional(),
})

const imageSchema = z.object({
  channels: positiveInt,
  height: positiveInt,
  width: positiveInt,
  range: z
    .tuple([finite, finite], { error: 'must be [low, high], e.g. [-1, 1]' })
    .refine(([lo, hi]) => hi > lo, { error: 'must be [low, high] with high > low, e.g. [-1, 1]' })
    .default([-1, 1]),
})

const record = z.record(z.string(), z.unknown())

/** The verdict of a reduced-precision model's quality gate (e.g. FD within 5% and accuracy within 1 point of fp32). */
export const qualityGateSchema = z.looseObject({
  passed: z.boolean().describe('true when the model met the gate; the CLI picks a reduced-precision variant by default only then'),
  criteria: z.string().optional().describe('what was compared, e.g. "FD_int8 <= 1.05 FD_fp32 and accuracy_int8 >= accuracy_fp32 - 0.01"'),
})

/** What a model measured about itself. Free-form besides the fields guidekit reads. */
export const cardMetricsSchema = z.looseObject({
  msPerImage: finite
    .refine((v) => v > 0, { error: 'must be > 0 (milliseconds per image)' })
    .optional()
    .describe('measured milliseconds per image on the CPU (the default trajectory of the card: defaults.steps, defaults.guidance); compare it only between cards measured the same way'),
  qualityGate: qualityGateSchema.optional().describe('for a reduced-precision card: its quality gate against the model it derives from'),
})

const common = {
  name: z.string().min(1),
  cardVersion: z.union([z.literal(1), z.literal(2)]).default(1),
  description: z.string().optional(),
  architecture: record.optional(),
  training: record.optional(),
  metrics: cardMetricsSchema.optional(),
  notes: z.string().optional(),
  /** For a reduced-precision export: its weight precision and the name of the model it was derived from. */
  precision: z.enum(['fp32', 'fp16', 'int8']).optional().describe("weight precision (default 'fp32'); a variant is <name>-<precision>.card.json next to its model's card"),
  derivedFrom: z.string().min(1).optional().describe("the name of the model this reduced-precision variant was derived from (its card sits in the same folder)"),
  defaults: cardDefaultsSchema.optional(),
}

/** A class-conditional generator (DiT, UNet) over one ONNX file. */
export const generatorCardSchema = z.looseObject({
  ...common,
  kind: z.literal('generator').default('generator'),
  parameterization: z.enum(['epsilon', 'v', 'x0', 'flow-velocity']),
  schedule: z.discriminatedUnion('family', [flowScheduleSchema, vpScheduleSchema]),
  onnx: z.looseObject({
    file: z.string().min(1),
    opset: z.number().int().optional(),
    inputs: z.array(tensorSpecSchema).min(1),
    outputs: z.array(tensorSpecSchema).min(1),
  }),
  image: imageSchema,
  classes: z.array(z.string().min(1)).min(1).optional(),
  nullClass: z.number().int().min(0, { error: 'must be a label >= 0 outside the real classes (e.g. 10 for 10 classes)' }).nullable().optional(),
})

/** A classifier used to measure generators (fashion-eval). */
export const evaluatorCardSchema = z.looseObject({
  ...common,
  kind: z.literal('evaluator'),
  onnx: z.looseObject({ file: z.string().min(1), opset: z.number().int().optional(), inputs: z.array(tensorSpecSchema).min(1), outputs: z.array(tensorSpecSchema).min(1) }),
  image: imageSchema,
  classes: z.array(z.string().min(1)).min(1).optional(),
  featureDim: positiveInt.optional(),
})

/** A text-to-image pipeline folder in the diffusers ONNX layout (the card adds metrics and defaults). */
export const pipelineCardSchema = z.looseObject({
  ...common,
  kind: z.literal('text-to-image'),
  /** The pipeline folder, relative to the card. */
  folder: z.string().min(1),
})

/** Every guidekit model card. */
export const modelCardSchema = z.union([evaluatorCardSchema, pipelineCardSchema, generatorCardSchema])

/** A class-conditional generator's card, as parsed (defaults filled in). */
export type GeneratorCard = z.output<typeof generatorCardSchema>
export type EvaluatorCard = z.output<typeof evaluatorCardSchema>
export type PipelineCard = z.output<typeof pipelineCardSchema>
/** Any parsed model card. */
export type AnyModelCard = GeneratorCard | EvaluatorCard | PipelineCard
export type ModelCardTensor = z.output<typeof tensorSpecSchema>
export type ModelCardSchedule = GeneratorCard['schedule']
export type CardDefaults = z.output<typeof cardDefaultsSchema>
export type CardMetrics = z.output<typeof cardMetricsSchema>

/** The JSON Schema (draft 2020-12) of a model card as written to disk. */
export function modelCardJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(modelCardSchema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }),
    $id: 'https://guidekit.dev/schemas/model-card.schema.json',
    title: 'guidekit model card',
  }
}
