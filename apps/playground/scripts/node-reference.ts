// The Node side of the browser test: the same grid computed with onnxruntime-node through the library
// (the CLI's pipeline: card plan, batch of seeds, toRawImages), and `guidekit generate` run as a command.
import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { sample } from '@guidekit/core'
import { buildGuidance, buildSampler } from '@guidekit/grammar'
import { fashionModel } from '@guidekit/models-fashion'
import { classConditionalDenoiser, classLabel, loadClassConditionalModel, planFromCard, toRawImages, type ClassConditionalModel, type RawImage } from '@guidekit/onnx'
import { decode } from 'fast-png'
import type { PlaygroundState } from '../src/state.js'

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url))

export interface NodeRow {
  readonly label: string
  readonly images: RawImage[]
  readonly nfe: number
  readonly msPerImage: number
}

/** Runs a grid in Node with onnxruntime-node, as `guidekit grid` does (all cores, no spinning). */
export async function nodeGrid(state: PlaygroundState): Promise<NodeRow[]> {
  const rows = await buildGuidance(state.guidance.join(';'))
  const sessionOptions = { ort: { extra: { session: { intra_op: { allow_spinning: '0' } } } } }
  const base = await loadClassConditionalModel(fashionModel(state.model).onnxPath, { sessionOptions })
  const loaded: ClassConditionalModel[] = [base]
  try {
    const tuned = rows.some((r) => r.needsTunedModel) ? await loadClassConditionalModel(fashionModel('fashion-dit-rl').onnxPath, { sessionOptions }) : undefined
    if (tuned) loaded.push(tuned)
    const { card } = base
    const label = classLabel(card, state.className)
    const { sampler } = buildSampler(state.sampler, base.family)
    const seeds = Array.from({ length: state.columns }, (_, i) => state.seed + i)
    const out: NodeRow[] = []
    for (const row of rows) {
      const t0 = performance.now()
      const denoiser = classConditionalDenoiser({ models: tuned ? { base, tuned } : { base }, classes: seeds.map(() => label) })
      const result = await sample({ denoiser, guider: row.guider, sampler, plan: planFromCard(card, { steps: state.steps }), shape: [seeds.length, card.image.channels, card.image.height, card.image.width], seeds })
      const images = toRawImages(result.samples, { range: card.image.range })
      out.push({ label: row.label, images, nfe: result.nfe, msPerImage: (performance.now() - t0) / seeds.length })
    }
    return out
  } finally {
    await Promise.all(loaded.map((m) => m.dispose()))
  }
}

/**
 * Runs a `guidekit generate ...` command line (as recorded in a PNG) with the workspace CLI, writing to
 * `out`, and returns the PNG it wrote.
 */
export async function runCliCommand(command: string, out: string): Promise<ReturnType<typeof decode>> {
  if (!command.startsWith('guidekit generate ')) throw new Error(`Not a guidekit generate command: ${command}`)
  const cli = `node_modules/.bin/tsx --conditions=@guidekit/source apps/generate/src/cli.ts`
  // The recorded command is shell-quoted by the page (as the CLI quotes it), so bash parses it.
  await promisify(execFile)('bash', ['-c', `${cli} ${command.slice('guidekit '.length)} --out '${out}' --quiet`], { cwd: repoRoot, timeout: 120_000 })
  return decode(readFileSync(out))
}

/** Largest absolute difference between two lists of 8-bit images, and how many values differ. */
export function pixelDifference(a: readonly { data: ArrayLike<number> }[], b: readonly { data: ArrayLike<number> }[]): { max: number; differing: number; total: number } {
  let max = 0
  let differing = 0
  let total = 0
  a.forEach((image, i) => {
    const other = b[i]?.data
    for (let k = 0; k < image.data.length; k++) {
      const d = Math.abs((image.data[k] as number) - (other?.[k] ?? Number.NaN))
      max = Number.isNaN(d) ? Infinity : Math.max(max, d)
      if (d !== 0) differing++
      total++
    }
  })
  return { max, differing, total }
}
