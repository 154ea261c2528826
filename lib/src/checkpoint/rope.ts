/**
 * The rotary embedding settings of a config.json, read with transformers 5.x's precedence
 * (configuration_utils / modeling_rope_utils.RotaryEmbeddingConfigMixin.convert_rope_params_to_dict
 * and standardize_rope_params):
 * - a non-empty `rope_scaling` (4.x spelling) replaces `rope_parameters` (5.x) as a whole
 *   (`self.rope_parameters = rope_scaling or self.rope_parameters`);
 * - `rope_theta` inside the chosen object wins over the top-level `rope_theta` (setdefault), 10000 without either;
 * - the type is `rope_type`, else `type`, else "default";
 * - for yarn and llama3, a top-level `original_max_position_embeddings` wins over the object's,
 *   which defaults to `max_position_embeddings`.
 * Types implemented: default, linear, dynamic (NTK, computed from the batch's length), yarn, llama3,
 * longrope (long or short factors chosen from the batch's length). proportional (Gemma 4's) and
 * partial rotary factors are refused (ConfigError).
 */
import { ConfigError } from "../core/errors";
import { describe, fail, Json, positiveInt, positiveNumber } from "./config-fields";

export type RopeScaling =
  | { type: "linear"; factor: number }
  /** NTK-aware: base grows with the batch's length once it exceeds max_position_embeddings */
  | { type: "dynamic"; factor: number }
  | {
      type: "yarn";
      factor: number;
      originalMaxPositionEmbeddings: number;
      /** multiplies cos and sin (transformers' attention_scaling) */
      attentionFactor: number;
      betaFast: number;
      betaSlow: number;
      truncate: boolean;
    }
  | {
      /** inv_freq / long_factor when the batch's length exceeds original_max_position_embeddings, else / short_factor */
      type: "longrope";
      shortFactor: number[];
      longFactor: number[];
      originalMaxPositionEmbeddings: number;
      attentionFactor: number;
    }
  | {
      type: "llama3";
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositionEmbeddings: number;
    };

export const ROPE_TYPES = ["default", "linear", "dynamic", "yarn", "llama3", "longrope"];

/** transformers' get_mscale for YaRN. */
function yarnMscale(scale: number, mscale = 1): number {
  return scale <= 1 ? 1 : 0.1 * mscale * Math.log(scale) + 1;
}

/** The rope object transformers uses, with the name of the field it came from. */
function chosenRopeObject(obj: Json, file: string): { rope: Json; field: string } {
  for (const field of ["rope_scaling", "rope_parameters"]) {
    const v = obj[field];
    if (v !== undefined && v !== null && (typeof v !== "object" || Array.isArray(v)))
      fail(file, field, 'null or an object {"rope_type": ..., "factor": ...}', v);
  }
  const scaling = obj.rope_scaling as Json | null | undefined;
  if (scaling && Object.keys(scaling).length > 0) return { rope: scaling, field: "rope_scaling" };
  return { rope: (obj.rope_parameters as Json | null | undefined) ?? {}, field: "rope_parameters" };
}

/**
 * rope_theta and the scaling of a config.json (null = default rope). `maxPositions` is the
 * config's max_position_embeddings. Throws ConfigError naming the field.
 *
 * @example
 * parseRope({ rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4 } }, "c.json", 8192);
 */
export function parseRope(
  obj: Json,
  file: string,
  maxPositions: number,
  headDim: number,
): { theta: number; scaling: RopeScaling | null } {
  const { rope, field } = chosenRopeObject(obj, file);
  const topTheta = positiveNumber(obj, "rope_theta", file, 10000);
  const theta = rope.rope_theta === undefined ? topTheta : positiveNumber(rope, "rope_theta", file, topTheta);
  const partial = rope.partial_rotary_factor ?? obj.partial_rotary_factor;
  if (partial !== undefined && partial !== null && partial !== 1)
    throw new ConfigError(`${file}: partial_rotary_factor ${describe(partial)} is not supported (expected 1)`, {
      file,
      field: "partial_rotary_factor",
    });
  const kind = rope.rope_type ?? rope.type ?? "default";
  const factor = (): number => {
    const f = rope.factor;
    if (typeof f !== "number" || !Number.isFinite(f) || f <= 0) fail(file, `${field}.factor`, "a positive number", f);
    return f;
  };
  // for yarn, llama3 and longrope (standardize_rope_params): a top-level value wins
  const originalMax = (): number =>
    obj.original_max_position_embeddings !== undefined && obj.original_max_position_embeddings !== null
      ? positiveInt(obj, "original_max_position_embeddings", file)
      : positiveInt(rope, "original_max_position_embeddings", file, maxPositions);
  switch (kind) {
    case "default":
      return { theta, scaling: null };
    case "linear":
      return { theta, scaling: { type: "linear", factor: factor() } };
    case "dynamic":
      return { theta, scaling: { type: "dynamic", factor: factor() } };
    case "yarn":
      return { theta, scaling: parseYarn(rope, field, file, originalMax(), maxPositions) };
    case "longrope":
      return { theta, scaling: parseLongrope(rope, field, file, originalMax(), maxPositions, headDim) };
    case "llama3": {
      const num = (k: string) => {
        const v = rope[k];
        if (typeof v !== "number" || !Number.isFinite(v)) fail(file, `${field}.${k}`, "a number", v);
        return v;
      };
      const [lowFreqFactor, highFreqFactor] = [num("low_freq_factor"), num("high_freq_factor")];
      if (lowFreqFactor === highFreqFactor)
        fail(file, `${field}.high_freq_factor`, "different from low_freq_factor", highFreqFactor);
      return {
        theta,
        scaling: {
          type: "llama3",
          factor: factor(),
          lowFreqFactor,
          highFreqFactor,
          originalMaxPositionEmbeddings: originalMax(),
        },
      };
    }
    default: {
      const got = typeof kind === "string" ? JSON.stringify(kind) : describe(kind);
      throw new ConfigError(
        `${file}: ${field} has rope type ${got}; supported rope types are ${ROPE_TYPES.map((t) => `"${t}"`).join(", ")} (written "rope_type", or "type" in transformers 4.x)`,
        { file, field },
      );
    }
  }
}

/** YaRN's settings with transformers' defaults (factor from the position ratio, attention factor from mscale). */
function parseYarn(rope: Json, field: string, file: string, originalMax: number, maxPositions: number): RopeScaling {
  const factor =
    rope.factor === undefined || rope.factor === null
      ? maxPositions / originalMax
      : positiveNumber(rope, "factor", file, 1);
  let attentionFactor: number;
  if (rope.attention_factor !== undefined && rope.attention_factor !== null) {
    attentionFactor = positiveNumber(rope, "attention_factor", file, 1);
  } else {
    const [m, mAll] = [rope.mscale, rope.mscale_all_dim];
    attentionFactor =
      typeof m === "number" && m !== 0 && typeof mAll === "number" && mAll !== 0
        ? yarnMscale(factor, m) / yarnMscale(factor, mAll)
        : yarnMscale(factor);
  }
  // python `or`: a missing, null or zero beta takes the default
  const betaFast = typeof rope.beta_fast === "number" && rope.beta_fast !== 0 ? rope.beta_fast : 32;
  const betaSlow = typeof rope.beta_slow === "number" && rope.beta_slow !== 0 ? rope.beta_slow : 1;
  const truncate = rope.truncate === undefined ? true : Boolean(rope.truncate);
  if (!Number.isFinite(betaFast) || !Number.isFinite(betaSlow)) fail(file, `${field}.beta_fast`, "a number", betaFast);
  return {
    type: "yarn",
    factor,
    originalMaxPositionEmbeddings: originalMax,
    attentionFactor,
    betaFast,
    betaSlow,
    truncate,
  };
}

/** LongRoPE's factor lists (d_head / 2 numbers each) and attention factor (transformers' default from factor). */
function parseLongrope(
  rope: Json,
  field: string,
  file: string,
  originalMax: number,
  maxPositions: number,
  headDim: number,
): RopeScaling {
  const list = (k: string): number[] => {
    const v = rope[k];
    if (
      !Array.isArray(v) ||
      v.length !== headDim / 2 ||
      !v.every((x) => typeof x === "number" && Number.isFinite(x) && x > 0)
    )
      fail(file, `${field}.${k}`, `a list of ${headDim / 2} positive numbers (head_dim / 2)`, v);
    return v as number[];
  };
  const factor =
    rope.factor === undefined || rope.factor === null
      ? maxPositions / originalMax
      : positiveNumber(rope, "factor", file, 1);
  const attentionFactor =
    rope.attention_factor !== undefined && rope.attention_factor !== null
      ? positiveNumber(rope, "attention_factor", file, 1)
      : factor <= 1
        ? 1
        : Math.sqrt(1 + Math.log(factor) / Math.log(originalMax));
  return {
    type: "longrope",
    shortFactor: list("short_factor"),
    longFactor: list("long_factor"),
    originalMaxPositionEmbeddings: originalMax,
    attentionFactor,
  };
}

/** The config.json `rope_scaling` object of a scaling (null for default rope). */
export function ropeScalingToJson(s: RopeScaling | null): Json | null {
  if (s === null) return null;
  switch (s.type) {
    case "linear":
      return { type: "linear", factor: s.factor };
    case "dynamic":
      return { rope_type: "dynamic", factor: s.factor };
    case "yarn":
      return {
        rope_type: "yarn",
        factor: s.factor,
        original_max_position_embeddings: s.originalMaxPositionEmbeddings,
        attention_factor: s.attentionFactor,
        beta_fast: s.betaFast,
        beta_slow: s.betaSlow,
        truncate: s.truncate,
      };
    case "longrope":
      return {
        rope_type: "longrope",
        short_factor: s.shortFactor,
        long_factor: s.longFactor,
        original_max_position_embeddings: s.originalMaxPositionEmbeddings,
        attention_factor: s.attentionFactor,
      };
    case "llama3":
      return {
        rope_type: "llama3",
        factor: s.factor,
        low_freq_factor: s.lowFreqFactor,
        high_freq_factor: s.highFreqFactor,
        original_max_position_embeddings: s.originalMaxPositionEmbeddings,
      };
  }
}
