// The `parameters` text that guidekit writes into every PNG (the A1111 / stable-diffusion-webui
// convention that image viewers and other UIs read): the prompt or class on the first line, an optional
// `Negative prompt: ...` line, then `Key: value, Key: value, ...`.

/** What one image records. Values containing `,`, `:`, `"` or a newline are JSON-quoted. */
export interface ImageParameters {
  /** The prompt, or the class name for class-conditional models. */
  readonly label: string
  readonly negativePrompt?: string
  /** Ordered `Key: value` fields (Steps, Sampler, Guidance, Seed, Size, Model, ...). */
  readonly fields: readonly (readonly [string, string | number])[]
}

const quote = (v: string | number): string => (typeof v === 'string' && /[,:\n"]/.test(v) ? JSON.stringify(v) : String(v))

/**
 * Formats the `parameters` text of an image.
 *
 * @example
 * formatParameters({ label: 'Sneaker', fields: [['Steps', 30], ['Guidance', 'cfg:scale=3']] })
 * // 'Sneaker\nSteps: 30, Guidance: "cfg:scale=3"'
 */
export function formatParameters(p: ImageParameters): string {
  const lines = [p.label.replace(/\n/g, ' ')]
  if (p.negativePrompt !== undefined) lines.push(`Negative prompt: ${p.negativePrompt.replace(/\n/g, ' ')}`)
  lines.push(p.fields.map(([k, v]) => `${k}: ${quote(v)}`).join(', '))
  return lines.join('\n')
}

/** Reads `parameters` text back into its label, negative prompt and fields (values as strings). */
export function parseParameters(text: string): { label: string; negativePrompt?: string; fields: Record<string, string> } {
  const lines = text.split('\n')
  const label = lines[0] ?? ''
  const negative = lines.find((l) => l.startsWith('Negative prompt: '))
  const last = lines.length > 1 ? (lines[lines.length - 1] as string) : ''
  const fields: Record<string, string> = {}
  const re = /\s*([^:,]+):\s*("(?:[^"\\]|\\.)*"|[^,]*)\s*(?:,|$)/g
  for (let m = re.exec(last); m !== null && m[0] !== ''; m = re.exec(last)) {
    const raw = (m[2] as string).trim()
    fields[(m[1] as string).trim()] = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw
  }
  return { label, ...(negative === undefined ? {} : { negativePrompt: negative.slice('Negative prompt: '.length) }), fields }
}
