// `guidekit fit-linear-ag`: records CFG trajectories and fits LinearAG's per-step coefficients.
import { dirname } from 'node:path'
import { fitLinearAG, linearAGRecorder } from '@guidekit/adaptive'
import { choiceOption, integerOption, numberOption, stringOption } from '../args.js'
import type { OptionTable, Values } from '../args.js'
import { EXIT, InterruptedError, UsageError } from '../errors.js'
import { OutputFolders, checkTarget, settingsHash, singleFileTarget, slug, writeOutput } from '../output.js'
import { runOnce } from '../run.js'
import { MODEL_OPTIONS, batchConditioning, batchesOf, commonOptions, loadRun, printSummary, round, seedsFrom } from './common.js'
import type { CommandContext } from './common.js'

export const FIT_OPTIONS: OptionTable = {
  ...MODEL_OPTIONS,
  guidance: { type: 'string', multiple: true },
  scale: { type: 'string' },
  space: { type: 'string' },
  count: { type: 'string' },
  'batch-size': { type: 'string' },
}

export async function fitLinearAg(values: Values, ctx: CommandContext): Promise<number> {
  if (values.guidance !== undefined) throw new UsageError('fit-linear-ag records plain CFG at --scale; it takes no --guidance.')
  const scale = numberOption(values, 'scale', { min: 0, max: 1000 }) ?? 3
  const space = choiceOption(values, 'space', ['epsilon', 'x0'] as const) ?? 'epsilon'
  const count = integerOption(values, 'count', { min: 2, max: 4096 }) ?? 32
  const batchSize = integerOption(values, 'batch-size', { min: 1, max: 256 }) ?? 8
  const outArg = stringOption(values, 'out')
  const o = commonOptions(values)
  const seeds = seedsFrom(o.seed, count, '--count')
  const recorder = linearAGRecorder({ scale, space })
  const r = await loadRun(values, o, false, ctx)
  const { engine } = r
  try {
    const labels = engine.labels(o.conditioning, count)
    const hash = settingsHash({ model: r.modelArg, precision: engine.precision?.precision, scale, space, sampler: r.settings.sampler.label, steps: r.settings.steps, spacing: r.settings.spacing, karras: r.settings.karras, attention: r.attention ?? 'dense', seed: o.seed, count, labels })
    const out = singleFileTarget(outArg, '.json', `linear-ag-${slug(engine.name, 32)}-${slug(r.settings.sampler.label, 16)}-${r.settings.steps}-${hash}.json`, 'fit-linear-ag')
    const folders = new OutputFolders(dirname(out), `the coefficients (--out ${out})`)
    checkTarget(out, o.overwrite)
    await folders.around(async () => {
      const t0 = performance.now()
      for (const [start, batchSeeds] of batchesOf(seeds, batchSize)) {
        const conditioning = batchConditioning(engine, o.conditioning, labels, start, batchSeeds.length)
        const outcome = await runOnce({
          engine,
          guider: recorder.guider,
          guidanceLabel: `cfg:scale=${scale}`,
          sampler: r.settings.sampler.sampler,
          plan: r.settings.plan,
          seeds: batchSeeds,
          conditioning,
          signal: ctx.signal,
          progress: ctx.progress,
          progressLabel: `recording ${start + 1}-${start + batchSeeds.length}/${count}`,
        })
        ctx.progress.done(`recorded ${start + batchSeeds.length}/${count} trajectories (${outcome.seconds.toFixed(2)} s)`)
      }
      const coefficients = fitLinearAG(recorder.trajectories, { sampler: r.settings.sampler.label, scale, space })
      if (ctx.signal.aborted) throw ctx.signal.reason instanceof InterruptedError ? ctx.signal.reason : new InterruptedError('SIGINT')
      writeOutput(out, Buffer.from(`${JSON.stringify(coefficients, null, 2)}\n`), o.overwrite)
      const predicted = coefficients.coefficients.filter((c) => c !== null).length
      ctx.progress.done(`wrote ${out}: ${predicted}/${coefficients.steps} steps predict the unconditional branch`)
      if (values.json === true) {
        const summary = { command: 'fit-linear-ag', model: engine.name, file: out, files: [out], steps: r.settings.steps, sampler: r.settings.sampler.label, scale, space, trajectories: count, predictedSteps: predicted, residualRms: coefficients.fit?.residualRms ?? null, seconds: round((performance.now() - t0) / 1000) }
        printSummary(ctx, summary)
      }
    })
    return EXIT.ok
  } finally {
    await engine.dispose()
  }
}
