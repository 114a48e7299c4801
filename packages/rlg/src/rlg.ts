import { check, checkNumber, combine, type Branch, type GuidanceSession, type GuidedStep, type Guider, type RunInfo, type StepContext, mergedPredictor, checkBranchShapes, checkGuider } from '@guidekit/core'

/** Options of {@link rlg}. */
export interface RlgOptions {
  /**
   * Guidance strength: the RL guidance weight `w` (the repository's `tuned_guidance_scale`),
   * `v = v_base + w (v_rl - v_base)`. 0 is the base model, 1 the RL model, `0 < w < 1` interpolates,
   * `w > 1` extrapolates (README: 1 to 3).
   */
  readonly scale: number
  /** The guider each model runs (the repository uses CFG at the same scale on both). */
  readonly inner: Guider
  /** Steps at the start that use the RL model's guided output alone (the repository's `zero_init_step`, default 0). */
  readonly tunedOnlySteps?: number
  /** The `model` names of the two models in the denoiser. Default `{ base: 'base', tuned: 'tuned' }`. */
  readonly models?: { readonly base: string; readonly tuned: string }
}

/**
 * Reinforcement-learning guidance (jinluo12345/Reinforcement-learning-guidance, `sd3_pipeline_with_rlg.py`):
 * the inner guider runs once on the base model and once on the RL-fine-tuned model (each with its own
 * session, so stateful inner guiders keep separate state), and the two guided predictions are blended,
 * `D = D_base + w (D_rl - D_base)`: a geometric average `p_base^(1-w) p_rl^w` of the two distributions.
 * The blend is affine (coefficients sum to 1), so x0, epsilon and velocity give the same step. Both models'
 * requests go out as one `ctx.predict` call (one batched run per model). During the first `tunedOnlySteps`
 * steps only the RL model runs (`D = D_rl`) and the base session does not see those steps.
 *
 * @example
 * const guider = rlg({ scale: 1.6, inner: cfg({ scale: 4.5 }) })
 */
export function rlg(options: RlgOptions): Guider {
  const weight = checkNumber('scale', options.scale)
  checkGuider('inner', options.inner)
  const inner = options.inner
  const tunedOnlySteps = checkNumber('tunedOnlySteps', options.tunedOnlySteps ?? 0, { min: 0, integer: true })
  const models = options.models ?? { base: 'base', tuned: 'tuned' }
  check(typeof models.base === 'string' && typeof models.tuned === 'string' && models.base !== models.tuned, 'models', models, 'two distinct model names { base, tuned }')
  return {
    specificationVersion: 'v1',
    name: `rlg(${inner.name}, scale=${weight}${tunedOnlySteps ? `, tunedOnlySteps=${tunedOnlySteps}` : ''})`,
    start(run: RunInfo): GuidanceSession {
      const base = inner.start(run)
      const tuned = inner.start(run)
      return {
        async step(ctx: StepContext): Promise<GuidedStep> {
          // One model only where the blend needs one: tuned-only steps and w = 1 (RL model), w = 0 (base model).
          const onlyTuned = ctx.step < tunedOnlySteps || weight === 1
          const onlyBase = !onlyTuned && weight === 0
          const jobs = onlyTuned
            ? [{ session: tuned, model: models.tuned }]
            : onlyBase
              ? [{ session: base, model: models.base }]
              : [
                  { session: base, model: models.base },
                  { session: tuned, model: models.tuned },
                ]
          const merged = mergedPredictor((b) => ctx.predict(b), jobs.length)
          const results = await Promise.all(
            jobs.map(async ({ session, model }) => {
              try {
                return await session.step({ ...ctx, predict: (branches: readonly Branch[]) => merged.predict(branches.map((b) => ({ ...b, model }))) })
              } finally {
                merged.done()
              }
            }),
          )
          if (onlyTuned || onlyBase) return results[0] as GuidedStep
          const [b, t] = results as [GuidedStep, GuidedStep]
          checkBranchShapes('rlg', ctx.x, [
            { denoised: b.denoised, noise: b.renoise },
            { denoised: t.denoised, noise: t.renoise },
          ])
          const denoised = combine([
            [1 - weight, b.denoised],
            [weight, t.denoised],
          ])
          const renoise =
            b.renoise === b.denoised && t.renoise === t.denoised
              ? denoised
              : combine([
                  [1 - weight, b.renoise],
                  [weight, t.renoise],
                ])
          return { denoised, renoise }
        },
        report() {
          const out: Record<string, number> = {}
          for (const [prefix, s] of [['base', base], ['tuned', tuned]] as const) {
            for (const [k, v] of Object.entries(s.report?.() ?? {})) out[`${prefix}.${k}`] = v
          }
          return out
        },
      }
    },
  }
}
