import { existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { GuidekitError, Tensor, modelInput, toPrediction } from '@guidekit/core'
import type { Branch, DenoiseRequest, Denoiser, Parameterization, Prediction, SamplingPlan, VpPlanOptions, VpSchedule } from '@guidekit/core'
import type * as ort from 'onnxruntime-node'
import { gatherCall, planCalls, splitCall } from '../internal/batching.js'
import type { ModelCall } from '../internal/batching.js'
import { checkIo, floatFeed, numericFeed, readFloat, runSession, sessionInputs, sessionOutputs, throwIfAborted } from '../internal/io.js'
import type { IoInfo } from '../internal/io.js'
import { openSession } from '../session.js'
import type { OnnxSessionOptions } from '../session.js'
import { loadClipTokenizer } from './clip-tokenizer.js'
import type { ClipTokenizer } from './clip-tokenizer.js'
import { parseSchedulerConfig, planFromConfig, scheduleFromConfig } from './scheduler-config.js'
import type { DiffusersSchedulerConfig } from './scheduler-config.js'

/** Stable Diffusion 1.x/2.x VAE latent scaling factor (`vae.config.scaling_factor`). */
export const SD_LATENT_SCALING_FACTOR = 0.18215

/** Options of {@link loadDiffusersPipeline}. */
export interface DiffusersPipelineOptions {
  readonly sessionOptions?: OnnxSessionOptions
  /** Receives warnings (prompt truncation); default `console.warn`. */
  readonly onWarning?: (message: string) => void
  /** VAE latent scaling factor; default 0.18215 (SD1.x/2.x; ONNX exports do not ship the VAE config). */
  readonly scalingFactor?: number
}

/** Options of {@link DiffusersPipeline.denoiser}. */
export interface PromptDenoiserOptions {
  /** One prompt for every batch item, or one per batch item. */
  readonly prompt: string | readonly string[]
  /** The negative branch's prompt(s); default `''` (the unconditional embedding SD's CFG uses). */
  readonly negativePrompt?: string | readonly string[]
  /** Batch size when `prompt` is a single string; default 1 (or the length of a prompt list). */
  readonly batch?: number
  readonly signal?: AbortSignal
}

/** A denoiser over a diffusers UNet, conditioned on encoded prompts. */
export interface PromptDenoiser extends Denoiser {
  readonly prompts: readonly string[]
  readonly negativePrompts: readonly string[]
  /** UNet runs so far (one per `predict`). */
  readonly modelCalls: number
}

/** A Stable Diffusion pipeline in the diffusers ONNX layout, loaded with onnxruntime-node. */
export interface DiffusersPipeline {
  readonly directory: string
  /** `model_index.json` `_class_name`, e.g. `'OnnxStableDiffusionPipeline'`. */
  readonly className: string
  readonly family: 'vp'
  readonly parameterization: Parameterization
  readonly scheduler: DiffusersSchedulerConfig
  readonly schedule: VpSchedule
  readonly tokenizer: ClipTokenizer
  /** UNet latent channels (4 for SD). */
  readonly latentChannels: number
  /** Image pixels per latent pixel (8 for SD). */
  readonly vaeScaleFactor: number
  readonly scalingFactor: number
  /** Session inputs/outputs per component, as discovered. */
  readonly io: Readonly<Record<'textEncoder' | 'unet' | 'vaeDecoder', { inputs: ReadonlyMap<string, IoInfo>; outputs: ReadonlyMap<string, IoInfo> }>>
  /** A sampling plan with the scheduler config's timestep spacing and steps offset. */
  plan(options: VpPlanOptions): SamplingPlan
  /** `[batch, latentChannels, height / 8, width / 8]`; height and width must be multiples of 8. */
  latentShape(options: { readonly batch: number; readonly height: number; readonly width: number }): number[]
  /** CLIP text embeddings `[prompts.length, 77, hiddenSize]` (`last_hidden_state`), in one text-encoder run. */
  encodePrompts(prompts: readonly string[], options?: { readonly signal?: AbortSignal }): Promise<Tensor>
  /** A denoiser for these prompts: branches `'positive'` and `'negative'` go to the UNet in one batched run. */
  denoiser(options: PromptDenoiserOptions): Promise<PromptDenoiser>
  /** Decodes final latents (unscaled by 0.18215 here) to RGB `[B, 3, 8h, 8w]` in [0, 1]. */
  decode(latents: Tensor, options?: { readonly signal?: AbortSignal }): Promise<Tensor>
  /** Releases the three sessions; safe to call more than once. */
  dispose(): Promise<void>
}

type Json = Record<string, unknown>

function readJsonFile(path: string, what: string): Json {
  if (!existsSync(path)) {
    throw new GuidekitError('MODEL_NOT_FOUND', `${what} not found: ${path}.`, { details: { path } })
  }
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Json
  } catch (cause) {
    throw new GuidekitError('MODEL_INVALID', `${path} is not valid JSON: ${cause instanceof Error ? cause.message : String(cause)}.`, { cause, details: { path } })
  }
}

const LAYOUT_HINT =
  'guidekit reads Stable Diffusion 1.x/2.x ONNX exports in the diffusers layout (model_index.json, tokenizer/, text_encoder/model.onnx, unet/model.onnx, vae_decoder/model.onnx, scheduler/scheduler_config.json), as written by diffusers\' convert_stable_diffusion_checkpoint_to_onnx.py or `optimum-cli export onnx`'

/**
 * Loads a Stable Diffusion pipeline exported to ONNX in the diffusers layout, checking each session's
 * inputs and outputs against the export's interface (names, dtypes, ranks):
 *
 * - `text_encoder/model.onnx`: `input_ids` int32 or int64 `[batch, sequence]` -> `last_hidden_state`
 * - `unet/model.onnx`: `sample` `[batch, 4, h, w]`, `timestep` (float32 `[batch]` from the diffusers script
 *   >= 0.7; int64 `[batch]` from older scripts/optimum; a float scalar from recent optimum),
 *   `encoder_hidden_states` `[batch, 77, D]` -> `out_sample`; float16 exports work
 * - `vae_decoder/model.onnx`: `latent_sample` -> `sample`
 * - `tokenizer/`: `tokenizer.json`, or CLIP's `vocab.json` + `merges.txt`
 * - `scheduler/scheduler_config.json`: the beta schedule, spacing, steps offset and prediction type
 *
 * @example
 * const sd = await loadDiffusersPipeline('stable-diffusion-v1-5-onnx', { sessionOptions: { threads: 4 } })
 * const denoiser = await sd.denoiser({ prompt: 'a photo of a cat', negativePrompt: 'blurry' })
 * const result = await sample({ denoiser, guider: cfg({ scale: 7.5 }), sampler: euler(), plan: sd.plan({ steps: 20 }),
 *   shape: sd.latentShape({ batch: 1, height: 512, width: 512 }), seed: 1 })
 * const rgb = await sd.decode(result.samples)   // [1, 3, 512, 512] in [0, 1]
 */
export async function loadDiffusersPipeline(directory: string, options: DiffusersPipelineOptions = {}): Promise<DiffusersPipeline> {
  if (!existsSync(directory) || !statSync(directory).isDirectory()) {
    throw new GuidekitError('MODEL_NOT_FOUND', `Model folder not found: ${directory}. ${LAYOUT_HINT}.`, { details: { directory } })
  }
  if (!existsSync(join(directory, 'model_index.json'))) {
    throw new GuidekitError('MODEL_INVALID', `${directory} has no model_index.json, so it is not a diffusers pipeline folder. ${LAYOUT_HINT}.`, { details: { directory } })
  }
  const index = readJsonFile(join(directory, 'model_index.json'), 'model_index.json')
  const className = typeof index._class_name === 'string' ? index._class_name : 'unknown'
  if ('text_encoder_2' in index || /XL|StableDiffusion3|Flux/i.test(className)) {
    throw new GuidekitError('UNSUPPORTED', `${directory} is a ${className} export; guidekit's diffusers loader supports Stable Diffusion 1.x/2.x (one CLIP text encoder and a UNet).`, {
      details: { directory, className },
    })
  }
  if (!existsSync(join(directory, 'unet', 'model.onnx')) && existsSync(join(directory, 'transformer', 'model.onnx'))) {
    throw new GuidekitError('UNSUPPORTED', `${directory} has transformer/model.onnx and no unet/model.onnx; transformer (DiT) text-to-image exports are not supported yet. ${LAYOUT_HINT}.`, {
      details: { directory },
    })
  }
  const scheduler = parseSchedulerConfig(readJsonFile(join(directory, 'scheduler', 'scheduler_config.json'), 'Scheduler config'), join(directory, 'scheduler', 'scheduler_config.json'))
  const schedule = scheduleFromConfig(scheduler)
  const parameterization: Parameterization = scheduler.predictionType === 'v_prediction' ? 'v' : scheduler.predictionType === 'sample' ? 'x0' : 'epsilon'
  const tokenizer = loadClipTokenizer(join(directory, 'tokenizer'))
  const warn = options.onWarning ?? ((m: string) => console.warn(m))
  const scalingFactor = options.scalingFactor ?? SD_LATENT_SCALING_FACTOR

  const sessions: ort.InferenceSession[] = []
  const open = async (component: string) => {
    const session = await openSession(join(directory, component, 'model.onnx'), options.sessionOptions)
    sessions.push(session)
    return { session, inputs: sessionInputs(session), outputs: sessionOutputs(session), name: `${component}/model.onnx` }
  }
  // Idempotent: dispose() may be called any number of times (ORT throws on a second release).
  let released: Promise<void> | undefined
  const release = (): Promise<void> => (released ??= Promise.all(sessions.map((s) => s.release())).then(() => undefined))
  try {
    const text = await open('text_encoder')
    const unet = await open('unet')
    const vae = await open('vae_decoder')
    const src = 'the diffusers Stable Diffusion ONNX export'
    const floats = ['float32', 'float16']
    checkIo(text.name, 'input', text.inputs, [{ name: 'input_ids', dtypes: ['int32', 'int64'], ranks: [2] }], src)
    checkIo(text.name, 'output', text.outputs, [{ name: 'last_hidden_state', dtypes: floats, ranks: [3] }], src)
    checkIo(
      unet.name,
      'input',
      unet.inputs,
      [
        { name: 'sample', dtypes: floats, ranks: [4] },
        { name: 'timestep', dtypes: ['float32', 'float16', 'int64', 'int32'], ranks: [0, 1] },
        { name: 'encoder_hidden_states', dtypes: floats, ranks: [3] },
      ],
      src,
    )
    checkIo(unet.name, 'output', unet.outputs, [{ name: 'out_sample', dtypes: floats, ranks: [4] }], src)
    checkIo(vae.name, 'input', vae.inputs, [{ name: 'latent_sample', dtypes: floats, ranks: [4] }], src)
    checkIo(vae.name, 'output', vae.outputs, [{ name: 'sample', dtypes: floats, ranks: [4] }], src)

    const dim = (info: IoInfo | undefined, axis: number): number | undefined => {
      const d = info?.shape[axis]
      return typeof d === 'number' && d > 0 ? d : undefined
    }
    const latentChannels = dim(unet.inputs.get('sample'), 1) ?? dim(vae.inputs.get('latent_sample'), 1) ?? 4
    const hidden = dim(text.outputs.get('last_hidden_state'), 2)
    const crossDim = dim(unet.inputs.get('encoder_hidden_states'), 2)
    if (hidden !== undefined && crossDim !== undefined && hidden !== crossDim) {
      throw new GuidekitError(
        'INPUT_MISMATCH',
        `${unet.name}: input 'encoder_hidden_states' has width ${crossDim}, but ${text.name} outputs 'last_hidden_state' of width ${hidden}; the text encoder and UNet are from different models.`,
        { details: { expected: hidden, actual: crossDim } },
      )
    }
    const idsType = (text.inputs.get('input_ids') as IoInfo).dtype
    const vaeScaleFactor = 8

    const encodePrompts = async (prompts: readonly string[], signal?: AbortSignal): Promise<Tensor> => {
      if (prompts.length === 0) throw new GuidekitError('INVALID_ARGUMENT', 'encodePrompts needs at least one prompt.')
      const L = tokenizer.maxLength
      const ids: number[] = []
      for (const p of prompts) ids.push(...tokenizer.encode(p, { onWarning: warn }).ids)
      const out = await runSession(text.session, { input_ids: numericFeed(ids, [prompts.length, L], idsType) }, text.name, signal)
      const { data, shape } = readFloat(out.last_hidden_state, text.name, 'last_hidden_state')
      return new Tensor(data, shape)
    }

    const unetSample = unet.inputs.get('sample') as IoInfo
    const unetTimestep = unet.inputs.get('timestep') as IoInfo
    const unetContext = unet.inputs.get('encoder_hidden_states') as IoInfo

    const pipeline: DiffusersPipeline = {
      directory,
      className,
      family: 'vp',
      parameterization,
      scheduler,
      schedule,
      tokenizer,
      latentChannels,
      vaeScaleFactor,
      scalingFactor,
      io: {
        textEncoder: { inputs: text.inputs, outputs: text.outputs },
        unet: { inputs: unet.inputs, outputs: unet.outputs },
        vaeDecoder: { inputs: vae.inputs, outputs: vae.outputs },
      },
      plan: (planOptions) => planFromConfig(scheduler, schedule, planOptions),
      latentShape({ batch, height, width }) {
        for (const [name, v] of [
          ['height', height],
          ['width', width],
        ] as const) {
          if (!Number.isInteger(v) || v <= 0 || v % vaeScaleFactor !== 0) {
            throw new GuidekitError('INVALID_ARGUMENT', `${name} must be a positive multiple of ${vaeScaleFactor} pixels, got ${v}.`, { details: { parameter: name, value: v } })
          }
        }
        if (!Number.isInteger(batch) || batch < 1) throw new GuidekitError('INVALID_ARGUMENT', `batch must be a positive integer, got ${batch}.`, { details: { parameter: 'batch' } })
        return [batch, latentChannels, height / vaeScaleFactor, width / vaeScaleFactor]
      },
      encodePrompts: (prompts, o = {}) => encodePrompts(prompts, o.signal),
      async denoiser(o) {
        const list = (v: string | readonly string[] | undefined, fallback: string, n: number, name: string): string[] => {
          if (v === undefined) return new Array<string>(n).fill(fallback)
          if (typeof v === 'string') return new Array<string>(n).fill(v)
          if (v.length === n) return [...v]
          if (v.length === 1) return new Array<string>(n).fill(v[0] as string)
          throw new GuidekitError('INVALID_ARGUMENT', `${name} has ${v.length} entries but the batch is ${n}; pass one per batch item or a single string.`, { details: { parameter: name } })
        }
        const batch = o.batch ?? (typeof o.prompt === 'string' ? 1 : o.prompt.length)
        if (!Number.isInteger(batch) || batch < 1) throw new GuidekitError('INVALID_ARGUMENT', `batch must be a positive integer, got ${batch}.`, { details: { parameter: 'batch' } })
        const prompts = list(o.prompt, '', batch, 'prompt')
        const negatives = list(o.negativePrompt, '', batch, 'negativePrompt')
        // Encode every distinct prompt once, in one text-encoder run.
        const unique = [...new Set([...prompts, ...negatives])]
        const embeddings = await encodePrompts(unique, o.signal)
        const rowSize = embeddings.sampleSize
        const [, seq = tokenizer.maxLength, width = 0] = embeddings.shape
        const rowOf = new Map(unique.map((p, i) => [p, i]))
        const positiveRows = prompts.map((p) => rowOf.get(p) as number)
        const negativeRows = negatives.map((p) => rowOf.get(p) as number)
        const contextRow = (branch: Branch, item: number): number => {
          if (branch.role === 'positive' || branch.role === 'conditional') return positiveRows[item] as number
          if (branch.role === 'negative' || branch.role === 'unconditional') return negativeRows[item] as number
          throw new GuidekitError('INVALID_ARGUMENT', `Unknown branch role '${branch.role}': prompt denoisers understand 'positive' (the prompt) and 'negative' (the negative prompt).`, {
            details: { parameter: 'branch.role', value: branch.role },
          })
        }
        const resolve = (branch: Branch): string => {
          if (branch.model === undefined || branch.model === 'base') return 'unet'
          throw new GuidekitError('INVALID_ARGUMENT', `A branch asks for model '${branch.model}', but a diffusers pipeline has one UNet ('base').`, {
            details: { parameter: 'branch.model', value: branch.model },
          })
        }
        // The conditioning of a call depends only on its branch layout, which repeats every step: cache it.
        const contexts = new Map<string, Float32Array>()
        const contextFor = (call: ModelCall): Float32Array => {
          const key = call.segments.map((s) => `${s.branch.role}:${s.rows.join(',')}`).join('|')
          let cached = contexts.get(key)
          if (!cached) {
            cached = buildContext(call)
            if (contexts.size < 16) contexts.set(key, cached)
          }
          return cached
        }
        const buildContext = (call: ModelCall): Float32Array => {
          const out = new Float32Array(call.batch * rowSize)
          let k = 0
          for (const s of call.segments) {
            for (const r of s.rows) {
              const row = contextRow(s.branch, r)
              out.set(embeddings.data.subarray(row * rowSize, (row + 1) * rowSize), k * rowSize)
              k++
            }
          }
          return out
        }
        let modelCalls = 0
        const denoiser: PromptDenoiser = {
          specificationVersion: 'v1',
          family: 'vp',
          prompts,
          negativePrompts: negatives,
          get modelCalls() {
            return modelCalls
          },
          async predict(request: DenoiseRequest): Promise<Prediction[]> {
            const { x, sigma, timestep, branches, signal } = request
            if (x.shape.length !== 4 || x.shape[1] !== latentChannels || x.batch !== batch) {
              throw new GuidekitError(
                'INPUT_MISMATCH',
                `x has shape [${x.shape.join(', ')}], but this denoiser takes latents [${batch}, ${latentChannels}, h, w] (batch ${batch} from its prompts).`,
                { details: { actual: x.shape } },
              )
            }
            const [call] = planCalls(branches, batch, resolve)
            const c = call as ModelCall
            const xs = gatherCall(x, c)
            const input = modelInput(xs, sigma, 'vp')
            const feeds: Record<string, ort.Tensor> = {
              sample: floatFeed(input.data, input.shape, unetSample.dtype),
              timestep: unetTimestep.shape.length === 0 ? numericFeed([timestep], [], unetTimestep.dtype) : numericFeed(new Array<number>(c.batch).fill(timestep), [c.batch], unetTimestep.dtype),
              encoder_hidden_states: floatFeed(contextFor(c), [c.batch, seq, width], unetContext.dtype),
            }
            const out = await runSession(unet.session, feeds, unet.name, signal)
            modelCalls++
            const { data } = readFloat(out.out_sample, unet.name, 'out_sample')
            const outs = splitCall(new Tensor(data, xs.shape), c)
            const ins = splitCall(xs, c)
            const results: Prediction[] = new Array(branches.length)
            c.segments.forEach((s, k) => {
              results[s.branchIndex] = toPrediction({ output: outs[k] as Tensor, x: ins[k] as Tensor, sigma, parameterization, family: 'vp' })
            })
            return results
          },
        }
        return denoiser
      },
      async decode(latents, o = {}) {
        throwIfAborted(o.signal)
        if (latents.shape.length !== 4 || latents.shape[1] !== latentChannels) {
          throw new GuidekitError('INPUT_MISMATCH', `decode() takes latents [batch, ${latentChannels}, h, w], got [${latents.shape.join(', ')}].`, { details: { actual: latents.shape } })
        }
        const scaled = new Float32Array(latents.size)
        for (let i = 0; i < scaled.length; i++) scaled[i] = (latents.data[i] as number) / scalingFactor
        const info = vae.inputs.get('latent_sample') as IoInfo
        const out = await runSession(vae.session, { latent_sample: floatFeed(scaled, latents.shape, info.dtype) }, vae.name, o.signal)
        const { data, shape } = readFloat(out.sample, vae.name, 'sample')
        // VAE output is in [-1, 1]; diffusers' image processor maps it to [0, 1] and clamps.
        const rgb = new Float32Array(data.length)
        for (let i = 0; i < rgb.length; i++) rgb[i] = Math.min(1, Math.max(0, (data[i] as number) * 0.5 + 0.5))
        return new Tensor(rgb, shape)
      },
      dispose: release,
    }
    return pipeline
  } catch (error) {
    await release()
    throw error
  }
}
