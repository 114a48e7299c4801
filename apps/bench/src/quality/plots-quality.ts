// The quality benchmark's plots, each over rows of one size (FD is only comparable at equal n), with 95%
// bootstrap intervals as error bars.
import { join } from 'node:path'
import { meanReplicates, percentileInterval, resampleCounts } from './bootstrap.js'
import type { Grid } from './configs.js'
import { writeChartPng, type Series } from './plots.js'
import type { Row } from './runner.js'

const series = (name: string, rows: readonly Row[], x: (r: Row) => number, extra: Partial<Series> = {}): Series => ({
  name,
  points: rows.map((r) => [x(r), r.frechetDistance] as const),
  intervals: rows.map((r) => r.frechetDistanceCi),
  ...extra,
})

/** Writes the PNGs of each generator (at its largest step count, first sampler, the size every row has); returns their file names. */
export async function writePlots(options: { out: string; loaded: readonly { name: string; grid: Grid; rows: readonly Row[] }[] }): Promise<string[]> {
  const files: string[] = []
  for (const { name, grid, rows } of options.loaded) {
    const n = grid.sweepImages || grid.images
    const at = rows.filter((r) => r.images === n)
    if (!at.length) continue
    const steps = Math.max(...at.map((r) => r.steps))
    const sampler = at.find((r) => r.steps === steps)?.sampler as string
    const group = at.filter((r) => r.steps === steps && r.sampler === sampler)
    const of = (strategy: string, keep: (r: Row) => boolean = () => true) => group.filter((r) => r.strategy === strategy && keep(r))
    const setting = `${sampler}, ${steps} steps, n=${n}, 95% intervals`
    const write = async (file: string, chart: Parameters<typeof writeChartPng>[1]) => {
      if (!chart.series.some((s) => s.points.length)) return
      await writeChartPng(join(options.out, file), { ...chart, series: chart.series.filter((s) => s.points.length) })
      files.push(file)
    }
    await write(`quality-${name}-fd-vs-scale.png`, {
      title: `${name}: FD vs guidance scale (${setting})`,
      xLabel: 'guidance scale w (CFG++: first-order matched w)',
      yLabel: 'Frechet distance (fashion-eval features)',
      series: [
        series('CFG', of('cfg'), (r) => r.params.scale as number),
        series('APG', of('apg'), (r) => r.params.scale as number),
        series('CFG++', of('cfg++'), (r) => Number(r.extra.effectiveCfgScale)),
      ],
    })
    const rlg = of('rlg')
    if (rlg.length) {
      const rewardCi = (r: Row) => percentileInterval(meanReplicates(r.perImage.reward, resampleCounts(r.images, { resamples: r.bootstrap.resamples })))
      await write(`quality-${name}-reward-vs-rlg-weight.png`, {
        title: `${name}: compressibility reward vs RLG weight (${setting})`,
        xLabel: 'RLG weight w (0 = base, 1 = RL model)',
        yLabel: 'mean reward (-PNG bytes)',
        series: [{ name: `RLG (cfg w=${grid.rlgScale})`, points: rlg.map((r) => [r.params.weight as number, r.reward] as const), intervals: rlg.map(rewardCi) }],
      })
    }
    await write(`quality-${name}-ag-nfe-vs-fd.png`, {
      title: `${name}: FD vs NFE, adaptive guidance (${setting})`,
      xLabel: 'NFE per image',
      yLabel: 'Frechet distance',
      series: [
        series(`CFG w=${grid.agScale}`, of('cfg', (r) => r.params.scale === grid.agScale), (r) => r.nfe, { line: false, marker: 'ring' }),
        series('AG (calibrated thresholds)', of('ag-cfg'), (r) => r.nfe),
        series('LinearAG', of('linear-ag'), (r) => r.nfe),
      ],
    })
  }
  return files
}
