// Step and sigma windows shared by cfg() and interval().
import { check, checkNumber } from '@guidekit/core'

/**
 * diffusers' start/stop rule (`ClassifierFreeGuidance._is_cfg_enabled`): enabled iff
 * `int(start * steps) <= step < int(stop * steps)`, with Python's `int()` truncation.
 */
export function inFractionWindow(step: number, steps: number, start: number, stop: number): boolean {
  return Math.trunc(start * steps) <= step && step < Math.trunc(stop * steps)
}

/** Validates `{ start, stop }` fractions (`0 <= start < 1`, `start <= stop <= 1`, as diffusers). */
export function checkFractionWindow(name: string, start: unknown, stop: unknown): void {
  checkNumber(`${name}.start`, start, { min: 0, max: 1, maxExclusive: true })
  checkNumber(`${name}.stop`, stop, { min: start as number, max: 1 })
}

/** Validates a sigma window `lo < hi`, both >= 0 (hi may be Infinity). */
export function checkSigmaWindow(name: string, lo: unknown, hi: unknown): void {
  checkNumber(`${name} lower bound`, lo, { min: 0 })
  check(typeof hi === 'number' && !Number.isNaN(hi) && hi > (lo as number), `${name} upper bound`, hi, `a number > ${String(lo)} (Infinity allowed)`)
}
