// The configurations of the quality benchmark: every strategy on the same seeds and classes.
import { adaptive, fitLinearAG, linearAG, linearAGRecorder } from '@guidekit/adaptive'
import { apg } from '@guidekit/apg'
import { cfg } from '@guidekit/cfg'
import { cfgPlusPlus, cfgScaleFromLambda } from '@guidekit/cfg-pp'
import { type Guider, type SamplingPlan } from '@guidekit/core'
import { rlg } from '@guidekit/rlg'
import type { GeneratorName } from './models.js'

export type Strategy = 'cfg' | 'cfg++' | 'apg' | 'ag-cfg' | 'ag-apg' | 'linear-ag' | 'rlg' | 'draft-attention'

export interface Config {
  /** Stable cache key (file name) of the configuration. */
  readonly id: string
  readonly generator: GeneratorName
  readonly strategy: Strategy
  /** Human-readable, e.g. `cfg w=3`. */
  readonly label: string
  readonly params: Readonly<Record<string, number>>
  readonly steps: number
  readonly sampler: string
  /** Which denoiser: the generator, the base+RL pair, or the draft-attention rewrite at a keep ratio. */
  readonly denoiser: 'base' | 'rl' | 'draft'
  /** Builds the guider; `fit` samples extra trajectories (LinearAG) with the same denoiser, plan and sampler. */
  guider(fit: FitContext): Promise<Guider>
}

export interface FitContext {
  readonly plan: SamplingPlan
  readonly samplerName: string
  /** Runs `guider` on the fitting set (seeds and classes disjoint from the evaluation set). */
  run(guider: Guider): Promise<void>
}

export interface Grid {
  readonly steps: readonly number[]
  readonly cfgScales: readonly number[]
  readonly apgScales: readonly number[]
  readonly lambdas: readonly number[]
  readonly agThresholds: readonly number[]
  readonly agScale: number
  readonly agApgScale: number
  readonly rlgWeights: readonly number[]
  readonly rlgScale: number
  readonly draftKeeps: readonly number[]
  readonly draftScale: number
}

/** The settings both grids hold fixed: the scales the AG, RLG and DraftAttention rows run at. */
const fixedSettings = {
  agScale: 3,
  agApgScale: 5,
  rlgWeights: [0, 0.5, 1, 1.5, 2],
  rlgScale: 3,
  draftKeeps: [0.5, 0.25],
  draftScale: 3,
} as const satisfies Partial<Grid>

export const quickGrid: Grid = {
  steps: [10],
  cfgScales: [1, 2, 3, 5, 7.5],
  apgScales: [3, 5, 7.5],
  lambdas: [1, 1.6, 2.6],
  agThresholds: [0.995, 0.999],
  ...fixedSettings,
}

export const fullGrid: Grid = {
  steps: [10, 20, 40],
  cfgScales: [1, 1.5, 2, 3, 5, 7.5, 10],
  apgScales: [2, 3, 5, 7.5, 10],
  lambdas: [0.4, 0.8, 1, 1.6, 2.6, 4],
  agThresholds: [0.99, 0.995, 0.998, 0.999, 0.9995],
  ...fixedSettings,
}

const fixed = (g: Guider) => Promise.resolve(g)

/**
 * CFG++'s lambda as a CFG scale: the mean over the plan's steps of the exact first-order equivalence
 * `omega_i = lambda sigma_i / (sigma_i - sigma_{i+1})` (VE cast) — the "matched guidance strength" at which
 * CFG++ is compared with CFG.
 */
export function effectiveCfgScale(lambda: number, plan: SamplingPlan): number {
  let sum = 0
  const n = plan.timesteps.length
  for (let i = 0; i < n; i++) {
    sum += cfgScaleFromLambda(lambda, { mapping: 'first-order', sigma: plan.sigmas[i] as number, sigmaNext: plan.sigmas[i + 1] as number, family: plan.family })
  }
  return sum / n
}

export function buildConfigs(options: { generator: GeneratorName; samplers: readonly string[]; grid: Grid; rl: boolean; draft: boolean }): Config[] {
  const { generator, grid } = options
  const out: Config[] = []
  const add = (c: Omit<Config, 'id' | 'generator' | 'denoiser'> & { denoiser?: Config['denoiser'] }) => {
    const p = Object.entries(c.params)
      .map(([k, v]) => `${k}${v}`)
      .join('_')
    out.push({ denoiser: 'base', ...c, generator, id: `${generator}__${c.sampler}__${c.steps}__${c.strategy}__${p}` })
  }
  for (const sampler of options.samplers) {
    for (const steps of grid.steps) {
      const base = { steps, sampler }
      for (const w of grid.cfgScales) add({ ...base, strategy: 'cfg', label: `cfg w=${w}`, params: { scale: w }, guider: () => fixed(cfg({ scale: w })) })
      for (const w of grid.apgScales) {
        add({ ...base, strategy: 'apg', label: `apg w=${w}`, params: { scale: w }, guider: () => fixed(apg({ scale: w, eta: 0, momentum: -0.5 })) })
      }
      for (const l of grid.lambdas) add({ ...base, strategy: 'cfg++', label: `cfg++ lambda=${l}`, params: { lambda: l }, guider: () => fixed(cfgPlusPlus({ scale: l })) })
      for (const t of grid.agThresholds) {
        add({ ...base, strategy: 'ag-cfg', label: `ag(cfg w=${grid.agScale}) t=${t}`, params: { scale: grid.agScale, threshold: t }, guider: () => fixed(adaptive(cfg({ scale: grid.agScale }), { threshold: t })) })
        add({
          ...base,
          strategy: 'ag-apg',
          label: `ag(apg w=${grid.agApgScale}) t=${t}`,
          params: { scale: grid.agApgScale, threshold: t },
          guider: () => fixed(adaptive(apg({ scale: grid.agApgScale, eta: 0, momentum: -0.5 }), { threshold: t })),
        })
      }
      add({
        ...base,
        strategy: 'linear-ag',
        label: `linear-ag(cfg w=${grid.agScale})`,
        params: { scale: grid.agScale },
        async guider(fit) {
          const recorder = linearAGRecorder({ scale: grid.agScale })
          await fit.run(recorder.guider)
          return linearAG({ coefficients: fitLinearAG(recorder.trajectories, { sampler: fit.samplerName, scale: recorder.scale, space: recorder.space }) })
        },
      })
      if (options.rl) {
        for (const w of grid.rlgWeights) {
          add({ ...base, strategy: 'rlg', label: `rlg(cfg w=${grid.rlgScale}) weight=${w}`, params: { scale: grid.rlgScale, weight: w }, denoiser: 'rl', guider: () => fixed(rlg({ scale: w, inner: cfg({ scale: grid.rlgScale }) })) })
        }
      }
      if (options.draft) {
        for (const k of grid.draftKeeps) {
          add({ ...base, strategy: 'draft-attention', label: `draft keep=${k} (cfg w=${grid.draftScale})`, params: { scale: grid.draftScale, keep: k }, denoiser: 'draft', guider: () => fixed(cfg({ scale: grid.draftScale })) })
        }
      }
    }
  }
  return out
}
