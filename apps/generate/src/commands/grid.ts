// `guidekit grid`: a labelled contact sheet comparing guidance strategies on the same seeds and classes.
import { dirname } from 'node:path'
import { buildGuidance } from '@guidekit/grammar'
import type { BuiltGuidance } from '@guidekit/grammar'
import { integerOption, stringOption } from '../args.js'
import type { OptionTable, Values } from '../args.js'
import { EXIT, InterruptedError, UsageError } from '../errors.js'
import { drawGrid } from '../grid-layout.js'
import { VERSION, commandLine, modelArgs, parametersText, samplingArgs } from '../metadata.js'
import { findTunedModel, locate } from '../models.js'
import { OutputFolders, checkTarget, settingsHash, singleFileTarget, slug, writeOutput } from '../output.js'
import { encodePng } from '../png.js'
import { runOnce } from '../run.js'
import type { RunOutcome } from '../run.js'
import { explicitGuidance, readText, recommendedGuidance } from '../settings.js'
import { draftCounts } from './generate.js'
import { MODEL_OPTIONS, commonOptions, loadRun, printSummary, round, seedsFrom } from './common.js'
import type { CommandContext } from './common.js'

export const GRID_OPTIONS: OptionTable = {
  ...MODEL_OPTIONS,
  guidance: { type: 'string', multiple: true },
  columns: { type: 'string' },
  cell: { type: 'string' },
}

/**
 * The default rows: no guidance, the model's recommended guidance (CFG at scale 3 when it recommends
 * nothing), CFG++, APG, adaptive guidance over APG, and RL guidance over the recommended guidance.
 */
export function defaultGridRows(recommended: string): string {
  return `none; ${recommended}; cfg++:scale=0.6; apg:scale=5,eta=0,momentum=-0.5; adaptive(threshold=0.999):apg(scale=5,eta=0,momentum=-0.5); rlg(scale=1.5):${recommended}`
}

export async function grid(values: Values, ctx: CommandContext): Promise<number> {
  const explicit = await explicitGuidance(values)
  const o = commonOptions(values)
  const columns = integerOption(values, 'columns', { min: 1, max: 16 }) ?? 4
  const minCell = integerOption(values, 'cell', { min: 8, max: 1024 }) ?? 96
  const outArg = stringOption(values, 'out')
  const seeds = seedsFrom(o.seed, columns, '--columns')
  // Whether an RL model exists is a fact about the files: without one, the default rlg row is left out.
  let needsTuned = explicit?.some((row) => row.needsTunedModel) ?? true
  if (explicit === undefined) {
    const tuned = await findTunedModel(await locate(o.modelArg), o.rlModelArg)
    if (tuned === undefined) {
      needsTuned = false
      ctx.note(`note: leaving out the rlg row (no RL model for ${o.modelArg}; pass --rl-model to include it)`)
    }
  }
  const r = await loadRun(values, o, needsTuned, ctx)
  const { engine } = r
  try {
    let rows: BuiltGuidance[]
    if (explicit !== undefined) rows = explicit
    else {
      const recommended = (await recommendedGuidance(engine)).label
      rows = (await buildGuidance(defaultGridRows(recommended), { readFile: readText })).filter((row) => needsTuned || !row.needsTunedModel)
    }
    const labels = engine.labels(o.conditioning, columns)
    const hash = settingsHash({ model: r.modelArg, precision: engine.precision?.precision, rows: rows.map((row) => row.label), sampler: r.settings.sampler.label, steps: r.settings.steps, spacing: r.settings.spacing, karras: r.settings.karras, attention: r.attention ?? 'dense', seed: o.seed, columns, labels, size: r.size, minCell, negativePrompt: o.conditioning.negativePrompt })
    const out = singleFileTarget(outArg, '.png', `grid-${slug(engine.name, 32)}-${slug(r.settings.sampler.label, 16)}-${r.settings.steps}-s${o.seed}-${hash}.png`, 'grid')
    const folders = new OutputFolders(dirname(out), `the grid (--out ${out})`)
    checkTarget(out, o.overwrite)
    await folders.around(async () => {
      const outcomes: RunOutcome[] = []
      for (const [i, row] of rows.entries()) {
        const outcome = await runOnce({
          engine,
          guider: row.guider,
          guidanceLabel: row.label,
          sampler: r.settings.sampler.sampler,
          plan: r.settings.plan,
          seeds,
          conditioning: o.conditioning,
          signal: ctx.signal,
          progress: ctx.progress,
          progressLabel: `row ${i + 1}/${rows.length} ${row.label}`,
          unbatched: values.unbatched === true,
        })
        outcomes.push(outcome)
        ctx.progress.done(`row ${i + 1}/${rows.length} ${row.label}: NFE ${round(outcome.result.nfe)}/image, ${outcome.modelRuns} model runs, ${outcome.seconds.toFixed(2)} s (${(outcome.seconds / columns).toFixed(3)} s/image)`)
      }
      const first = outcomes[0] as RunOutcome
      const image = first.images[0]
      if (!image) throw new UsageError('The grid has no rows to draw.')
      const s = r.settings
      const title = `${engine.name}${engine.precision && engine.precision.precision !== 'fp32' ? ` (${engine.precision.precision})` : ''} | ${s.sampler.label} | ${s.steps} steps${s.spacing ? ` ${s.spacing}${s.karras ? ' karras' : ''}` : ''} | attention ${r.attention ?? 'dense'}${engine.tunedName ? ` | rl ${engine.tunedName}` : ''}`
      const canvas = drawGrid({
        title,
        columns: seeds.map((seed, c) => ({ seed, label: first.labels[c] ?? '' })),
        rows: outcomes.map((outcome, i) => ({ label: (rows[i] as BuiltGuidance).label, stats: `NFE ${round(outcome.result.nfe)}, ${(outcome.seconds / columns).toFixed(2)} s/img`, images: outcome.images })),
        minCell,
      })
      const guidance = rows.map((row) => row.label).join('; ')
      const text = [`grid: ${guidance}`, parametersText(r, { label: o.conditioning.prompt ?? first.labels.join(', '), guidance, seed: o.seed, width: image.width, height: image.height, nfe: round(outcomes.reduce((a, x) => a + x.result.nfe, 0) / outcomes.length), negativePrompt: o.conditioning.negativePrompt }).split('\n').slice(1).join('\n')].join('\n')
      const args = ['grid', ...modelArgs(r, o.conditioning), '--guidance', guidance, ...samplingArgs(r), '--seed', String(o.seed), '--columns', String(columns), '--cell', String(minCell)]
      const bytes = await encodePng(canvas, { parameters: text, guidekit: JSON.stringify({ version: VERSION, command: commandLine(ctx.invocation, args) }) })
      if (ctx.signal.aborted) throw ctx.signal.reason instanceof InterruptedError ? ctx.signal.reason : new InterruptedError('SIGINT')
      writeOutput(out, bytes, o.overwrite)
      ctx.progress.done(`wrote ${out} (${canvas.width}x${canvas.height})`)
      if (values.json === true) {
        const summary = {
          command: 'grid',
          model: engine.name,
          ...(engine.precision ? { precision: engine.precision } : {}),
          ...(engine.tunedName ? { rlModel: engine.tunedName } : {}),
          sampler: s.sampler.label,
          steps: s.steps,
          ...(s.spacing === undefined ? {} : { spacing: s.spacing, karras: s.karras }),
          fromModel: s.fromModel,
          attention: engine.draft ? { spec: engine.draft.label, ...draftCounts(engine.draft) } : 'dense',
          file: out,
          files: [out],
          seeds,
          labels: first.labels,
          batched: values.unbatched !== true,
          rows: outcomes.map((outcome, i) => ({
            guidance: (rows[i] as BuiltGuidance).label,
            guider: (rows[i] as BuiltGuidance).guider.name,
            nfe: outcome.result.nfe,
            imageNfe: outcome.result.imageNfe,
            modelCalls: outcome.modelRuns,
            branchEvaluations: outcome.result.branchEvaluations,
            seconds: round(outcome.seconds),
            secondsPerImage: round(outcome.seconds / columns),
            guidanceReport: outcome.result.guidance,
          })),
          seconds: round(outcomes.reduce((a, x) => a + x.seconds, 0)),
        }
        printSummary(ctx, summary)
      }
    })
    return EXIT.ok
  } finally {
    await engine.dispose()
  }
}
