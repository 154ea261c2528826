/**
 * GemmaForCausalLM: embeddings × sqrt(d_model) (float32; hook_embed is the scaled embedding, as
 * TL folds the scale into W_E), RMSNorm × (1 + weight), GeGLU (gated MLP with GELU tanh).
 */
import type { ArchitectureAdapter } from "./adapter";
import { embedLookup, gatedMlp, rmsNorm } from "./components";

export const GEMMA_ADAPTER: ArchitectureAdapter = {
  architecture: "GemmaForCausalLM",
  features: { norm: "rms_one_plus", mlp: "gated", embedScale: true },
  embed: embedLookup,
  norm: (ctx, prefix, x, module) => rmsNorm(ctx, prefix, x, module, true),
  mlp: gatedMlp,
};
