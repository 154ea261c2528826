/** Qwen2ForCausalLM: Llama's blocks; the q/k/v biases are named by the config (qkvBias). */
import type { ArchitectureAdapter } from "./adapter";
import { LLAMA_ADAPTER } from "./llama";

export const QWEN2_ADAPTER: ArchitectureAdapter = { ...LLAMA_ADAPTER, architecture: "Qwen2ForCausalLM" };
