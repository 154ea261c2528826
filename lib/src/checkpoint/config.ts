/**
 * LlamaConfig: the fields of a Hugging Face `config.json` the runtime needs, parsed and checked.
 * Accepts configs written by transformers 4.x (`rope_theta` + `rope_scaling`, `torch_dtype`) and
 * 5.x (`rope_parameters`, `dtype`); CodeLlama-7b's config.json parses unchanged.
 */
import * as fs from "fs";
import * as path from "path";
import { ConfigError } from "../core/errors";
import { kindText, pathKind } from "./path-kind";
import { duplicateKeyText, findDuplicateKey } from "./json-text";

export interface LlamaConfig {
  architecture: string; // "LlamaForCausalLM"
  hiddenSize: number; // d_model
  intermediateSize: number; // d_mlp
  numLayers: number;
  numHeads: number;
  numKvHeads: number; // = numHeads when absent (no GQA)
  headDim: number; // hiddenSize / numHeads unless head_dim given
  rmsNormEps: number;
  ropeTheta: number; // default 10000
  ropeScaling: null | { type: "linear"; factor: number };
  tieWordEmbeddings: boolean;
  vocabSize: number;
  maxPositionEmbeddings: number;
  torchDtype?: string;
}

const SUPPORTED_ARCHITECTURE = "LlamaForCausalLM";

type Json = Record<string, unknown>;

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return `array ${JSON.stringify(v).slice(0, 60)}`;
  if (typeof v === "string") return `string ${JSON.stringify(v)}`;
  if (typeof v === "object") return "object";
  return `${typeof v} ${String(v)}`;
}

function fail(file: string, field: string, expected: string, got: unknown): never {
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
};

function positiveInt(obj: Json, field: string, file: string, fallback?: number): number {
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

function positiveNumber(obj: Json, field: string, file: string, fallback: number): number {
  const v = obj[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) fail(file, field, "a positive number", v);
  return v;
}

function bool(obj: Json, field: string, file: string, fallback: boolean): boolean {
  const v = obj[field];
  if (v === undefined || v === null) return fallback;
  if (typeof v !== "boolean") fail(file, field, "a boolean", v);
  return v;
}

const ROPE_TYPES = '"default" (or null) and "linear"';

/** One rope object ({rope_type | type, factor}) → scaling; `field` names it in errors. */
function parseRopeObject(rs: unknown, field: string, file: string): LlamaConfig["ropeScaling"] {
  if (rs === undefined || rs === null) return null;
  if (typeof rs !== "object" || Array.isArray(rs))
    fail(file, field, 'null or an object {"rope_type": "default" | "linear", ...}', rs);
  const s = rs as Json;
  const kind = s.rope_type ?? s.type;
  if (kind === "default" || (kind === undefined && field === "rope_parameters")) return null;
  if (kind !== "linear") {
    const got = typeof kind === "string" ? JSON.stringify(kind) : describe(kind);
    throw new ConfigError(
      `${file}: ${field} has rope type ${got}; supported rope types are ${ROPE_TYPES} (written "rope_type", or "type" in transformers 4.x)`,
      { file, field },
    );
  }
  const factor = s.factor;
  if (typeof factor !== "number" || !Number.isFinite(factor) || factor <= 0)
    fail(file, `${field}.factor`, "a positive number", factor);
  return { type: "linear", factor };
}

/**
 * rope_scaling (transformers 4.x) and/or rope_parameters (5.x): only default and linear scaling
 * are implemented. When both are given, transformers 5 reads rope_scaling first; here the two
 * must agree (same scaling) or the config is refused, so no file is read two ways.
 */
function parseRope(obj: Json, file: string): { theta: number; scaling: LlamaConfig["ropeScaling"] } {
  let theta = positiveNumber(obj, "rope_theta", file, 10000);
  const params = obj.rope_parameters;
  if (params !== undefined && params !== null) {
    if (typeof params !== "object" || Array.isArray(params)) fail(file, "rope_parameters", "an object or null", params);
    const p = params as Json;
    if (p.rope_theta !== undefined) theta = positiveNumber(p, "rope_theta", file, theta);
  }
  const fromScaling = parseRopeObject(obj.rope_scaling, "rope_scaling", file);
  const fromParams = parseRopeObject(params, "rope_parameters", file);
  const both = obj.rope_scaling !== undefined && obj.rope_scaling !== null && params !== undefined && params !== null;
  if (both && JSON.stringify(fromScaling) !== JSON.stringify(fromParams)) {
    throw new ConfigError(
      `${file}: rope_scaling (${JSON.stringify(fromScaling ?? "default")}) and rope_parameters (${JSON.stringify(fromParams ?? "default")}) disagree; keep one of them`,
      { file, field: "rope_scaling" },
    );
  }
  return { theta, scaling: fromScaling ?? fromParams };
}

/**
 * Parse and validate a config.json object; `file` names it in error messages. Throws ConfigError.
 *
 * @example
 * const config = parseLlamaConfig(JSON.parse(fs.readFileSync(file, "utf8")), file);
 * config.numKvHeads; // num_key_value_heads, default num_attention_heads
 */
export function parseLlamaConfig(json: unknown, file: string): LlamaConfig {
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new ConfigError(`${file}: expected a JSON object, got ${describe(json)}`, { file });
  }
  const obj = json as Json;
  checkArchitecture(obj, file);
  const sizes = parseSizes(obj, file);
  const rmsNormEps = positiveNumber(obj, "rms_norm_eps", file, 1e-6);
  const rope = parseRope(obj, file);
  const tieWordEmbeddings = bool(obj, "tie_word_embeddings", file, false);

  const dtype = obj.torch_dtype ?? obj.dtype;
  if (dtype !== undefined && dtype !== null && typeof dtype !== "string") fail(file, "torch_dtype", "a string", dtype);

  const config: LlamaConfig = {
    architecture: SUPPORTED_ARCHITECTURE,
    hiddenSize: sizes.hiddenSize,
    intermediateSize: sizes.intermediateSize,
    numLayers: sizes.numLayers,
    numHeads: sizes.numHeads,
    numKvHeads: sizes.numKvHeads,
    headDim: sizes.headDim,
    rmsNormEps,
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    tieWordEmbeddings,
    vocabSize: sizes.vocabSize,
    maxPositionEmbeddings: sizes.maxPositionEmbeddings,
  };
  if (typeof dtype === "string") config.torchDtype = dtype;
  return config;
}

/** architectures and/or model_type must say Llama; SiLU; no attention or MLP biases (the graph has none). */
function checkArchitecture(obj: Json, file: string): void {
  const archs = obj.architectures;
  if (archs !== undefined && archs !== null) {
    if (!Array.isArray(archs) || archs.length === 0 || !archs.every((a) => typeof a === "string")) {
      fail(file, "architectures", "a non-empty array of strings", archs);
    }
    if (!archs.includes(SUPPORTED_ARCHITECTURE)) {
      throw new ConfigError(
        `${file}: unsupported architecture ${JSON.stringify(archs)}; only ${SUPPORTED_ARCHITECTURE} is supported`,
        { file, field: "architectures" },
      );
    }
  }
  const modelType = obj.model_type;
  if (modelType !== undefined && modelType !== "llama") {
    throw new ConfigError(`${file}: unsupported model_type ${describe(modelType)}; only "llama" is supported`, {
      file,
      field: "model_type",
    });
  }
  if ((archs === undefined || archs === null) && modelType === undefined) {
    throw new ConfigError(
      `${file}: neither "architectures" nor "model_type" is given; expected ["${SUPPORTED_ARCHITECTURE}"] or "llama"`,
      { file, field: "architectures" },
    );
  }
  const act = obj.hidden_act;
  if (act !== undefined && act !== "silu") {
    throw new ConfigError(`${file}: unsupported hidden_act ${describe(act)}; Llama uses "silu"`, {
      file,
      field: "hidden_act",
    });
  }
  for (const f of ["attention_bias", "mlp_bias"]) {
    if (bool(obj, f, file, false))
      throw new ConfigError(`${file}: ${f}=true is not supported (expected false)`, { file, field: f });
  }
}

type LlamaSizes = Pick<
  LlamaConfig,
  | "hiddenSize"
  | "intermediateSize"
  | "numLayers"
  | "numHeads"
  | "numKvHeads"
  | "headDim"
  | "vocabSize"
  | "maxPositionEmbeddings"
>;

/** The sizes, with head_dim derived when absent and the head counts checked against each other. */
function parseSizes(obj: Json, file: string): LlamaSizes {
  const hiddenSize = positiveInt(obj, "hidden_size", file);
  const intermediateSize = positiveInt(obj, "intermediate_size", file);
  const numLayers = positiveInt(obj, "num_hidden_layers", file);
  const numHeads = positiveInt(obj, "num_attention_heads", file);
  const numKvHeads = positiveInt(obj, "num_key_value_heads", file, numHeads);
  const vocabSize = positiveInt(obj, "vocab_size", file);
  const maxPositionEmbeddings = positiveInt(obj, "max_position_embeddings", file, 2048);

  let headDim: number;
  if (obj.head_dim !== undefined && obj.head_dim !== null) {
    headDim = positiveInt(obj, "head_dim", file);
  } else {
    if (hiddenSize % numHeads !== 0) {
      throw new ConfigError(
        `${file}: num_attention_heads (${numHeads}) must divide hidden_size (${hiddenSize}) unless head_dim is given`,
        { file, field: "num_attention_heads" },
      );
    }
    headDim = hiddenSize / numHeads;
  }
  if (numHeads % numKvHeads !== 0) {
    throw new ConfigError(
      `${file}: num_key_value_heads (${numKvHeads}) must divide num_attention_heads (${numHeads})`,
      { file, field: "num_key_value_heads" },
    );
  }
  if (headDim % 2 !== 0) fail(file, "head_dim", "even (rotary embedding pairs dimensions)", headDim);
  return { hiddenSize, intermediateSize, numLayers, numHeads, numKvHeads, headDim, vocabSize, maxPositionEmbeddings };
}

/**
 * Read `<folder>/config.json` and parse it. Throws ConfigError (missing file, bad JSON, bad field).
 *
 * @example
 * const config = loadLlamaConfig("data/models/parenlens-code-6l");
 * config.numLayers; // 6
 */
export function loadLlamaConfig(folder: string): LlamaConfig {
  const file = path.join(folder, "config.json");
  const kind = pathKind(file);
  if (kind !== "file")
    throw new ConfigError(
      kind === "missing" ? `${file} not found: a checkpoint folder needs a config.json` : `${file} ${kindText(kind)}`,
      { file },
    );
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigError(
      code === "ENOENT"
        ? `${file} not found: a checkpoint folder needs a config.json`
        : `${file} cannot be read: ${(e as Error).message}`,
      { file },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file} is not valid JSON: ${(e as Error).message}`, { file });
  }
  const dup = findDuplicateKey(text);
  if (dup) throw new ConfigError(`${file}: ${duplicateKeyText(dup)}`, { file, field: dup.key });
  return parseLlamaConfig(json, file);
}

/** The HF config.json fields for a LlamaConfig (used by random-checkpoint.ts to write one). */
export function llamaConfigToJson(c: LlamaConfig): Record<string, unknown> {
  const json: Record<string, unknown> = {
    architectures: [c.architecture],
    model_type: "llama",
    hidden_act: "silu",
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: c.ropeScaling ? { type: "linear", factor: c.ropeScaling.factor } : null,
    tie_word_embeddings: c.tieWordEmbeddings,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.maxPositionEmbeddings,
  };
  if (c.headDim * c.numHeads !== c.hiddenSize) json.head_dim = c.headDim;
  if (c.torchDtype !== undefined) json.torch_dtype = c.torchDtype;
  return json;
}
