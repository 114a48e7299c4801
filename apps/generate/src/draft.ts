// `--attention draft:...`: the denoiser wrapped in @guidekit/draft-attention's DraftAttention.
import { draftAttention, parseDraftAttentionSpec } from '@guidekit/draft-attention'
import type { DraftAttentionDenoiser } from '@guidekit/draft-attention'
import type { ClassConditionalDenoiser, OnnxSessionOptions } from '@guidekit/onnx'
import { UsageError } from './errors.js'

/** Draft attention as used by one run. */
export interface DraftAttentionRun {
  /** The spec as written, for labels and the PNG parameters. */
  readonly label: string
  readonly denoiser: DraftAttentionDenoiser
}

/**
 * The `--attention` value: `undefined` for dense attention (`dense`, or no option), else the draft spec,
 * checked for syntax before any model is loaded.
 */
export function attentionSpec(raw: string | undefined): string | undefined {
  if (raw === undefined || ['dense', 'none'].includes(raw.trim())) return undefined
  try {
    if (parseDraftAttentionSpec(raw) === undefined) return undefined
  } catch (error) {
    throw new UsageError(`--attention ${JSON.stringify(raw)}: ${error instanceof Error ? error.message : String(error)}`)
  }
  return raw.trim()
}

/** Wraps the denoiser for `--attention draft:...` (a spec checked by {@link attentionSpec}). */
export async function applyDraftAttention(denoiser: ClassConditionalDenoiser, spec: string, sessionOptions: OnnxSessionOptions): Promise<DraftAttentionRun | undefined> {
  const parsed = parseDraftAttentionSpec(spec)
  if (parsed === undefined) return undefined
  const wrapped = await draftAttention(denoiser, { ...parsed, sessionOptions })
  return { label: spec, denoiser: wrapped }
}
