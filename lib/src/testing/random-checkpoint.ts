/**
 * Seeded random Llama checkpoints in HF layout (config.json + safetensors, optionally sharded,
 * optionally a tokenizer copied in), for tests, goldens and the scale benchmark.
 *
 * Each tensor gets its own PRNG stream seeded from (seed, tensor name), so a tensor's values do
 * not depend on sharding or write order: a sharded checkpoint equals the single-file one.
 * Scales keep activations O(1) so attention patterns and logits are far from uniform:
 * embeddings ~N(0, 1), projections ~N(0, k/sqrt(fan_in)) (≈0.02·k at d_model 4096), norm weights
 * ~1 + N(0, 0.1).
 */
import * as fs from "fs";
import * as path from "path";
import { LlamaConfig, llamaConfigToJson, parseLlamaConfig, RopeScaling } from "../checkpoint/config";
import { ropeScalingToJson } from "../checkpoint/rope";
import { SafetensorsDtype } from "../checkpoint/safetensors";
import { TensorToWrite, writeSafetensors } from "./safetensors-writer";
import { expectedLlamaWeights, SINGLE_WEIGHTS_FILE, WEIGHTS_INDEX_FILE } from "../checkpoint/weights";
import { CheckpointError } from "../core/errors";
import { seededRandom, streamSeed } from "../core/random";

/** What random checkpoint to write. */
export interface RandomCheckpointSpec {
  /**
   * Config overrides
   *
   * Fields replacing those of the tiny default config (2 layers, d_model 32, 4 heads, d_mlp 64, vocab 64).
   *
   * @default {} (TINY_CONFIG)
   */
  config?: Partial<LlamaConfig>;
  /**
   * Base config.json
   *
   * A full HF config.json to start from instead of the defaults (e.g. CodeLlama's); `config` overrides its fields.
   *
   * @default none (TINY_CONFIG)
   */
  configJson?: Record<string, unknown>;
  /**
   * Stored dtype
   *
   * @default "F32"
   */
  dtype?: SafetensorsDtype;
  /**
   * Seed
   *
   * Every tensor's values come from (seed, tensor name): same spec, same bytes.
   *
   * @default 0
   */
  seed?: number;
  /**
   * Shards
   *
   * More than 1 writes model-0000i-of-0000n.safetensors and model.safetensors.index.json.
   *
   * @default 1
   */
  shards?: number;
  /**
   * Tied embeddings
   *
   * Shorthand for config.tieWordEmbeddings (no lm_head.weight written).
   *
   * @default false
   */
  tied?: boolean;
  /**
   * Tokenizer source
   *
   * Copy tokenizer.json / tokenizer_config.json / special_tokens_map.json from this folder.
   *
   * @default none (no tokenizer: the model takes token ids only)
   */
  tokenizerFrom?: string;
  /**
   * Init scale
   *
   * Multiplies the standard deviation of every projection.
   *
   * @default 1
   */
  initScale?: number;
}

export interface RandomCheckpoint {
  folder: string;
  config: LlamaConfig;
  files: string[];
}

export const TINY_CONFIG: LlamaConfig = {
  architecture: "LlamaForCausalLM",
  hiddenSize: 32,
  intermediateSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 4,
  headDim: 8,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  ropeScaling: null,
  tieWordEmbeddings: false,
  vocabSize: 64,
  maxPositionEmbeddings: 128,
  qkvBias: false,
  outputBias: false,
  mlpBias: false,
  mlp: "gated",
  activation: "silu",
  norm: "rms",
  embedScale: false,
  slidingWindow: null,
};

const TORCH_DTYPE: Record<SafetensorsDtype, string> = { F32: "float32", BF16: "bfloat16", F16: "float16" };

/** LlamaConfig field → config.json field, to apply overrides onto a given config.json. */
const JSON_FIELD: Partial<Record<keyof LlamaConfig, string>> = {
  architecture: "architectures",
  hiddenSize: "hidden_size",
  intermediateSize: "intermediate_size",
  numLayers: "num_hidden_layers",
  numHeads: "num_attention_heads",
  numKvHeads: "num_key_value_heads",
  headDim: "head_dim",
  rmsNormEps: "rms_norm_eps",
  ropeTheta: "rope_theta",
  ropeScaling: "rope_scaling",
  tieWordEmbeddings: "tie_word_embeddings",
  vocabSize: "vocab_size",
  maxPositionEmbeddings: "max_position_embeddings",
  torchDtype: "torch_dtype",
};

/** `n` values ~N(mean, std) by Box-Muller from the (seed, name) stream. */
export function seededNormal(seed: number, name: string, n: number, mean: number, std: number): Float32Array {
  const rand = seededRandom(streamSeed(name, seed));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - rand(); // (0, 1]: log is finite
    const u2 = rand();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = mean + std * r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = mean + std * r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** The random tensors of a Llama checkpoint, each generated lazily when written. */
export function randomLlamaTensors(config: LlamaConfig, seed: number, initScale = 1): TensorToWrite[] {
  const tensors: TensorToWrite[] = [];
  for (const [name, shape] of expectedLlamaWeights(config)) {
    const n = shape.reduce((a, d) => a * d, 1);
    let mean = 0;
    let std: number;
    if (name.endsWith("norm.weight")) {
      mean = config.norm === "rms_one_plus" ? 0 : 1; // Gemma stores w of (1 + w)
      std = 0.1;
    } else if (name.endsWith(".bias")) {
      std = 0.1;
    } else if (name === "model.embed_tokens.weight") {
      std = 1;
    } else {
      std = initScale / Math.sqrt(shape[1]); // [out, in]: fan_in is the last dim
    }
    tensors.push({ name, shape, data: () => seededNormal(seed, name, n, mean, std) });
  }
  return tensors;
}

function configJsonFor(spec: RandomCheckpointSpec): Record<string, unknown> {
  const overrides: Partial<LlamaConfig> = { ...spec.config };
  if (spec.tied !== undefined) overrides.tieWordEmbeddings = spec.tied;
  const dtype = spec.dtype ?? "F32";
  let json: Record<string, unknown>;
  if (spec.configJson) {
    json = { ...spec.configJson };
    for (const [k, v] of Object.entries(overrides) as [keyof LlamaConfig, unknown][]) {
      const field = JSON_FIELD[k];
      if (k === "architecture") json.architectures = [v];
      else if (k === "ropeScaling") json.rope_scaling = ropeScalingToJson(v as RopeScaling | null);
      else if (field) json[field] = v;
      else
        throw new CheckpointError(`config override ${k}: a family feature; set its config.json field in configJson`, {
          field: k,
        });
    }
  } else {
    json = llamaConfigToJson({ ...TINY_CONFIG, ...overrides });
  }
  json.torch_dtype = TORCH_DTYPE[dtype];
  return json;
}

/**
 * Write a seeded random checkpoint to `folder` (created if needed). Same spec → same bytes.
 *
 * @example
 * const ck = writeRandomCheckpoint("/tmp/gqa3", { config: { numLayers: 3, numHeads: 4, numKvHeads: 2 }, seed: 7 });
 * const model = await HookedLlama.fromPretrained(ck.folder, { tokenizer: false }); // token ids only
 */
export function writeRandomCheckpoint(folder: string, spec: RandomCheckpointSpec = {}): RandomCheckpoint {
  const dtype = spec.dtype ?? "F32";
  const seed = spec.seed ?? 0;
  const json = configJsonFor(spec);
  const configFile = path.join(folder, "config.json");
  const config = parseLlamaConfig(json, configFile); // refuse to write a checkpoint we could not load
  fs.mkdirSync(folder, { recursive: true });
  // Stale weights from an earlier write (single vs sharded) would shadow the new ones.
  for (const f of fs.readdirSync(folder)) {
    if (f === SINGLE_WEIGHTS_FILE || f === WEIGHTS_INDEX_FILE || /^model-\d+-of-\d+\.safetensors$/.test(f))
      fs.rmSync(path.join(folder, f));
  }
  fs.writeFileSync(configFile, JSON.stringify(json, null, 2) + "\n");
  const files = [configFile];

  const tensors = randomLlamaTensors(config, seed, spec.initScale ?? 1);
  const metadata = { format: "pt" };
  const shards = spec.shards ?? 1;
  if (!Number.isInteger(shards) || shards < 1 || shards > tensors.length) {
    throw new CheckpointError(`shards must be an integer in 1..${tensors.length}, got ${shards}`, { field: "shards" });
  }
  if (shards === 1) {
    const file = path.join(folder, SINGLE_WEIGHTS_FILE);
    writeSafetensors(file, tensors, { dtype, metadata });
    files.push(file);
  } else {
    // Consecutive tensors, split where the running byte count crosses k/shards of the total.
    const bytes = tensors.map((t) => t.shape.reduce((a, d) => a * d, 1) * (dtype === "F32" ? 4 : 2));
    const total = bytes.reduce((a, b) => a + b, 0);
    const groups: TensorToWrite[][] = Array.from({ length: shards }, () => []);
    let acc = 0;
    tensors.forEach((t, i) => {
      // Leave at least one tensor for each remaining shard.
      let g = Math.min(shards - 1, Math.floor((acc / total) * shards));
      g = Math.max(g, shards - (tensors.length - i));
      groups[g].push(t);
      acc += bytes[i];
    });
    const weightMap: Record<string, string> = {};
    const pad = (k: number) => String(k).padStart(5, "0");
    groups.forEach((group, k) => {
      const name = `model-${pad(k + 1)}-of-${pad(shards)}.safetensors`;
      writeSafetensors(path.join(folder, name), group, { dtype, metadata });
      files.push(path.join(folder, name));
      for (const t of group) weightMap[t.name] = name;
    });
    const index = path.join(folder, WEIGHTS_INDEX_FILE);
    fs.writeFileSync(index, JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2) + "\n");
    files.push(index);
  }

  if (spec.tokenizerFrom) {
    for (const f of ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]) {
      const src = path.join(spec.tokenizerFrom, f);
      if (fs.existsSync(src)) {
        fs.copyFileSync(src, path.join(folder, f));
        files.push(path.join(folder, f));
      } else if (f === "tokenizer.json") {
        throw new CheckpointError(`tokenizerFrom: ${src} not found`, { file: src });
      }
    }
  }
  return { folder, config, files };
}
