export { draftGeometry, reorderIndices, restoreIndices, validTokensPerBlock } from './layout.js'
export type { TokenGrid, DraftWindow, DraftLayout, DraftGeometry } from './layout.js'
export {
  draftSelections,
  rowTopkBlocks,
  globalPercentileEntries,
  defaultMaxBlocksPerRow,
} from './selection.js'
export type { DraftSelection } from './selection.js'
export {
  poolDraftTokens,
  draftAttentionMap,
  selectBlocks,
  denseAttention,
  blockSparseAttention,
  draftAttentionReference,
} from './reference.js'
export type { SelectBlocksOptions, AttentionOptions, DraftAttentionReferenceOptions, DraftAttentionReferenceResult } from './reference.js'
export { draftAttention } from './denoiser.js'
export type { DraftAttentionDenoiser, DraftAttentionDenoiserOptions } from './denoiser.js'
export {
  rewriteDraftAttention,
  readDraftModelInfo,
  defaultDraftInputNames,
  draftMetadataKey,
} from './rewrite.js'
export type {
  AttentionSiteKind,
  AttentionSite,
  DraftInputNames,
  DraftModelInfo,
  RewriteDraftAttentionOptions,
  RewriteDraftAttentionResult,
} from './rewrite.js'
export { draftFeeds, parseDraftAttentionSpec, isDenseStep, defaultWindow } from './feeds.js'
export type { DraftFeed, DraftFeedsOptions, DraftAttentionSpec } from './feeds.js'
export { buildAttentionModel } from './attention-model.js'
export type { AttentionModelOptions } from './attention-model.js'
