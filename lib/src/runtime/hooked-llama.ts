/**
 * HookedLlama: a Llama checkpoint run on onnxruntime-node with TransformerLens hook points — the
 * public model API (tokens, run / runWithCache / runWithHooks / runSites, weights). It keeps the
 * weights (in the checkpoint's dtype, held-weights.ts; fed to the graph as float32 inputs) and
 * never touches onnxruntime itself: session
 * planning and the segment loop live in session-plan.ts. Interventions cut the graph after their
 * hooks (graph/partition.ts); JS edits the hook's value between segments.
 */
import { ActivationCache } from "../hooks/activation-cache";
import { LlamaConfig } from "../checkpoint/config";
import { ConfigError, InputError, InterventionError } from "../core/errors";
import { assertFinite } from "../core/finite";
import { hookNames, isHeadResultHook, NameFilter, parseHookName, resolveNameFilter } from "../hooks/hook-points";
import { applyInterventions, Intervention, validateIntervention } from "../hooks/interventions";
import { Tensor } from "../core/tensor";
import { lastTokenIndex, ModelInput, TokenBatch, toTokenBatch, ToTokensOptions } from "../core/token-batch";
import { expectedLlamaWeights, validateLlamaWeights, WeightSource } from "../checkpoint/weights";
import { loadCheckpoint } from "../checkpoint/load";
import type { Tokenizer } from "../core/tokenizer";
import { EditFn, MathFeed, MathSessions, SessionOptions, SessionPlanner } from "./session-plan";
import {
  buildUnembedGraph,
  FINAL_NORM_WEIGHT_INPUT,
  unembedGraphKey,
  UnembedGraphOptions,
  unembedWeightName,
} from "./graph/unembed-graph";
import { checkModelOptions, checkRunOptions } from "./options";
import { HalfWeight, halfToFloat32Into, HeldWeights, firstNonFiniteHalfWeight, WeightDtype } from "./held-weights";

/**
 * Options of a model
 *
 * How its sessions run (execution provider, threads, session cache, spinning): see SessionOptions.
 *
 * @example
 * const model = await HookedLlama.fromPretrained("data/models/parenlens-code-6l", { threads: 2 });
 */
export interface HookedLlamaOptions extends SessionOptions {
  /**
   * Allow non-finite values
   *
   * By default every weight is checked once at load (and on setWeight), and every intervention's
   * value, result and patch source when applied: a NaN / ±Infinity throws NonFiniteError naming
   * the tensor or hook. True lets them through (for runs that study NaN propagation); a run can
   * also set it for itself.
   *
   * @default false
   */
  allowNonFinite?: boolean;
  /**
   * Load the tokenizer (fromPretrained)
   *
   * true: the folder must have tokenizer.json (CheckpointError naming it otherwise); false: a
   * model that takes token ids only, tokenizer.json ignored.
   *
   * @default true
   */
  tokenizer?: boolean;
  /**
   * How weights are held in memory
   *
   * "stored": in the checkpoint's dtype — a BF16 / F16 checkpoint as its 2-byte values, each
   * segment's weights converted to float32 (exactly) just before it runs, so memory is about the
   * checkpoint's size (CodeLlama-7b: 12.6 GiB, not 25.1); runs are cut at every layer and pay the
   * conversion (see lib/DESIGN.md, "Weights live in JS"). "float32": one float32 copy at load
   * (twice the memory of a bf16 checkpoint, no conversion per run). Results are the same.
   *
   * @default "stored"
   */
  weightDtype?: WeightDtype;
}

/** How a forward pass returns its logits (plus how text becomes tokens, ToTokensOptions). */
export interface RunOptions extends ToTokensOptions {
  /**
   * Logits position
   *
   * "all": logits at every position, [batch, pos, vocab]; "last": only at each prompt's last
   * token (padding respected), [batch, vocab].
   *
   * @default "all"
   */
  logitsAt?: "all" | "last";
  /**
   * Allow non-finite values in this run
   *
   * Let NaN / ±Infinity in intervention values, results and patch sources through (see
   * HookedLlamaOptions.allowNonFinite).
   *
   * @default the model's allowNonFinite (false)
   */
  allowNonFinite?: boolean;
}

/** A run that caches hook values (TL run_with_cache). */
export interface RunWithCacheOptions extends RunOptions {
  /**
   * Hooks to cache
   *
   * A list of hook names, a predicate on names, or `{ prefix }`. Without it every hook point is
   * cached, as TL's run_with_cache (attn.hook_result too only with `withHeadResult: true`). A full
   * cache holds about 14 values of [batch, pos, d_model] size per layer plus two [batch, head, pos,
   * pos] patterns: for large models or long batches, name what you need.
   *
   * @default every hook point (`() => true`)
   */
  names?: NameFilter;
  /**
   * Interventions
   *
   * Edits applied during the run; the cache holds values after them (as TL).
   *
   * @default []
   */
  interventions?: Intervention[];
  /**
   * Per-head results
   *
   * Build blocks.{l}.attn.hook_result [batch, pos, head, d_model] (TL use_attn_result); predicates
   * and prefixes see it only when true.
   *
   * @default true when a listed name or an intervention needs it, else false
   */
  withHeadResult?: boolean;
}

/** How `unembed` normalises and which columns it decodes. */
export interface UnembedOptions {
  /**
   * Final norm
   *
   * "none": x @ W_U as is (TL model.unembed); "own-rms": the final RMSNorm applied to each row as
   * if it were the last residual (the standard logit lens); a Tensor of scales: each row divided by
   * its scale and multiplied by the final norm weight (TL apply_ln_to_stack with the cached
   * ln_final.hook_scale). Scales: one per row, or one per batch entry of a [component, batch,
   * d_model] stack (e.g. `cache.atPos("ln_final.hook_scale")`, [batch, one]).
   *
   * @default "none"
   */
  norm?: "none" | "own-rms" | Tensor;
  /**
   * Columns
   *
   * Token ids to decode (in this order): the result's last dim is "column", one per id. Without it
   * the whole vocabulary is decoded.
   *
   * @default the whole vocabulary
   */
  columns?: number[];
}

/** Logits and the cache of one run. */
export interface CachedRun {
  logits: Tensor; // [batch, pos, vocab], or [batch, vocab] with logitsAt "last"
  cache: ActivationCache;
}

/** One run's inputs after validation: the batch, its edits by hook, what to build and return. */
interface RunRequest {
  batch: TokenBatch;
  byHook: Map<string, Intervention[]>; // hook → its interventions, in the order given
  cacheNames: string[]; // forward order
  withHeadResult: boolean;
  logitsAt: "all" | "last";
  graphLast: boolean; // slice the last position inside the graph (left padding only)
  allowNonFinite: boolean;
}

/** An argument for a message: its type, and its value when short. */
function describeArg(v: unknown): string {
  const json = JSON.stringify(v);
  return `${Array.isArray(v) ? "array" : v === null ? "null" : typeof v}${json !== undefined && json.length <= 40 ? ` ${json}` : ""}`;
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

/**
 * A Llama checkpoint with TransformerLens hook points (TL HookedTransformer).
 *
 * @example
 * const model = await HookedLlama.fromPretrained("data/models/parenlens-code-6l");
 * const { logits, cache } = await model.runWithCache("print(len(x", { names: ["blocks.0.attn.hook_pattern"] });
 * cache.get("blocks.0.attn.hook_pattern"); // [batch, head, query_pos, key_pos]
 */
export class HookedLlama {
  readonly config: LlamaConfig;
  /** The checkpoint's tokenizer; null when the folder has no tokenizer.json (token ids only). */
  readonly tokenizer: Tokenizer | null;
  readonly folder: string | null;
  private readonly weights: HeldWeights;
  private readonly weightShapes: Map<string, number[]>;
  private readonly planner: SessionPlanner;
  private readonly math: MathSessions;
  private derived = new Map<string, Tensor>();
  private readonly allowNonFinite: boolean;
  private forwards = 0;
  private readonly forwardListeners = new Set<(n: number) => void>();

  /**
   * Build from parts: the weights are checked against the config once (every expected name and
   * shape, CheckpointError), then each is read once, in its stored dtype (weightDtype "stored")
   * or as float32.
   */
  constructor(
    config: LlamaConfig,
    weights: WeightSource,
    tokenizer: Tokenizer | null,
    options: HookedLlamaOptions = {},
    folder: string | null = null,
  ) {
    this.config = config;
    this.tokenizer = tokenizer;
    this.folder = folder;
    checkModelOptions(options);
    this.allowNonFinite = options.allowNonFinite ?? false;
    validateLlamaWeights(config, weights);
    this.weightShapes = expectedLlamaWeights(config);
    const checkFloat32 = (name: string, data: Float32Array) => {
      if (this.allowNonFinite) return;
      const file = weights.fileOf?.(name) ?? weights.folder;
      assertFinite(data, `weight ${name}${file ? ` in ${file}` : ""}`, {
        file,
        field: name,
        hint: "the checkpoint is corrupt (or pass allowNonFinite: true to load it anyway)",
      });
    };
    const checkHalf = (name: string, w: HalfWeight) => {
      // the same error as for float32 values, converted only when a value is not finite
      if (!this.allowNonFinite && firstNonFiniteHalfWeight(w) >= 0)
        checkFloat32(name, halfToFloat32Into(w, new Float32Array(w.bits.length)));
    };
    this.weights = HeldWeights.load(weights, this.weightShapes, options.weightDtype ?? "stored", {
      float32: checkFloat32,
      half: checkHalf,
    });
    const held = this.weights;
    this.planner = new SessionPlanner(
      config,
      {
        data: (n) => held.float32Held(n),
        half: (n) => held.half(n),
        anyHalf: () => held.anyHalf(),
        shape: (n) => this.weightShapes.get(n),
      },
      options,
    );
    // a 2-byte weight the math graphs read (W_U) is converted once and kept until setWeight
    this.math = new MathSessions({ data: (n) => held.float32(n), shape: (n) => this.weightShapes.get(n) }, options);
  }

  /**
   * Bytes of the weights as held (2 a value for BF16 / F16 with weightDtype "stored", else 4).
   *
   * @example
   * const m = await HookedLlama.fromPretrained("test/fixtures/checkpoints/tiny-bf16", { tokenizer: false });
   * m.weightBytes; // half of what { weightDtype: "float32" } holds
   */
  get weightBytes(): number {
    return this.weights.bytes();
  }

  /**
   * Forward passes run since load: one per `run` / `runWithCache` / `runWithHooks`, one per site
   * of `runSites` (its shared upstream part included in the first). What the notebooks' progress
   * lines and scripts/bench count.
   *
   * @example
   * const before = model.forwardPasses;
   * await model.runSites(ids, sites);
   * model.forwardPasses - before; // sites.length
   */
  get forwardPasses(): number {
    return this.forwards;
  }

  /**
   * Calls `listener(n)` after every n forward passes (n = 1 for a run, the group's site count for
   * runSites); returns the function that removes it. The analyses' `onProgress` counts with it.
   *
   * @example
   * const stop = model.onForwards((n) => (done += n));
   * await model.run(ids);
   * stop(); // done === 1
   */
  onForwards(listener: (n: number) => void): () => void {
    const own = (n: number) => listener(n); // a listener added twice is two listeners
    this.forwardListeners.add(own);
    return () => this.forwardListeners.delete(own);
  }

  private countForwards(n: number): void {
    this.forwards += n;
    for (const listener of this.forwardListeners) listener(n);
  }

  /**
   * Load a HF checkpoint folder (or hub id) and check the execution provider by building the plain
   * forward session once.
   *
   * @example
   * const model = await HookedLlama.fromPretrained("data/models/parenlens-code-6l");
   * const gpu = await HookedLlama.fromPretrained("org/name", { executionProvider: "cuda" });
   */
  static async fromPretrained(folderOrId: string, options: HookedLlamaOptions = {}): Promise<HookedLlama> {
    checkModelOptions(options);
    const ck = await loadCheckpoint(folderOrId, { validateWeights: false, tokenizer: options.tokenizer }); // the constructor validates
    const model = new HookedLlama(ck.config, ck.weights, ck.tokenizer, options, ck.folder);
    await model.planner.plan([], ["logits"], {});
    return model;
  }

  // ---------------------------------------------------------------- tokens

  /**
   * Text or token ids as one padded batch (left padding and BOS by default), ids checked against
   * the vocabulary: ids, attention mask, position ids, lengths and padding side (toIds gives the
   * ids alone).
   *
   * @example
   * const batch = model.toTokens(["print(str(", "x = f(g("]); // batch.ids: [batch, pos]
   */
  toTokens(input: ModelInput, opts: ToTokensOptions = {}): TokenBatch {
    checkRunOptions(opts, this.config.vocabSize, "toTokens", true);
    const { padding, addBos, padId } = opts ?? {};
    const batch = toTokenBatch(input, this.tokenizer, { padding, addBos, padId });
    const V = this.config.vocabSize;
    const P = batch.ids[0].length;
    // dynamic NTK rope exists to run past max_position_embeddings (rotary.ts): no limit there
    if (P > this.config.maxPositionEmbeddings && this.config.ropeScaling?.type !== "dynamic")
      throw new InputError(
        `Prompts of ${P} tokens (padded) are longer than the model's max_position_embeddings (${this.config.maxPositionEmbeddings}); shorten them or split the batch`,
        { field: "input" },
      );
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

  /**
   * Token ids in one call: a text → its ids (BOS first by default), texts → padded id rows
   * (toTokens(texts).ids; use toTokens for the mask, lengths and padding side).
   *
   * @example
   * model.toIds("print(str("); // parenlens-code-6l: [1, 610, 1200, 268, 699, 268] (<s>, ▁, print, (, str, ()
   * model.toIds(["f(", "print(str("]); // [batch, pos], left-padded with the pad id
   */
  toIds(input: string, opts?: ToTokensOptions): number[];
  toIds(input: string[], opts?: ToTokensOptions): number[][];
  toIds(input: string | string[], opts: ToTokensOptions = {}): number[] | number[][] {
    const ids = this.toTokens(input, opts).ids;
    return typeof input === "string" ? ids[0] : ids;
  }

  /**
   * Decode token ids to text (TL to_string; needs the tokenizer).
   *
   * @example
   * const top = logits.data.indexOf(Math.max(...logits.data)); // logits [1, vocab]
   * model.decode(top); // e.g. "))"
   */
  decode(ids: number | number[]): string {
    if (!this.tokenizer) throw new InputError("This model has no tokenizer to decode with", { field: "tokenizer" });
    const list = typeof ids === "number" ? [ids] : ids;
    if (!Array.isArray(list) || !list.every((t) => Number.isInteger(t)))
      throw new InputError(`decode expects a token id or an array of token ids, got ${describeArg(ids)}`, {
        field: "ids",
      });
    return this.tokenizer.decode(list);
  }

  /**
   * Each token of a text (BOS included by default) or id list as its own string (TL to_str_tokens).
   *
   * @example
   * model.toStrTokens("print(str("); // ["<s>", "print", "(", "str", "("]
   */
  toStrTokens(input: string | number[], opts: { addBos?: boolean } = {}): string[] {
    const tok = this.tokenizer;
    if (!tok) throw new InputError("This model has no tokenizer to decode with", { field: "tokenizer" });
    if (typeof input !== "string" && !(Array.isArray(input) && input.every((t) => Number.isInteger(t))))
      throw new InputError(`toStrTokens expects a string or an array of token ids, got ${describeArg(input)}`, {
        field: "input",
      });
    checkRunOptions(opts, this.config.vocabSize, "toStrTokens", true);
    const ids = typeof input === "string" ? tok.encode(input, { addBos: opts?.addBos ?? true }) : input;
    return ids.map((id) => tok.decode([id]));
  }

  /** Every hook name, in forward order (attn.hook_result included). */
  hookNames(): string[] {
    return hookNames(this.config);
  }

  /**
   * `${model}`: a one-line description; never decodes (use decode(ids) for text). Called with
   * ids, as the old `toString(ids)` was, it throws instead of returning the description.
   *
   * @example
   * console.log(`${model}`); // HookedLlama(6 layers, 8 heads, d_model 256, vocab 3070 from data/models/parenlens-code-6l)
   */
  toString(): string;
  toString(...args: unknown[]): string {
    if (args.length > 0)
      throw new InputError("HookedLlama.toString(ids) is now decode(ids); toString() describes the model", {
        field: "toString",
      });
    const c = this.config;
    const where = this.folder ? ` from ${this.folder}` : "";
    return `HookedLlama(${c.numLayers} layers, ${c.numHeads} heads, d_model ${c.hiddenSize}, vocab ${c.vocabSize}${where})`;
  }

  // ---------------------------------------------------------------- running

  /**
   * Logits of a forward pass.
   *
   * @example
   * const logits = await model.run(["print(len(x"], { logitsAt: "last" }); // [batch, vocab]
   */
  async run(input: ModelInput, opts: RunOptions = {}): Promise<Tensor> {
    checkRunOptions(opts, this.config.vocabSize, "run");
    return (await this.execute(input, [], [], opts, false)).logits;
  }

  /**
   * Logits and hook values (TL run_with_cache): every hook point by default, or those `names`
   * selects; with `interventions`, the values after them (the cached variant of runWithHooks).
   *
   * @example
   * const { logits, cache } = await model.runWithCache("print(len(x"); // every hook point
   * cache.get("pattern", 3); // blocks.3.attn.hook_pattern [batch, head, query_pos, key_pos]
   * const { cache: c3 } = await model.runWithCache(prompts, { names: { prefix: "blocks.3." } });
   */
  async runWithCache(input: ModelInput, given: RunWithCacheOptions | null = {}): Promise<CachedRun> {
    const opts = given ?? {}; // null options are no options
    checkRunOptions(opts, this.config.vocabSize, "runWithCache");
    const filter = opts.names ?? (() => true);
    const interventions = opts.interventions ?? [];
    const withHeadResult = opts.withHeadResult ?? (Array.isArray(filter) && filter.some(isHeadResultHook));
    const names = resolveNameFilter(filter, this.config, { withHeadResult });
    return this.execute(input, names, interventions, opts, opts.withHeadResult ?? false);
  }

  /**
   * Logits with interventions applied (TL run_with_hooks); always a Tensor. For the cache of an
   * intervened run, use `runWithCache(input, { interventions, names })`.
   *
   * @example
   * const ablated = await model.runWithHooks(prompts, [{ hook: "blocks.2.attn.hook_z", kind: "zero", heads: [5] }]);
   */
  async runWithHooks(input: ModelInput, interventions: Intervention[], given: RunOptions | null = {}): Promise<Tensor> {
    const opts = given ?? {}; // null options are no options
    if (!Array.isArray(interventions)) throw new InterventionError("runWithHooks: interventions must be an array");
    if ("names" in opts)
      throw new InputError(
        "runWithHooks returns logits only; for a cache too use runWithCache(input, { interventions, names })",
        { field: "names" },
      );
    checkRunOptions(opts, this.config.vocabSize, "runWithHooks");
    return (await this.execute(input, [], interventions, opts, false)).logits;
  }

  /**
   * Logits of many sites on one input, each site a list of interventions (a sweep's sites): the
   * layers below a site's first edited hook run once for every site that edits the same hooks,
   * only the layers after it once per site. The same logits as one `runWithHooks` per site.
   *
   * @example
   * const sites = [0, 1, 2, 3].map((h) => [{ hook: "blocks.2.attn.hook_z", kind: "zero", heads: [h] }]);
   * const perHead = await model.runSites(ids, sites, { logitsAt: "last" }); // [batch, vocab] per site
   */
  async runSites(input: ModelInput, sites: Intervention[][], given: RunOptions | null = {}): Promise<Tensor[]> {
    const opts = given ?? {};
    if (!Array.isArray(sites) || !sites.every(Array.isArray))
      throw new InterventionError("runSites: sites must be an array of intervention arrays");
    checkRunOptions(opts, this.config.vocabSize, "runSites");
    const reqs = sites.map((site) => this.request(input, [], site, opts, false));
    // 2-byte weights: plans are cut at every layer anyway and each segment converts its weights,
    // so sites editing different hooks share one plan (their hooks' union) and one trunk run,
    // each branching off at its own hook. Float32 weights: sites editing the same hooks share.
    const branching = this.weights.anyHalf();
    const groups = new Map<string, number[]>();
    reqs.forEach((r, i) => {
      const key = JSON.stringify([branching ? [] : [...r.byHook.keys()].sort(), r.withHeadResult]);
      groups.set(key, [...(groups.get(key) ?? []), i]);
    });
    const out: Tensor[] = new Array(sites.length);
    for (const members of groups.values()) {
      const req = reqs[members[0]];
      const hooks = [...new Set(members.flatMap((i) => [...reqs[i].byHook.keys()]))];
      const plan = await this.planner.plan(hooks, ["logits"], {
        withHeadResult: req.withHeadResult,
        logitsAt: req.graphLast ? "last" : "all",
      });
      const runs = branching
        ? await this.planner.runBranches(
            plan,
            req.batch,
            new Set(),
            members.map((i) => ({ edit: this.editFor(reqs[i]), hooks: new Set(reqs[i].byHook.keys()) })),
          )
        : await this.planner.runSites(
            plan,
            req.batch,
            new Set(),
            members.map((i) => this.editFor(reqs[i])),
          );
      members.forEach((i, k) => (out[i] = this.sliceLogits(runs[k].logits, reqs[i])));
      this.countForwards(members.length);
    }
    return out;
  }

  /** The edit of a run: its interventions at each cut hook, in the order given. */
  private editFor(req: RunRequest): EditFn {
    return (hook: string, value: Tensor) =>
      applyInterventions(
        value,
        req.byHook.get(hook)!,
        { hook, layer: parseHookName(hook).layer, batch: req.batch },
        { allowNonFinite: req.allowNonFinite },
      );
  }

  /** validate → plan → segment loop (session-plan.ts) → logits slicing → cache assembly. */
  private async execute(
    input: ModelInput,
    cacheNames: string[],
    interventions: Intervention[],
    opts: RunOptions,
    forceHeadResult: boolean,
  ): Promise<CachedRun> {
    const req = this.request(input, cacheNames, interventions, opts, forceHeadResult);
    const plan = await this.planner.plan([...req.byHook.keys()], ["logits", ...cacheNames], {
      withHeadResult: req.withHeadResult,
      logitsAt: req.graphLast ? "last" : "all",
    });
    const out = await this.planner.run(plan, req.batch, new Set(cacheNames), this.editFor(req));
    this.countForwards(1);
    return { logits: this.sliceLogits(out.logits, req), cache: this.assembleCache(out.values, req) };
  }

  /** Everything checked before any work: tokens, each intervention (once), logitsAt. */
  private request(
    input: ModelInput,
    cacheNames: string[],
    interventions: Intervention[],
    given: RunOptions | null,
    forceHeadResult: boolean,
  ): RunRequest {
    const opts = given ?? {}; // null options are no options (checkRunOptions let them through)
    const { padding, addBos, padId } = opts;
    const batch = this.toTokens(input, { padding, addBos, padId });
    const paddedLength = batch.ids[0].length;
    const allowNonFinite = opts.allowNonFinite ?? this.allowNonFinite;
    for (const iv of interventions)
      validateIntervention(iv, this.config, { paddedLength, lengths: batch.lengths, allowNonFinite });
    const byHook = new Map<string, Intervention[]>();
    for (const iv of interventions) byHook.set(iv.hook, [...(byHook.get(iv.hook) ?? []), iv]);
    const withHeadResult =
      forceHeadResult || cacheNames.some(isHeadResultHook) || [...byHook.keys()].some(isHeadResultHook);
    const logitsAt = opts.logitsAt ?? "all";
    if (logitsAt !== "all" && logitsAt !== "last")
      throw new InputError(`logitsAt must be "all" or "last", got ${JSON.stringify(logitsAt)}`, { field: "logitsAt" });
    // the in-graph "last" slice is index -1: right for left padding only
    const graphLast = logitsAt === "last" && batch.padding === "left";
    return { batch, byHook, cacheNames, withHeadResult, logitsAt, graphLast, allowNonFinite };
  }

  /** [batch, pos, vocab] as asked: unchanged, or [batch, vocab] at each prompt's last token. */
  private sliceLogits(logits: Tensor, req: RunRequest): Tensor {
    if (req.logitsAt !== "last") return logits;
    const B = req.batch.ids.length;
    const V = this.config.vocabSize;
    if (req.graphLast) return new Tensor(logits.data, [B, V], ["batch", "vocab"]); // sliced in the graph
    const P = req.batch.ids[0].length;
    const data = new Float32Array(B * V);
    for (let b = 0; b < B; b++) {
      const at = b * P + lastTokenIndex(req.batch, b);
      data.set(logits.data.subarray(at * V, (at + 1) * V), b * V);
    }
    return new Tensor(data, [B, V], ["batch", "vocab"]);
  }

  /**
   * Residual directions onto the unembedding, on onnxruntime over the model's own W_U (no copy):
   * x [..., d_model] → [..., vocab], or [..., column] for `columns`; with `norm`, through the final
   * RMSNorm first (TL: `model.unembed(model.ln_final(x))` or `cache.apply_ln_to_stack(x) @ W_U`).
   * Decode only the positions you need: the result has one vocab-sized row per input row.
   *
   * @example
   * const { stack } = cache.accumulatedResid({ pos: "last" }); // [component, batch, d_model]
   * const lens = await model.unembed(stack, { norm: "own-rms" }); // [component, batch, vocab]
   * const scale = cache.atPos("ln_final.hook_scale"); // [batch, one]
   * const parens = await model.unembed(stack, { norm: scale, columns: runIds }); // [component, batch, column]
   */
  async unembed(x: Tensor, opts: UnembedOptions = {}): Promise<Tensor> {
    const { feeds, graph } = this.unembedFeeds("unembed", x, opts.norm);
    if (opts.columns) {
      this.checkTokenIds("unembed", opts.columns, "columns");
      feeds.ids = { int64: opts.columns, shape: [opts.columns.length] };
    }
    const out = await this.runUnembed({ ...graph, columns: !!opts.columns }, feeds); // [row, vocab | column]
    const last = opts.columns ? "column" : "vocab";
    return new Tensor(out.data, [...x.shape.slice(0, -1), out.shape[1]], [...x.dims.slice(0, -1), last]);
  }

  /**
   * The rank (1 = top) of one token per row over the whole vocabulary after the unembedding, on
   * onnxruntime: 1 + the number of tokens whose logit is larger than `targets[row]`'s. Only the
   * ranks come back ([...] = x's leading dims); the [row, vocab] logits stay inside onnxruntime.
   * `norm` as for `unembed`.
   *
   * @example
   * const { stack } = cache.stackHeadResults({ pos: "last", applyLn: true }); // [layer*head, batch, d_model]
   * const targets = Array.from({ length: stack.shape[0] }, () => labelIds).flat(); // one per row: [layer*head × batch]
   * const ranks = await model.unembedRank(stack, targets); // [layer*head, batch]
   */
  async unembedRank(x: Tensor, targets: number[], opts: Pick<UnembedOptions, "norm"> = {}): Promise<Tensor> {
    const { feeds, graph } = this.unembedFeeds("unembedRank", x, opts.norm);
    const rows = x.size / this.config.hiddenSize;
    if (!Array.isArray(targets) || targets.length !== rows)
      throw new InputError(
        `unembedRank: ${Array.isArray(targets) ? targets.length : describeArg(targets)} targets for ${rows} rows; give one token id per row`,
        { field: "targets" },
      );
    this.checkTokenIds("unembedRank", targets, "targets");
    feeds.target = { int64: targets, shape: [rows, 1] };
    const out = await this.runUnembed({ ...graph, rank: true }, feeds); // [row]
    return new Tensor(out.data, x.shape.slice(0, -1), x.dims.slice(0, -1));
  }

  /** x as [row, d_model] rows, the final norm's feeds (scales, weight) and graph options. */
  private unembedFeeds(
    fn: string,
    x: Tensor,
    norm: UnembedOptions["norm"] = "none",
  ): { feeds: Record<string, MathFeed>; graph: UnembedGraphOptions } {
    const D = this.config.hiddenSize;
    if (!(x instanceof Tensor) || x.shape[x.shape.length - 1] !== D)
      throw new InputError(
        `${fn}: x must be a Tensor [..., d_model = ${D}], got ${x instanceof Tensor ? `[${x.shape.join(", ")}]` : describeArg(x)}`,
        { field: "x" },
      );
    const rows = x.size / D;
    const feeds: Record<string, MathFeed> = { x: new Tensor(x.data, [rows, D], ["row", "d_model"]) };
    if (norm instanceof Tensor) feeds.scale = this.rowScales(norm, rows);
    else if (norm !== "none" && norm !== "own-rms")
      throw new InputError(`${fn}: norm must be "none", "own-rms" or a Tensor of scales, got ${describeArg(norm)}`, {
        field: "norm",
      });
    const graph: UnembedGraphOptions = { norm: norm instanceof Tensor ? "scale" : norm, columns: false };
    if (graph.norm !== "none" && this.config.norm !== "layer")
      feeds[FINAL_NORM_WEIGHT_INPUT] = new Tensor(this.effectiveFinalNormWeight(), [D], ["d_model"]);
    return { feeds, graph };
  }

  private checkTokenIds(fn: string, ids: number[], field: string): void {
    const V = this.config.vocabSize;
    for (const id of ids)
      if (!(Number.isInteger(id) && id >= 0 && id < V))
        throw new InputError(`${fn}: ${field} entry ${describeArg(id)} is not a token id of the vocabulary of ${V}`, {
          field,
        });
  }

  private async runUnembed(g: UnembedGraphOptions, feeds: Record<string, MathFeed>): Promise<Tensor> {
    const key = unembedGraphKey(g);
    return (await this.math.run(key, () => buildUnembedGraph(this.config, g), feeds, {})).get("out")!;
  }

  /** Scales for `rows` rows: one per row, or one per batch entry tiled over leading components. */
  private rowScales(scale: Tensor, rows: number): Tensor {
    const n = scale.size;
    if (n === 0 || rows % n !== 0)
      throw new InputError(
        `unembed: ${n} scales for ${rows} rows; give one per row or one per batch entry ([batch, one])`,
        { field: "norm" },
      );
    const data = n === rows ? scale.data : new Float32Array(rows);
    if (n !== rows) for (let r = 0; r < rows; r++) data[r] = scale.data[r % n];
    return new Tensor(data, [rows, 1], ["row", "one"]);
  }

  /** The ActivationCache of a run, in forward order. */
  private assembleCache(values: Map<string, Tensor>, req: RunRequest): ActivationCache {
    const ordered = new Map<string, Tensor>();
    for (const n of req.cacheNames) ordered.set(n, values.get(n)!);
    return new ActivationCache(ordered, req.batch, {
      numLayers: this.config.numLayers,
      numHeads: this.config.numHeads,
      hiddenSize: this.config.hiddenSize,
      finalNormWeight: this.effectiveFinalNormWeight(),
      finalNorm: this.config.norm === "layer" ? "layer" : "rms",
      W_O: (l) => this.perHeadWO(l), // read only: no copy
    });
  }

  // ---------------------------------------------------------------- weights

  /**
   * A copy of a weight by HF name, in HF layout (edit it and pass it to setWeight).
   *
   * @example
   * const w = model.getWeight("model.layers.0.mlp.down_proj.weight"); // [d_model, d_mlp]
   */
  getWeight(name: string): Tensor {
    const data = this.weights.float32Copy(name);
    if (!data)
      throw new InputError(`No weight named ${name}; weights are ${this.weights.names().slice(0, 4).join(", ")}, ...`, {
        field: name,
      });
    const shape = this.weightShapes.get(name)!;
    return new Tensor(data, shape, weightDims(name, shape.length));
  }

  /**
   * Replace a weight (same shape, HF layout); the next run, getWeight and W_E / W_U / W_O use it.
   * The array is copied, so later edits to `data` do not leak in.
   *
   * @example
   * const w = model.getWeight("lm_head.weight"); // [vocab, d_model]
   * w.data.fill(0, 0, w.shape[1]); // zero token 0's row
   * model.setWeight("lm_head.weight", w);
   */
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
    if (!this.allowNonFinite)
      assertFinite(arr, `setWeight(${name})`, {
        field: name,
        hint: "weights must be finite (or build the model with allowNonFinite: true)",
      });
    this.weights.set(name, arr.slice()); // held as float32 from now on (never rounded to bf16)
    this.planner.weightChanged(name);
    this.math.weightChanged(name);
    this.derived = new Map();
  }

  /**
   * Some columns of the unembedding W_U (one [d_model] direction per token id, in the order given),
   * read from the HF rows of lm_head (or the tied embedding) without the [d_model, vocab] copy
   * that `W_U` makes: equal to `unembedColumns(model.W_U, ids)`.
   *
   * @example
   * const cols = model.unembedColumns([openId, closeId]); // [column, d_model]
   * const close = cols.select(0, 1); // W_U[:, closeId], [d_model]
   */
  unembedColumns(ids: number[]): Tensor {
    this.checkTokenIds("unembedColumns", ids, "ids");
    const D = this.config.hiddenSize;
    const name = unembedWeightName(this.config);
    const out = new Float32Array(ids.length * D); // [column, d_model]
    const held = this.weights.float32Held(name);
    const half = held ? undefined : this.weights.half(name);
    ids.forEach((id, j) => {
      const dst = out.subarray(j * D, (j + 1) * D);
      if (held) dst.set(held.subarray(id * D, (id + 1) * D));
      else halfToFloat32Into({ dtype: half!.dtype, bits: half!.bits.subarray(id * D, (id + 1) * D) }, dst);
    });
    return new Tensor(out, [ids.length, D], ["column", "d_model"]);
  }

  /**
   * Unembedding [d_model, vocab] (lm_head, or the embedding when tied), transposed from HF.
   *
   * A copy: editing it changes nothing; edit the model with `setWeight("lm_head.weight", ...)`
   * (HF layout [vocab, d_model]). Each access copies V × D floats: keep it in a variable.
   *
   * @example
   * const W_U = model.W_U; // [d_model, vocab]
   * const col = unembedColumns(W_U, [closeParenId])[0]; // [d_model]
   */
  get W_U(): Tensor {
    return this.derivedTensor("W_U", () => {
      const src = this.weights.float32(unembedWeightName(this.config))!; // [vocab, d_model]
      const V = this.config.vocabSize;
      const D = this.config.hiddenSize;
      const out = new Float32Array(V * D);
      for (let v = 0; v < V; v++) for (let d = 0; d < D; d++) out[d * V + v] = src[v * D + d];
      return new Tensor(out, [D, V], ["d_model", "vocab"]);
    }).clone();
  }

  /**
   * Embedding [vocab, d_model].
   *
   * A copy: editing it changes nothing; edit the model with `setWeight("model.embed_tokens.weight", ...)`.
   *
   * @example
   * const e = model.W_E.select(0, tokenId); // [d_model]
   */
  get W_E(): Tensor {
    return this.getWeight("model.embed_tokens.weight");
  }

  /**
   * Output projection of layer `layer` per head: [head, d_head, d_model].
   *
   * A copy: editing it changes nothing; edit the model with
   * `setWeight("model.layers.{layer}.self_attn.o_proj.weight", ...)` (HF layout [d_model, head*d_head]).
   *
   * @example
   * const WO = model.W_O(2).select(0, 5); // head 5: [d_head, d_model]
   */
  W_O(layer: number): Tensor {
    return this.perHeadWO(layer).clone();
  }

  /**
   * Final RMSNorm weight [d_model] as it multiplies ln_final.hook_normalized: model.norm.weight,
   * or 1 + model.norm.weight for Gemma (as TransformerLens folds it). A copy: edit the model with
   * `setWeight("model.norm.weight", ...)`. A LayerNorm model (Starcoder2) has no such weight (its
   * final norm also centres and adds a bias): ConfigError, so analyses written for RMSNorm refuse it.
   *
   * @example
   * const w = model.finalNormWeight.data; // [d_model]
   */
  get finalNormWeight(): Tensor {
    if (this.config.norm === "layer")
      throw new ConfigError(
        `${this.config.architecture}'s final norm is a LayerNorm (x - mean, / scale, × weight + bias), not a scale and a weight; ` +
          `analyses that apply the final RMSNorm by hand (logit lens, counting heads) do not support it`,
        { field: "model.norm.weight" },
      );
    if (this.config.norm === "rms") return this.getWeight("model.norm.weight");
    const w = this.effectiveFinalNormWeight().slice();
    return new Tensor(w, [w.length], weightDims("model.norm.weight", 1));
  }

  /** model.norm.weight, plus 1 for Gemma's (1 + w) RMSNorm; cached until setWeight. */
  private effectiveFinalNormWeight(): Float32Array {
    const w = this.weights.float32("model.norm.weight")!; // [d_model]
    if (this.config.norm !== "rms_one_plus") return w;
    return this.derivedTensor("finalNormWeight", () => {
      const out = new Float32Array(w.length);
      for (let i = 0; i < w.length; i++) out[i] = w[i] + 1;
      return new Tensor(out, [w.length], ["d_model"]);
    }).data;
  }

  /** W_O(layer) without the copy, for read-only use inside the library (cached until setWeight). */
  private perHeadWO(layer: number): Tensor {
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.config.numLayers) {
      throw new InputError(`W_O: layer ${JSON.stringify(layer)} out of range 0..${this.config.numLayers - 1}`, {
        field: "layer",
      });
    }
    return this.derivedTensor(`W_O${layer}`, () => {
      const src = this.weights.float32(`model.layers.${layer}.self_attn.o_proj.weight`)!; // [d_model, head*d_head]
      const H = this.config.numHeads;
      const dh = this.config.headDim;
      const D = this.config.hiddenSize;
      const out = new Float32Array(H * dh * D);
      for (let m = 0; m < D; m++) for (let k = 0; k < H * dh; k++) out[k * D + m] = src[m * H * dh + k];
      return new Tensor(out, [H, dh, D], ["head", "d_head", "d_model"]);
    });
  }

  /** A tensor computed from the weights, cached until the next setWeight. */
  private derivedTensor(key: string, make: () => Tensor): Tensor {
    let t = this.derived.get(key);
    if (!t) {
      t = make();
      this.derived.set(key, t);
    }
    return t;
  }
}
