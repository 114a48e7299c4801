// What every command shares: the options that pick the model and the sampling, and loading them in the
// order that checks everything before any folder is made or any sampling starts.
import { choiceOption, integerOption, listOption, sizeOption, stringOption } from '../args.js'
import type { OptionTable, Values } from '../args.js'
import { attentionSpec } from '../draft.js'
import { UsageError } from '../errors.js'
import type { RunRecord } from '../metadata.js'
import { loadEngine } from '../models.js'
import type { Conditioning, Engine } from '../models.js'
import type { ProgressReporter, ProgressStream } from '../progress.js'
import { checkSamplingOptions, samplingSettings } from '../settings.js'

export interface CliIo {
  readonly stdout: ProgressStream
  readonly stderr: ProgressStream
  /** Aborted on SIGINT/SIGTERM; the run stops between steps and writes nothing partial. */
  readonly signal?: AbortSignal
  readonly env?: Readonly<Record<string, string | undefined>>
  /** How the user runs guidekit (`pnpm guidekit`, `node bin/guidekit.mjs`): recorded commands start with it. */
  readonly invocation?: readonly string[]
}

export interface CommandContext {
  readonly io: CliIo
  readonly signal: AbortSignal
  readonly progress: ProgressReporter
  /** A note or warning on stderr (silent with --quiet). */
  readonly note: (line: string) => void
  readonly invocation: readonly string[]
}

/** Options of every command that samples. */
export const MODEL_OPTIONS: OptionTable = {
  model: { type: 'string' },
  'rl-model': { type: 'string' },
  precision: { type: 'string' },
  class: { type: 'string', multiple: true },
  prompt: { type: 'string' },
  'negative-prompt': { type: 'string' },
  sampler: { type: 'string' },
  steps: { type: 'string' },
  spacing: { type: 'string' },
  karras: { type: 'boolean' },
  seed: { type: 'string' },
  out: { type: 'string', short: 'o' },
  overwrite: { type: 'boolean' },
  attention: { type: 'string' },
  threads: { type: 'string' },
  size: { type: 'string' },
  unbatched: { type: 'boolean' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
}

export const DEFAULT_MODEL = 'fashion-dit'
export const MAX_SEED = 2 ** 32 - 1

/** The model and sampling options, checked for syntax and range (nothing is loaded). */
export interface CommonOptions {
  readonly modelArg: string
  readonly rlModelArg: string | undefined
  readonly precision: string | undefined
  readonly seed: number
  readonly threads: number | undefined
  readonly attention: string | undefined
  readonly size: { readonly width: number; readonly height: number } | undefined
  readonly conditioning: Conditioning
  readonly overwrite: boolean
}

export function commonOptions(values: Values): CommonOptions {
  const classes = listOption(values, 'class')
  const prompt = stringOption(values, 'prompt')
  const negativePrompt = stringOption(values, 'negative-prompt')
  checkSamplingOptions(values)
  return {
    modelArg: stringOption(values, 'model') ?? DEFAULT_MODEL,
    rlModelArg: stringOption(values, 'rl-model'),
    precision: choiceOption(values, 'precision', ['fp32', 'fp16', 'int8']),
    seed: integerOption(values, 'seed', { min: 0, max: MAX_SEED }) ?? 0,
    threads: integerOption(values, 'threads', { min: 1, max: 256 }),
    attention: attentionSpec(stringOption(values, 'attention')),
    size: sizeOption(values),
    conditioning: {
      ...(classes === undefined ? {} : { classes }),
      ...(prompt === undefined ? {} : { prompt }),
      ...(negativePrompt === undefined ? {} : { negativePrompt }),
    },
    overwrite: values.overwrite === true,
  }
}

/** Loads the model and resolves the sampling settings; releases the model if anything is wrong. */
export async function loadRun(values: Values, o: CommonOptions, needsTunedModel: boolean, ctx: CommandContext): Promise<RunRecord> {
  const engine: Engine = await loadEngine({
    model: o.modelArg,
    needsTunedModel,
    ...(o.rlModelArg === undefined ? {} : { rlModel: o.rlModelArg }),
    ...(o.threads === undefined ? {} : { threads: o.threads }),
    ...(o.attention === undefined ? {} : { attention: o.attention }),
    ...(o.size === undefined ? {} : { size: o.size }),
    ...(o.precision === undefined ? {} : { precision: o.precision }),
    onWarning: (m) => ctx.note(`warning: ${m}`),
  })
  try {
    const settings = samplingSettings(values, engine)
    return { engine, settings, modelArg: o.modelArg, rlModelArg: engine.tunedName === undefined ? undefined : o.rlModelArg, attention: o.attention, size: o.size }
  } catch (error) {
    await engine.dispose()
    throw error
  }
}

/** The seeds of `count` images from `seed` (image i uses seed + i), checked to stay within 0..2^32-1. */
export function seedsFrom(seed: number, count: number, countFlag: string): number[] {
  if (seed + count - 1 > MAX_SEED) {
    throw new UsageError(`--seed ${seed} with ${countFlag} ${count} would reach seed ${seed + count - 1}, past the last seed ${MAX_SEED}; use --seed ${MAX_SEED - count + 1} or lower.`)
  }
  return Array.from({ length: count }, (_, i) => seed + i)
}

export const round = (v: number): number => Math.round(v * 1000) / 1000

/** Prints a command's `--json` summary on stdout (one pretty-printed object, as every command does). */
export function printSummary(ctx: CommandContext, summary: Record<string, unknown>): void {
  ctx.io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`)
}

/** The conditioning of images `start .. start + n`: a class-conditional model takes its slice of the cycled labels. */
export function batchConditioning(engine: Engine, conditioning: Conditioning, labels: readonly string[], start: number, n: number): Conditioning {
  return engine.kind === 'class-conditional' ? { ...conditioning, classes: labels.slice(start, start + n) } : conditioning
}

/** Consecutive batches of `items`, each with the index of its first item. */
export function* batchesOf<T>(items: readonly T[], size: number): Generator<[start: number, batch: T[]]> {
  for (let start = 0; start < items.length; start += size) yield [start, items.slice(start, start + size)]
}
