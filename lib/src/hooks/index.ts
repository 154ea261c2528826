// hooks/: the TransformerLens vocabulary — hook names, interventions as data, the activation cache.
// Internal on purpose: applying interventions (the runtime does it), edit distance, dim sizes.
export type { CacheModelInfo, CachePos, StackOptions, AccumulatedResidOptions, StackResult } from "./activation-cache";
export { ActivationCache, headLabel } from "./activation-cache";
export type { NameFilter } from "./hook-points";
export {
  hookNames,
  hookShape,
  hookDims,
  parseHookName,
  validateHookName,
  suggestHookNames,
  isHeadResultHook,
  resolveNameFilter,
  actName,
  resolveActName,
  ACT_SHORTHANDS,
} from "./hook-points";
export type { Intervention, InterventionContext, HookValueSource, ValidateInterventionOptions } from "./interventions";
export { validateIntervention } from "./interventions";
