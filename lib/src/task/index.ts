// task/: the closing-paren task — paren-run tokens, templates, prompts, corrupted pairs, JSONL.
export type { MissingParenRun, ParenRunSearch, ParenRunTokens, ParenTokenSets } from "./paren-tokens";
export { describeParenRuns, findParenRunTokens, parenRun, parenRunTokens, parenTokenSets } from "./paren-tokens";
export type { TemplateName, TemplateDraw, PromptTemplate } from "./prompt-templates";
export { PROMPT_TEMPLATES } from "./prompt-templates";
export type {
  ParenPrompt,
  RejectionReason,
  RejectionCounts,
  GeneratePromptsOptions,
  GeneratedPrompts,
  PromptDataset,
} from "./prompts";
export { buildPrompt, generatePrompts, generateDataset } from "./prompts";
export type {
  CorruptionStrategy,
  CorruptedPair,
  CorruptedPairAlignment,
  CorruptedPairsOptions,
} from "./corrupted-pairs";
export {
  AUTHORS_THEN_DIGIT,
  CALL_BOUNDARY,
  DIGIT_REPLACEMENT,
  callBoundaryCorruption,
  corruptionCandidates,
  makeCorruptedPairs,
  openCallSites,
} from "./corrupted-pairs";
export { toJsonl, readPromptsJsonl, readPairsJsonl, readClosedPairsJsonl } from "./prompts-jsonl";
export type { ClosedCountPair } from "./closed-count-pairs";
export { deeperClosedArgument, makeClosedCountPairs } from "./closed-count-pairs";
