// analysis/: the paper's measurements and their computed verdicts.
// Internal on purpose: the per-batch helpers of study.ts the analyses share (groupsOf, asPairs,
// batchCounterfactuals), bootstrap index drawing, the JS linear algebra (dot, unembedColumns).
export * from "./findings";
export * from "./logit-lens";
export * from "./counting-heads";
export type {
  MeanAblationBasis,
  SublayerMethod,
  SublayerEffectsOptions,
  SublayerEffectRow,
  SublayerPromptValue,
  SublayerEffectsResult,
  SublayerReference,
} from "./sublayer-effects";
export {
  MEAN_ABLATION_BASES,
  SUBLAYER_METHODS,
  sublayerEffects,
  sublayerEffectsForwards,
  sublayerReference,
} from "./sublayer-effects";
export * from "./sweep";
export { setSweepJournal, sweepJournalDir } from "./sweep-journal";
export type { Progress, OnProgress, ProgressOptions } from "./forward-progress";
export { setDefaultProgress, withForwardProgress } from "./forward-progress";
export { knockoutKeys } from "./attention-knockout";
export type { HeadLensRow, HeadLogitLensOptions } from "./head-logit-lens";
export { headLogitLens } from "./head-logit-lens";
export type { ClosedContrastRow, ClosedCountContrastOptions } from "./closed-count-contrast";
export { closedCountContrast } from "./closed-count-contrast";
export type { PermutationNullOptions, PermutationNullResult } from "./permutation-null";
export { stratifiedPermutationNull } from "./permutation-null";
export type { StudyPrompt, PromptPair, PairAlignment, PairInputs, GroupedEffect, PromptGroup } from "./study";
export {
  PAIR_ALIGNMENTS,
  groupByLength,
  lengthBatches,
  pairAlignment,
  pairBatches,
  pairInputs,
  patchWhere,
  firstPerN,
  checkStudyPrompts,
  checkPromptPairs,
  modelParens,
  modelParenSets,
} from "./study";
export type {
  CounterfactualSpec,
  MetricTarget,
  PromptScore,
  MetricSummaryRow,
  LogitDiffByCountRow,
  SummaryOptions,
} from "./metrics";
export { lastPositionLogits, scoreLogits, scoreRow, summarizeScores, logitDiffByCount, logitDiffFor } from "./metrics";
export type { ScorePromptsOptions } from "./score-prompts";
export { scorePrompts } from "./score-prompts";
export type { BootstrapOptions, Interval } from "./bootstrap";
export { bootstrapMean, bootstrapProportion, bootstrapPearson, bootstrapGapFraction } from "./bootstrap";
export type { BinomialIntervalMethod } from "./stats";
export {
  meanOf,
  stdOf,
  quantile,
  medianOf,
  pearson,
  softmax,
  binomialInterval,
  binomialCdf,
  normalQuantile,
  partialCorrelation,
} from "./stats";
export type { GridComponent, PatchingGridOptions, PatchingGridRow, PatchingGridResult } from "./patching-grid";
export { GRID_COMPONENTS, patchingGrid, patchingGridForwards } from "./patching-grid";
