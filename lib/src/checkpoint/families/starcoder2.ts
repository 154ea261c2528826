/**
 * Starcoder2ForCausalLM: LayerNorm with bias (norm_epsilon), biases on every projection
 * (use_bias), a non-gated MLP c_fc → GELU (tanh) → c_proj, tied embeddings, optional sliding window.
 */
import { bool, positiveInt, positiveNumber } from "../config-fields";
import { activationJson, FamilySpec, parseActivation } from "./family";

export const STARCODER2: FamilySpec = {
  architecture: "Starcoder2ForCausalLM",
  modelType: "starcoder2",
  parse(obj, file) {
    const bias = bool(obj, "use_bias", file, true);
    return {
      qkvBias: bias,
      outputBias: bias,
      mlpBias: bias,
      mlp: "plain",
      activation: parseActivation(obj, file, "gelu_pytorch_tanh"),
      norm: "layer",
      embedScale: false,
      slidingWindow:
        obj.sliding_window === undefined || obj.sliding_window === null
          ? null
          : positiveInt(obj, "sliding_window", file),
      eps: positiveNumber(obj, "norm_epsilon", file, 1e-5),
      tiedDefault: true,
    };
  },
  toJson: (c) => ({
    hidden_act: activationJson(c.activation),
    norm_epsilon: c.rmsNormEps,
    use_bias: c.qkvBias,
    sliding_window: c.slidingWindow,
  }),
};
