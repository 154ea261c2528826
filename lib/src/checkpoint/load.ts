/**
 * loadCheckpoint: a local folder in HF layout, or a Hub id ("org/name") downloaded into the
 * @huggingface/transformers file cache (same folder layout: <cacheDir>/<org>/<name>/<file>).
 * Every network step has a timeout, so without a network it fails fast with a CheckpointError
 * that says to pass a local folder.
 */
import * as fs from "fs";
import * as path from "path";
import { env as hfEnv } from "@huggingface/transformers";
import { CheckpointError, ParenlensError } from "../core/errors";
import { LlamaConfig, loadLlamaConfig } from "./config";
import { WeightStore, validateLlamaWeights, SINGLE_WEIGHTS_FILE, WEIGHTS_INDEX_FILE } from "./weights";
import { Tokenizer, loadTokenizer } from "./tokenizer";
import { kindText, pathKind } from "./path-kind";

export interface Checkpoint {
  folder: string;
  config: LlamaConfig;
  weights: WeightStore;
  tokenizer: Tokenizer | null;
}

/** Local-folder options of loadCheckpoint / loadLocalCheckpoint. */
export interface LocalCheckpointOptions {
  /**
   * Load the tokenizer
   *
   * true: read tokenizer.json (checked against config.json's vocab_size); a folder without one is
   * a CheckpointError naming the file. false: a model without a tokenizer (token ids only),
   * tokenizer.json ignored.
   *
   * @default true
   */
  tokenizer?: boolean;
  /**
   * Validate the weights
   *
   * Check every tensor the config needs (name and shape) before returning. HookedLlama passes
   * false because its constructor runs the same check, so a checkpoint is validated once.
   *
   * @default true
   */
  validateWeights?: boolean;
}

/** Options of loadCheckpoint: where and how a Hub id is downloaded, plus the local options. */
export interface LoadCheckpointOptions extends LocalCheckpointOptions {
  /**
   * Hub timeout
   *
   * Milliseconds allowed for each Hub request to answer, and between chunks of a download.
   *
   * @default 15000
   */
  timeoutMs?: number;
  /**
   * Download cache
   *
   * Where Hub downloads go (folder layout <cacheDir>/<org>/<name>/<file>).
   *
   * @default the @huggingface/transformers cache (env.cacheDir)
   */
  cacheDir?: string;
  /**
   * Hub revision
   *
   * Branch, tag or commit of the Hub repo.
   *
   * @default "main"
   */
  revision?: string;
  /**
   * Offline
   *
   * Never touch the network; a Hub id must already be in the cache.
   *
   * @default true when HF_HUB_OFFLINE=1, else false
   */
  offline?: boolean;
}

const HUB_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}\/[A-Za-z0-9_.-]{1,96}$/;
const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];
const COMPLETE_MARKER = ".parenlens-complete";

export function looksLikeHubId(s: string): boolean {
  return HUB_ID.test(s) && !s.includes("..") && !s.includes("--") && !s.startsWith(".");
}

/**
 * Load config, weights (validated against the config) and tokenizer from a local folder.
 *
 * @example
 * const ck = loadLocalCheckpoint("data/models/parenlens-code-6l");
 * ck.weights.shape("model.embed_tokens.weight"); // [vocab, d_model]
 */
export function loadLocalCheckpoint(folder: string, opts: LocalCheckpointOptions = {}): Checkpoint {
  const kind = pathKind(folder);
  if (kind !== "directory") {
    throw new CheckpointError(`${folder} is not a checkpoint folder (${kindText(kind)})`, { file: folder });
  }
  const configFile = path.join(folder, "config.json");
  const configKind = pathKind(configFile);
  if (configKind !== "file") {
    throw new CheckpointError(`${configFile}: a checkpoint folder needs config.json, but it ${kindText(configKind)}`, {
      file: configFile,
    });
  }
  const config = loadLlamaConfig(folder);
  const weights = WeightStore.open(folder);
  if (opts.validateWeights !== false) validateLlamaWeights(config, weights);
  let tokenizer: Tokenizer | null = null;
  if (opts.tokenizer !== false) {
    const tokFile = path.join(folder, "tokenizer.json");
    const tokKind = pathKind(tokFile);
    if (tokKind !== "file")
      throw new CheckpointError(
        `${tokFile} ${kindText(tokKind)}: a model with a tokenizer needs tokenizer.json; pass { tokenizer: false } for a model that takes token ids only`,
        { file: tokFile },
      );
    tokenizer = loadTokenizer(folder);
    if (tokenizer.vocabSize > config.vocabSize) {
      throw new CheckpointError(
        `${folder}: tokenizer has ${tokenizer.vocabSize} tokens but config.json vocab_size is ${config.vocabSize}`,
        { file: path.join(folder, "tokenizer.json"), field: "vocab_size" },
      );
    }
  }
  return { folder, config, weights, tokenizer };
}

/**
 * A folder path that exists → local. Otherwise an "org/name" Hub id → downloaded (or taken from
 * the cache when a previous download completed). Throws CheckpointError / ConfigError / SafetensorsError.
 *
 * @example
 * const ck = await loadCheckpoint("data/models/parenlens-code-6l");
 * ck.config.numLayers; // 6
 * const hub = await loadCheckpoint("org/name", { timeoutMs: 5000, revision: "main" });
 */
export async function loadCheckpoint(folderOrHubId: string, opts: LoadCheckpointOptions = {}): Promise<Checkpoint> {
  if (typeof folderOrHubId !== "string" || folderOrHubId === "")
    throw new CheckpointError(
      `a checkpoint folder or Hub id must be a non-empty string, got ${JSON.stringify(folderOrHubId)}`,
      {
        field: "folderOrHubId",
      },
    );
  if (pathKind(folderOrHubId) !== "missing") return loadLocalCheckpoint(folderOrHubId, opts);
  if (!looksLikeHubId(folderOrHubId)) {
    throw new CheckpointError(`${folderOrHubId}: no such folder (and not a Hub id of the form "org/name")`, {
      file: folderOrHubId,
    });
  }
  const folder = await downloadFromHub(folderOrHubId, opts);
  return loadLocalCheckpoint(folder, opts);
}

/** The cache folder a Hub id is downloaded into (transformers.js' FileCache layout). */
export function hubCacheFolder(hubId: string, opts: { cacheDir?: string; revision?: string } = {}): string {
  const cacheDir = opts.cacheDir ?? hfEnv.cacheDir;
  if (!cacheDir)
    throw new CheckpointError(`no cache folder for Hub downloads: pass opts.cacheDir`, { field: "cacheDir" });
  const revision = opts.revision ?? "main";
  return revision === "main" ? path.join(cacheDir, hubId) : path.join(cacheDir, hubId, revision);
}

class HubUnreachable extends Error {}

/** Download config, tokenizer files and safetensors (single or sharded) of a Hub repo into the cache. */
export async function downloadFromHub(hubId: string, opts: LoadCheckpointOptions = {}): Promise<string> {
  const folder = hubCacheFolder(hubId, opts);
  if (fs.existsSync(path.join(folder, COMPLETE_MARKER))) return folder; // complete earlier download: no network
  const offline = opts.offline ?? (process.env.HF_HUB_OFFLINE === "1" || hfEnv.allowRemoteModels === false);
  if (offline) {
    throw new CheckpointError(
      `${hubId} is not a local folder and is not in the cache (${folder}); Hub access is off (offline). Pass a local checkpoint folder.`,
      { file: hubId },
    );
  }
  const timeoutMs = opts.timeoutMs ?? 15000;
  const revision = encodeURIComponent(opts.revision ?? "main");
  const host = (hfEnv.remoteHost ?? "https://huggingface.co/").replace(/\/?$/, "/");
  const url = (file: string) => `${host}${hubId}/resolve/${revision}/${file}`;
  const get = (file: string, required: boolean) =>
    fetchToFile(url(file), path.join(folder, file), timeoutMs, required, hubId);
  try {
    fs.mkdirSync(folder, { recursive: true });
    await get("config.json", true);
    for (const f of TOKENIZER_FILES) await get(f, false);
    if (await get(WEIGHTS_INDEX_FILE, false)) {
      const index = JSON.parse(fs.readFileSync(path.join(folder, WEIGHTS_INDEX_FILE), "utf8"));
      const shards = new Set<string>(Object.values((index.weight_map ?? {}) as Record<string, string>));
      for (const shard of shards) await get(shard, true);
    } else {
      await get(SINGLE_WEIGHTS_FILE, true);
    }
  } catch (e) {
    // Leave no empty cache folder behind a failed first download.
    if (fs.existsSync(folder) && fs.readdirSync(folder).length === 0) fs.rmdirSync(folder);
    if (e instanceof ParenlensError) throw e;
    if (e instanceof HubUnreachable) {
      throw new CheckpointError(
        `${hubId} is not a local folder, and the Hugging Face Hub is unreachable (${e.message}). ` +
          `Pass a local checkpoint folder (config.json + model.safetensors), or run where the Hub can be reached.`,
        { file: hubId },
      );
    }
    throw new CheckpointError(`${hubId}: download failed: ${(e as Error).message}`, { file: hubId });
  }
  fs.writeFileSync(path.join(folder, COMPLETE_MARKER), new Date().toISOString() + "\n");
  return folder;
}

/**
 * GET url into dest (via dest.part, renamed when complete). Returns false on 404 when not
 * required. The timeout covers the wait for the response and each gap between body chunks.
 */
async function fetchToFile(
  url: string,
  dest: string,
  timeoutMs: number,
  required: boolean,
  hubId: string,
): Promise<boolean> {
  if (fs.existsSync(dest)) return true;
  const controller = new AbortController();
  let timer = setTimeout(() => controller.abort(), timeoutMs);
  const rearm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(), timeoutMs);
  };
  const headers: Record<string, string> = {};
  const token = process.env.HF_TOKEN;
  if (token) headers.Authorization = `Bearer ${token}`;
  try {
    let res: Response;
    try {
      res = await fetch(url, { signal: controller.signal, headers, redirect: "follow" });
    } catch (e) {
      const cause = (e as { cause?: { code?: string } }).cause?.code;
      throw new HubUnreachable(
        controller.signal.aborted
          ? `no answer within ${timeoutMs} ms from ${url}`
          : `${cause ?? (e as Error).message} for ${url}`,
      );
    }
    if (res.status === 404 && !required) return false;
    if (!res.ok) {
      const why =
        res.status === 401 || res.status === 403
          ? " (gated or private: set HF_TOKEN)"
          : res.status === 404
            ? " (no such repo or file)"
            : "";
      throw new CheckpointError(`${hubId}: GET ${url} answered HTTP ${res.status}${why}`, {
        file: path.basename(dest),
      });
    }
    const part = dest + ".part";
    const fd = fs.openSync(part, "w");
    try {
      if (!res.body) throw new CheckpointError(`${hubId}: empty response for ${url}`, { file: path.basename(dest) });
      const reader = res.body.getReader();
      for (;;) {
        let chunk: ReadableStreamReadResult<Uint8Array>;
        try {
          chunk = await reader.read();
        } catch (e) {
          throw new HubUnreachable(
            controller.signal.aborted ? `download of ${url} stalled for ${timeoutMs} ms` : (e as Error).message,
          );
        }
        if (chunk.done) break;
        rearm();
        fs.writeSync(fd, chunk.value);
      }
    } catch (e) {
      fs.closeSync(fd);
      fs.rmSync(part, { force: true });
      throw e;
    }
    fs.closeSync(fd);
    fs.renameSync(part, dest);
    return true;
  } finally {
    clearTimeout(timer);
  }
}
