import { GuidekitError } from '@guidekit/core'
import type { GeneratorCard } from './schema.js'

const loose = (v: string): string => v.toLowerCase().replace(/[^a-z0-9]/g, '')

/** Lists class names compactly: every name for small lists, the first and last few for long ones. */
export function describeClasses(names: readonly string[], limit = 12): string {
  const item = (n: string, i: number) => `${i} ${JSON.stringify(n)}`
  if (names.length <= limit) return names.map(item).join(', ')
  const head = names.slice(0, limit - 2).map(item)
  return `${head.join(', ')}, ..., ${item(names[names.length - 1] as string, names.length - 1)} (${names.length} classes)`
}

/**
 * The label of a class given by index or name. Names match case-insensitively and ignoring punctuation
 * ('ankle-boot', 'Ankle boot' and 'ankleboot' are one class). A card without class names takes indices
 * only (their range is checked against the model when it loads). Throws `INVALID_ARGUMENT` listing the
 * valid classes.
 *
 * @example
 * classLabel(card, 'sneaker')  // 7 for Fashion-MNIST
 */
export function classLabel(card: Pick<GeneratorCard, 'name' | 'classes'>, value: string | number): number {
  const names = card.classes
  const count = names?.length
  const text = typeof value === 'number' ? String(value) : value.trim()
  if (/^\d+$/.test(text)) {
    const index = Number(text)
    if (count === undefined || index < count) return index
  } else if (names) {
    const i = names.findIndex((n) => loose(n) === loose(text))
    if (i >= 0 && text !== '') return i
  }
  const valid = names ? `Valid classes: ${describeClasses(names)}.` : `${card.name}'s card names no classes: pass a class index (0, 1, ...).`
  throw new GuidekitError('INVALID_ARGUMENT', `Unknown class ${JSON.stringify(value)} for model '${card.name}'. ${valid}`, { details: { parameter: 'class', value } })
}
