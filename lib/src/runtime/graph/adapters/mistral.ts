/** MistralForCausalLM: Llama's blocks; the sliding window is the config's (the shared mask applies it). */
import type { ArchitectureAdapter } from "./adapter";
import { LLAMA_ADAPTER } from "./llama";

export const MISTRAL_ADAPTER: ArchitectureAdapter = { ...LLAMA_ADAPTER, architecture: "MistralForCausalLM" };
