// `--attention draft:...`: the denoiser wrapped in @guidekit/draft-attention's DraftAttention.
import type { ClassConditionalDenoiser, OnnxSessionOptions } from '@guidekit/onnx'
import type { DraftAttentionDenoiser } from '@guidekit/draft-attention'
import { UsageError } from './errors.js'

/** Draft attention as used by one run. */
export interface DraftAttentionRun {
  /** The spec as written, for labels and the PNG parameters. */
  readonly label: string
  readonly denoiser: DraftAttentionDenoiser
}

/** Wraps the denoiser for `--attention draft:...`, or returns undefined for `--attention dense`. */
export async function applyDraftAttention(denoiser: ClassConditionalDenoiser, spec: string, sessionOptions: OnnxSessionOptions): Promise<DraftAttentionRun | undefined> {
  let draft: typeof import('@guidekit/draft-attention')
  try {
    draft = await import('@guidekit/draft-attention')
  } catch (cause) {
    throw new UsageError(`--attention needs @guidekit/draft-attention, which could not be loaded (${cause instanceof Error ? cause.message.split('\n')[0] : String(cause)}).`)
  }
  const parsed = draft.parseDraftAttentionSpec(spec)
  if (parsed === undefined) return undefined
  const wrapped = await draft.draftAttention(denoiser, { ...parsed, sessionOptions })
  return { label: spec.trim(), denoiser: wrapped }
}
