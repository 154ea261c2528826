/**
 * Reading one config.json field with a typed error naming the file, the field and what was
 * expected: the helpers every family's config parser (families/*.ts) and the rope parser share.
 */
import { ConfigError } from "../core/errors";

export type Json = Record<string, unknown>;

/** A short description of a JSON value for error messages. */
export function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return `array ${JSON.stringify(v).slice(0, 60)}`;
  if (typeof v === "string") return `string ${JSON.stringify(v)}`;
  if (typeof v === "object") return "object";
  return `${typeof v} ${String(v)}`;
}

/** Throw ConfigError: `field` of `file` must be `expected`, got `got`. */
export function fail(file: string, field: string, expected: string, got: unknown): never {
  throw new ConfigError(`${file}: field "${field}" must be ${expected}, got ${describe(got)}`, { file, field });
}

/**
 * Upper bounds of the sizes: far above any published Llama (405B: 126 layers, d_model 16384,
 * vocab 128256), low enough that a lying config fails here at once instead of stalling while
 * lists of expected tensors (9 per layer) or messages are built.
 */
export const CONFIG_LIMITS: Record<string, number> = {
  hidden_size: 1 << 17,
  intermediate_size: 1 << 20,
  num_hidden_layers: 4096,
  num_attention_heads: 4096,
  num_key_value_heads: 4096,
  head_dim: 1 << 14,
  vocab_size: 1 << 23,
  max_position_embeddings: 1 << 27,
  sliding_window: 1 << 27,
};

/** A positive integer field (`fallback` when absent or null; required without one). */
export function positiveInt(obj: Json, field: string, file: string, fallback?: number): number {
  const v = obj[field];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ConfigError(`${file}: required field "${field}" is missing (expected a positive integer)`, {
      file,
      field,
    });
  }
  if (typeof v !== "number" || !Number.isInteger(v) || v <= 0) fail(file, field, "a positive integer", v);
  const max = CONFIG_LIMITS[field];
  if (max !== undefined && v > max) fail(file, field, `a positive integer at most ${max}`, v);
  return v;
}

/** A positive finite number field (`fallback` when absent or null). */
export function positiveNumber(obj: Json, field: string, file: string, fallback: number): number {
  const v = obj[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) fail(file, field, "a positive number", v);
  return v;
}

/** A boolean field (`fallback` when absent or null). */
export function bool(obj: Json, field: string, file: string, fallback: boolean): boolean {
  const v = obj[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") fail(file, field, "a boolean", v);
  return v;
}
