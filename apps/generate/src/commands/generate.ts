// `guidekit generate`: --count images, one PNG each, with the parameters and the reproducing command embedded.
import { dirname, extname } from 'node:path'
import type { BuiltGuidance } from '@guidekit/grammar'
import { integerOption, stringOption } from '../args.js'
import type { OptionTable, Values } from '../args.js'
import { EXIT, InterruptedError, UsageError } from '../errors.js'
import { VERSION, commandLine, modelArgs, parametersText, samplingArgs } from '../metadata.js'
import type { RunRecord } from '../metadata.js'
import type { Conditioning } from '../models.js'
import { OutputFolders, checkTarget, imageTargets, settingsHash, slug, writeOutput } from '../output.js'
import { encodePng } from '../png.js'
import { runOnce } from '../run.js'
import { explicitGuidance, recommendedGuidance } from '../settings.js'
import { MODEL_OPTIONS, batchConditioning, batchesOf, commonOptions, loadRun, printSummary, round, seedsFrom } from './common.js'
import type { CommandContext } from './common.js'

export const GENERATE_OPTIONS: OptionTable = {
  ...MODEL_OPTIONS,
  guidance: { type: 'string', multiple: true },
  count: { type: 'string' },
  'batch-size': { type: 'string' },
  upscale: { type: 'string' },
}

/** One planned output file. */
interface Planned {
  readonly seed: number
  readonly label: string
  readonly target: string
}

/** Settings that shape an image besides its seed and label: any difference gives a different file name. */
function shapingSettings(r: RunRecord, guidance: string, conditioning: Conditioning, upscale: number): Record<string, unknown> {
  const s = r.settings
  return {
    model: r.modelArg,
    precision: r.engine.precision?.precision,
    rlModel: r.rlModelArg ?? r.engine.tunedName,
    guidance,
    sampler: s.sampler.label,
    steps: s.steps,
    spacing: s.spacing,
    karras: s.karras,
    attention: r.attention ?? 'dense',
    size: r.size,
    prompt: conditioning.prompt,
    negativePrompt: conditioning.negativePrompt,
    upscale,
  }
}

/** `<model>-<label>-<guidance>-<sampler>-<steps>-s<seed>-<hash>.png`: readable, and unique per settings. */
function fileName(r: RunRecord, guidance: string, label: string, seed: number, hash: string): string {
  return `${slug(r.engine.name, 32)}-${slug(label, 32)}-${slug(guidance, 40)}-${slug(r.settings.sampler.label, 16)}-${r.settings.steps}-s${seed}-${hash}.png`
}

export async function generate(values: Values, ctx: CommandContext): Promise<number> {
  // Everything the options alone decide is checked first, then the model; files come last.
  const explicit = await explicitGuidance(values)
  if (explicit !== undefined && explicit.length !== 1) {
    throw new UsageError(`guidekit generate takes one guidance strategy, got ${explicit.length} (${explicit.map((g) => JSON.stringify(g.label)).join(', ')}); compare several with guidekit grid.`)
  }
  const o = commonOptions(values)
  const count = integerOption(values, 'count', { min: 1, max: 1000 }) ?? 1
  const batchSize = integerOption(values, 'batch-size', { min: 1, max: 256 }) ?? Math.min(count, 8)
  const upscale = integerOption(values, 'upscale', { min: 1, max: 16 }) ?? 1
  const out = stringOption(values, 'out') ?? 'out'
  const seeds = seedsFrom(o.seed, count, '--count')
  const r = await loadRun(values, o, explicit?.[0]?.needsTunedModel ?? false, ctx)
  const { engine } = r
  try {
    const guidance: BuiltGuidance = explicit?.[0] ?? (await recommendedGuidance(engine))
    if (guidance.needsTunedModel && engine.tunedName === undefined) throw new UsageError(`${guidance.label} needs an RL-fine-tuned model: pass --guidance explicitly, or --rl-model.`)
    const labels = engine.labels(o.conditioning, count)
    const hashes = labels.map((label) => settingsHash({ ...shapingSettings(r, guidance.label, o.conditioning, upscale), label }))
    const names = labels.map((label, i) => fileName(r, guidance.label, label, seeds[i] as number, hashes[i] as string))
    const targets = imageTargets(out, seeds, names)
    const planned: Planned[] = targets.map((target, i) => ({ seed: seeds[i] as number, label: labels[i] as string, target }))
    const folders = new OutputFolders(extname(out).toLowerCase() === '.png' ? dirname(out) : out, `the images (--out ${out})`)
    for (const p of planned) checkTarget(p.target, o.overwrite)
    const files: string[] = []
    const imageNfe: number[] = []
    const totals = { seconds: 0, modelRuns: 0, branchEvaluations: 0, nfe: 0 }
    const guidanceReport: Record<string, number> = {}
    await folders.around(async () => {
      for (const [start, batch] of batchesOf(planned, batchSize)) {
        // Cycle the classes as if the whole count were one batch.
        const batchCond = batchConditioning(engine, o.conditioning, labels, start, batch.length)
        const outcome = await runOnce({
          engine,
          guider: guidance.guider,
          guidanceLabel: guidance.label,
          sampler: r.settings.sampler.sampler,
          plan: r.settings.plan,
          seeds: batch.map((p) => p.seed),
          conditioning: batchCond,
          signal: ctx.signal,
          progress: ctx.progress,
          progressLabel: `${guidance.label} images ${start + 1}-${start + batch.length}/${count}`,
          unbatched: values.unbatched === true,
        })
        // Encode everything first, then write: an interrupt never leaves a half-written batch behind.
        const encoded: Buffer[] = []
        for (const [i, image] of outcome.images.entries()) {
          const p = batch[i] as Planned
          const nfe = outcome.result.imageNfe[i] as number
          const cond: Conditioning = engine.kind === 'class-conditional' ? { classes: [p.label] } : o.conditioning
          const args = ['generate', ...modelArgs(r, cond), '--guidance', guidance.label, ...samplingArgs(r), '--seed', String(p.seed), ...(upscale > 1 ? ['--upscale', String(upscale)] : [])]
          const json = {
            version: VERSION,
            command: commandLine(ctx.invocation, args),
            model: r.modelArg,
            ...(engine.precision ? { precision: engine.precision.precision, modelFile: engine.precision.file } : {}),
            ...(engine.tunedName ? { rlModel: r.rlModelArg ?? engine.tunedName } : {}),
            ...(engine.kind === 'class-conditional' ? { class: p.label } : { prompt: o.conditioning.prompt, negativePrompt: o.conditioning.negativePrompt }),
            guidance: guidance.label,
            guider: guidance.guider.name,
            sampler: r.settings.sampler.label,
            steps: r.settings.steps,
            ...(r.settings.spacing === undefined ? {} : { spacing: r.settings.spacing, karras: r.settings.karras }),
            seed: p.seed,
            width: image.width,
            height: image.height,
            upscale,
            attention: r.attention ?? 'dense',
            nfe,
          }
          const text = parametersText(r, { label: p.label, guidance: guidance.label, seed: p.seed, width: image.width, height: image.height, nfe, negativePrompt: o.conditioning.negativePrompt, upscale })
          encoded.push(await encodePng(image, { parameters: text, guidekit: JSON.stringify(json) }, upscale))
          imageNfe.push(nfe)
        }
        if (ctx.signal.aborted) throw ctx.signal.reason instanceof InterruptedError ? ctx.signal.reason : new InterruptedError('SIGINT')
        encoded.forEach((bytes, i) => {
          const target = (batch[i] as Planned).target
          writeOutput(target, bytes, o.overwrite)
          files.push(target)
        })
        totals.seconds += outcome.seconds
        totals.modelRuns += outcome.modelRuns
        totals.branchEvaluations += outcome.result.branchEvaluations
        totals.nfe += outcome.result.nfe * batch.length
        for (const [k, v] of Object.entries(outcome.result.guidance)) guidanceReport[k] = (guidanceReport[k] ?? 0) + v
        ctx.progress.done(`${guidance.label}: ${batch.length} image(s) in ${outcome.seconds.toFixed(2)} s (NFE ${round(outcome.result.nfe)}/image, ${outcome.modelRuns} model runs) -> ${files.slice(-batch.length).join(', ')}`)
      }
    })
    if (values.json === true) {
      const summary = {
        command: 'generate',
        model: engine.name,
        ...(engine.precision ? { precision: engine.precision } : {}),
        ...(engine.tunedName ? { rlModel: engine.tunedName } : {}),
        guidance: guidance.label,
        guider: guidance.guider.name,
        sampler: r.settings.sampler.label,
        steps: r.settings.steps,
        ...(r.settings.spacing === undefined ? {} : { spacing: r.settings.spacing, karras: r.settings.karras }),
        fromModel: explicit === undefined && engine.defaults.guidance !== undefined ? [...r.settings.fromModel, 'guidance'] : r.settings.fromModel,
        attention: engine.draft ? { spec: engine.draft.label, ...draftCounts(engine.draft) } : 'dense',
        files,
        seeds,
        labels,
        nfe: totals.nfe / count,
        imageNfe,
        modelCalls: totals.modelRuns,
        branchEvaluations: totals.branchEvaluations,
        batched: values.unbatched !== true,
        seconds: round(totals.seconds),
        secondsPerImage: round(totals.seconds / count),
        guidanceReport,
      }
      printSummary(ctx, summary)
    }
    return EXIT.ok
  } finally {
    await engine.dispose()
  }
}

/** Draft attention in the JSON summary: sites per model (by card name) and dense/sparse runs. */
export function draftCounts(draft: NonNullable<RunRecord['engine']['draft']>): Record<string, unknown> {
  const d = draft.denoiser
  const sites = Object.fromEntries(Object.entries(d.sites).map(([name, n]) => [d.models[name]?.card.name ?? name, n]))
  return { sites, denseRuns: d.runs.dense, sparseRuns: d.runs.sparse }
}
