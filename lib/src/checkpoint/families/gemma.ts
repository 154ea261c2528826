/**
 * GemmaForCausalLM (CodeGemma): RMSNorm times (1 + weight), GeGLU (gelu tanh; transformers maps
 * hidden_act "gelu" to "gelu_pytorch_tanh"), embeddings times sqrt(d_model) (rounded to float32,
 * the runtime's dtype), head_dim 256 when absent, tied embeddings, attention_bias on q, k, v, o.
 */
import { ConfigError } from "../../core/errors";
import { bool, positiveNumber } from "../config-fields";
import { activationJson, FamilySpec, parseActivation } from "./family";

export const GEMMA: FamilySpec = {
  architecture: "GemmaForCausalLM",
  modelType: "gemma",
  parse(obj, file) {
    const attentionBias = bool(obj, "attention_bias", file, false);
    if (bool(obj, "use_bidirectional_attention", file, false))
      throw new ConfigError(`${file}: use_bidirectional_attention=true is not supported (a causal LM is expected)`, {
        file,
        field: "use_bidirectional_attention",
      });
    return {
      qkvBias: attentionBias,
      outputBias: attentionBias,
      mlpBias: false,
      mlp: "gated",
      activation: parseActivation(obj, file, "gelu_pytorch_tanh", { gelu: "gelu_pytorch_tanh" }),
      norm: "rms_one_plus",
      embedScale: true,
      slidingWindow: null,
      eps: positiveNumber(obj, "rms_norm_eps", file, 1e-6),
      tiedDefault: true,
      headDimDefault: 256,
    };
  },
  toJson: (c) => ({ hidden_act: activationJson(c.activation), rms_norm_eps: c.rmsNormEps, attention_bias: c.qkvBias }),
};
