/** LlamaForCausalLM: RMSNorm, gated SiLU MLP (biases, rope and head_dim come from the config). */
import type { ArchitectureAdapter } from "./adapter";
import { embedLookup, gatedMlp, rmsNorm } from "./components";

export const LLAMA_ADAPTER: ArchitectureAdapter = {
  architecture: "LlamaForCausalLM",
  embed: (ctx, ids) => embedLookup(ctx, ids),
  norm: (ctx, prefix, x, module) => rmsNorm(ctx, prefix, x, module),
  mlp: gatedMlp,
};
