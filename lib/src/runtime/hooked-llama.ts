/**
 * HookedLlama: a Llama checkpoint run on onnxruntime-node with TransformerLens hook points.
 * The graph is built from the config; weights are graph inputs fed from JS (one float32 copy).
 * Interventions cut the graph after their hooks (graph/partition.ts); JS edits the hook's value
 * between segments. Built sessions are cached by (cuts, outputs, graph options).
 */
import * as ort from "onnxruntime-node";
import { ActivationCache } from "../hooks/activation-cache";
import { LlamaConfig } from "../checkpoint/config";
import { InputError, InterventionError, ParenlensError } from "../core/errors";
import { buildLlamaGraph, LlamaGraphOptions } from "./graph/llama-graph";
import { Graph } from "./graph/ir";
import { segmentToModel } from "./graph/onnx-model";
import { partitionGraph, Segment } from "./graph/partition";
import {
  hookDims,
  hookNames,
  isHeadResultHook,
  NameFilter,
  parseHookName,
  resolveNameFilter,
  validateHookName,
} from "../hooks/hook-points";
import { applyInterventions, Intervention, validateIntervention } from "../hooks/interventions";
import { Tensor } from "../core/tensor";
import { lastTokenIndex, ModelInput, TokenBatch, toTokenBatch, ToTokensOptions } from "../core/token-batch";
import { expectedLlamaWeights, validateLlamaWeights, WeightStore } from "../checkpoint/weights";
import { loadCheckpoint } from "../checkpoint/load";
import { Tokenizer } from "../checkpoint/tokenizer";

/** Where weights come from (a WeightStore, or an in-memory map in tests). */
export interface WeightSource {
  has(name: string): boolean;
  shape(name: string): number[];
  getFloat32(name: string): Float32Array;
}

/** What the model needs from a tokenizer (the Tokenizer of tokenizer.ts fits). */
export interface ModelTokenizer {
  encode(text: string, opts?: { addBos?: boolean }): number[];
  decode(ids: number[]): string;
  padId: number | null;
  eosId: number | null;
}

export interface HookedLlamaOptions {
  executionProvider?: "cpu" | "cuda";
  /** intra-op threads (default: onnxruntime's choice) */
  threads?: number;
  /** how many built session plans to keep (default 8) */
  sessionCacheSize?: number;
  /**
   * Let onnxruntime's worker threads spin-wait between ops (default false). A run cut for an
   * intervention alternates between sessions whose idle pools would otherwise keep spinning
   * against each other on few cores; see scripts/bench/BENCH.md.
   */
  spinning?: boolean;
}

export interface RunOptions extends ToTokensOptions {
  /** "last": logits [batch, vocab] at each prompt's last token; default "all": [batch, pos, vocab] */
  logitsAt?: "all" | "last";
}

export interface RunWithCacheOptions extends RunOptions {
  names: NameFilter;
  interventions?: Intervention[];
  /** build per-head results (attn.hook_result); default: when a name or intervention needs it */
  withHeadResult?: boolean;
}

export interface CachedRun {
  logits: Tensor;
  cache: ActivationCache;
}

interface Plan {
  graph: Graph;
  segments: Segment[];
  sessions: ort.InferenceSession[];
  /** per segment: tensors no later segment needs (dropped after it ran) */
  release: string[][];
}

/** Fail loudly when feeds and session inputs differ (ORT silently drops unknown feeds). */
export function checkFeedNames(inputNames: readonly string[], feeds: Record<string, unknown>, context: string): void {
  const want = new Set(inputNames);
  const unknown = Object.keys(feeds).filter((n) => !want.has(n));
  const missing = inputNames.filter((n) => !(n in feeds));
  if (unknown.length || missing.length) {
    const parts = [];
    if (unknown.length) parts.push(`unknown feed names ${unknown.join(", ")} (onnxruntime would silently drop them)`);
    if (missing.length) parts.push(`missing inputs ${missing.join(", ")}`);
    throw new ParenlensError(
      "FEED",
      `${context}: ${parts.join("; ")}; session inputs are ${inputNames.slice(0, 12).join(", ")}${inputNames.length > 12 ? ", ..." : ""}`,
      { field: unknown[0] ?? missing[0] },
    );
  }
}

/** Names of a 2-D / 1-D HF weight's dims, for Tensors handed to researchers. */
function weightDims(name: string, rank: number): string[] {
  if (rank === 1) return ["d_model"];
  if (/embed_tokens|lm_head/.test(name)) return ["vocab", "d_model"];
  if (/q_proj/.test(name)) return ["head_d_head", "d_model"];
  if (/[kv]_proj/.test(name)) return ["kv_head_d_head", "d_model"];
  if (/o_proj/.test(name)) return ["d_model", "head_d_head"];
  if (/gate_proj|up_proj/.test(name)) return ["d_mlp", "d_model"];
  if (/down_proj/.test(name)) return ["d_model", "d_mlp"];
  return Array.from({ length: rank }, (_, i) => `dim${i}`);
}

/** `T`: the tokenizer type; models loaded from a folder carry the full `Tokenizer`. */
export class HookedLlama<T extends ModelTokenizer = Tokenizer> {
  readonly config: LlamaConfig;
  readonly tokenizer: T | null;
  readonly folder: string | null;
  private readonly options: HookedLlamaOptions;
  private readonly weights = new Map<string, Float32Array>();
  private readonly weightShapes: Map<string, number[]>;
  private readonly ortWeights = new Map<string, ort.Tensor>();
  private readonly graphs = new Map<string, Graph>();
  private readonly plans = new Map<string, Promise<Plan>>();
  private derived = new Map<string, Tensor>();

  /** Build from parts: every weight is read once into a float32 array (checked against the config). */
  constructor(
    config: LlamaConfig,
    weights: WeightSource,
    tokenizer: T | null,
    options: HookedLlamaOptions = {},
    folder: string | null = null,
  ) {
    this.config = config;
    this.tokenizer = tokenizer;
    this.folder = folder;
    this.options = options;
    if (
      options.executionProvider !== undefined &&
      options.executionProvider !== "cpu" &&
      options.executionProvider !== "cuda"
    ) {
      throw new InputError(
        `executionProvider must be "cpu" or "cuda", got ${JSON.stringify(options.executionProvider)}`,
        { field: "executionProvider" },
      );
    }
    if (weights instanceof WeightStore) validateLlamaWeights(config, weights);
    this.weightShapes = expectedLlamaWeights(config);
    for (const [name, shape] of this.weightShapes) {
      if (!weights.has(name))
        throw new InputError(`Weight ${name} is missing (expected shape [${shape.join(", ")}])`, { field: name });
      const got = weights.shape(name);
      if (got.join(",") !== shape.join(","))
        throw new InputError(`Weight ${name} has shape [${got.join(", ")}], expected [${shape.join(", ")}]`, {
          field: name,
        });
      this.weights.set(name, weights.getFloat32(name)); // one tensor at a time
    }
  }

  /**
   * Load a HF checkpoint folder (or hub id) and check the execution provider by building the plain
   * forward session once.
   */
  static async fromPretrained(folderOrId: string, options: HookedLlamaOptions = {}): Promise<HookedLlama<Tokenizer>> {
    const ck = await loadCheckpoint(folderOrId);
    const model = new HookedLlama<Tokenizer>(ck.config, ck.weights, ck.tokenizer, options, ck.folder);
    await model.plan([], ["logits"], {});
    return model;
  }

  // ---------------------------------------------------------------- tokens

  toTokens(input: ModelInput, opts: ToTokensOptions = {}): TokenBatch {
    const batch = toTokenBatch(input, this.tokenizer, opts);
    const V = this.config.vocabSize;
    batch.ids.forEach((row, b) =>
      row.forEach((t, p) => {
        if (t >= V)
          throw new InputError(`Token id ${t} (prompt ${b}, position ${p}) is outside the vocabulary of ${V}`, {
            field: `ids[${b}][${p}]`,
          });
      }),
    );
    return batch;
  }

  /** Decode token ids to text (needs the tokenizer). */
  toString(ids: number | number[]): string {
    if (!this.tokenizer) throw new InputError("This model has no tokenizer to decode with", { field: "tokenizer" });
    return this.tokenizer.decode(typeof ids === "number" ? [ids] : ids);
  }

  /** Each token of a text (BOS included by default) or id list as its own string (TL to_str_tokens). */
  toStrTokens(input: string | number[], opts: { addBos?: boolean } = {}): string[] {
    if (!this.tokenizer) throw new InputError("This model has no tokenizer to decode with", { field: "tokenizer" });
    const ids = typeof input === "string" ? this.tokenizer.encode(input, { addBos: opts.addBos ?? true }) : input;
    return ids.map((id) => this.tokenizer!.decode([id]));
  }

  /** Every hook name, in forward order (attn.hook_result included). */
  hookNames(): string[] {
    return hookNames(this.config);
  }

  // ---------------------------------------------------------------- running

  async run(input: ModelInput, opts: RunOptions = {}): Promise<Tensor> {
    return (await this.execute(input, [], [], opts, false)).logits;
  }

  async runWithCache(input: ModelInput, opts: RunWithCacheOptions): Promise<CachedRun> {
    if (!opts || opts.names === undefined)
      throw new InputError("runWithCache needs { names }: a list, a predicate or { prefix }", { field: "names" });
    const interventions = opts.interventions ?? [];
    const withHeadResult = opts.withHeadResult ?? (Array.isArray(opts.names) && opts.names.some(isHeadResultHook));
    const names = resolveNameFilter(opts.names, this.config, { withHeadResult });
    return this.execute(input, names, interventions, opts, opts.withHeadResult ?? false);
  }

  /** Logits with interventions applied (TL run_with_hooks); with `names`, also the cache. */
  runWithHooks(input: ModelInput, interventions: Intervention[], opts?: RunOptions): Promise<Tensor>;
  runWithHooks(
    input: ModelInput,
    interventions: Intervention[],
    opts: RunOptions & { names: NameFilter; withHeadResult?: boolean },
  ): Promise<CachedRun>;
  async runWithHooks(
    input: ModelInput,
    interventions: Intervention[],
    opts: RunOptions & { names?: NameFilter; withHeadResult?: boolean } = {},
  ): Promise<Tensor | CachedRun> {
    if (!Array.isArray(interventions)) throw new InterventionError("runWithHooks: interventions must be an array");
    if (opts.names !== undefined) return this.runWithCache(input, { ...opts, names: opts.names, interventions });
    return (await this.execute(input, [], interventions, opts, false)).logits;
  }

  private async execute(
    input: ModelInput,
    cacheNames: string[],
    interventions: Intervention[],
    opts: RunOptions,
    forceHeadResult: boolean,
  ): Promise<CachedRun> {
    const batch = this.toTokens(input, opts);
    for (const iv of interventions) {
      if (!iv || typeof iv !== "object" || typeof iv.hook !== "string")
        throw new InterventionError(`Each intervention needs a "hook" name, got ${JSON.stringify(iv)}`);
      validateHookName(iv.hook, this.config);
      validateIntervention(iv, this.config);
    }
    const P0 = batch.ids[0].length;
    for (const iv of interventions) {
      // fail before any work: positions index the padded length
      for (const p of iv.positions ?? []) {
        if (p < -P0 || p >= P0)
          throw new InterventionError(
            `Intervention on ${iv.hook}: position ${p} out of range for a batch of padded length ${P0} (use -${P0}..${P0 - 1})`,
            { field: iv.hook },
          );
      }
    }
    const byHook = new Map<string, Intervention[]>();
    for (const iv of interventions) byHook.set(iv.hook, [...(byHook.get(iv.hook) ?? []), iv]);
    const withHeadResult =
      forceHeadResult || cacheNames.some(isHeadResultHook) || [...byHook.keys()].some(isHeadResultHook);
    const logitsAt = opts.logitsAt ?? "all";
    if (logitsAt !== "all" && logitsAt !== "last")
      throw new InputError(`logitsAt must be "all" or "last", got ${JSON.stringify(logitsAt)}`, { field: "logitsAt" });
    // the in-graph "last" slice is index -1: right for left padding only
    const graphLast = logitsAt === "last" && batch.padding === "left";
    const plan = await this.plan([...byHook.keys()], ["logits", ...cacheNames], {
      withHeadResult,
      logitsAt: graphLast ? "last" : "all",
    });

    const B = batch.ids.length;
    const P = batch.ids[0].length;
    const int64 = (rows: number[][]) =>
      new ort.Tensor("int64", BigInt64Array.from(rows.flat().map((x) => BigInt(x))), [B, P]);
    const env = new Map<string, ort.Tensor>([
      ["input_ids", int64(batch.ids)],
      ["attention_mask", int64(batch.attentionMask)],
      ["position_ids", int64(batch.positions)],
    ]);
    const cached = new Map<string, Tensor>();
    const wanted = new Set(cacheNames);

    for (let s = 0; s < plan.segments.length; s++) {
      const seg = plan.segments[s];
      const session = plan.sessions[s];
      const feeds: Record<string, ort.Tensor> = {};
      for (const name of seg.inputs) feeds[name] = env.get(name) ?? this.ortWeight(name);
      checkFeedNames(session.inputNames, feeds, `segment ${s + 1}/${plan.segments.length}`);
      const out = await session.run(feeds);
      for (const name of seg.outputs) env.set(name, out[name]);
      if (seg.cutHook) {
        const hook = seg.cutHook;
        const before = this.toTensor(hook, out[hook]);
        const after = applyInterventions(before, byHook.get(hook)!, { hook, layer: parseHookName(hook).layer });
        env.set(hook, new ort.Tensor("float32", after.data, after.shape));
        if (wanted.has(hook)) cached.set(hook, after);
      }
      for (const name of seg.outputs)
        if (wanted.has(name) && !cached.has(name)) cached.set(name, this.toTensor(name, env.get(name)!));
      for (const name of plan.release[s]) env.delete(name); // no later segment reads it
    }

    const raw = env.get("logits")!;
    let logits = new Tensor(raw.data as Float32Array, raw.dims.slice(), ["batch", "pos", "vocab"]);
    if (logitsAt === "last") {
      if (graphLast) logits = new Tensor(logits.data, [B, this.config.vocabSize], ["batch", "vocab"]);
      else {
        const V = this.config.vocabSize;
        const data = new Float32Array(B * V);
        for (let b = 0; b < B; b++)
          data.set(
            logits.data.subarray((b * P + lastTokenIndex(batch, b)) * V, (b * P + lastTokenIndex(batch, b) + 1) * V),
            b * V,
          );
        logits = new Tensor(data, [B, V], ["batch", "vocab"]);
      }
    }
    // cache in forward order
    const ordered = new Map<string, Tensor>();
    for (const n of cacheNames) ordered.set(n, cached.get(n)!);
    const cache = new ActivationCache(ordered, batch, {
      numLayers: this.config.numLayers,
      numHeads: this.config.numHeads,
      hiddenSize: this.config.hiddenSize,
      finalNormWeight: this.weights.get("model.norm.weight")!,
      W_O: (l) => this.W_O(l),
    });
    return { logits, cache };
  }

  private toTensor(name: string, t: ort.Tensor): Tensor {
    return new Tensor(t.data as Float32Array, t.dims.slice(), hookDims(name, this.config));
  }

  private ortWeight(name: string): ort.Tensor {
    let t = this.ortWeights.get(name);
    if (!t) {
      const data = this.weights.get(name);
      if (!data) throw new ParenlensError("FEED", `No tensor or weight named ${name} to feed`, { field: name });
      t = new ort.Tensor("float32", data, this.weightShapes.get(name)!);
      this.ortWeights.set(name, t);
    }
    return t;
  }

  private graph(opts: LlamaGraphOptions): Graph {
    const key = `${!!opts.withHeadResult}|${opts.logitsAt ?? "all"}`;
    let g = this.graphs.get(key);
    if (!g) {
      g = buildLlamaGraph(this.config, opts);
      this.graphs.set(key, g);
    }
    return g;
  }

  /** Segments and their sessions for a cut set and outputs (LRU-cached). */
  private plan(cuts: string[], outputs: string[], opts: LlamaGraphOptions): Promise<Plan> {
    const graph = this.graph(opts);
    const sortedCuts = [...cuts].sort((a, b) => graph.hooks.get(a)! - graph.hooks.get(b)!);
    const key = JSON.stringify([sortedCuts, [...outputs].sort(), !!opts.withHeadResult, opts.logitsAt ?? "all"]);
    const hit = this.plans.get(key);
    if (hit) {
      this.plans.delete(key); // move to the back: most recently used
      this.plans.set(key, hit);
      return hit;
    }
    const p = this.buildPlan(graph, sortedCuts, outputs);
    this.plans.set(key, p);
    p.catch(() => this.plans.delete(key));
    const max = this.options.sessionCacheSize ?? 8;
    while (this.plans.size > max) this.plans.delete(this.plans.keys().next().value!);
    return p;
  }

  private async buildPlan(graph: Graph, cuts: string[], outputs: string[]): Promise<Plan> {
    const segments = partitionGraph(graph, cuts, outputs);
    const ep = this.options.executionProvider ?? "cpu";
    const sessionOptions: ort.InferenceSession.SessionOptions = {
      executionProviders: [ep],
      graphOptimizationLevel: "all",
    };
    if (this.options.threads !== undefined) sessionOptions.intraOpNumThreads = this.options.threads;
    const spin = this.options.spinning ? "1" : "0";
    sessionOptions.extra = { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } };
    const sessions: ort.InferenceSession[] = [];
    for (const seg of segments) {
      try {
        sessions.push(await ort.InferenceSession.create(segmentToModel(graph, seg), sessionOptions));
      } catch (e) {
        const msg = (e as Error).message;
        if (ep === "cuda") {
          throw new ParenlensError(
            "EXECUTION_PROVIDER",
            `The CUDA execution provider is not available in this onnxruntime-node install (${msg.split("\n")[0]}); use { executionProvider: "cpu" } or install onnxruntime-node with CUDA support on a machine with an NVIDIA GPU`,
            { field: "executionProvider" },
          );
        }
        throw e;
      }
    }
    const release = segments.map((_, s) => {
      const later = new Set(segments.slice(s + 1).flatMap((x) => x.inputs));
      const here = [...segments[s].inputs, ...segments[s].outputs];
      return [...new Set(here)].filter((n) => !later.has(n) && n !== "logits");
    });
    return { graph, segments, sessions, release };
  }

  // ---------------------------------------------------------------- weights

  /** A copy of a weight by HF name (edit it and pass it to setWeight). */
  getWeight(name: string): Tensor {
    const data = this.weights.get(name);
    if (!data)
      throw new InputError(
        `No weight named ${name}; weights are ${[...this.weights.keys()].slice(0, 4).join(", ")}, ...`,
        { field: name },
      );
    const shape = this.weightShapes.get(name)!;
    return new Tensor(data.slice(), shape, weightDims(name, shape.length));
  }

  /** Replace a weight (same size); the next run uses it. */
  setWeight(name: string, data: Float32Array | Tensor): void {
    const shape = this.weightShapes.get(name);
    if (!shape) throw new InputError(`No weight named ${name}`, { field: name });
    const arr = data instanceof Tensor ? data.data : data;
    const size = shape.reduce((a, b) => a * b, 1);
    if (!(arr instanceof Float32Array) || arr.length !== size) {
      throw new InputError(
        `setWeight(${name}): expected a Float32Array of ${size} values (shape [${shape.join(", ")}]), got ${arr instanceof Float32Array ? arr.length : typeof arr}`,
        { field: name },
      );
    }
    if (data instanceof Tensor && data.shape.join(",") !== shape.join(",")) {
      throw new InputError(
        `setWeight(${name}): tensor shape [${data.shape.join(", ")}], expected [${shape.join(", ")}]`,
        { field: name },
      );
    }
    this.weights.set(name, arr.slice());
    this.ortWeights.delete(name);
    this.derived = new Map();
  }

  private derivedTensor(key: string, make: () => Tensor): Tensor {
    let t = this.derived.get(key);
    if (!t) {
      t = make();
      this.derived.set(key, t);
    }
    return t;
  }

  /** Unembedding [d_model, vocab] (lm_head, or the embedding when tied), transposed from HF. */
  get W_U(): Tensor {
    return this.derivedTensor("W_U", () => {
      const name = this.config.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight";
      const src = this.weights.get(name)!; // [vocab, d_model]
      const V = this.config.vocabSize;
      const D = this.config.hiddenSize;
      const out = new Float32Array(V * D);
      for (let v = 0; v < V; v++) for (let d = 0; d < D; d++) out[d * V + v] = src[v * D + d];
      return new Tensor(out, [D, V], ["d_model", "vocab"]);
    });
  }

  /** Embedding [vocab, d_model]. */
  get W_E(): Tensor {
    return this.derivedTensor("W_E", () => this.getWeight("model.embed_tokens.weight"));
  }

  /** Output projection of layer `layer` per head: [head, d_head, d_model]. */
  W_O(layer: number): Tensor {
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.config.numLayers) {
      throw new InputError(`W_O: layer ${layer} out of range 0..${this.config.numLayers - 1}`, { field: "layer" });
    }
    return this.derivedTensor(`W_O${layer}`, () => {
      const src = this.weights.get(`model.layers.${layer}.self_attn.o_proj.weight`)!; // [d_model, head*d_head]
      const H = this.config.numHeads;
      const dh = this.config.headDim;
      const D = this.config.hiddenSize;
      const out = new Float32Array(H * dh * D);
      for (let m = 0; m < D; m++) for (let k = 0; k < H * dh; k++) out[k * D + m] = src[m * H * dh + k];
      return new Tensor(out, [H, dh, D], ["head", "d_head", "d_model"]);
    });
  }

  /** Final RMSNorm weight [d_model]. */
  get finalNormWeight(): Tensor {
    return this.derivedTensor("norm", () => this.getWeight("model.norm.weight"));
  }
}
