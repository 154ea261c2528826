// runtime/: running the model on onnxruntime. The graph builder and the session planner are
// internal (tests of the graph import runtime/graph/* directly).
export type {
  HookedLlamaOptions,
  RunOptions,
  RunSitesOptions,
  RunWithCacheOptions,
  CachedRun,
  UnembedOptions,
} from "./hooked-llama";
export { HookedLlama } from "./hooked-llama";
export type { SessionOptions } from "./session-plan";
