// Guidance windows: run any guider only on some steps (by sigma, step index or step fraction).
import type { GuidanceSession, Guider, RunInfo, StepContext } from './contracts.js'
import { GuidekitError, check, checkNumber } from './errors.js'
import { checkGuider, positiveOnly } from './guidance-kit.js'

/**
 * diffusers' start/stop rule (`ClassifierFreeGuidance._is_cfg_enabled`): enabled iff
 * `int(start * steps) <= step < int(stop * steps)`, with Python's `int()` truncation.
 */
function inFractionWindow(step: number, steps: number, start: number, stop: number): boolean {
  return Math.trunc(start * steps) <= step && step < Math.trunc(stop * steps)
}

/** Validates `{ start, stop }` fractions (`0 <= start < 1`, `start <= stop <= 1`, as diffusers). */
function checkFractionWindow(name: string, start: unknown, stop: unknown): void {
  checkNumber(`${name}.start`, start, { min: 0, max: 1, maxExclusive: true })
  checkNumber(`${name}.stop`, stop, { min: start as number, max: 1 })
}

/** Validates a sigma window `lo < hi`, both >= 0 (hi may be Infinity). */
function checkSigmaWindow(name: string, lo: unknown, hi: unknown): void {
  checkNumber(`${name} lower bound`, lo, { min: 0 })
  check(typeof hi === 'number' && !Number.isNaN(hi) && hi > (lo as number), `${name} upper bound`, hi, `a number > ${String(lo)} (Infinity allowed)`)
}


/** Where {@link interval} runs its inner guider. */
export type GuidanceWindow =
  /** `lo < sigma <= hi` (Kynkaanniemi et al., arXiv 2404.07724). `hi` may be `Infinity`. */
  | { readonly sigma: readonly [lo: number, hi: number] }
  /** Step indices `start <= step < stop` (0-based). */
  | { readonly steps: readonly [start: number, stop: number] }
  /** Step fractions with diffusers' rule `int(start * steps) <= step < int(stop * steps)`. */
  | { readonly fraction: readonly [start: number, stop: number] }

/**
 * Runs any guider inside a window and the positive branch alone (one evaluation, no guidance) outside it.
 * The guidance interval of Kynkaanniemi et al. (arXiv 2404.07724) for every guider: APG, CFG++, CFG-Zero*,
 * RLG, adaptive guidance... The inner guider's session only sees the steps inside the window (so stateful
 * guiders such as APG keep their momentum across the window, not across skipped steps).
 *
 * @example
 * const guider = interval(apg({ scale: 7 }), { sigma: [0.28, 5.42] })
 */
export function interval(inner: Guider, window: GuidanceWindow): Guider {
  checkGuider('inner', inner)
  check(typeof window === 'object' && window !== null, 'window', window, '{ sigma: [lo, hi] }, { steps: [start, stop] } or { fraction: [start, stop] }')
  let inside: (ctx: StepContext) => boolean
  let label: string
  if ('sigma' in window) {
    const [lo, hi] = window.sigma
    checkSigmaWindow('window.sigma', lo, hi)
    inside = (ctx) => ctx.sigma > lo && ctx.sigma <= hi
    label = `sigma=(${lo}, ${hi}]`
  } else if ('steps' in window) {
    const [start, stop] = window.steps
    check(Number.isInteger(start) && start >= 0, 'window.steps start', start, 'an integer >= 0')
    check(Number.isInteger(stop) && stop >= start, 'window.steps stop', stop, `an integer >= start (${start})`)
    inside = (ctx) => ctx.step >= start && ctx.step < stop
    label = `steps=[${start}, ${stop})`
  } else if ('fraction' in window) {
    const [start, stop] = window.fraction
    checkFractionWindow('window.fraction', start, stop)
    inside = (ctx) => inFractionWindow(ctx.step, ctx.steps, start, stop)
    label = `fraction=[${start}, ${stop})`
  } else {
    throw new GuidekitError('INVALID_ARGUMENT', 'window must be { sigma: [lo, hi] }, { steps: [start, stop] } or { fraction: [start, stop] }.', { details: { parameter: 'window' } })
  }
  return {
    specificationVersion: 'v1',
    name: `interval(${inner.name}, ${label})`,
    start(run: RunInfo): GuidanceSession {
      const session = inner.start(run)
      let skipped = 0
      return {
        async step(ctx: StepContext) {
          if (inside(ctx)) return session.step(ctx)
          skipped++
          return positiveOnly(ctx)
        },
        report() {
          return { ...(session.report?.() ?? {}), intervalSkippedSteps: skipped }
        },
      }
    },
  }
}
