/** LlamaForCausalLM (CodeLlama, DeepSeek-Coder, Llama 3.x): attention_bias (q, k, v and o), mlp_bias. */
import { bool, positiveNumber } from "../config-fields";
import { activationJson, FamilySpec, parseActivation } from "./family";

export const LLAMA: FamilySpec = {
  architecture: "LlamaForCausalLM",
  modelType: "llama",
  parse(obj, file) {
    const attentionBias = bool(obj, "attention_bias", file, false); // transformers: bias on q, k, v and o_proj
    return {
      qkvBias: attentionBias,
      outputBias: attentionBias,
      mlpBias: bool(obj, "mlp_bias", file, false),
      mlp: "gated",
      activation: parseActivation(obj, file, "silu"),
      norm: "rms",
      embedScale: false,
      slidingWindow: null,
      eps: positiveNumber(obj, "rms_norm_eps", file, 1e-6),
      tiedDefault: false,
    };
  },
  // biases written only when on: a plain Llama's config.json stays as before
  toJson: (c) => ({
    hidden_act: activationJson(c.activation),
    rms_norm_eps: c.rmsNormEps,
    ...(c.qkvBias ? { attention_bias: true } : {}),
    ...(c.mlpBias ? { mlp_bias: true } : {}),
  }),
};
