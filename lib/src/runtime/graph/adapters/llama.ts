/** LlamaForCausalLM: RMSNorm, gated SiLU MLP (biases, rope and head_dim come from the config). */
import type { ArchitectureAdapter } from "./adapter";
import { embedLookup, gatedMlp, rmsNorm } from "./components";

export const LLAMA_ADAPTER: ArchitectureAdapter = {
  architecture: "LlamaForCausalLM",
  features: { norm: "rms", mlp: "gated", embedScale: false },
  embed: embedLookup,
  norm: (ctx, prefix, x, module) => rmsNorm(ctx, prefix, x, module),
  mlp: gatedMlp,
};
