// The `guidekit` CLI: `generate` and `grid`. `main` takes argv and streams, so tests run it in-process.
import { readFileSync } from 'node:fs'
import { dirname, extname, join } from 'node:path'
import { parseArgs } from 'node:util'
import type { ParseArgsConfig } from 'node:util'
import { Canvas, CHAR_WIDTH, LINE_HEIGHT, fitText, wrapText } from './canvas.js'
import { EXIT, InterruptedError, UsageError, classify, oneLine } from './errors.js'
import { readFile } from 'node:fs/promises'
import { buildGuidance, buildSampler, formatParameters, guidanceHelp, samplerHelp } from '@guidekit/grammar'
import type { BuiltGuidance } from '@guidekit/grammar'
import { DEFAULT_MODEL, SHIPPED_MODELS, loadEngine } from './models.js'
import type { Conditioning, Engine } from './models.js'
import type { DraftAttentionRun } from './draft.js'
import { encodePng, ensureWritable, writeFileAtomic } from './png.js'
import { progressReporter } from './progress.js'
import type { ProgressReporter, ProgressStream } from './progress.js'
import { runOnce } from './run.js'
import type { RunOutcome } from './run.js'

export interface CliIo {
  readonly stdout: ProgressStream
  readonly stderr: ProgressStream
  /** Aborted on Ctrl-C; the run stops between steps and writes nothing partial. */
  readonly signal?: AbortSignal
  readonly env?: Readonly<Record<string, string | undefined>>
}

const VERSION = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version
  } catch {
    return '0.0.0'
  }
})()

export const DEFAULT_GUIDANCE = 'cfg:scale=3'
export const DEFAULT_GRID_GUIDANCE = 'none; cfg:scale=3; cfg++:scale=0.6; apg:scale=5,eta=0,momentum=-0.5; adaptive(threshold=0.999):apg(scale=5,eta=0,momentum=-0.5); rlg:scale=1.5,inner=cfg:scale=3'

const EXIT_CODES = `Exit codes:
  0    success
  1    unexpected failure (a bug, a model that fails while running)
  2    bad input: arguments, --guidance syntax, unknown model/class, corrupt ONNX, unwritable --out
  130  interrupted (Ctrl-C); no partial file is left behind`

const MODEL_HELP = `  --model <m>            ${SHIPPED_MODELS.join(' | ')} (default ${DEFAULT_MODEL}), a class-conditional
                         <name>.onnx / <name>.card.json, or a diffusers SD ONNX folder (model_index.json, unet/, ...)
  --rl-model <m>         RL-fine-tuned model for rlg (default: fashion-dit-rl for the shipped DiT, <name>-rl.onnx next to --model)
  --class <c>[,<c>...]   class name or index (class-conditional models), cycled over the images; default: all classes
  --prompt <text>        prompt (text-to-image folders); on class-conditional models, a class name
  --negative-prompt <t>  negative prompt (text-to-image folders)
  --sampler <s>          euler (default), euler-a[:eta=N], ddim[:eta=N], dpmpp-2m, flow-euler
  --steps <n>            sampling steps, 1..1000 (default 30)
  --seed <n>             first seed; image i uses seed + i (default 0)
  --attention <a>        dense (default) or draft[:keep=0.25,dense-steps=0.3,dense-layers=0,window=2x2,selection=row-topk] (DiT models)
  --threads <n>          ONNX Runtime intra-op threads (default: all cores)
  --size <W>x<H>         image size for text-to-image folders (default: the UNet's, else 512x512)
  --unbatched            one model run per branch instead of one per model (to measure batching)
  --json                 print a machine-readable summary on stdout
  --quiet                no progress output
  -h, --help             this help`

const GUIDANCE_GRAMMAR = `Guidance grammar (--guidance):
  name                         defaults, e.g. cfg
  name:key=value,key=value     e.g. apg:scale=8,eta=0,momentum=-0.5
  name(key=value,...)          the same, for nesting
  combinator(params):inner     adaptive, rlg and interval wrap another guider, e.g.
                               adaptive(threshold=0.99):apg(scale=8,eta=0)
                               rlg:scale=1.5,inner=cfg:scale=3   (= rlg(scale=1.5):cfg(scale=3))
                               interval(sigma=0.2..0.8):cfg(scale=4)
  linear-ag:coefficients=f.json  LinearAG with coefficients from guidekit fit-linear-ag
  spec; spec; ...              several strategies (grid rows)
Keys may be kebab-case or camelCase (norm-threshold = normThreshold); ranges are a..b (b may be inf).

Strategies:
${guidanceHelp()}

Samplers:
${samplerHelp()}`

const MAIN_HELP = `guidekit ${VERSION}: generate images with composable diffusion guidance.

Usage:
  guidekit generate [options]   write PNGs (parameters embedded as PNG text, A1111 convention)
  guidekit grid [options]       a labelled contact sheet: rows = strategies, columns = seeds
  guidekit fit-linear-ag [opts] record CFG trajectories and fit LinearAG coefficients (for linear-ag:coefficients=...)
  guidekit help [command]

Quick start:
  guidekit generate --class sneaker --guidance apg:scale=5 --count 4 --out out/
  guidekit grid --out out/grid.png

Run "guidekit <command> --help" for the options and the guidance grammar.

${EXIT_CODES}`

const GENERATE_HELP = `Usage: guidekit generate [options]

Generates --count images (one batch per --batch-size) and writes one PNG each. Each PNG carries the
full parameters in a tEXt chunk named "parameters" (A1111 convention) and a "guidekit" JSON chunk with
the command that reproduces it.

Options:
  --guidance <spec>      one guidance strategy (default ${DEFAULT_GUIDANCE}); grammar below
  --count <n>            images, 1..1000 (default 1)
  --batch-size <n>       images per model batch (default: min(count, 8))
  --out <path>           a folder (default out/) or a file name ending in .png (with --count > 1, -<seed> is added)
  --upscale <n>          nearest-neighbour upscale of the written PNGs, 1..16 (default 1)
${MODEL_HELP}

${GUIDANCE_GRAMMAR}

${EXIT_CODES}`

const GRID_HELP = `Usage: guidekit grid [options]

A contact sheet comparing guidance strategies on the same seeds and classes: one row per strategy,
one column per seed, each row labelled with its spec, its NFE per image and seconds per image.

Options:
  --guidance <specs>     ';'-separated strategies, or repeat --guidance (default:
                         ${DEFAULT_GRID_GUIDANCE})
  --columns <n>          seeds per row, 1..16 (default 4)
  --out <file.png>       output file (default out/grid.png)
  --cell <px>            minimum cell size in pixels; small images are upscaled (default 96)
${MODEL_HELP}

When the default strategies are used and no RL model can be found, the rlg row is left out.

${GUIDANCE_GRAMMAR}

${EXIT_CODES}`

const FIT_HELP = `Usage: guidekit fit-linear-ag [options]

Samples --count images with plain CFG at --scale, records the conditional and unconditional predictions
of every step, and fits LinearAG's per-step coefficients (Castillo et al., arXiv 2312.12487): on every
other step the unconditional branch is then predicted from the previous step's branches, saving about a
quarter of the network evaluations. Use the file with --guidance linear-ag:coefficients=<file>, with the
same model, sampler and --steps.

Options:
  --scale <w>            paper CFG scale of the recorded trajectories and of the guider (default 3)
  --space <s>            epsilon (default) or x0: where the regression runs
  --count <n>            trajectories (images) to fit on, 2..4096 (default 32)
  --batch-size <n>       images per model batch (default 8)
  --out <file.json>      output file (default out/linear-ag.json)
${MODEL_HELP}

${EXIT_CODES}`

type Values = Record<string, string | boolean | string[] | undefined>

const SHARED: NonNullable<ParseArgsConfig['options']> = {
  model: { type: 'string' },
  'rl-model': { type: 'string' },
  class: { type: 'string', multiple: true },
  prompt: { type: 'string' },
  'negative-prompt': { type: 'string' },
  guidance: { type: 'string', multiple: true },
  sampler: { type: 'string' },
  steps: { type: 'string' },
  seed: { type: 'string' },
  out: { type: 'string', short: 'o' },
  attention: { type: 'string' },
  threads: { type: 'string' },
  size: { type: 'string' },
  unbatched: { type: 'boolean' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
}

const COMMANDS = {
  generate: { help: GENERATE_HELP, options: { ...SHARED, count: { type: 'string' }, 'batch-size': { type: 'string' }, upscale: { type: 'string' } } },
  grid: { help: GRID_HELP, options: { ...SHARED, columns: { type: 'string' }, cell: { type: 'string' } } },
  'fit-linear-ag': { help: FIT_HELP, options: { ...SHARED, scale: { type: 'string' }, space: { type: 'string' }, count: { type: 'string' }, 'batch-size': { type: 'string' } } },
} as const satisfies Record<string, { help: string; options: NonNullable<ParseArgsConfig['options']> }>

type Command = keyof typeof COMMANDS

function parseCommandArgs(command: Command, argv: readonly string[]): Values {
  try {
    const { values } = parseArgs({ args: [...argv], options: COMMANDS[command].options, strict: true, allowPositionals: false })
    return values as Values
  } catch (error) {
    const e = error as { code?: string; message: string }
    const flag = /'(-[^']*)'/.exec(e.message)?.[1]
    if (e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UsageError(`Unknown option ${flag ?? ''} for guidekit ${command}; see guidekit ${command} --help.`)
    if (e.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') throw new UsageError(`guidekit ${command} takes options only (unexpected ${/'([^']*)'/.exec(e.message)?.[0] ?? 'argument'}); see guidekit ${command} --help.`)
    if (e.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw new UsageError(`${oneLine(e.message.split('.')[0] ?? e.message)}; see guidekit ${command} --help.`)
    throw error
  }
}

function integer(values: Values, name: string, fallback: number, min: number, max: number): number {
  const raw = values[name]
  if (raw === undefined) return fallback
  const text = String(raw).trim()
  const v = /^[+-]?\d+$/.test(text) ? Number(text) : Number.NaN
  if (!Number.isSafeInteger(v) || v < min || v > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${String(raw)}".`)
  return v
}

function str(values: Values, name: string): string | undefined {
  const v = values[name]
  if (v === undefined) return undefined
  if (typeof v !== 'string') throw new UsageError(`--${name} takes a value.`)
  if (v.trim() === '') throw new UsageError(`--${name} must not be empty.`)
  return v
}

function conditioningOf(values: Values): Conditioning {
  const classes = (values.class as string[] | undefined)?.flatMap((c) => c.split(',')).map((c) => c.trim()).filter((c) => c !== '')
  const prompt = values.prompt as string | undefined
  const negativePrompt = values['negative-prompt'] as string | undefined
  return {
    ...(classes && classes.length > 0 ? { classes } : {}),
    ...(prompt === undefined ? {} : { prompt }),
    ...(negativePrompt === undefined ? {} : { negativePrompt }),
  }
}

function sizeOf(values: Values): { width: number; height: number } | undefined {
  const raw = str(values, 'size')
  if (raw === undefined) return undefined
  const m = /^(\d+)x(\d+)$/.exec(raw.trim())
  const w = Number(m?.[1])
  const h = Number(m?.[2])
  if (!m || w < 8 || h < 8 || w > 4096 || h > 4096) throw new UsageError(`--size must be WIDTHxHEIGHT in pixels (8..4096), e.g. 512x512, got "${raw}".`)
  return { width: w, height: h }
}

const quote = (v: string): string => (/^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`)
const slug = (v: string): string =>
  v
    .toLowerCase()
    .replace(/[^a-z0-9.]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 48) || 'x'

interface Setup {
  readonly engine: Engine
  readonly sampler: { sampler: import('@guidekit/core').Sampler; label: string }
  readonly steps: number
  readonly seed: number
  readonly conditioning: Conditioning
  readonly modelArg: string
  readonly rlModelArg: string | undefined
  readonly attention: string | undefined
}

async function setup(values: Values, stderr: ProgressStream, needsTuned: boolean): Promise<Setup> {
  const modelArg = str(values, 'model') ?? DEFAULT_MODEL
  const rlModelArg = str(values, 'rl-model')
  const steps = integer(values, 'steps', 30, 1, 1000)
  const seed = integer(values, 'seed', 0, 0, 2 ** 32 - 1)
  const threads = values.threads === undefined ? undefined : integer(values, 'threads', 0, 1, 256)
  const attentionRaw = str(values, 'attention')
  const attention = attentionRaw === undefined || /^\s*(dense|none)\s*$/.test(attentionRaw) ? undefined : attentionRaw
  if (attention !== undefined) {
    // Validate the syntax before loading anything.
    const { parseDraftAttentionSpec } = await import('@guidekit/draft-attention')
    try {
      parseDraftAttentionSpec(attention)
    } catch (error) {
      throw new UsageError(`--attention "${attention}": ${error instanceof Error ? error.message : String(error)}`)
    }
  }
  const conditioning = conditioningOf(values)
  const size = sizeOf(values)
  const samplerSource = str(values, 'sampler') ?? 'euler'
  // Parse the sampler once for syntax (family checked again after loading).
  buildSampler(samplerSource, 'flow')
  const engine = await loadEngine({
    model: modelArg,
    needsTunedModel: needsTuned,
    ...(rlModelArg === undefined ? {} : { rlModel: rlModelArg }),
    ...(threads === undefined ? {} : { threads }),
    ...(attention === undefined ? {} : { attention }),
    ...(size === undefined ? {} : { size }),
    onWarning: (m) => stderr.write(`warning: ${oneLine(m)}\n`),
  })
  try {
    const sampler = buildSampler(samplerSource, engine.family)
    return { engine, sampler, steps, seed, conditioning, modelArg, rlModelArg, attention }
  } catch (error) {
    await engine.dispose()
    throw error
  }
}

function parametersText(s: Setup, o: { label: string; guidance: string; seed: number; width: number; height: number; nfe: number; conditioning: Conditioning }): string {
  const fields: [string, string | number][] = [
    ['Steps', s.steps],
    ['Sampler', s.sampler.label],
    ['Guidance', o.guidance],
    ['Seed', o.seed],
    ['Size', `${o.width}x${o.height}`],
    ['Model', s.modelArg],
  ]
  if (s.engine.tunedName) fields.push(['RL model', s.rlModelArg ?? s.engine.tunedName])
  fields.push(['Attention', s.attention ?? 'dense'], ['NFE', o.nfe], ['Version', `guidekit ${VERSION}`])
  return formatParameters({ label: o.label, fields, ...(o.conditioning.negativePrompt === undefined ? {} : { negativePrompt: o.conditioning.negativePrompt }) })
}

function reproduceArgs(s: Setup, o: { guidance: string; seed: number; classOrPrompt: Conditioning }): string[] {
  const args = ['guidekit', 'generate', '--model', s.modelArg]
  if (s.rlModelArg !== undefined) args.push('--rl-model', s.rlModelArg)
  if (o.classOrPrompt.classes) args.push('--class', o.classOrPrompt.classes.join(','))
  if (o.classOrPrompt.prompt !== undefined) args.push('--prompt', o.classOrPrompt.prompt)
  if (o.classOrPrompt.negativePrompt !== undefined) args.push('--negative-prompt', o.classOrPrompt.negativePrompt)
  args.push('--guidance', o.guidance, '--sampler', s.sampler.label, '--steps', String(s.steps), '--seed', String(o.seed))
  if (s.attention !== undefined) args.push('--attention', s.attention)
  return args
}

/** The per-image conditioning that reproduces image `i` alone. */
function imageConditioning(s: Setup, base: Conditioning, label: string): Conditioning {
  return s.engine.kind === 'class-conditional' ? { classes: [label] } : base
}

function generateTargets(out: string, seeds: readonly number[], names: readonly string[]): string[] {
  if (extname(out).toLowerCase() === '.png') {
    if (seeds.length === 1) return [out]
    const stem = out.slice(0, -4)
    return seeds.map((seed) => `${stem}-${seed}.png`)
  }
  return seeds.map((seed, i) => join(out, `${names[i]}-s${seed}.png`))
}

async function generate(values: Values, io: CliIo, signal: AbortSignal, progress: ProgressReporter): Promise<number> {
  const guidanceValues = (values.guidance as string[] | undefined) ?? [DEFAULT_GUIDANCE]
  if (guidanceValues.length > 1) throw new UsageError('guidekit generate takes one --guidance; use guidekit grid to compare strategies.')
  const [built] = await buildGuidance(guidanceValues[0] as string, { readFile: (path) => readFile(path, 'utf8') })
  const count = integer(values, 'count', 1, 1, 1000)
  const batchSize = integer(values, 'batch-size', Math.min(count, 8), 1, 256)
  const upscale = integer(values, 'upscale', 1, 1, 16)
  const out = str(values, 'out') ?? 'out'
  const guidance = built as BuiltGuidance
  const s = await setup(values, io.stderr, guidance.needsTunedModel)
  try {
    const seeds = Array.from({ length: count }, (_, i) => s.seed + i)
    const labels = s.engine.labels(s.conditioning, count)
    const names = labels.map((l) => `${slug(s.engine.name)}-${slug(l)}-${slug(guidance.label)}`.slice(0, 120))
    const targets = generateTargets(out, seeds, names)
    for (const t of new Set(targets.map((t) => dirname(t)))) ensureWritable(join(t, '.probe.png'))
    for (const t of targets) ensureWritable(t)
    const files: string[] = []
    const totals = { seconds: 0, modelRuns: 0, modelCalls: 0, branchEvaluations: 0, nfe: 0 }
    const guidanceReport: Record<string, number> = {}
    for (let start = 0; start < count; start += batchSize) {
      const batchSeeds = seeds.slice(start, start + batchSize)
      // Cycle the classes as if the whole count were one batch.
      const batchCond: Conditioning =
        s.engine.kind === 'class-conditional' ? { ...s.conditioning, classes: labels.slice(start, start + batchSize) } : s.conditioning
      const outcome: RunOutcome = await runOnce({
        engine: s.engine,
        guider: guidance.guider,
        guidanceLabel: guidance.label,
        sampler: s.sampler.sampler,
        steps: s.steps,
        seeds: batchSeeds,
        conditioning: batchCond,
        signal,
        progress,
        progressLabel: `${guidance.label} images ${start + 1}-${start + batchSeeds.length}/${count}`,
        unbatched: values.unbatched === true,
      })
      // Encode everything first, then write: an interrupt never leaves a half-written batch behind.
      const encoded: Buffer[] = []
      for (let i = 0; i < outcome.images.length; i++) {
        const image = outcome.images[i]!
        const seed = batchSeeds[i] as number
        const label = outcome.labels[i] as string
        const cond = imageConditioning(s, s.conditioning, label)
        const text = parametersText(s, { label, guidance: guidance.label, seed, width: image.width, height: image.height, nfe: outcome.result.nfe, conditioning: s.conditioning })
        const json = JSON.stringify({
          version: VERSION,
          command: reproduceArgs(s, { guidance: guidance.label, seed, classOrPrompt: cond }).map(quote).join(' '),
          model: s.modelArg,
          ...(s.engine.tunedName ? { rlModel: s.rlModelArg ?? s.engine.tunedName } : {}),
          ...(s.engine.kind === 'class-conditional' ? { class: label } : { prompt: s.conditioning.prompt, negativePrompt: s.conditioning.negativePrompt }),
          guidance: guidance.label,
          guider: guidance.guider.name,
          sampler: s.sampler.label,
          steps: s.steps,
          seed,
          width: image.width,
          height: image.height,
          attention: s.attention ?? 'dense',
          nfe: outcome.result.nfe,
        })
        encoded.push(await encodePng(image, { parameters: text, guidekit: json }, upscale))
      }
      if (signal.aborted) throw new InterruptedError('Interrupted; no partial files were written.')
      encoded.forEach((bytes, i) => {
        const target = targets[start + i] as string
        writeFileAtomic(target, bytes)
        files.push(target)
      })
      totals.seconds += outcome.seconds
      totals.modelRuns += outcome.modelRuns
      totals.modelCalls += outcome.result.modelCalls
      totals.branchEvaluations += outcome.result.branchEvaluations
      totals.nfe += outcome.result.nfe * batchSeeds.length
      for (const [k, v] of Object.entries(outcome.result.guidance)) guidanceReport[k] = (guidanceReport[k] ?? 0) + v
      progress.done(
        `${guidance.label}: ${batchSeeds.length} image(s) in ${outcome.seconds.toFixed(2)} s (NFE ${outcome.result.nfe}/image, ${outcome.modelRuns} model runs) -> ${files.slice(-batchSeeds.length).join(', ')}`,
      )
    }
    if (values.json === true) {
      const summary = {
        command: 'generate',
        model: s.engine.name,
        ...(s.engine.tunedName ? { rlModel: s.engine.tunedName } : {}),
        guidance: guidance.label,
        guider: guidance.guider.name,
        sampler: s.sampler.label,
        steps: s.steps,
        attention: s.engine.draft ? draftSummary(s.engine.draft) : 'dense',
        files,
        seeds,
        labels,
        nfe: totals.nfe / count,
        modelCalls: totals.modelRuns,
        branchEvaluations: totals.branchEvaluations,
        batched: values.unbatched !== true,
        seconds: round(totals.seconds),
        secondsPerImage: round(totals.seconds / count),
        guidanceReport,
      }
      io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`)
    }
    return EXIT.ok
  } finally {
    await s.engine.dispose()
  }
}

const round = (v: number): number => Math.round(v * 1000) / 1000

/** Draft attention in the JSON summary: sites per model (by card name) and dense/sparse runs. */
function draftSummary(draft: DraftAttentionRun): Record<string, unknown> {
  const d = draft.denoiser
  const sites = Object.fromEntries(Object.entries(d.sites).map(([name, n]) => [d.models[name]?.card.name ?? name, n]))
  return { spec: draft.label, sites, denseRuns: d.runs.dense, sparseRuns: d.runs.sparse }
}

async function grid(values: Values, io: CliIo, signal: AbortSignal, progress: ProgressReporter): Promise<number> {
  const explicit = values.guidance as string[] | undefined
  const columns = integer(values, 'columns', 4, 1, 16)
  const minCell = integer(values, 'cell', 96, 8, 1024)
  const out = str(values, 'out') ?? join('out', 'grid.png')
  if (extname(out).toLowerCase() !== '.png') throw new UsageError(`--out for grid must be a .png file, got "${out}".`)
  ensureWritable(out)
  let rows: BuiltGuidance[] = []
  for (const g of explicit ?? [DEFAULT_GRID_GUIDANCE]) rows.push(...(await buildGuidance(g, { readFile: (path) => readFile(path, 'utf8') })))
  let needsTuned = rows.some((r) => r.needsTunedModel)
  let s: Setup
  try {
    s = await setup(values, io.stderr, needsTuned)
  } catch (error) {
    // The default list includes rlg; without an RL model, drop that row rather than fail.
    if (explicit || !needsTuned || !(error instanceof UsageError) || !/rlg|RL|rl-model|fashion-dit-rl/.test(error.message)) throw error
    io.stderr.write(`note: leaving out the rlg row (${oneLine(error.message)})\n`)
    rows = rows.filter((r) => !r.needsTunedModel)
    needsTuned = false
    s = await setup(values, io.stderr, false)
  }
  try {
    const seeds = Array.from({ length: columns }, (_, i) => s.seed + i)
    const outcomes: RunOutcome[] = []
    for (const [r, row] of rows.entries()) {
      const outcome = await runOnce({
        engine: s.engine,
        guider: row.guider,
        guidanceLabel: row.label,
        sampler: s.sampler.sampler,
        steps: s.steps,
        seeds,
        conditioning: s.conditioning,
        signal,
        progress,
        progressLabel: `row ${r + 1}/${rows.length} ${row.label}`,
        unbatched: values.unbatched === true,
      })
      outcomes.push(outcome)
      progress.done(
        `row ${r + 1}/${rows.length} ${row.label}: NFE ${outcome.result.nfe}/image, ${outcome.modelRuns} model runs, ${outcome.seconds.toFixed(2)} s (${(outcome.seconds / columns).toFixed(3)} s/image)`,
      )
    }
    const first = outcomes[0]!
    const image = first.images[0]!
    const scale = Math.max(1, Math.ceil(minCell / image.width))
    const cellW = image.width * scale
    const cellH = image.height * scale
    const gap = 6
    const margin = 10
    const stats = outcomes.map((o) => `NFE ${round(o.result.nfe)}, ${(o.seconds / columns).toFixed(2)} s/img`)
    const labelChars = Math.min(36, Math.max(16, ...stats.map((t) => t.length), ...rows.map((r) => Math.min(r.label.length, 36))))
    const labelW = labelChars * CHAR_WIDTH + 12
    const title = `${s.engine.name} | ${s.sampler.label} | ${s.steps} steps | attention ${s.attention ?? 'dense'}${s.engine.tunedName ? ` | rl ${s.engine.tunedName}` : ''}`
    const headerH = LINE_HEIGHT * 3 + 8
    const width = margin * 2 + labelW + columns * cellW + (columns - 1) * gap
    const rowH = Math.max(cellH, LINE_HEIGHT * 5)
    const height = margin * 2 + headerH + rows.length * rowH + (rows.length - 1) * gap
    const canvas = new Canvas(width, height)
    canvas.text(fitText(title, Math.floor((width - 2 * margin) / CHAR_WIDTH)), margin, margin)
    const colChars = Math.max(4, Math.floor(cellW / CHAR_WIDTH))
    seeds.forEach((seed, c) => {
      const x = margin + labelW + c * (cellW + gap)
      canvas.text(fitText(`seed ${seed}`, colChars), x, margin + LINE_HEIGHT + 6)
      canvas.text(fitText(first.labels[c] ?? '', colChars), x, margin + 2 * LINE_HEIGHT + 6, [90, 90, 90])
    })
    outcomes.forEach((o, r) => {
      const y = margin + headerH + r * (rowH + gap)
      const lines = wrapText(rows[r]!.label, labelChars, 3)
      lines.forEach((line, k) => canvas.text(line, margin, y + k * LINE_HEIGHT))
      canvas.text(stats[r] as string, margin, y + lines.length * LINE_HEIGHT + 4, [110, 110, 110])
      o.images.forEach((img, c) => canvas.paste(img, margin + labelW + c * (cellW + gap), y, scale))
    })
    const text = [
      `grid: ${rows.map((r) => r.label).join('; ')}`,
      parametersText(s, { label: s.conditioning.prompt ?? first.labels.join(', '), guidance: rows.map((r) => r.label).join('; '), seed: s.seed, width: image.width, height: image.height, nfe: 0, conditioning: s.conditioning }).split('\n').slice(1).join('\n'),
    ].join('\n')
    const command = ['guidekit', 'grid', '--model', s.modelArg, '--guidance', rows.map((r) => r.label).join('; '), '--sampler', s.sampler.label, '--steps', String(s.steps), '--seed', String(s.seed), '--columns', String(columns)]
    if (s.conditioning.classes) command.push('--class', s.conditioning.classes.join(','))
    if (s.conditioning.prompt !== undefined) command.push('--prompt', s.conditioning.prompt)
    if (s.attention !== undefined) command.push('--attention', s.attention)
    const bytes = await encodePng(canvas, { parameters: text, guidekit: JSON.stringify({ version: VERSION, command: command.map(quote).join(' ') }) })
    if (signal.aborted) throw new InterruptedError('Interrupted; no partial files were written.')
    writeFileAtomic(out, bytes)
    progress.done(`wrote ${out} (${width}x${height})`)
    if (values.json === true) {
      const summary = {
        command: 'grid',
        model: s.engine.name,
        ...(s.engine.tunedName ? { rlModel: s.engine.tunedName } : {}),
        sampler: s.sampler.label,
        steps: s.steps,
        attention: s.attention ?? 'dense',
        file: out,
        files: [out],
        seeds,
        labels: first.labels,
        batched: values.unbatched !== true,
        rows: outcomes.map((o, r) => ({
          guidance: rows[r]!.label,
          guider: rows[r]!.guider.name,
          nfe: o.result.nfe,
          modelCalls: o.modelRuns,
          branchEvaluations: o.result.branchEvaluations,
          seconds: round(o.seconds),
          secondsPerImage: round(o.seconds / columns),
          guidanceReport: o.result.guidance,
        })),
        seconds: round(outcomes.reduce((a, o) => a + o.seconds, 0)),
      }
      io.stdout.write(`${JSON.stringify(summary, null, 2)}\n`)
    }
    return EXIT.ok
  } finally {
    await s.engine.dispose()
  }
}

async function fitLinearAg(values: Values, io: CliIo, signal: AbortSignal, progress: ProgressReporter): Promise<number> {
  if (values.guidance !== undefined) throw new UsageError('fit-linear-ag records plain CFG at --scale; it takes no --guidance.')
  const scaleRaw = str(values, 'scale') ?? '3'
  const scale = Number(scaleRaw)
  if (!Number.isFinite(scale)) throw new UsageError(`--scale must be a number, got "${scaleRaw}".`)
  const space = str(values, 'space') ?? 'epsilon'
  if (space !== 'epsilon' && space !== 'x0') throw new UsageError(`--space must be epsilon or x0, got "${space}".`)
  const count = integer(values, 'count', 32, 2, 4096)
  const batchSize = integer(values, 'batch-size', 8, 1, 256)
  const out = str(values, 'out') ?? join('out', 'linear-ag.json')
  if (extname(out).toLowerCase() !== '.json') throw new UsageError(`--out for fit-linear-ag must be a .json file, got "${out}".`)
  ensureWritable(out)
  const adaptive = await import('@guidekit/adaptive')
  const recorder = adaptive.linearAGRecorder({ scale, space })
  const s = await setup(values, io.stderr, false)
  try {
    const t0 = performance.now()
    const labels = s.engine.labels(s.conditioning, count)
    for (let start = 0; start < count; start += batchSize) {
      const seeds = Array.from({ length: Math.min(batchSize, count - start) }, (_, i) => s.seed + start + i)
      const conditioning: Conditioning = s.engine.kind === 'class-conditional' ? { ...s.conditioning, classes: labels.slice(start, start + seeds.length) } : s.conditioning
      const outcome = await runOnce({
        engine: s.engine,
        guider: recorder.guider,
        guidanceLabel: recorder.guider.name,
        sampler: s.sampler.sampler,
        steps: s.steps,
        seeds,
        conditioning,
        signal,
        progress,
        progressLabel: `recording ${start + 1}-${start + seeds.length}/${count}`,
      })
      progress.done(`recorded ${start + seeds.length}/${count} trajectories (${outcome.seconds.toFixed(2)} s)`)
    }
    const coefficients = adaptive.fitLinearAG(recorder.trajectories, { sampler: s.sampler.label, scale, space })
    if (signal.aborted) throw new InterruptedError('Interrupted; no partial files were written.')
    writeFileAtomic(out, Buffer.from(`${JSON.stringify(coefficients, null, 2)}\n`))
    const predicted = coefficients.coefficients.filter((c) => c !== null).length
    progress.done(`wrote ${out}: ${predicted}/${coefficients.steps} steps predict the unconditional branch`)
    if (values.json === true) {
      io.stdout.write(
        `${JSON.stringify({ command: 'fit-linear-ag', model: s.engine.name, file: out, files: [out], steps: s.steps, sampler: s.sampler.label, scale, space, trajectories: count, predictedSteps: predicted, residualRms: coefficients.fit?.residualRms ?? null, seconds: round((performance.now() - t0) / 1000) }, null, 2)}\n`,
      )
    }
    return EXIT.ok
  } finally {
    await s.engine.dispose()
  }
}

/**
 * Runs the CLI with `argv` (without `node` and the script) and returns the exit code. Never throws:
 * errors become one line on stderr.
 */
export async function main(argv: readonly string[], io: CliIo): Promise<number> {
  const signal = io.signal ?? new AbortController().signal
  const [first, ...rest] = argv
  let progress: ProgressReporter | undefined
  try {
    if (first === undefined || first === '-h' || first === '--help') {
      io.stdout.write(`${MAIN_HELP}\n`)
      return first === undefined ? EXIT.usage : EXIT.ok
    }
    if (first === '--version' || first === '-v') {
      io.stdout.write(`${VERSION}\n`)
      return EXIT.ok
    }
    if (first === 'help') {
      const topic = rest[0]
      if (topic === undefined) io.stdout.write(`${MAIN_HELP}\n`)
      else if (topic in COMMANDS) io.stdout.write(`${COMMANDS[topic as Command].help}\n`)
      else throw new UsageError(`Unknown command "${topic}"; commands: ${Object.keys(COMMANDS).join(', ')}.`)
      return EXIT.ok
    }
    if (!(first in COMMANDS)) throw new UsageError(`Unknown command "${first}"; commands: ${Object.keys(COMMANDS).join(', ')} (see guidekit --help).`)
    const command = first as Command
    const values = parseCommandArgs(command, rest)
    if (values.help === true) {
      io.stdout.write(`${COMMANDS[command].help}\n`)
      return EXIT.ok
    }
    progress = progressReporter(io.stderr, { quiet: values.quiet === true })
    if (command === 'generate') return await generate(values, io, signal, progress)
    if (command === 'grid') return await grid(values, io, signal, progress)
    return await fitLinearAg(values, io, signal, progress)
  } catch (error) {
    progress?.clear()
    const { code, message } = classify(error)
    io.stderr.write(`guidekit: ${oneLine(message)}\n`)
    if (io.env?.GUIDEKIT_DEBUG && error instanceof Error && error.stack) io.stderr.write(`${error.stack}\n`)
    return code
  }
}
