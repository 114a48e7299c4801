// What a downloaded PNG records, exactly as `guidekit generate` writes it (apps/generate/src/main.ts): the
// A1111 `parameters` text with the CLI's fields in the CLI's order, and a `guidekit` JSON chunk whose
// `command` reproduces the image with the CLI.
import { formatParameters } from '@guidekit/grammar'
import { version } from '../package.json'

/** One image of the grid. */
export interface ImageRecord {
  readonly model: string
  /** The RL-fine-tuned model, for rows whose guidance needs one (rlg). */
  readonly rlModel: string | undefined
  /** The class name (the image's label). */
  readonly className: string
  /** The guidance spec as written. */
  readonly guidance: string
  /** The guider's own name (`guider.name`). */
  readonly guider: string
  /** The sampler spec as written. */
  readonly sampler: string
  readonly steps: number
  /** VP models: timestep spacing and Karras sigmas of the plan (the CLI records both); flow models: undefined. */
  readonly spacing: string | undefined
  readonly karras: boolean | undefined
  readonly seed: number
  readonly width: number
  readonly height: number
  readonly nfe: number
}

export const VERSION = `guidekit ${version}`

// The CLI's shell quoting: plain words as they are, anything else in single quotes.
const quote = (v: string): string => (/^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`)

/** The `guidekit generate` command that draws this image alone. */
export function reproduceCommand(r: ImageRecord): string {
  const args = ['guidekit', 'generate', '--model', r.model, '--class', r.className, '--guidance', r.guidance, '--sampler', r.sampler, '--steps', String(r.steps)]
  if (r.spacing !== undefined) args.push('--spacing', r.spacing)
  if (r.karras === true) args.push('--karras')
  // the page runs the fp32 files: spelled out, as the CLI does, so a faster variant cannot change the image
  args.push('--precision', 'fp32', '--seed', String(r.seed))
  return args.map(quote).join(' ')
}

/** The `parameters` and `guidekit` text chunks of an image. */
export function imageTexts(r: ImageRecord): { parameters: string; guidekit: string } {
  const fields: [string, string | number][] = [['Steps', r.steps], ['Sampler', r.sampler]]
  if (r.spacing !== undefined) fields.push(['Spacing', r.spacing], ['Karras', r.karras === true ? 'yes' : 'no'])
  fields.push(['Guidance', r.guidance], ['Seed', r.seed], ['Size', `${r.width}x${r.height}`], ['Model', r.model], ['Precision', 'fp32'], ['Model file', `${r.model}.onnx`])
  if (r.rlModel !== undefined) fields.push(['RL model', r.rlModel])
  fields.push(['Attention', 'dense'], ['NFE', r.nfe], ['Version', VERSION])
  const guidekit = JSON.stringify({
    version,
    command: reproduceCommand(r),
    model: r.model,
    precision: 'fp32',
    ...(r.rlModel === undefined ? {} : { rlModel: r.rlModel }),
    class: r.className,
    guidance: r.guidance,
    guider: r.guider,
    sampler: r.sampler,
    steps: r.steps,
    ...(r.spacing === undefined ? {} : { spacing: r.spacing, karras: r.karras === true }),
    seed: r.seed,
    width: r.width,
    height: r.height,
    upscale: 1,
    attention: 'dense',
    nfe: r.nfe,
  })
  return { parameters: formatParameters({ label: r.className, fields }), guidekit }
}

/**
 * The page's file name for an image: `<model>-<class>-<guidance>-s<seed>.png`, slugged (the CLI adds a hash of
 * its settings, which the page does not need: the metadata inside records them).
 */
export function imageFileName(r: ImageRecord): string {
  const slug = (v: string): string =>
    v
      .toLowerCase()
      .replace(/[^a-z0-9.]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 48) || 'x'
  return `${`${slug(r.model)}-${slug(r.className)}-${slug(r.guidance)}`.slice(0, 120)}-s${r.seed}.png`
}
