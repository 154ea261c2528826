/**
 * Session planning and the segment loop: the only file in lib/ that imports onnxruntime-node.
 *
 * Why one file (as transformers.js keeps every `onnxruntime` call in `backends/onnx.js`): the rest
 * of the library works on parenlens `Tensor`s and never sees an `ort.Tensor`, so an onnxruntime
 * upgrade, a second backend or an execution-provider quirk touches this file alone. It owns
 * - the graphs built for each graph option (`withHeadResult`, `logitsAt`),
 * - the LRU of session plans, one per (cut hooks, outputs, graph options): a plan is the graph
 *   partitioned at the cut hooks (graph/partition.ts) with one InferenceSession per segment,
 * - the weight feeds: `ort.Tensor` views of HookedLlama's float32 arrays, and for weights held as
 *   2-byte values (BF16 / F16) a float32 conversion made just before the segment that reads them
 *   runs, into pooled buffers (held-weights.ts): plans of such a model are also cut at every
 *   layer boundary, so one segment reads one layer's weights,
 * - the segment loop: run a segment, hand the cut hook's value to JS (`edit`), feed the edited
 *   value to the next segment, keep the outputs asked for,
 * - the site loop (`runSites` / `runBranches`): the segments up to the first edited hook run once,
 *   the segments after it per site, layer by layer (each layer's weights converted once for all
 *   sites), `sitesPerBatch` sites at a time as one tiled batch of K × B rows (graph/site-tiling.ts
 *   says which crossing tensors are concatenated, recomputed for the tiled batch, or shared).
 * HookedLlama (hooked-llama.ts) keeps the weights and the public API.
 */
import * as ort from "onnxruntime-node";
import { LlamaConfig } from "../checkpoint/config";
import { ExecutionProviderError, FeedError } from "../core/errors";
import { Tensor } from "../core/tensor";
import { TokenBatch } from "../core/token-batch";
import { hookDims, hookShape, validateHookName } from "../hooks/hook-points";
import { Graph } from "./graph/ir";
import { buildLlamaGraph, LlamaGraphOptions } from "./graph/llama-graph";
import { flatOutputs, segmentToModel } from "./graph/onnx-model";
import { partitionGraph, Segment } from "./graph/partition";
import { SiteTiling, siteTiling } from "./graph/site-tiling";
import { ConversionPool, HalfWeight, halfToFloat32Into } from "./held-weights";

/** Downloads onnxruntime-node's CUDA provider libraries (from NuGet, into its bin/ folder); README "GPU". */
export const CUDA_INSTALL_COMMAND =
  "ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install.js";

/** One site of runBranches: its edit, and the cut hooks it edits (it branches off the trunk at the first). */
export interface BranchSite {
  edit: EditFn;
  hooks: Set<string>;
}

/** How sessions are created (the runtime part of HookedLlamaOptions). */
export interface SessionOptions {
  /**
   * Execution provider
   *
   * Where onnxruntime runs the graph; "cuda" needs an onnxruntime-node build with CUDA.
   *
   * @default "cpu"
   */
  executionProvider?: "cpu" | "cuda";
  /**
   * Intra-op threads
   *
   * Threads onnxruntime uses inside one op.
   *
   * @default onnxruntime's choice (one per core)
   */
  threads?: number;
  /**
   * Session cache size
   *
   * How many built session plans (cut set × outputs × graph options) to keep, least recently used dropped first.
   *
   * @default 8
   */
  sessionCacheSize?: number;
  /**
   * Thread spinning
   *
   * Let onnxruntime's worker threads spin-wait between ops. A run cut for an intervention
   * alternates between sessions whose idle pools would otherwise keep spinning against each
   * other on few cores; see scripts/bench/BENCH.md.
   *
   * @default false
   */
  spinning?: boolean;
  /**
   * Compute dtype
   *
   * "float16": every projection (the q/k/v/o, MLP and unembedding matmuls) multiplies float16
   * copies of its inputs and returns float32 (norms, rotary, softmax and the residual stream stay
   * float32). CUDA only (`executionProvider: "cuda"`): on the CPU it would be slower, not faster.
   * Results differ from float32 by float16 rounding (~1e-3 relative): an explicit choice.
   *
   * @default "float32"
   */
  computeDtype?: "float32" | "float16";
}

/** A graph cut at some hooks: its segments, one session per segment. */
export interface Plan {
  graph: Graph;
  segments: Segment[];
  sessions: ort.InferenceSession[];
  /** per segment: tensors no later segment needs (dropped after it ran) */
  release: string[][];
  /** the cut hooks whose value `edit` changes (the others are layer boundaries) */
  edited: Set<string>;
  /** logits are sliced to the last position inside the graph: [batch, 1, vocab] */
  logitsLast?: boolean;
  /** site tilings of the segments after a branch segment, by its index (built on first use) */
  tilings?: Map<number, Promise<ReadyTiling | null>>;
  /** per segment: outputs its Gemms write flat, [batch*pos, ...] (graph/onnx-model.ts flatOutputs) */
  flat: Set<string>[];
}

/** The weights a planner feeds, by HF name (HookedLlama's arrays; read at each run, never copied). */
export interface WeightFeeds {
  /** A weight held as float32 (fed as is). */
  data(name: string): Float32Array | undefined;
  /** A weight held as 2-byte values (converted to float32 for the segment that reads it). */
  half?(name: string): HalfWeight | undefined;
  /** True while any weight is 2-byte: plans are then cut at every layer boundary. */
  anyHalf?(): boolean;
  shape(name: string): number[] | undefined;
}

/** A hook's edit between segments: the value the next segments read. */
export type EditFn = (hook: string, value: Tensor) => Tensor;

/** The hooks a plan of a model with 2-byte weights is cut at: every layer's hook_resid_post but the last. */
export function layerBoundaryHooks(config: LlamaConfig): string[] {
  return Array.from({ length: config.numLayers - 1 }, (_, l) => `blocks.${l}.hook_resid_post`);
}

/** What one segment-loop run returns: logits and the hook values asked for (after edits). */
export interface SegmentRun {
  logits: Tensor; // [batch, pos, vocab], or [batch, 1, vocab] for an in-graph "last" slice
  values: Map<string, Tensor>; // hook name → value after its edit, dims from hook-points
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
    throw new FeedError(
      `${context}: ${parts.join("; ")}; session inputs are ${inputNames.slice(0, 12).join(", ")}${inputNames.length > 12 ? ", ..." : ""}`,
      { field: unknown[0] ?? missing[0] },
    );
  }
}

/** Whether a tensor name is a hook point of the model (its shape is then known before a run). */
function isHookName(name: string, config: LlamaConfig): boolean {
  try {
    validateHookName(name, config);
    return true;
  } catch {
    return false;
  }
}

/** Builds and caches sessions for one model, and runs them segment by segment. */
/**
 * `ort.Tensor` views of the weight arrays, one per weight, built on first use and forgotten when a
 * weight is replaced (the arrays are never copied).
 */
class WeightTensors {
  private readonly tensors = new Map<string, ort.Tensor>();

  constructor(private readonly weights: WeightFeeds) {}

  get(name: string, missing: string): ort.Tensor {
    let t = this.tensors.get(name);
    if (!t) {
      const data = this.weights.data(name);
      if (!data) throw new FeedError(missing, { field: name });
      t = new ort.Tensor("float32", data, this.weights.shape(name)!);
      this.tensors.set(name, t);
    }
    return t;
  }

  forget(name: string): void {
    this.tensors.delete(name);
  }
}

/** Session options every parenlens session shares: provider, optimisation, threads, spinning. */
function baseSessionOptions(options: SessionOptions): ort.InferenceSession.SessionOptions {
  const spin = options.spinning ? "1" : "0";
  const sessionOptions: ort.InferenceSession.SessionOptions = {
    executionProviders: [options.executionProvider ?? "cpu"],
    graphOptimizationLevel: "all",
    extra: { session: { intra_op: { allow_spinning: spin }, inter_op: { allow_spinning: spin } } },
  };
  if (options.threads !== undefined) sessionOptions.intraOpNumThreads = options.threads;
  return sessionOptions;
}

/**
 * How many sites run as one batch after their branch point (runSites / runBranches).
 */
export interface SiteBatchOptions {
  /**
   * Sites per batch
   *
   * Up to this many sites that branch off at the same hook run their later layers as one batch of
   * sitesPerBatch × B rows (1: one batch per site).
   *
   * @default 1
   */
  sitesPerBatch?: number;
}

/** A site tiling (graph/site-tiling.ts) with its prologue's session. */
interface ReadyTiling extends SiteTiling {
  session: ort.InferenceSession | null;
}

/** The trunk, or a branch of one site or of several tiled sites (site members[k] has rows k·B…). */
interface Branch {
  env: Map<string, ort.Tensor>;
  values: Map<string, Tensor>;
  members: number[];
  tiled: boolean;
  batch: TokenBatch;
}

/** A batch repeated K times (rows of copy k at k·B…). */
export function tileBatch(batch: TokenBatch, K: number): TokenBatch {
  const rep = <T>(rows: T[]): T[] => Array.from({ length: K }, () => rows).flat();
  return {
    ids: rep(batch.ids),
    attentionMask: rep(batch.attentionMask),
    positions: rep(batch.positions),
    lengths: rep(batch.lengths),
    padding: batch.padding,
  };
}

/** Rows k·n … (k+1)·n of a tensor of K·n rows (axis 0), as a copy. */
function rowsOf(t: Tensor, k: number, K: number): Tensor {
  const size = t.data.length / K;
  const shape = [t.shape[0] / K, ...t.shape.slice(1)];
  return new Tensor(t.data.slice(k * size, (k + 1) * size), shape, t.dims.slice());
}

/**
 * The edit a branch applies at a cut hook: its site's (one-site branch), or each member's on its
 * own rows (tiled branch; members that do not edit this hook keep theirs); null for none.
 */
function branchEdit(hook: string, b: Branch, sites: BranchSite[]): EditFn | null {
  const editing = b.members.map((i, k) => [k, i] as const).filter(([, i]) => sites[i].hooks.has(hook));
  if (!editing.length) return null;
  if (!b.tiled) return sites[b.members[0]].edit;
  return (name, value) => {
    const data = value.data.slice(); // [K·B, ...]
    for (const [k, i] of editing) {
      const after = sites[i].edit(name, rowsOf(value, k, b.members.length));
      data.set(after.data, k * after.data.length);
    }
    return new Tensor(data, value.shape.slice(), value.dims.slice());
  };
}

export class SessionPlanner {
  private readonly config: LlamaConfig;
  private readonly weights: WeightFeeds;
  private readonly options: SessionOptions;
  private readonly graphs = new Map<string, Graph>();
  private readonly plans = new Map<string, Promise<Plan>>();
  private readonly weightTensors: WeightTensors;
  private readonly pool = new ConversionPool();

  constructor(config: LlamaConfig, weights: WeightFeeds, options: SessionOptions = {}) {
    this.config = config;
    this.weights = weights;
    this.options = options;
    this.weightTensors = new WeightTensors(weights);
  }

  /** Forget the feed of a weight whose array was replaced (HookedLlama.setWeight). */
  weightChanged(name: string): void {
    this.weightTensors.forget(name);
  }

  /** Segments and their sessions for a cut set and outputs (LRU-cached). */
  plan(cuts: string[], outputs: string[], opts: LlamaGraphOptions): Promise<Plan> {
    const graph = this.graph(opts);
    const edited = new Set(cuts);
    const layerCuts = this.weights.anyHalf?.() ? layerBoundaryHooks(this.config) : [];
    const all = [...new Set([...cuts, ...layerCuts])];
    const sortedCuts = all.sort((a, b) => graph.hooks.get(a)! - graph.hooks.get(b)!);
    const key = JSON.stringify([
      sortedCuts,
      [...edited].sort(),
      [...outputs].sort(),
      !!opts.withHeadResult,
      opts.logitsAt ?? "all",
    ]);
    const hit = this.plans.get(key);
    if (hit) {
      this.plans.delete(key); // move to the back: most recently used
      this.plans.set(key, hit);
      return hit;
    }
    const p = this.buildPlan(graph, sortedCuts, outputs, edited).then((plan) => ({
      ...plan,
      logitsLast: opts.logitsAt === "last",
    }));
    this.plans.set(key, p);
    p.catch(() => this.plans.delete(key));
    const max = this.options.sessionCacheSize ?? 8;
    while (this.plans.size > max) this.plans.delete(this.plans.keys().next().value!);
    return p;
  }

  /**
   * Run a plan's segments in order. After a segment that ends at an edited cut hook,
   * `edit(hook, value)` returns the value the next segments read. `wanted` hook values are
   * returned after their edit.
   */
  async run(plan: Plan, batch: TokenBatch, wanted: Set<string>, edit: EditFn): Promise<SegmentRun> {
    const env = this.tokenFeeds(batch);
    const values = new Map<string, Tensor>();
    for (let s = 0; s < plan.segments.length; s++) {
      await this.withWeights(plan.segments[s], (weights) =>
        this.step(plan, s, batch, env, weights, wanted, values, edit),
      );
    }
    return { logits: this.logitsOf(env), values };
  }

  /**
   * Several sites on one batch, each with its own edits of the same hooks: the segments up to
   * the first edited hook run once (their outputs shared), the later ones per site, segment by
   * segment (a segment's weights are converted once for every site), `sitesPerBatch` sites at a
   * time as one tiled batch (runBranches). Equals one `run` per site.
   */
  async runSites(
    plan: Plan,
    batch: TokenBatch,
    wanted: Set<string>,
    edits: EditFn[],
    opts: SiteBatchOptions = {},
  ): Promise<SegmentRun[]> {
    const first = plan.segments.findIndex((seg) => seg.cutHook !== null && plan.edited.has(seg.cutHook));
    if (first < 0 || edits.length === 0) {
      const one = edits.length ? await this.run(plan, batch, wanted, edits[0]) : null;
      return edits.map(() => one!);
    }
    return this.runBranches(
      plan,
      batch,
      wanted,
      edits.map((edit) => ({ edit, hooks: plan.edited })),
      opts,
    );
  }

  /**
   * Sites that edit different hooks of one plan (its cut set = every site's hooks): one unedited
   * trunk runs segment by segment, and each site branches off it at the first cut hook it edits
   * (a copy of the trunk's tensors, its edit applied), then runs the later segments on its own.
   * Every segment's 2-byte weights are converted once for the trunk and all branches, and no site
   * re-runs the layers below its first edit. A site that edits nothing gets the trunk's result.
   *
   * With `sitesPerBatch` K > 1, up to K sites that branch off at the same hook form one tiled
   * branch of K × B rows (site k's rows at k·B…): the activations crossing the cut are
   * concatenated, the token-derived tensors (mask, rotary tables, shape tensors) recomputed for
   * the tiled batch, and each site's edits apply to its own rows (graph/site-tiling.ts). When the
   * graph's batch analysis cannot show that the later nodes keep rows apart, or hook values are
   * `wanted`, sites run one by one as with K = 1.
   */
  async runBranches(
    plan: Plan,
    batch: TokenBatch,
    wanted: Set<string>,
    sites: BranchSite[],
    opts: SiteBatchOptions = {},
  ): Promise<SegmentRun[]> {
    const perBatch = opts.sitesPerBatch ?? 1;
    const trunk: Branch = { env: this.tokenFeeds(batch), values: new Map(), members: [], tiled: false, batch };
    const branchOf: (Branch | null)[] = sites.map(() => null);
    const branches: Branch[] = [];
    for (let s = 0; s < plan.segments.length; s++) {
      const hook = plan.segments[s].cutHook;
      await this.withWeights(plan.segments[s], async (weights) => {
        if (branchOf.includes(null)) await this.step(plan, s, batch, trunk.env, weights, wanted, trunk.values, null);
        for (const b of branches) {
          const edit = hook === null ? null : branchEdit(hook, b, sites);
          await this.step(plan, s, b.batch, b.env, weights, wanted, b.values, edit);
        }
        if (hook === null) return;
        const starting = sites.flatMap((site, i) => (branchOf[i] || !site.hooks.has(hook) ? [] : [i]));
        if (!starting.length) return;
        const tiling = perBatch > 1 && wanted.size === 0 ? await this.tiling(plan, s) : null;
        if (!tiling) {
          for (const i of starting) {
            const b: Branch = {
              env: new Map(trunk.env),
              values: new Map(trunk.values),
              members: [i],
              tiled: false,
              batch,
            };
            this.applyEdit(hook, b.env, wanted, b.values, sites[i].edit);
            branchOf[i] = b;
            branches.push(b);
          }
          return;
        }
        // sites branching off here join the tiled branches that have room (begun at earlier
        // hooks), then fill new ones of up to perBatch sites
        let rest = starting;
        for (const b of [...branches.filter((x) => x.tiled), null]) {
          while (rest.length && (b === null || b.members.length < perBatch)) {
            const target: Branch = b ?? { env: new Map(), values: new Map(), members: [], tiled: true, batch };
            const join = rest.slice(0, perBatch - target.members.length);
            rest = rest.slice(join.length);
            await this.joinTiled(
              tiling,
              hook,
              target,
              trunk.env,
              batch,
              join.map((i) => sites[i].edit),
            );
            target.members.push(...join);
            join.forEach((i) => (branchOf[i] = target));
            if (b === null) branches.push(target);
            if (b !== null) break;
          }
        }
      });
    }
    return sites.map((_, i) => {
      const b = branchOf[i] ?? trunk;
      const logits = this.logitsOf(b.env);
      if (!b.tiled) return { logits, values: b.values };
      return { logits: rowsOf(logits, b.members.indexOf(i), b.members.length), values: new Map() };
    });
  }

  /** The site tiling of the segments after segment `s` of a plan (cached on the plan), or null. */
  private tiling(plan: Plan, s: number): Promise<ReadyTiling | null> {
    const cache = (plan.tilings ??= new Map());
    let t = cache.get(s);
    if (!t) {
      t = (async () => {
        const found = siteTiling(plan.graph, plan.segments, s, plan.edited);
        if ("reason" in found) return null;
        const prologue = found.prologue
          ? await ort.InferenceSession.create(
              segmentToModel(plan.graph, found.prologue),
              baseSessionOptions(this.options),
            )
          : null;
        return { ...found, session: prologue };
      })();
      cache.set(s, t);
    }
    return t;
  }

  /**
   * Sites joining a tiled branch `b` (empty for a new one) after the cut `hook`: its rows grow
   * from K₀ × B to (K₀ + n) × B. The activations crossing the cut are b's rows followed by the
   * trunk's, once per joining site (site j's copy of the hook edited by `edits[j]`); the token
   * feeds are tiled anew and the token-derived tensors recomputed from them.
   */
  private async joinTiled(
    tiling: ReadyTiling,
    hook: string,
    b: Branch,
    trunkEnv: Map<string, ort.Tensor>,
    batch: TokenBatch,
    edits: EditFn[],
  ): Promise<void> {
    const K0 = b.members.length;
    const tiled = tileBatch(batch, K0 + edits.length);
    const tokens = this.tokenFeeds(tiled);
    const env = new Map<string, ort.Tensor>();
    for (const name of tiling.tokens) env.set(name, tokens.get(name)!);
    if (tiling.session) {
      const feeds: Record<string, ort.Tensor> = {};
      for (const name of tiling.prologue!.inputs) feeds[name] = tokens.get(name)!;
      const out = await tiling.session.run(feeds);
      for (const name of tiling.recompute) env.set(name, out[name]);
    }
    for (const name of tiling.shared) env.set(name, trunkEnv.get(name)!);
    for (const name of tiling.concat) {
      const t = trunkEnv.get(name)!; // [B, ...]
      const src = t.data as Float32Array;
      const data = new Float32Array(src.length * (K0 + edits.length)); // [(K₀ + n)·B, ...]
      if (K0) data.set(b.env.get(name)!.data as Float32Array, 0);
      edits.forEach((edit, j) => {
        const at = (K0 + j) * src.length;
        data.set(name === hook ? edit(hook, this.toTensor(hook, t)).data : src, at);
      });
      env.set(name, new ort.Tensor("float32", data, [t.dims[0] * (K0 + edits.length), ...t.dims.slice(1)]));
    }
    b.env = env;
    b.batch = tiled;
  }

  /** One segment on one environment: feeds, run, outputs kept, the cut hook edited (unless `edit` is null). */
  private async step(
    plan: Plan,
    s: number,
    batch: TokenBatch,
    env: Map<string, ort.Tensor>,
    weights: Map<string, ort.Tensor>,
    wanted: Set<string>,
    values: Map<string, Tensor>,
    edit: EditFn | null,
  ): Promise<void> {
    const seg = plan.segments[s];
    const session = plan.sessions[s];
    const feeds: Record<string, ort.Tensor> = {};
    for (const name of seg.inputs) feeds[name] = env.get(name) ?? weights.get(name) ?? this.ortWeight(name);
    checkFeedNames(session.inputNames, feeds, `segment ${s + 1}/${plan.segments.length}`);
    const last = plan.logitsLast ?? false;
    // onnxruntime allocates the outputs (the plain plan from its arena); the binding copies each into
    // a new JS array either way (a buffer handed to run() as a fetch is written, then copied too)
    const out = await session.run(feeds);
    for (const name of seg.outputs)
      env.set(name, plan.flat[s].has(name) ? this.unflat(name, out[name], batch, last) : out[name]);
    if (seg.cutHook && edit && plan.edited.has(seg.cutHook)) this.applyEdit(seg.cutHook, env, wanted, values, edit);
    for (const name of seg.outputs)
      if (wanted.has(name) && !values.has(name)) values.set(name, this.toTensor(name, env.get(name)!));
    for (const name of plan.release[s]) env.delete(name); // no later segment reads it
  }

  /** Replace a cut hook's value in `env` by its edit (kept in `values` when wanted). */
  private applyEdit(
    hook: string,
    env: Map<string, ort.Tensor>,
    wanted: Set<string>,
    values: Map<string, Tensor>,
    edit: EditFn,
  ): void {
    const after = edit(hook, this.toTensor(hook, env.get(hook)!));
    env.set(hook, new ort.Tensor("float32", after.data, after.shape));
    if (wanted.has(hook)) values.set(hook, after);
  }

  /**
   * Call `fn` with the float32 feeds of the segment's 2-byte weights, converted into pooled
   * buffers that go back to the pool when `fn` is done (float32-held weights are fed by ortWeight).
   */
  private async withWeights(seg: Segment, fn: (weights: Map<string, ort.Tensor>) => Promise<void>): Promise<void> {
    const weights = new Map<string, ort.Tensor>();
    const taken: Float32Array[] = [];
    try {
      for (const name of seg.inputs) {
        const half = this.weights.half?.(name);
        if (!half) continue;
        const buf = this.pool.take(half.bits.length);
        taken.push(buf);
        weights.set(name, new ort.Tensor("float32", halfToFloat32Into(half, buf), this.weights.shape(name)!));
      }
      await fn(weights);
    } finally {
      for (const buf of taken) this.pool.give(buf);
    }
  }

  private logitsOf(env: Map<string, ort.Tensor>): Tensor {
    const raw = env.get("logits")!;
    return new Tensor(raw.data as Float32Array, raw.dims.slice(), ["batch", "pos", "vocab"]);
  }

  /** The shape of the logits or a hook value in this batch (null for other tensors). */
  private outputShape(name: string, batch: TokenBatch, logitsLast: boolean): number[] | null {
    const B = batch.ids.length;
    const P = batch.ids[0].length;
    if (name === "logits") return [B, logitsLast ? 1 : P, this.config.vocabSize];
    return isHookName(name, this.config) ? hookShape(name, this.config, B, P).shape : null;
  }

  /** A value written flat, [batch*pos, ...], viewed with its own shape (the same array). */
  private unflat(name: string, t: ort.Tensor, batch: TokenBatch, logitsLast: boolean): ort.Tensor {
    return new ort.Tensor("float32", t.data as Float32Array, this.outputShape(name, batch, logitsLast)!);
  }

  /** input_ids, attention_mask, position_ids as int64 [batch, pos]. */
  private tokenFeeds(batch: TokenBatch): Map<string, ort.Tensor> {
    const B = batch.ids.length;
    const P = batch.ids[0].length;
    const int64 = (rows: number[][]) =>
      new ort.Tensor("int64", BigInt64Array.from(rows.flat().map((x) => BigInt(x))), [B, P]);
    return new Map<string, ort.Tensor>([
      ["input_ids", int64(batch.ids)],
      ["attention_mask", int64(batch.attentionMask)],
      ["position_ids", int64(batch.positions)],
    ]);
  }

  private toTensor(name: string, t: ort.Tensor): Tensor {
    return new Tensor(t.data as Float32Array, t.dims.slice(), hookDims(name, this.config));
  }

  private ortWeight(name: string): ort.Tensor {
    return this.weightTensors.get(name, `No tensor or weight named ${name} to feed`);
  }

  private graph(opts: LlamaGraphOptions): Graph {
    const key = `${!!opts.withHeadResult}|${opts.logitsAt ?? "all"}`;
    let g = this.graphs.get(key);
    if (!g) {
      g = buildLlamaGraph(this.config, { ...opts, float16Matmul: this.options.computeDtype === "float16" });
      this.graphs.set(key, g);
    }
    return g;
  }

  /**
   * Options of a plan's sessions. onnxruntime's CPU arena is turned off (a) for a model with
   * 2-byte weights: one session per layer per plan, and each session's arena would keep its peak
   * activations for good (CodeLlama-7b at 8 × 32 tokens: ~5 GiB over three plans); without the
   * arena they are freed after each run; (b) for a plan that returns hook values (a cache run):
   * with the arena a full cache peaked ~170 MB higher on the 32k-vocabulary bench checkpoint
   * (scripts/bench/BENCH.md, "peers-memory"); timed against the arena in interleaved runs, no
   * difference beyond the shared machine's noise.
   */
  private sessionOptions(returnsHooks: boolean): ort.InferenceSession.SessionOptions {
    const sessionOptions = baseSessionOptions(this.options);
    if (this.weights.anyHalf?.() || returnsHooks) sessionOptions.enableCpuMemArena = false;
    return sessionOptions;
  }

  private async buildPlan(graph: Graph, cuts: string[], outputs: string[], edited: Set<string>): Promise<Plan> {
    const segments = partitionGraph(graph, cuts, outputs);
    const ep = this.options.executionProvider ?? "cpu";
    const sessionOptions = this.sessionOptions(outputs.some((n) => n !== "logits"));
    const sessions: ort.InferenceSession[] = [];
    for (const seg of segments) {
      try {
        sessions.push(
          await ort.InferenceSession.create(segmentToModel(graph, seg, "parenlens", { flat: true }), sessionOptions),
        );
      } catch (e) {
        const msg = (e as Error).message;
        if (ep === "cuda") {
          throw new ExecutionProviderError(
            `The CUDA execution provider is not available in this onnxruntime-node install (${msg.split("\n")[0]}); use { executionProvider: "cpu" }, or on a machine with an NVIDIA GPU, CUDA 12 and cuDNN 9 download the provider with \`${CUDA_INSTALL_COMMAND}\` (needs a network; README, "GPU")`,
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
    return { graph, segments, sessions, release, edited, flat: segments.map(flatOutputs) };
  }
}

/** A value fed to a math graph: float32 (a parenlens Tensor) or int64 ids. */
export type MathFeed = Tensor | { int64: number[]; shape: number[] };

/**
 * Small cached sessions for the analysis math (runtime/graph/unembed-graph.ts and the like): run
 * "this little graph" over feeds plus the model's own weight arrays (graph inputs not fed are
 * weights, wrapped as `ort.Tensor` views of the same Float32Arrays, never copied). One session
 * per graph key, built once and kept (the family is small: a few graphs per model).
 */
export class MathSessions {
  private readonly options: SessionOptions;
  private readonly sessions = new Map<string, Promise<{ graph: Graph; session: ort.InferenceSession }>>();
  private readonly weightTensors: WeightTensors;

  constructor(weights: WeightFeeds, options: SessionOptions = {}) {
    this.options = options;
    this.weightTensors = new WeightTensors(weights);
  }

  /** Forget the feed of a weight whose array was replaced (HookedLlama.setWeight). */
  weightChanged(name: string): void {
    this.weightTensors.forget(name);
  }

  /**
   * Run the graph cached under `key` (built by `build` on first use) and return its outputs with
   * `dims` (output name → dim names).
   */
  async run(
    key: string,
    build: () => Graph,
    feeds: Record<string, MathFeed>,
    dims: Record<string, string[]>,
  ): Promise<Map<string, Tensor>> {
    let entry = this.sessions.get(key);
    if (!entry) {
      entry = this.create(build());
      this.sessions.set(key, entry);
      entry.catch(() => this.sessions.delete(key));
    }
    const { graph, session } = await entry;
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const { name } of graph.inputs) {
      const f = feeds[name];
      if (f === undefined) ortFeeds[name] = this.ortWeight(name);
      else if (f instanceof Tensor) ortFeeds[name] = new ort.Tensor("float32", f.data, f.shape);
      else
        ortFeeds[name] = new ort.Tensor(
          "int64",
          BigInt64Array.from(f.int64, (v) => BigInt(v)),
          f.shape,
        );
    }
    const unknown = Object.keys(feeds).filter((n) => !(n in ortFeeds));
    if (unknown.length)
      throw new FeedError(`math graph ${key}: no input named ${unknown.join(", ")}`, { field: unknown[0] });
    checkFeedNames(session.inputNames, ortFeeds, `math graph ${key}`);
    const out = await session.run(ortFeeds);
    const result = new Map<string, Tensor>();
    for (const name of graph.outputs) {
      const t = out[name];
      result.set(
        name,
        new Tensor(t.data as Float32Array, t.dims.slice(), dims[name] ?? t.dims.map((_, i) => `dim${i}`)),
      );
    }
    return result;
  }

  private async create(graph: Graph): Promise<{ graph: Graph; session: ort.InferenceSession }> {
    const [seg] = partitionGraph(graph, [], graph.outputs);
    const session = await ort.InferenceSession.create(
      segmentToModel(graph, seg, "parenlens-math"),
      baseSessionOptions(this.options),
    );
    return { graph, session };
  }

  private ortWeight(name: string): ort.Tensor {
    return this.weightTensors.get(name, `No feed or weight named ${name} for a math graph`);
  }
}
