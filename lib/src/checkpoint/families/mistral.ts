/**
 * MistralForCausalLM: Llama's blocks without biases, with sliding-window attention
 * (`sliding_window`, 4096 when absent as in transformers, null for full causal attention).
 */
import { positiveInt, positiveNumber } from "../config-fields";
import { activationJson, FamilySpec, parseActivation } from "./family";

export const MISTRAL: FamilySpec = {
  architecture: "MistralForCausalLM",
  modelType: "mistral",
  parse(obj, file) {
    return {
      qkvBias: false,
      outputBias: false,
      mlpBias: false,
      mlp: "gated",
      activation: parseActivation(obj, file, "silu"),
      norm: "rms",
      embedScale: false,
      slidingWindow: obj.sliding_window === null ? null : positiveInt(obj, "sliding_window", file, 4096),
      eps: positiveNumber(obj, "rms_norm_eps", file, 1e-6),
      tiedDefault: false,
    };
  },
  toJson: (c) => ({
    hidden_act: activationJson(c.activation),
    rms_norm_eps: c.rmsNormEps,
    sliding_window: c.slidingWindow,
  }),
};
