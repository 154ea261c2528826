// checkpoint/: reading a Hugging Face folder (config.json, safetensors, tokenizer.json).
// Internal on purpose: the dtype bit converters, Hub cache paths and download helpers.
export type { LlamaConfig } from "./config";
export { parseLlamaConfig, loadLlamaConfig, llamaConfigToJson } from "./config";
export type { Checkpoint, LoadCheckpointOptions, LocalCheckpointOptions } from "./load";
export { loadCheckpoint, loadLocalCheckpoint } from "./load";
export type { SafetensorsDtype, SafetensorsEntry } from "./safetensors";
export { SafetensorsFile } from "./safetensors";
export { loadTokenizer } from "./tokenizer";
export type { WeightSource } from "./weights";
export {
  WeightStore,
  expectedLlamaWeights,
  validateLlamaWeights,
  SINGLE_WEIGHTS_FILE,
  WEIGHTS_INDEX_FILE,
} from "./weights";
