/**
 * WeightStore: the tensors of a checkpoint folder by HF tensor name, from `model.safetensors` or
 * from shards listed in `model.safetensors.index.json`. Only headers are read on open; each
 * getFloat32 reads one tensor from disk and converts it, so loading never holds the whole file.
 */
import * as fs from "fs";
import * as path from "path";
import { CheckpointError } from "../core/errors";
import { SafetensorsDtype, SafetensorsFile } from "./safetensors";
import type { LlamaConfig } from "./config";
import { architectureWeights } from "./expected-weights";
import { duplicateKeyText, findDuplicateKey } from "./json-text";
import { kindText, pathKind } from "./path-kind";

export const SINGLE_WEIGHTS_FILE = "model.safetensors";
export const WEIGHTS_INDEX_FILE = "model.safetensors.index.json";

/**
 * One tensor as stored: float32 values, or the 2-byte values of a BF16 / F16 tensor unconverted
 * (held that way in memory, converted to float32 only when a run or a caller needs them).
 */
export type StoredTensor = { dtype: "F32"; data: Float32Array } | { dtype: "BF16" | "F16"; bits: Uint16Array }; // [numel] raw 16-bit values, row-major

/** Where a model's weights come from: a WeightStore, or an in-memory map in tests. */
export interface WeightSource {
  /** Label for error messages (a WeightStore's folder). */
  readonly folder?: string;
  has(name: string): boolean;
  shape(name: string): number[];
  getFloat32(name: string): Float32Array;
  /** The tensor in its stored dtype (a WeightStore's BF16 / F16 tensors as 2-byte values); absent: float32 only. */
  getStored?(name: string): StoredTensor;
  /** The file holding a tensor, for error messages (a WeightStore's safetensors file). */
  fileOf?(name: string): string;
}

export class WeightStore implements WeightSource {
  readonly folder: string;
  /** The safetensors files read (one, or every shard). */
  readonly files: string[];
  private readonly byName: Map<string, SafetensorsFile>;

  private constructor(folder: string, files: string[], byName: Map<string, SafetensorsFile>) {
    this.folder = folder;
    this.files = files;
    this.byName = byName;
  }

  /** Open `model.safetensors` (preferred) or the sharded index in `folder`. */
  static open(folder: string): WeightStore {
    const single = path.join(folder, SINGLE_WEIGHTS_FILE);
    const index = path.join(folder, WEIGHTS_INDEX_FILE);
    const singleKind = pathKind(single);
    if (singleKind !== "missing" && singleKind !== "file")
      throw new CheckpointError(`${single} ${kindText(singleKind)}; expected a safetensors file`, { file: single });
    if (singleKind === "file") {
      const f = SafetensorsFile.open(single);
      return new WeightStore(folder, [single], new Map(f.names().map((n) => [n, f])));
    }
    if (fs.existsSync(index)) return WeightStore.openSharded(folder, index);
    const others = fs.existsSync(folder) ? fs.readdirSync(folder).filter((f) => /\.(bin|pt|pth|gguf)$/.test(f)) : [];
    const hint = others.length ? ` (found ${others.join(", ")}: only safetensors weights are supported)` : "";
    throw new CheckpointError(
      `${folder}: no weights: expected ${SINGLE_WEIGHTS_FILE} or ${WEIGHTS_INDEX_FILE}${hint}`,
      { file: single },
    );
  }

  private static openSharded(folder: string, index: string): WeightStore {
    let json: unknown;
    let text: string;
    try {
      text = fs.readFileSync(index, "utf8");
      json = JSON.parse(text);
    } catch (e) {
      throw new CheckpointError(`${index} is not valid JSON: ${(e as Error).message}`, { file: index });
    }
    const dup = findDuplicateKey(text);
    if (dup) throw new CheckpointError(`${index}: ${duplicateKeyText(dup)}`, { file: index, field: dup.key });
    const map = (json as { weight_map?: unknown } | null)?.weight_map;
    if (
      typeof map !== "object" ||
      map === null ||
      Array.isArray(map) ||
      !Object.values(map).every((v) => typeof v === "string")
    ) {
      throw new CheckpointError(`${index}: "weight_map" must be an object mapping tensor names to shard file names`, {
        file: index,
        field: "weight_map",
      });
    }
    const shards = new Map<string, SafetensorsFile>();
    const byName = new Map<string, SafetensorsFile>();
    for (const [name, shard] of Object.entries(map as Record<string, string>)) {
      if (path.isAbsolute(shard) || shard.split(/[\\/]/).includes("..")) {
        throw new CheckpointError(
          `${index}: shard "${shard}" for "${name}" must be a file name inside the checkpoint folder`,
          { file: index, field: name },
        );
      }
      let f = shards.get(shard);
      if (!f) {
        const shardPath = path.join(folder, shard);
        const shardKind = pathKind(shardPath);
        if (shardKind !== "file" && shardKind !== "missing")
          throw new CheckpointError(
            `${index} lists shard ${shard} (for "${name}") but ${shardPath} ${kindText(shardKind)}`,
            {
              file: shardPath,
              field: name,
            },
          );
        if (shardKind === "missing") {
          throw new CheckpointError(`${index} lists shard ${shard} (for "${name}") but ${shardPath} does not exist`, {
            file: shardPath,
            field: name,
          });
        }
        f = SafetensorsFile.open(shardPath);
        shards.set(shard, f);
      }
      if (!f.has(name)) {
        throw new CheckpointError(`${index} maps "${name}" to ${shard}, but that shard has no such tensor`, {
          file: f.file,
          field: name,
        });
      }
      byName.set(name, f);
    }
    checkNoTensorInTwoShards(index, shards, byName);
    return new WeightStore(
      folder,
      [...shards.values()].map((f) => f.file),
      byName,
    );
  }

  names(): string[] {
    return [...this.byName.keys()];
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** The safetensors file holding `name` (its shard when sharded). */
  fileOf(name: string): string {
    return this.fileEntry(name).file;
  }

  private fileEntry(name: string): SafetensorsFile {
    const f = this.byName.get(name);
    if (!f)
      throw new CheckpointError(`${this.folder}: checkpoint has no tensor "${name}"`, {
        file: this.folder,
        field: name,
      });
    return f;
  }

  shape(name: string): number[] {
    return this.fileEntry(name).entry(name).shape.slice();
  }

  dtype(name: string): SafetensorsDtype {
    return this.fileEntry(name).entry(name).dtype;
  }

  /** The tensor as float32, converted from its stored dtype; a fresh array on every call. */
  getFloat32(name: string): Float32Array {
    return this.fileEntry(name).readFloat32(name);
  }

  /** The tensor in its stored dtype: F32 as float32, BF16 / F16 as their 2-byte values (no float32 copy). */
  getStored(name: string): StoredTensor {
    const f = this.fileEntry(name);
    const dtype = f.entry(name).dtype;
    return dtype === "F32" ? { dtype, data: f.readFloat32(name) } : { dtype, bits: f.readHalfBits(name) };
  }
}

/** A tensor stored in two shards is ambiguous (which one the index names is a guess): refuse it. */
function checkNoTensorInTwoShards(
  index: string,
  shards: Map<string, SafetensorsFile>,
  byName: Map<string, SafetensorsFile>,
): void {
  const seen = new Map<string, SafetensorsFile>();
  for (const f of shards.values()) {
    for (const name of f.names()) {
      const other = seen.get(name);
      if (other)
        throw new CheckpointError(
          `${index}: tensor "${name}" is stored in two shards, ${other.file} and ${f.file} (the index maps it to ${byName.get(name)?.file ?? "neither"}); a checkpoint must store each tensor once`,
          { file: f.file, field: name },
        );
      seen.set(name, f);
    }
  }
}

/** Every tensor name with its expected shape for the config's architecture (expected-weights.ts). */
export function expectedLlamaWeights(config: LlamaConfig): Map<string, number[]> {
  return architectureWeights(config);
}

/**
 * Check that every tensor the config needs is present with the right shape. Throws one
 * CheckpointError listing every missing or mis-shaped tensor with its expected shape.
 * Extra tensors are ignored (e.g. rotary inv_freq buffers in old checkpoints; lm_head when tied).
 */
export function validateLlamaWeights(config: LlamaConfig, store: Omit<WeightSource, "getFloat32">): void {
  const problems: string[] = [];
  const firstBad: string[] = [];
  for (const [name, shape] of expectedLlamaWeights(config)) {
    if (!store.has(name)) {
      problems.push(`missing ${name} (expected shape [${shape.join(", ")}])`);
      firstBad.push(name);
      continue;
    }
    const got = store.shape(name);
    if (got.length !== shape.length || got.some((v, i) => v !== shape[i])) {
      problems.push(`${name} has shape [${got.join(", ")}], expected [${shape.join(", ")}]`);
      firstBad.push(name);
    }
  }
  if (problems.length) {
    const shown = problems.slice(0, 20).join("; ");
    const more = problems.length > 20 ? `; and ${problems.length - 20} more` : "";
    const where = store.folder ?? "weights";
    throw new CheckpointError(`${where}: weights do not match config.json: ${shown}${more}`, {
      file: store.folder,
      field: firstBad[0],
    });
  }
}
