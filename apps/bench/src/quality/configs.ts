// The configurations of the quality benchmark: every strategy on the same seeds and classes.
import { adaptive, fitLinearAG, linearAG, linearAGRecorder } from '@guidekit/adaptive'
import { apg } from '@guidekit/apg'
import { cfg } from '@guidekit/cfg'
import { cfgPlusPlus, cfgScaleFromLambda } from '@guidekit/cfg-pp'
import { type Guider, type SamplingPlan } from '@guidekit/core'
import { rlg } from '@guidekit/rlg'
import type { AgCalibration } from './calibration.js'
import type { GeneratorName } from './models.js'

export type Strategy = 'cfg' | 'cfg++' | 'apg' | 'ag-cfg' | 'linear-ag' | 'rlg' | 'draft-attention'

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
  /** Text-to-image only: class prompts (default) or held-out paraphrases, and the negative prompt (default ""). */
  readonly prompts?: { readonly kind: 'class' | 'paraphrase'; readonly negative: string }
  /**
   * Image counts to measure, ascending: a row is measured at the first and grown to the next by sampling
   * only the new seeds, so every size stays in the cache (claims compare rows at their largest common size).
   */
  readonly sizes: readonly number[]
  /** Expected network evaluations per image (for the plan and its ETA; the row records the measured NFE). */
  readonly expectedNfe: number
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
  /** Images of every configuration a claim's test uses (grown from `sweepImages`). */
  readonly images: number
  /** Images for the head-to-head rows that decide a verdict (grown from `images`; equal to it: no growth). */
  readonly decidingImages: number
  /**
   * Images of every configuration, the size at which the sweeps and curves (plots, CFG++'s best-of-sweep) are
   * compared; the rows no claim needs at `images` stay at this size. 0: those rows are not run.
   */
  readonly sweepImages: number
  readonly cfgScales: readonly number[]
  /** APG scales (the APG claim is judged at those >= 5, against CFG at the same scale). */
  readonly apgScales: readonly number[]
  /** CFG++ runs at the lambda whose first-order matched CFG scale (mean over the plan) is each of these. */
  readonly cfgPlusPlusMatchedScales: readonly number[]
  /** CFG scale of adaptive guidance, LinearAG and their CFG baseline. */
  readonly agScale: number
  /** NFE savings (vs CFG) targeted by calibrated AG thresholds; the claim is judged at 0.25. */
  readonly agSavings: readonly number[]
  /** NFE savings of LinearAG (its predicted steps); the claim is judged at 0.25. */
  readonly linearAgSavings: readonly number[]
  readonly rlgWeights: readonly number[]
  readonly rlgScale: number
  readonly draftKeeps: readonly number[]
  readonly draftScale: number
  /** Images of the AG threshold calibration set (its own seeds). */
  readonly calibrationImages: number
  /** Images of the CFG++ DDIM-inversion round trip. */
  readonly inversionImages: number
}

/** The saving at which the AG and LinearAG claims are judged (the paper's "about 25% fewer NFE"). */
export const CLAIM_SAVING = 0.25

const pixelCommon = {
  cfgScales: [1, 2, 3, 5, 7.5],
  apgScales: [5, 7.5],
  cfgPlusPlusMatchedScales: [2, 3, 5],
  agScale: 3,
  rlgWeights: [0, 0.5, 1, 1.5, 2],
  rlgScale: 3,
  draftKeeps: [0.5, 0.25],
  draftScale: 3,
}

/** Development size: one step count, 100 images per claim row (200 for deciding rows), 50 for the rest. */
export const quickGrid: Grid = { ...pixelCommon, steps: [10], images: 100, decidingImages: 200, sweepImages: 50, agSavings: [CLAIM_SAVING], linearAgSavings: [CLAIM_SAVING], calibrationImages: 50, inversionImages: 20 }

/**
 * The full run, sized for about 25 minutes on 2 idle cores (bench-results/README.md has the arithmetic):
 * 10 steps and only the rows a claim uses, at 1000 images; `--sweep N` adds the other sweep and curve points
 * (CFG/APG/CFG++ scales, AG and LinearAG savings, RLG weights, keep ratios) at N images.
 */
export const fullGrid: Grid = {
  ...pixelCommon,
  steps: [10],
  images: 1000,
  decidingImages: 1000,
  sweepImages: 0,
  rlgWeights: [0, 1, 2],
  agSavings: [0.15, CLAIM_SAVING, 0.35],
  linearAgSavings: [0.125, CLAIM_SAVING, 0.375],
  calibrationImages: 100,
  inversionImages: 200,
}

/**
 * The text-to-image group (fashion-sd, `--group text-to-image`): CFG at SD-like scales 1.5/3/5/7.5 and the
 * rows its claims need (APG w 5, CFG++ matched to 3, AG at w 5 and 25% fewer NFE), all at `images`.
 */
export function textToImageGrid(base: Grid): Grid {
  return { ...base, cfgScales: [1.5, 3, 5, 7.5], apgScales: [5], cfgPlusPlusMatchedScales: [3], agScale: 5, agSavings: [CLAIM_SAVING], linearAgSavings: [], rlgWeights: [], draftKeeps: [], decidingImages: base.images, sweepImages: base.images }
}

/** The scales whose rows the APG and CFG++ claims compare at `images` (other scales at `sweepImages`). */
export const CLAIM_SCALES = { apg: 5, cfgPlusPlus: 3 } as const

/** Whether a claim's test uses a configuration (the rest are sweep and curve points). */
function usedByClaim(grid: Grid, c: { strategy: Strategy; params: Readonly<Record<string, number>> }): boolean {
  const p = c.params
  switch (c.strategy) {
    case 'cfg':
      return p.scale === grid.agScale || p.scale === grid.draftScale || p.scale === CLAIM_SCALES.apg || p.scale === CLAIM_SCALES.cfgPlusPlus
    case 'apg':
      return p.scale === CLAIM_SCALES.apg
    case 'cfg++':
      return p.matched === CLAIM_SCALES.cfgPlusPlus
    case 'ag-cfg':
    case 'linear-ag':
      return p.saving === CLAIM_SAVING
    case 'rlg':
      return true
    case 'draft-attention':
      return p.keep === grid.draftKeeps[0]
  }
}

/**
 * CFG++'s lambda as a CFG scale: the mean over the plan's steps of the exact first-order equivalence
 * `omega_i = lambda sigma_i / (sigma_i - sigma_{i+1})` (VE cast) — the "matched guidance strength" at which
 * CFG++ is compared with CFG. Linear in lambda.
 */
export function effectiveCfgScale(lambda: number, plan: SamplingPlan): number {
  let sum = 0
  const n = plan.timesteps.length
  for (let i = 0; i < n; i++) {
    sum += cfgScaleFromLambda(lambda, { mapping: 'first-order', sigma: plan.sigmas[i] as number, sigmaNext: plan.sigmas[i + 1] as number, family: plan.family })
  }
  return sum / n
}

/** The lambda (4 significant digits) whose matched CFG scale over `plan` is `scale`. */
export function lambdaForScale(scale: number, plan: SamplingPlan): number {
  return Number((scale / effectiveCfgScale(1, plan)).toPrecision(4))
}

/**
 * LinearAG's predicted steps for an NFE saving: `k = round(2 saving steps)` steps spread evenly from the
 * last one down (`steps - 1 - floor(j steps / k)`), so saving 0.25 predicts every odd step (the default).
 */
export function linearAgPredictSteps(saving: number, steps: number): number[] {
  const k = Math.min(steps - 1, Math.round(2 * saving * steps))
  return Array.from({ length: k }, (_, j) => steps - 1 - Math.floor((j * steps) / k)).sort((a, b) => a - b)
}

const fixed = (g: Guider) => Promise.resolve(g)

export function buildConfigs(options: {
  generator: GeneratorName
  samplers: readonly string[]
  grid: Grid
  rl: boolean
  draft: boolean
  /** Plans per step count (CFG++ lambdas are chosen by their matched scale on the plan). */
  plan(steps: number): SamplingPlan
  /** AG calibration per sampler and step count; without one, no AG configurations for that group. */
  calibration(sampler: string, steps: number): AgCalibration | undefined
}): Config[] {
  const { generator, grid } = options
  const out: Config[] = []
  const add = (c: Omit<Config, 'id' | 'generator' | 'denoiser' | 'sizes'> & { denoiser?: Config['denoiser']; deciding?: boolean }) => {
    const p = Object.entries(c.params)
      .map(([k, v]) => `${k}${v}`)
      .join('_')
    const { deciding, ...rest } = c
    const claim = usedByClaim(grid, c)
    const sizes = [...new Set([grid.sweepImages, ...(claim ? [grid.images] : []), ...(claim && deciding ? [grid.decidingImages] : [])])].filter((n) => n > 0).sort((a, b) => a - b)
    if (!sizes.length) return
    out.push({ denoiser: 'base', ...rest, sizes, generator, id: `${generator}__${c.sampler}__${c.steps}__${c.strategy}__${p}` })
  }
  for (const sampler of options.samplers) {
    for (const steps of grid.steps) {
      const base = { steps, sampler }
      const S = steps
      for (const w of grid.cfgScales) {
        add({ ...base, strategy: 'cfg', label: `cfg w=${w}`, params: { scale: w }, expectedNfe: w === 1 ? S : 2 * S, deciding: w === grid.agScale || (options.draft && w === grid.draftScale), guider: () => fixed(cfg({ scale: w })) })
      }
      for (const w of grid.apgScales) {
        add({ ...base, strategy: 'apg', label: `apg w=${w}`, params: { scale: w }, expectedNfe: 2 * S, guider: () => fixed(apg({ scale: w, eta: 0, momentum: -0.5 })) })
      }
      const plan = options.plan(steps)
      for (const w of grid.cfgPlusPlusMatchedScales) {
        const lambda = lambdaForScale(w, plan)
        add({ ...base, strategy: 'cfg++', label: `cfg++ lambda=${lambda}`, params: { matched: w, lambda }, expectedNfe: 2 * S, guider: () => fixed(cfgPlusPlus({ scale: lambda })) })
      }
      const calibration = options.calibration(sampler, steps)
      for (const saving of calibration ? grid.agSavings : []) {
        const threshold = (calibration as AgCalibration).thresholds[String(saving)] as number
        const w = grid.agScale
        add({
          ...base,
          strategy: 'ag-cfg',
          label: `ag(cfg w=${w}) t=${threshold}`,
          params: { scale: w, saving, threshold },
          expectedNfe: 2 * S * (1 - saving),
          deciding: saving === CLAIM_SAVING,
          guider: () => fixed(adaptive(cfg({ scale: w }), { threshold })),
        })
      }
      for (const saving of grid.linearAgSavings) {
        const w = grid.agScale
        const predictSteps = linearAgPredictSteps(saving, S)
        add({
          ...base,
          strategy: 'linear-ag',
          label: `linear-ag(cfg w=${w}) saving=${saving}`,
          params: { scale: w, saving },
          expectedNfe: 2 * S - predictSteps.length,
          deciding: saving === CLAIM_SAVING,
          async guider(fit) {
            const recorder = linearAGRecorder({ scale: w })
            await fit.run(recorder.guider)
            return linearAG({ coefficients: fitLinearAG(recorder.trajectories, { sampler: fit.samplerName, scale: recorder.scale, space: recorder.space, predictSteps }) })
          },
        })
      }
      if (options.rl) {
        for (const w of grid.rlgWeights) {
          add({
            ...base,
            strategy: 'rlg',
            label: `rlg(cfg w=${grid.rlgScale}) weight=${w}`,
            params: { scale: grid.rlgScale, weight: w },
            denoiser: 'rl',
            expectedNfe: w === 0 || w === 1 ? 2 * S : 4 * S,
            guider: () => fixed(rlg({ scale: w, inner: cfg({ scale: grid.rlgScale }) })),
          })
        }
      }
      if (options.draft) {
        for (const k of grid.draftKeeps) {
          add({
            ...base,
            strategy: 'draft-attention',
            label: `draft keep=${k} (cfg w=${grid.draftScale})`,
            params: { scale: grid.draftScale, keep: k },
            denoiser: 'draft',
            expectedNfe: 2 * S,
            deciding: true,
            guider: () => fixed(cfg({ scale: grid.draftScale })),
          })
        }
      }
    }
  }
  return out
}
