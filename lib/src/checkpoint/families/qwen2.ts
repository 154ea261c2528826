/**
 * Qwen2ForCausalLM (Qwen2.5-Coder): biases on q, k, v (not o), GQA, tied embeddings on small
 * sizes. Sliding-window layers (use_sliding_window with layers at or past max_window_layers, or
 * layer_types naming "sliding_attention") are refused: every published Qwen2.5-Coder has them off.
 */
import { ConfigError } from "../../core/errors";
import { bool, positiveInt, positiveNumber } from "../config-fields";
import { activationJson, FamilySpec, parseActivation } from "./family";

export const QWEN2: FamilySpec = {
  architecture: "Qwen2ForCausalLM",
  modelType: "qwen2",
  parse(obj, file) {
    const layers = positiveInt(obj, "num_hidden_layers", file);
    const sliding = bool(obj, "use_sliding_window", file, false) && obj.sliding_window !== null;
    const types = Array.isArray(obj.layer_types) ? obj.layer_types : [];
    const maxWindowLayers = positiveInt(obj, "max_window_layers", file, 28);
    if ((sliding && maxWindowLayers < layers) || types.includes("sliding_attention"))
      throw new ConfigError(
        `${file}: Qwen2 sliding-window layers (use_sliding_window with max_window_layers ${maxWindowLayers} < ${layers} layers, or layer_types "sliding_attention") are not supported; expected use_sliding_window false`,
        { file, field: "use_sliding_window" },
      );
    return {
      qkvBias: true,
      outputBias: false,
      mlpBias: false,
      mlp: "gated",
      activation: parseActivation(obj, file, "silu"),
      norm: "rms",
      embedScale: false,
      slidingWindow: null,
      eps: positiveNumber(obj, "rms_norm_eps", file, 1e-6),
      tiedDefault: false,
    };
  },
  toJson: (c) => ({ hidden_act: activationJson(c.activation), rms_norm_eps: c.rmsNormEps, use_sliding_window: false }),
};
