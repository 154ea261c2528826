/**
 * What a model family (one `architectures` value) adds to the shared decoder-only config:
 * biases, the MLP's shape and activation, the norm, embedding scaling, sliding-window attention.
 * One file per family parses its own config.json fields into these features (families/*.ts).
 */
import type { Json } from "../config-fields";
import { describe } from "../config-fields";
import { ConfigError } from "../../core/errors";

export type Activation = "silu" | "gelu" | "gelu_tanh";

export interface ArchitectureFeatures {
  /** bias on q_proj, k_proj, v_proj */
  qkvBias: boolean;
  /** bias on o_proj */
  outputBias: boolean;
  /** bias on every MLP projection */
  mlpBias: boolean;
  /** "gated": gate_proj/up_proj/down_proj, act(gate) * up; "plain": c_fc → act → c_proj */
  mlp: "gated" | "plain";
  /** silu, gelu (erf) or gelu_tanh (gelu_pytorch_tanh / gelu_new) */
  activation: Activation;
  /** "rms": x/rms · w (Llama); "rms_one_plus": x/rms · (1 + w) (Gemma); "layer": LayerNorm with bias */
  norm: "rms" | "rms_one_plus" | "layer";
  /** embeddings multiplied by sqrt(d_model) rounded to float32 (Gemma) */
  embedScale: boolean;
  /** a key is visible when query - key < window (transformers' sliding_window_overlay); null: full causal */
  slidingWindow: number | null;
}

/** A family's parse result: its features plus the family defaults the shared parser needs. */
export interface FamilyFields extends ArchitectureFeatures {
  /** the norm epsilon (rms_norm_eps, or norm_epsilon for Starcoder2) */
  eps: number;
  /** tie_word_embeddings when absent */
  tiedDefault: boolean;
  /** head_dim when absent (Gemma: 256); undefined: hidden_size / num_attention_heads */
  headDimDefault?: number;
}

export interface FamilySpec {
  architecture: string;
  modelType: string;
  /** the family's config.json fields → features; throws ConfigError naming the field */
  parse(obj: Json, file: string): FamilyFields;
  /** the family's config.json fields of a parsed config (for writing random checkpoints) */
  toJson(c: ArchitectureFeatures & { rmsNormEps: number }): Json;
}

const ACTIVATIONS: Record<string, Activation> = {
  silu: "silu",
  swish: "silu",
  gelu: "gelu",
  gelu_pytorch_tanh: "gelu_tanh",
  gelu_new: "gelu_tanh",
};

/** transformers' ACT2FN name → activation; `aliases` remaps names first (Gemma: gelu → gelu_pytorch_tanh). */
export function parseActivation(
  obj: Json,
  file: string,
  fallback: string,
  aliases: Record<string, string> = {},
): Activation {
  const raw = obj.hidden_act ?? fallback;
  const name = typeof raw === "string" ? (aliases[raw] ?? raw) : raw;
  const act = typeof name === "string" ? ACTIVATIONS[name] : undefined;
  if (!act)
    throw new ConfigError(
      `${file}: unsupported hidden_act ${describe(raw)}; supported: ${Object.keys(ACTIVATIONS).join(", ")}`,
      { file, field: "hidden_act" },
    );
  return act;
}

/** The config.json hidden_act of an activation. */
export function activationJson(a: Activation): string {
  return a === "gelu_tanh" ? "gelu_pytorch_tanh" : a;
}
