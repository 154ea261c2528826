/** Starcoder2ForCausalLM: LayerNorm with bias, non-gated c_fc → GELU → c_proj MLP (TL's mlp: no hook_pre_linear). */
import type { ArchitectureAdapter } from "./adapter";
import { embedLookup, layerNorm, plainMlp } from "./components";

export const STARCODER2_ADAPTER: ArchitectureAdapter = {
  architecture: "Starcoder2ForCausalLM",
  features: { norm: "layer", mlp: "plain", embedScale: false },
  embed: embedLookup,
  norm: layerNorm,
  mlp: plainMlp,
};
