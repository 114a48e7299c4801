import { GuidekitError, check, checkNumber, combine, type GuidanceSession, type Guider, type Prediction, type RunInfo, type StepContext, type Tensor, checkBranchShapes, denoisedFrom, modelOutput, predictPair } from '@guidekit/core'
import { NormalEquations } from './internal/least-squares.js'

/**
 * The regressors of LinearAG (arXiv 2312.12487), in coefficient order: `uncond_t ≈ b0 cond_t + b1 cond_{t-1} + b2 uncond_{t-1}`.
 *
 * @example
 * coefficients.regressors  // ['cond', 'previousCond', 'previousUncond']
 */
export const LINEAR_AG_REGRESSORS = ['cond', 'previousCond', 'previousUncond'] as const

/** The JSON coefficient file of LinearAG (`format: 'guidekit.linear-ag/v1'`). */
export interface LinearAGCoefficients {
  readonly format: 'guidekit.linear-ag/v1'
  /** Number of sampling steps the coefficients were fitted for; a run with another step count is rejected. */
  readonly steps: number
  /** The sampler the trajectories were recorded with (e.g. `'dpmpp-2m'`); informational, checked if given to the guider. */
  readonly sampler: string
  /** The paper CFG scale `w` of the recorded trajectories and of the guider. */
  readonly scale: number
  /** Where the regression runs: `'epsilon'` (model output: epsilon for 'vp', velocity for 'flow') or `'x0'`. */
  readonly space: 'epsilon' | 'x0'
  readonly regressors: readonly string[]
  /**
   * One entry per step: `null` evaluates the unconditional branch (plain CFG); `[b0, b1, b2]` replaces it by
   * `b0 cond_t + b1 cond_{t-1} + b2 uncond_{t-1}` (one branch instead of two).
   */
  readonly coefficients: readonly (readonly number[] | null)[]
  /** Fit diagnostics: trajectories used and the RMS residual per predicted step. */
  readonly fit?: { readonly trajectories: number; readonly residualRms: readonly (number | null)[] }
}

/** One recorded CFG trajectory: the conditional and unconditional predictions per step (in the recorder's space). */
export interface LinearAGTrajectory {
  readonly cond: readonly Tensor[]
  readonly uncond: readonly Tensor[]
}

/**
 * A recorder for LinearAG: a plain CFG guider (paper scale `w`) that stores every step's conditional and
 * unconditional predictions of every trajectory it runs, for {@link fitLinearAG}.
 *
 * @example
 * const recorder = linearAGRecorder({ scale: 7.5 })
 * for (const seed of [1, 2, 3]) await sample({ denoiser, guider: recorder.guider, sampler, plan, shape, seed })
 * const coefficients = fitLinearAG(recorder.trajectories, { sampler: 'euler' })
 */
export function linearAGRecorder(options: { readonly scale: number; readonly space?: 'epsilon' | 'x0' }): {
  readonly guider: Guider
  readonly trajectories: LinearAGTrajectory[]
  readonly scale: number
  readonly space: 'epsilon' | 'x0'
} {
  const scale = checkNumber('scale', options.scale)
  const space = options.space ?? 'epsilon'
  check(space === 'epsilon' || space === 'x0', 'space', space, "'epsilon' or 'x0'")
  const trajectories: LinearAGTrajectory[] = []
  const guider: Guider = {
    specificationVersion: 'v1',
    name: `linear-ag-recorder(scale=${scale})`,
    start(_run: RunInfo): GuidanceSession {
      const trajectory = { cond: [] as Tensor[], uncond: [] as Tensor[] }
      trajectories.push(trajectory)
      return {
        async step(ctx: StepContext) {
          const { cond: c, uncond: u } = await predictPair(ctx, 'linearAGRecorder')
          const mc = space === 'x0' ? c.denoised : modelOutput(c, ctx.family)
          const mu = space === 'x0' ? u.denoised : modelOutput(u, ctx.family)
          trajectory.cond.push(mc)
          trajectory.uncond.push(mu)
          const pred = combine([
            [1 - scale, mu],
            [scale, mc],
          ])
          const denoised = space === 'x0' ? pred : denoisedFrom(ctx.x, ctx.sigma, pred)
          return { denoised, renoise: denoised }
        },
      }
    },
  }
  return { guider, trajectories, scale, space }
}

/** Options of {@link fitLinearAG}. */
export interface FitLinearAGOptions {
  /** The sampler name stored in the coefficients (e.g. `sampler.name`). */
  readonly sampler: string
  /** The recorder's scale and space (pass the recorder itself: `{ ...recorder, sampler }`). */
  readonly scale: number
  readonly space?: 'epsilon' | 'x0'
  /** Steps whose unconditional branch is predicted; default every odd step (alternate steps). Step 0 cannot be. */
  readonly predictSteps?: readonly number[]
  /**
   * Ridge term, relative to the mean diagonal of the normal equations (default 1e-9). Regressors can be
   * exactly dependent (e.g. when the model is affine in x, as the Gaussian toy is); the tiny ridge then picks
   * the minimum-norm solution, which still fits exactly.
   */
  readonly ridge?: number
}

/**
 * Fits LinearAG (Castillo et al., arXiv 2312.12487, "LinearAG"): for every predicted step t, ordinary least
 * squares over all elements of all recorded trajectories of
 * `uncond_t ≈ b0 cond_t + b1 cond_{t-1} + b2 uncond_{t-1}` (teacher forcing: the regressors are the
 * recorded, not the predicted, values). The regressor set is this package's choice; the paper's exact set
 * is unpublished.
 *
 * @example
 * const coefficients = fitLinearAG(recorder.trajectories, { sampler: 'euler', scale: recorder.scale })
 * await writeFile('linear-ag.json', JSON.stringify(coefficients))
 */
export function fitLinearAG(trajectories: readonly LinearAGTrajectory[], options: FitLinearAGOptions): LinearAGCoefficients {
  check(trajectories.length > 0, 'trajectories', trajectories.length, 'at least one recorded trajectory')
  const steps = (trajectories[0] as LinearAGTrajectory).cond.length
  check(steps >= 2, 'trajectory steps', steps, 'at least 2')
  for (const t of trajectories) {
    check(t.cond.length === steps && t.uncond.length === steps, 'trajectory steps', t.cond.length, `the same step count in every trajectory (${steps})`)
  }
  const scale = checkNumber('scale', options.scale)
  const space = options.space ?? 'epsilon'
  check(space === 'epsilon' || space === 'x0', 'space', space, "'epsilon' or 'x0'")
  check(typeof options.sampler === 'string' && options.sampler.length > 0, 'sampler', options.sampler, 'a sampler name')
  const ridge = checkNumber('ridge', options.ridge ?? 1e-9, { min: 0 })
  const predict = options.predictSteps ?? Array.from({ length: steps }, (_, i) => i).filter((i) => i % 2 === 1)
  for (const s of predict) check(Number.isInteger(s) && s >= 1 && s < steps, 'predictSteps', predict, `integers in [1, ${steps - 1}] (step 0 has no history)`)
  const coefficients: (number[] | null)[] = new Array<number[] | null>(steps).fill(null)
  const residualRms: (number | null)[] = new Array<number | null>(steps).fill(null)
  const row = new Float64Array(3)
  for (const t of new Set(predict)) {
    const ls = new NormalEquations(3)
    for (const tr of trajectories) {
      const c = (tr.cond[t] as Tensor).data
      const pc = (tr.cond[t - 1] as Tensor).data
      const pu = (tr.uncond[t - 1] as Tensor).data
      const y = (tr.uncond[t] as Tensor).data
      for (let i = 0; i < y.length; i++) {
        row[0] = c[i] as number
        row[1] = pc[i] as number
        row[2] = pu[i] as number
        ls.add(row, y[i] as number)
      }
    }
    const beta = ls.solve(ridge * ls.meanDiagonal)
    coefficients[t] = beta
    residualRms[t] = ls.residualRms(beta)
  }
  return {
    format: 'guidekit.linear-ag/v1',
    steps,
    sampler: options.sampler,
    scale,
    space,
    regressors: [...LINEAR_AG_REGRESSORS],
    coefficients,
    fit: { trajectories: trajectories.length, residualRms },
  }
}

/**
 * Validates a parsed LinearAG coefficient file (format, step count, one entry of 3 finite numbers or null per
 * step) and returns it; errors name the offending field.
 *
 * @example
 * const coefficients = parseLinearAGCoefficients(JSON.parse(await readFile('linear-ag.json', 'utf8')))
 */
export function parseLinearAGCoefficients(value: unknown): LinearAGCoefficients {
  const v = value as Partial<LinearAGCoefficients> | null
  check(typeof v === 'object' && v !== null, 'coefficients', value, "a LinearAG coefficient object (format 'guidekit.linear-ag/v1')")
  check(v.format === 'guidekit.linear-ag/v1', 'coefficients.format', v.format, "'guidekit.linear-ag/v1'")
  const steps = checkNumber('coefficients.steps', v.steps, { min: 1, integer: true })
  checkNumber('coefficients.scale', v.scale)
  check(v.space === 'epsilon' || v.space === 'x0', 'coefficients.space', v.space, "'epsilon' or 'x0'")
  check(
    Array.isArray(v.regressors) && v.regressors.length === LINEAR_AG_REGRESSORS.length && v.regressors.every((r, i) => r === LINEAR_AG_REGRESSORS[i]),
    'coefficients.regressors',
    v.regressors,
    JSON.stringify(LINEAR_AG_REGRESSORS),
  )
  check(Array.isArray(v.coefficients) && v.coefficients.length === steps, 'coefficients.coefficients', v.coefficients?.length, `an array of ${steps} entries (one per step)`)
  v.coefficients.forEach((entry, i) => {
    if (entry === null) return
    check(i > 0, `coefficients.coefficients[${i}]`, entry, 'null at step 0 (no history)')
    check(Array.isArray(entry) && entry.length === 3 && entry.every((b) => Number.isFinite(b)), `coefficients.coefficients[${i}]`, entry, 'null or 3 finite numbers')
  })
  return v as LinearAGCoefficients
}

/**
 * LinearAG guidance (arXiv 2312.12487): plain CFG at the fitted scale, except that on steps with
 * coefficients the unconditional prediction is replaced by `b0 cond_t + b1 cond_{t-1} + b2 uncond_{t-1}`
 * (`uncond_{t-1}` being the previous step's real or predicted value), saving one branch evaluation per
 * such step. Rejects a run whose step count differs from the one the coefficients were fitted for (and a
 * sampler name that differs, when `sampler` is given). `report()` gives `savedNfe`.
 *
 * @example
 * const guider = linearAG({ coefficients: JSON.parse(await readFile('linear-ag.json', 'utf8')) })
 */
export function linearAG(options: { readonly coefficients: LinearAGCoefficients; readonly sampler?: string }): Guider {
  const coefficients = parseLinearAGCoefficients(options.coefficients)
  const { scale, space, steps } = coefficients
  if (options.sampler !== undefined && options.sampler !== coefficients.sampler) {
    throw new GuidekitError('INVALID_ARGUMENT', `LinearAG coefficients were fitted with sampler '${coefficients.sampler}', not '${options.sampler}'; refit them for this sampler.`, {
      details: { parameter: 'sampler', expected: coefficients.sampler, value: options.sampler },
    })
  }
  return {
    specificationVersion: 'v1',
    name: `linear-ag(scale=${scale}, steps=${steps})`,
    start(run: RunInfo): GuidanceSession {
      if (run.steps !== steps) {
        throw new GuidekitError('INVALID_ARGUMENT', `coefficients.steps must equal the run's step count: the LinearAG coefficients were fitted for ${steps} steps, this run has ${run.steps}. Refit them for ${run.steps} steps.`, {
          details: { parameter: 'coefficients.steps', expected: run.steps, value: steps },
        })
      }
      let prevCond: Tensor | null = null
      let prevUncond: Tensor | null = null
      let saved = 0
      const batch = run.shape[0] ?? 1
      return {
        async step(ctx: StepContext) {
          const beta = coefficients.coefficients[ctx.step] ?? null
          let c: Tensor
          let u: Tensor
          if (beta && prevCond && prevUncond) {
            const [cp] = (await ctx.predict([{ role: 'positive' }])) as [Prediction]
            checkBranchShapes('linearAG', ctx.x, [cp])
            c = space === 'x0' ? cp.denoised : modelOutput(cp, ctx.family)
            u = combine([
              [beta[0] as number, c],
              [beta[1] as number, prevCond],
              [beta[2] as number, prevUncond],
            ])
            saved += batch
          } else {
            const { cond: cp, uncond: up } = await predictPair(ctx, 'linearAG')
            c = space === 'x0' ? cp.denoised : modelOutput(cp, ctx.family)
            u = space === 'x0' ? up.denoised : modelOutput(up, ctx.family)
          }
          prevCond = c
          prevUncond = u
          const pred = combine([
            [1 - scale, u],
            [scale, c],
          ])
          const denoised = space === 'x0' ? pred : denoisedFrom(ctx.x, ctx.sigma, pred)
          return { denoised, renoise: denoised }
        },
        report() {
          return { savedNfe: saved / batch, savedBranchEvaluations: saved }
        },
      }
    },
  }
}
