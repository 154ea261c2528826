/**
 * LlamaConfig: the fields of a Hugging Face `config.json` the runtime needs, parsed and checked,
 * for every supported decoder-only family (the name stays for compatibility; `architecture` says
 * which): LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM, Starcoder2ForCausalLM,
 * GemmaForCausalLM. The family is chosen from `architectures` (or `model_type`); its own fields
 * are parsed in families/<family>.ts, the rotary settings in rope.ts. Accepts configs written by
 * transformers 4.x (`rope_theta` + `rope_scaling`, `torch_dtype`) and 5.x (`rope_parameters`,
 * `dtype`); CodeLlama-7b's config.json parses unchanged.
 */
import * as fs from "fs";
import * as path from "path";
import { ConfigError } from "../core/errors";
import { kindText, pathKind } from "./path-kind";
import { duplicateKeyText, findDuplicateKey } from "./json-text";
import { bool, describe, fail, Json, positiveInt } from "./config-fields";
import { parseRope, RopeScaling, ropeScalingToJson } from "./rope";
import { ArchitectureFeatures, FAMILIES, FamilySpec } from "./families";

export { CONFIG_LIMITS } from "./config-fields";
export type { RopeScaling } from "./rope";
export type { ArchitectureFeatures } from "./families";

export interface LlamaConfig extends ArchitectureFeatures {
  architecture: string; // "LlamaForCausalLM", "Qwen2ForCausalLM", ...
  hiddenSize: number; // d_model
  intermediateSize: number; // d_mlp
  numLayers: number;
  numHeads: number;
  numKvHeads: number; // = numHeads when absent (no GQA)
  headDim: number; // hiddenSize / numHeads unless head_dim given (Gemma: 256)
  /** the norm's epsilon (rms_norm_eps; Starcoder2's norm_epsilon) */
  rmsNormEps: number;
  ropeTheta: number; // default 10000
  ropeScaling: RopeScaling | null;
  tieWordEmbeddings: boolean;
  vocabSize: number;
  maxPositionEmbeddings: number;
  torchDtype?: string;
}

/** The supported architectures (HF `architectures` values). */
export const SUPPORTED_ARCHITECTURES = FAMILIES.map((f) => f.architecture);

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
  const family = familyOf(obj, file);
  const { eps, tiedDefault, headDimDefault, ...features } = family.parse(obj, file);
  const sizes = parseSizes(obj, file, headDimDefault);
  const rope = parseRope(obj, file, sizes.maxPositionEmbeddings, sizes.headDim);
  const tieWordEmbeddings = bool(obj, "tie_word_embeddings", file, tiedDefault);

  const dtype = obj.torch_dtype ?? obj.dtype;
  if (dtype !== undefined && dtype !== null && typeof dtype !== "string") fail(file, "torch_dtype", "a string", dtype);

  const config: LlamaConfig = {
    architecture: family.architecture,
    ...sizes,
    rmsNormEps: eps,
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    tieWordEmbeddings,
    ...features,
  };
  if (typeof dtype === "string") config.torchDtype = dtype;
  return config;
}

/** The family named by `architectures` (first supported entry) and/or `model_type`; they must agree. */
function familyOf(obj: Json, file: string): FamilySpec {
  const archs = obj.architectures;
  const modelType = obj.model_type;
  const supported = SUPPORTED_ARCHITECTURES.join(", ");
  let family: FamilySpec | undefined;
  if (archs !== undefined && archs !== null) {
    if (!Array.isArray(archs) || archs.length === 0 || !archs.every((a) => typeof a === "string")) {
      fail(file, "architectures", "a non-empty array of strings", archs);
    }
    family = FAMILIES.find((f) => archs.includes(f.architecture));
    if (!family)
      throw new ConfigError(
        `${file}: unsupported architecture ${JSON.stringify(archs)}; supported architectures are ${supported}`,
        { file, field: "architectures" },
      );
  }
  if (modelType !== undefined) {
    const byType = FAMILIES.find((f) => f.modelType === modelType);
    if (!byType || (family && byType !== family))
      throw new ConfigError(
        `${file}: unsupported model_type ${describe(modelType)}${family ? ` for ${family.architecture}` : ""}; expected ${family ? `"${family.modelType}"` : FAMILIES.map((f) => `"${f.modelType}"`).join(", ")}`,
        { file, field: "model_type" },
      );
    family = byType;
  }
  if (!family)
    throw new ConfigError(
      `${file}: neither "architectures" nor "model_type" is given; expected one of ${supported} (or its model_type)`,
      { file, field: "architectures" },
    );
  return family;
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
function parseSizes(obj: Json, file: string, headDimDefault?: number): LlamaSizes {
  const hiddenSize = positiveInt(obj, "hidden_size", file);
  const intermediateSize = positiveInt(obj, "intermediate_size", file);
  const numLayers = positiveInt(obj, "num_hidden_layers", file);
  const numHeads = positiveInt(obj, "num_attention_heads", file);
  const numKvHeads = positiveInt(obj, "num_key_value_heads", file, numHeads);
  const vocabSize = positiveInt(obj, "vocab_size", file);
  const maxPositionEmbeddings = positiveInt(obj, "max_position_embeddings", file, 2048);

  let headDim: number;
  if ((obj.head_dim !== undefined && obj.head_dim !== null) || headDimDefault !== undefined) {
    headDim = positiveInt(obj, "head_dim", file, headDimDefault);
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
  const family = FAMILIES.find((f) => f.architecture === c.architecture);
  if (!family) throw new ConfigError(`llamaConfigToJson: unsupported architecture ${JSON.stringify(c.architecture)}`);
  const fields = family.toJson(c);
  const json: Record<string, unknown> = {
    architectures: [c.architecture],
    model_type: family.modelType,
    hidden_act: fields.hidden_act,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    ...fields, // the family's (hidden_act keeps its place above)
    rope_theta: c.ropeTheta,
    rope_scaling: ropeScalingToJson(c.ropeScaling),
    tie_word_embeddings: c.tieWordEmbeddings,
    vocab_size: c.vocabSize,
    max_position_embeddings: c.maxPositionEmbeddings,
  };
  if (c.headDim * c.numHeads !== c.hiddenSize || c.architecture === "GemmaForCausalLM") json.head_dim = c.headDim;
  if (c.torchDtype !== undefined) json.torch_dtype = c.torchDtype;
  return json;
}
