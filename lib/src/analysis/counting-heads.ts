/**
 * Finding 3, counting heads. For every attention head (layer, head):
 * (a) attention from the last position summed over the `(` tokens and over the `)` tokens of the
 *     prompt, and its Pearson correlation over prompts with the number of `)` already written
 *     (nClosed) and with the number still missing (n), with bootstrap intervals;
 * (b) the head's output at the last position (z · W_O, i.e. its hook_result, from
 *     `cache.stackHeadResults` + `applyLnToStack`: the run's cached final-norm scale × final norm
 *     weight) through W_U, restricted to the paren-run tokens:
 *     the head promotes the right count on a prompt when the correct run ranks first among them
 *     (the authors' rank-among-four rule); the fraction of prompts where it does;
 * (c) its causal effect: LD(clean) − LD(clean with the head's hook_z zeroed / mean-ablated at the
 *     last position) ("helps" when positive), and activation patching of its hook_z from the clean
 *     run into the corrupted one, (LD(patched) − LD(corrupted)) / (LD(clean) − LD(corrupted)).
 * Heads are ranked by |r| of the counting criterion. Which heads count, promote, help or hurt is
 * decided in one place, findings/counting.ts (`isCountingHead`, `countingHeadList`, `causalRole`), by the
 * `rule` this analysis returns: thresholds plus the method inputs that decide the verdict (the
 * uniform-attention baseline r and the causal threshold from the clean logit differences).
 */
import type { HookedLlama } from "../runtime/hooked-llama";
import type { ActivationCache } from "../hooks/activation-cache";
import { InputError } from "../core/errors";
import { Tensor } from "../core/tensor";
import { headLabel } from "../hooks/activation-cache";
import {
  BootstrapOptions,
  Interval,
  bootstrapGapFraction,
  bootstrapMean,
  bootstrapPearson,
  bootstrapProportion,
} from "./bootstrap";
import { partialCorrelation, pearson } from "./stats";
import { PermutationNullOptions, stratifiedPermutationNull } from "./permutation-null";
import { dot, logitDiffFor, modelUnembedColumns } from "./metrics";
import { ParenRunTokens, ParenTokenSets } from "../task/paren-tokens";
import {
  GroupedEffect,
  PromptGroup,
  PairAlignment,
  PromptPair,
  StudyPrompt,
  asPairs,
  batchCounterfactuals,
  checkPromptPairs,
  checkStudyPrompts,
  firstPerN,
  groupsOf,
  lengthBatches,
  modelParenSets,
  modelParens,
  pairAlignment,
  pairBatches,
  pairInputs,
  patchWhere,
} from "./study";
import { meanAt, patchFrom, sweep, zeroAt } from "./sweep";
import { ProgressOptions, silentProgress, withForwardProgress } from "./forward-progress";
import { knockoutKeys } from "./attention-knockout";

export type AttentionSignal = "attn_close" | "attn_open";
export type CountTarget = "nClosed" | "nMissing";
export type HeadCausalMethod = "zero" | "mean" | "patch" | "knockout";
const CAUSAL_METHODS: HeadCausalMethod[] = ["zero", "mean", "patch", "knockout"];

export interface CountingCriterion {
  signal: AttentionSignal;
  target: CountTarget;
}

export interface CountingHeadsOptions extends ProgressOptions {
  /**
   * Counting criterion
   *
   * Which correlation decides "counting head": attention on `)` vs nClosed tracks how many are
   * already closed; attention on `(` vs nMissing how many are still open.
   *
   * @default { signal: "attn_close", target: "nClosed" }
   */
  criterion?: CountingCriterion;
  /**
   * Counting threshold
   *
   * A head is a counting head when |r| of the criterion reaches this value (with an interval
   * excluding 0 and beyond the uniform-attention baseline; see `rule`).
   *
   * @default 0.5
   */
  countingThreshold?: number;
  /**
   * Promotion threshold
   *
   * The authors' per-subtask rule: a head promotes count n when, on the prompts of that n, its
   * (vocabulary-rank capped) promotion rate is at least this (chance among four runs is 0.25).
   *
   * @default 0.7
   */
  promoteThreshold?: number;
  /**
   * Causal methods
   *
   * Which causal effects to compute per head, each one forward pass per head and batch. "knockout":
   * the head's attention from the last position to the criterion's tokens (`)` for attn_close, `(`
   * for attn_open) removed and the row renormalised (an edit of hook_pattern; `knockoutKeys`).
   *
   * @default "zero", plus "mean" with `reference`, plus "patch" when every item has a corrupted prompt (knockout on request)
   */
  methods?: HeadCausalMethod[];
  /**
   * Reference prompts
   *
   * Prompts whose last-position hook_z gives the means for mean ablation.
   *
   * @default none (no mean ablation)
   */
  reference?: StudyPrompt[];
  /**
   * Counterfactual
   *
   * The token the label is compared against in LD, fixed per prompt from the clean run
   * ("corrupted-label" needs pairs).
   *
   * @default "strongest-wrong"
   */
  counterfactual?: "strongest-wrong" | "corrupted-label";
  /**
   * Causal prompts per n
   *
   * Causal runs cost one forward pass per head and method: run them on the first `causalPerN`
   * prompts of each n only. Attention and promotion always use every prompt.
   *
   * @default Infinity (every prompt)
   */
  causalPerN?: number;
  /**
   * Causal threshold
   *
   * |causal effect| below this is "neutral" even when its interval excludes 0 (in logits); it goes
   * into `rule.causalThreshold`.
   *
   * @default causalThresholdFraction × |mean clean LD on the causal prompts|
   */
  causalThreshold?: number;
  /**
   * Causal threshold fraction
   *
   * When `causalThreshold` is not given: the fraction of the mean clean logit difference (on the
   * causal prompts) below which a causal effect is neutral.
   *
   * @default 0.05
   */
  causalThresholdFraction?: number;
  /**
   * Patch positions
   *
   * Patch the head's hook_z at every position or at the last one only.
   *
   * @default "all"
   */
  patchPositions?: "all" | "last";
  /**
   * Batch size
   *
   * Prompts per forward pass.
   *
   * @default 32
   */
  batchSize?: number;
  /**
   * Bootstrap
   *
   * Resamples, seed and level of every interval.
   *
   * @default { samples: 1000, seed: 0, level: 0.95 }
   */
  bootstrap?: BootstrapOptions;
  /**
   * Paren-run tokens
   *
   * Ids of the runs `)` … `))))`.
   *
   * @default looked up through the model's tokenizer
   */
  parens?: ParenRunTokens;
  /**
   * Paren token sets
   *
   * Which tokens contain `(` / `)`.
   *
   * @default looked up through the model's tokenizer
   */
  parenSets?: ParenTokenSets;
  /**
   * Vocabulary-rank cap
   *
   * The authors' promotion rule also asks that the promoted run rank ≤ this in the head's output
   * over the whole vocabulary (`promoteRateCapped`); 0 skips the whole-vocabulary projection.
   *
   * @default 100
   */
  vocabRankCap?: number;
  /**
   * Length-stratified permutation null
   *
   * Shuffles of the criterion's target (nClosed) within prompts of the same length, across all
   * heads at once (family-wise max-|r|): `HeadSummary.permutationP`. `false` skips it (p = NaN).
   *
   * @default { permutations: 1000, seed: 0 }
   */
  permutationNull?: PermutationNullOptions | false;
}

export interface HeadAttentionRow {
  prompt: number;
  id: string | null;
  n: number;
  nClosed: number;
  layer: number;
  head: number;
  label: string;
  /** Attention from the last position summed over the prompt's tokens containing `(`. */
  attnOpen: number;
  /** … over the tokens containing `)`. */
  attnClose: number;
  /** Count (1..4) whose paren run ranks first in the head's own output. */
  promotedCount: number;
  /** The head's direct contribution to LD (its output through the final norm onto W_U[:, label] − W_U[:, counterfactual]). */
  headLogitDiff: number;
}

export interface HeadCorrelationRow {
  layer: number;
  head: number;
  label: string;
  signal: AttentionSignal;
  target: CountTarget;
  count: number;
  /** Pearson r; NaN when either variable is constant over the prompts. */
  r: number;
  lo: number;
  hi: number;
}

export interface HeadPromotionRow {
  layer: number;
  head: number;
  label: string;
  group: string;
  n: number | null;
  count: number;
  /** Fraction of prompts where the correct run ranks first among the paren runs in the head's output. */
  promoteRate: number;
  lo: number;
  hi: number;
  /** Fraction of prompts promoting each count: promotedShare[c - 1]. */
  promotedShare: number[];
  /** Mean direct contribution to LD. */
  headLogitDiff: number;
  /**
   * The authors' rule per prompt: the correct run ranks first among the paren runs AND within the
   * vocabulary-rank cap in the head's output over the whole vocabulary; NaN when the cap is 0.
   */
  promoteRateCapped: number;
}

export interface HeadCausalRow extends GroupedEffect {
  layer: number;
  head: number;
  label: string;
  method: HeadCausalMethod;
}

/** One head: its criterion r, promotion rate and pooled causal effect (a findings `HeadRow`). */
export interface HeadSummary {
  layer: number;
  head: number;
  label: string;
  countingR: number;
  countingLo: number;
  countingHi: number;
  /** 1 = highest |r| of the criterion (NaN r ranks last). */
  countingRank: number;
  /**
   * Partial r of the criterion controlling for prompt length and the share of the criterion's
   * tokens (`)` or `(`) in the prompt: what is left of r once the length confound is removed.
   */
  partialR: number;
  /**
   * Family-wise p of the criterion's r under the length-stratified permutation null (target
   * shuffled within prompts of the same length, max-|r| over all heads); NaN when skipped.
   */
  permutationP: number;
  promoteRate: number;
  causalMethod: HeadCausalMethod;
  causalEffect: number;
  causalLo: number;
  causalHi: number;
  /** 1 = largest |causal effect|. */
  causalRank: number;
  headLogitDiff: number;
}

/** The rule that classifies heads (findings/counting.ts `CountingFindingOptions` fits it): pass it to countingFinding. */
export interface CountingRule {
  countingThreshold: number;
  promoteThreshold: number;
  /** The uniform-attention baseline r (`baseline.uniformR`): a counting head's interval must lie beyond it. */
  baselineR: number;
  /** |causal effect| below this is neutral [logits]. */
  causalThreshold: number;
  /** The promoted run must rank ≤ this over the whole vocabulary (0: not applied). */
  vocabRankCap: number;
  /** A counting head's permutationP must be ≤ this (when computed). */
  permutationAlpha: number;
}

export interface CountingHeadsResult {
  attention: HeadAttentionRow[];
  correlations: HeadCorrelationRow[];
  promotion: HeadPromotionRow[];
  causal: HeadCausalRow[];
  /** One per head, sorted by countingRank. */
  heads: HeadSummary[];
  /** Thresholds and method inputs of the classification; `countingFinding(res, res.rule)`. */
  rule: CountingRule;
  /** The method inputs the rule is computed from. */
  baseline: {
    /**
     * r that a head attending uniformly to every token would get: Pearson r over prompts of the
     * share of the criterion's tokens (`)` for attn_close, `(` for attn_open) among the prompt's
     * tokens with the criterion's target.
     */
    uniformR: number;
    /** LD(clean) per prompt, in input order (fixed counterfactual of the run). */
    cleanLogitDiff: number[];
    /** Indices of the prompts the causal rows are computed on (the first causalPerN per n). */
    causalPrompts: number[];
    /** Mean clean LD over the causal prompts (the causal threshold is a fraction of its size). */
    meanCausalCleanLogitDiff: number;
    /** The length-stratified permutation null (null when skipped). */
    permutationNull: {
      permutations: number;
      seed: number;
      strata: number;
      /** 95th percentile of the largest |r| over heads under the shuffles. */
      maxAbsR95: number;
    } | null;
  };
  metadata: {
    criterion: CountingCriterion;
    methods: HeadCausalMethod[];
    /** The method of HeadSummary.causalEffect: "zero" when run, else the first method. */
    causalMethod: HeadCausalMethod;
    counterfactual: "strongest-wrong" | "corrupted-label";
    patchPositions: "all" | "last";
    /**
     * How the patched pairs line up: ["same-length"] (index for index), with "right-aligned" when
     * some pair's corrupted prompt has another token count (patched from the end, at the positions
     * both prompts have); [] without patching.
     */
    pairAlignments: PairAlignment[];
    promptCount: number;
    /** Prompts the causal rows are computed on. */
    causalPromptCount: number;
    notes: Record<string, string>;
  };
}

const NOTES: Record<string, string> = {
  attention:
    "attention weight from the last position summed over the prompt tokens containing ( (attnOpen) or ) (attnClose)",
  promotion:
    "head output z·W_O at the last position / cached ln_final scale × final norm weight, projected on the paren-run columns of W_U; promotes when the correct run ranks first",
  zero: "LD(clean) − LD(clean with this head's hook_z zeroed at the last position) [logits]; > 0: the head helps",
  mean: "LD(clean) − LD(clean with this head's hook_z at the last position replaced by its mean over the reference prompts) [logits]",
  knockout:
    "LD(clean) − LD(clean with this head's attention from the last position to the criterion's tokens removed and the row renormalised) [logits]",
  patch:
    "(LD(corrupted with the clean hook_z of this head patched in) − LD(corrupted)) / (LD(clean) − LD(corrupted)) [fraction restored]",
};

/** Mean of each layer's hook_z at the last position over reference prompts: [head, d_head] per layer. */
async function lastPositionZMeans(model: HookedLlama, reference: StudyPrompt[], batchSize: number): Promise<Tensor[]> {
  checkStudyPrompts(reference, model.config.vocabSize, "reference");
  const { numLayers: L, numHeads: H, headDim: dh } = model.config;
  const names = Array.from({ length: L }, (_, l) => `blocks.${l}.attn.hook_z`);
  const sums = names.map(() => new Float64Array(H * dh));
  for (const { indices } of lengthBatches(reference, (p) => p.promptIds.length, batchSize)) {
    const { cache } = await model.runWithCache(
      indices.map((i) => reference[i].promptIds),
      { names, logitsAt: "last" },
    );
    names.forEach((name, l) => {
      const z = cache.atPos(name, "last").data; // [batch, head, d_head]
      for (let i = 0; i < z.length; i++) sums[l][i % (H * dh)] += z[i];
    });
  }
  return sums.map(
    (s) =>
      new Tensor(
        Float32Array.from(s, (x) => x / reference.length),
        [H, dh],
        ["head", "d_head"],
      ),
  );
}

/** The options with their defaults, checked against the inputs. */
function countingSettings(model: HookedLlama, pairs: PromptPair[], opts: CountingHeadsOptions) {
  const allCorrupted = checkPromptPairs(pairs, model.config.vocabSize);
  const methods =
    opts.methods ??
    (["zero", "mean", "patch"] as HeadCausalMethod[]).filter(
      (m) => (m !== "mean" || opts.reference) && (m !== "patch" || allCorrupted),
    );
  for (const m of methods)
    if (!CAUSAL_METHODS.includes(m))
      throw new InputError(`unknown causal method "${m}"; expected ${CAUSAL_METHODS.join(", ")}`, { field: "methods" });
  if (methods.includes("mean") && !opts.reference)
    throw new InputError('causal method "mean" needs { reference } prompts', { field: "reference" });
  if (methods.includes("patch") && !allCorrupted)
    throw new InputError('causal method "patch" needs a corrupted prompt for every clean one', {
      field: "pairs.corrupted",
    });
  const counterfactual = opts.counterfactual ?? "strongest-wrong";
  if (counterfactual === "corrupted-label" && !allCorrupted)
    throw new InputError('counterfactual "corrupted-label" needs pairs', { field: "counterfactual" });
  const causalPerN = opts.causalPerN ?? Infinity;
  if (!(causalPerN >= 1))
    throw new InputError(`causalPerN must be at least 1, got ${causalPerN}`, { field: "causalPerN" });
  return {
    methods,
    counterfactual,
    causalPerN,
    criterion: opts.criterion ?? ({ signal: "attn_close", target: "nClosed" } as CountingCriterion),
    patchPositions: opts.patchPositions ?? "all",
    batchSize: opts.batchSize ?? 32,
    parens: modelParens(model, opts.parens),
    sets: modelParenSets(model, opts.parenSets),
    vocabRankCap: opts.vocabRankCap ?? 100,
  };
}
type Settings = ReturnType<typeof countingSettings>;

/** Per-head, per-prompt values of the attention/promotion pass (k = layer × H + head). */
interface AttentionPass {
  attnOpen: Float64Array[];
  attnClose: Float64Array[];
  promoted: Int32Array[];
  /** Rank (1 = top) of the promoted run in the head's output over the whole vocabulary; 0 when not computed. */
  promotedRank: Int32Array[];
  headLd: Float64Array[];
  ldClean: Float64Array;
  cfIds: number[];
}

/** (a) and (b): attention on the paren tokens and the head's own output, one clean run per length batch. */
async function attentionPass(model: HookedLlama, pairs: PromptPair[], s: Settings): Promise<AttentionPass> {
  const { numLayers: L, numHeads: H, hiddenSize: D } = model.config;
  const P = pairs.length;
  const per = <A>(make: () => A) => Array.from({ length: L * H }, make);
  const r: AttentionPass = {
    attnOpen: per(() => new Float64Array(P)),
    attnClose: per(() => new Float64Array(P)),
    promoted: per(() => new Int32Array(P)),
    promotedRank: per(() => new Int32Array(P)),
    headLd: per(() => new Float64Array(P)),
    ldClean: new Float64Array(P),
    cfIds: new Array<number>(P),
  };
  const parenCols = modelUnembedColumns(model, s.parens.ids); // maxN × [d_model]
  const patternNames = Array.from({ length: L }, (_, l) => `blocks.${l}.attn.hook_pattern`);
  const zNames = Array.from({ length: L }, (_, l) => `blocks.${l}.attn.hook_z`);
  const out = new Float64Array(D); // [d_model] one head's output at the last position
  for (const { length: T, indices } of lengthBatches(pairs, (p) => p.clean.promptIds.length, s.batchSize)) {
    const ids = indices.map((i) => pairs[i].clean.promptIds);
    const clean = await model.runWithCache(ids, {
      names: [...patternNames, ...zNames, "ln_final.hook_scale"],
      logitsAt: "last",
    });
    const correct = indices.map((i) => pairs[i].clean.labelId);
    const cf = batchCounterfactuals(clean.logits, pairs, indices, s.counterfactual, s.parens);
    const base = logitDiffFor(clean.logits, correct, cf);
    indices.forEach((pi, b) => {
      r.ldClean[pi] = base[b];
      r.cfIds[pi] = cf[b];
    });
    // every head's output z·W_O at the last position through the cached final norm
    const heads = clean.cache.stackHeadResults({ pos: "last", applyLn: true }).stack.data; // [layer*head, batch, d_model]
    const B = indices.length;
    const ldCols = indices.map((_, b) => {
      const [c, x] = modelUnembedColumns(model, [correct[b], cf[b]]);
      return c.map((v, d) => v - x[d]);
    });
    for (let l = 0; l < L; l++) {
      const pattern = clean.cache.get(patternNames[l]).data; // [batch, head, query_pos, key_pos]
      for (let h = 0; h < H; h++) {
        const k = l * H + h;
        indices.forEach((pi, b) => {
          // (a) attention from the last query position over the prompt's paren tokens
          const rowOff = ((b * H + h) * T + (T - 1)) * T;
          let o = 0,
            c = 0;
          for (let key = 0; key < T; key++) {
            const id = ids[b][key];
            if (s.sets.open.has(id)) o += pattern[rowOff + key];
            if (s.sets.close.has(id)) c += pattern[rowOff + key];
          }
          r.attnOpen[k][pi] = o;
          r.attnClose[k][pi] = c;
          // (b) the head's output through the final norm: which paren run it ranks first, and its LD
          out.set(heads.subarray((k * B + b) * D, (k * B + b + 1) * D));
          r.promoted[k][pi] = argmaxDot(out, parenCols) + 1;
          r.headLd[k][pi] = dot(out, ldCols[b]);
        });
      }
    }
    if (s.vocabRankCap > 0) await promotedRanks(model, heads, indices, s, r);
  }
  return r;
}

/**
 * Rank (1 = top) over the whole vocabulary of each head's promoted run in its own output through
 * the final norm, on onnxruntime (`model.unembedRank`): one call per layer on its [head, batch,
 * d_model] slice of `heads` ([layer*head, batch, d_model]); only the ranks come back.
 */
async function promotedRanks(
  model: HookedLlama,
  heads: Float32Array,
  indices: number[],
  s: Settings,
  r: AttentionPass,
): Promise<void> {
  const { numLayers: L, numHeads: H, hiddenSize: D } = model.config;
  const B = indices.length;
  for (let l = 0; l < L; l++) {
    const stack = new Tensor(
      heads.subarray(l * H * B * D, (l + 1) * H * B * D),
      [H, B, D],
      ["head", "batch", "d_model"],
    );
    const targets: number[] = [];
    for (let h = 0; h < H; h++) indices.forEach((pi) => targets.push(s.parens.ids[r.promoted[l * H + h][pi] - 1]));
    const ranks = (await model.unembedRank(stack, targets)).data; // [head, batch]
    for (let h = 0; h < H; h++) indices.forEach((pi, b) => (r.promotedRank[l * H + h][pi] = ranks[h * B + b]));
  }
}

/** Index of the column with the largest dot product with x (first on ties). */
function argmaxDot(x: Float64Array, cols: Float32Array[]): number {
  let best = 0,
    bestV = -Infinity;
  cols.forEach((col, j) => {
    const v = dot(x, col);
    if (v > bestV) {
      bestV = v;
      best = j;
    }
  });
  return best;
}

interface HeadSite {
  k: number;
  layer: number;
  head: number;
  method: HeadCausalMethod;
}

/** Forward passes of countingHeads: the clean caches, the reference caches, and per causal batch the patching caches and one run per site. */
function countingForwards(
  model: HookedLlama,
  pairs: PromptPair[],
  s: Settings,
  causalIdx: number[],
  reference: StudyPrompt[] | undefined,
): number {
  const { numLayers: L, numHeads: H } = model.config;
  const attention = lengthBatches(pairs, (p) => p.clean.promptIds.length, s.batchSize).length;
  if (s.methods.length === 0) return attention;
  const means = s.methods.includes("mean")
    ? lengthBatches(reference ?? [], (p) => p.promptIds.length, s.batchSize).length
    : 0;
  const perBatch =
    (s.methods.includes("patch") ? 2 : 0) + L * H * CAUSAL_METHODS.filter((m) => s.methods.includes(m)).length;
  return (
    attention + means + causalBatches(pairs, causalIdx, s.methods.includes("patch"), s.batchSize).length * perBatch
  );
}

/**
 * (c) causal: one run per head and method on the causal prompts, through `sweep`. Returns the
 * effect per method [head k][prompt] and LD(corrupted) per prompt (NaN without patching).
 */
async function causalPass(
  model: HookedLlama,
  pairs: PromptPair[],
  s: Settings,
  causalIdx: number[],
  att: AttentionPass,
  opts: CountingHeadsOptions,
): Promise<{ causal: Map<HeadCausalMethod, Float64Array[]>; ldCorrupted: Float64Array }> {
  const { numLayers: L, numHeads: H } = model.config;
  const P = pairs.length;
  const ldCorrupted = new Float64Array(P).fill(NaN);
  const causal = new Map<HeadCausalMethod, Float64Array[]>(s.methods.map((m) => [m, new Array<Float64Array>(L * H)]));
  if (s.methods.length === 0) return { causal, ldCorrupted };
  const zMeans = s.methods.includes("mean") ? await lastPositionZMeans(model, opts.reference!, s.batchSize) : [];
  const zNames = Array.from({ length: L }, (_, l) => `blocks.${l}.attn.hook_z`);
  const patching = s.methods.includes("patch");
  const batches = causalBatches(pairs, causalIdx, patching, s.batchSize);
  const sites: HeadSite[] = [];
  for (let layer = 0; layer < L; layer++)
    for (let head = 0; head < H; head++)
      for (const method of CAUSAL_METHODS)
        if (s.methods.includes(method)) sites.push({ k: layer * H + head, layer, head, method });
  const values = await sweep(model, {
    onProgress: silentProgress,
    label: "countingHeads",
    // inputs and token ids only: z means and clean LDs are model outputs, which round differently
    // on another CPU (the journal's check of each reused batch catches another model)
    journalKey: { settings: s, pairs, causalIdx, reference: opts.reference ?? null, cfIds: att.cfIds },
    promptCount: P,
    batches,
    sites,
    prepare: async ({ indices }) => {
      const ids = indices.map((i) => pairs[i].clean.promptIds);
      const correct = indices.map((i) => pairs[i].clean.labelId);
      const cf = indices.map((i) => att.cfIds[i]);
      const ld = (logits: Tensor) => logitDiffFor(logits, correct, cf);
      let clean: ActivationCache | null = null;
      const inp = patching ? pairInputs(pairs, indices) : null; // right-aligned: both sides left-padded to one width
      const corrupted = inp ? inp.corrupted : [];
      if (inp) {
        clean = (await model.runWithCache(inp.clean, { names: zNames, logitsAt: "last" })).cache;
        const c = ld(await model.run(corrupted, { logitsAt: "last" }));
        indices.forEach((pi, b) => (ldCorrupted[pi] = c[b]));
      }
      const where = inp ? patchWhere(s.patchPositions, inp) : {};
      const keys = s.criterion.signal === "attn_close" ? s.sets.close : s.sets.open;
      const keyMask = ids.map((row) => row.map((id) => keys.has(id)));
      return { ids, corrupted, clean, where, ld, keyMask, base: indices.map((i) => att.ldClean[i]) };
    },
    edit: ({ layer, head, method }, _batch, c) => {
      const hook = zNames[layer];
      const last = { heads: [head], positions: [-1] };
      if (method === "zero") return { input: c.ids, interventions: [zeroAt(hook, last)] };
      if (method === "mean") return { input: c.ids, interventions: [meanAt(hook, zMeans[layer], last)] };
      if (method === "knockout") return { input: c.ids, interventions: [knockoutKeys(layer, head, c.keyMask)] };
      return { input: c.corrupted, interventions: [patchFrom(hook, c.clean!, { heads: [head], ...c.where })] };
    },
    metric: (logits, { method }, _batch, c) => {
      const r = c.ld(logits);
      return method === "patch" ? r : r.map((x, b) => c.base[b] - x);
    },
  });
  sites.forEach((site, i) => (causal.get(site.method)![site.k] = values[i]));
  return { causal, ldCorrupted };
}

/**
 * The batches of the causal prompts. Prompts of different lengths share a (left-padded) batch:
 * every intervention is at the last position or patches whole rows of same-length pairs, so
 * padding never mixes in. With a right-aligned pair to patch, each batch holds pairs of one clean
 * and one corrupted length (`pairBatches`), so the positions both prompts have are the same in
 * every pair of the batch (`patchWhere`).
 */
function causalBatches(pairs: PromptPair[], causalIdx: number[], patching: boolean, batchSize: number) {
  if (patching && causalIdx.some((i) => pairAlignment(pairs[i]) === "right-aligned"))
    return pairBatches(
      causalIdx.map((i) => pairs[i]),
      batchSize,
    ).map((b) => ({ indices: b.indices.map((k) => causalIdx[k]) }));
  const byLength = [...causalIdx].sort((a, b) => pairs[a].clean.promptIds.length - pairs[b].clean.promptIds.length);
  return Array.from({ length: Math.ceil(byLength.length / batchSize) }, (_, j) => ({
    indices: byLength.slice(j * batchSize, (j + 1) * batchSize),
  }));
}

/** Per-head tables: attention per prompt, the four correlations, promotion and causal effects per group. */
function headTables(
  model: HookedLlama,
  pairs: PromptPair[],
  s: Settings,
  att: AttentionPass,
  c: { causal: Map<HeadCausalMethod, Float64Array[]>; ldCorrupted: Float64Array; inCausal: Uint8Array },
  nClosed: number[],
  boot: BootstrapOptions,
) {
  const { numLayers: L, numHeads: H } = model.config;
  const ns = pairs.map((p) => p.clean.n);
  const groups = groupsOf(ns);
  const attention: HeadAttentionRow[] = [];
  const correlations: HeadCorrelationRow[] = [];
  const promotion: HeadPromotionRow[] = [];
  const causal: HeadCausalRow[] = [];
  const criterionCi: Interval[] = [];
  const partial: number[] = [];
  const controls = lengthControls(pairs, s);
  for (let layer = 0; layer < L; layer++) {
    for (let head = 0; head < H; head++) {
      const k = layer * H + head;
      const at = { layer, head, label: headLabel(layer, head) };
      pairs.forEach((p, i) =>
        attention.push({
          prompt: i,
          id: p.clean.id ?? null,
          n: ns[i],
          nClosed: nClosed[i],
          ...at,
          attnOpen: att.attnOpen[k][i],
          attnClose: att.attnClose[k][i],
          promotedCount: att.promoted[k][i],
          headLogitDiff: att.headLd[k][i],
        }),
      );
      for (const signal of ["attn_close", "attn_open"] as AttentionSignal[]) {
        for (const target of ["nClosed", "nMissing"] as CountTarget[]) {
          const x = signal === "attn_close" ? att.attnClose[k] : att.attnOpen[k];
          const ci = bootstrapPearson(x, target === "nClosed" ? nClosed : ns, boot);
          correlations.push({ ...at, signal, target, count: pairs.length, r: ci.estimate, lo: ci.lo, hi: ci.hi });
          if (signal === s.criterion.signal && target === s.criterion.target) {
            criterionCi[k] = ci;
            partial[k] = partialCorrelation(x, target === "nClosed" ? nClosed : ns, controls);
          }
        }
      }
      for (const g of groups) {
        promotion.push(promotionRow(at, g, att, k, ns, s, boot));
        const cidx = g.idx.filter((i) => c.inCausal[i]);
        for (const method of s.methods) {
          const v = c.causal.get(method)![k];
          const ci =
            method === "patch"
              ? bootstrapGapFraction(att.ldClean, c.ldCorrupted, v, cidx, "restored", boot)
              : bootstrapMean(
                  cidx.map((i) => v[i]),
                  boot,
                );
          const unit = method === "patch" ? "fraction" : "logit";
          const effect = {
            group: g.group,
            n: g.n,
            count: cidx.length,
            effect: ci.estimate,
            lo: ci.lo,
            hi: ci.hi,
            unit,
          };
          causal.push({ ...at, method, ...effect } as HeadCausalRow);
        }
      }
    }
  }
  return { attention, correlations, promotion, causal, criterionCi, partial };
}

/** The criterion's signal of every head against its target, shuffled within prompts of one length. */
function criterionNull(
  pairs: PromptPair[],
  s: Settings,
  att: AttentionPass,
  nClosed: number[],
  opts: PermutationNullOptions | false | undefined,
) {
  if (opts === false) return null;
  const signals = s.criterion.signal === "attn_close" ? att.attnClose : att.attnOpen;
  const target = s.criterion.target === "nClosed" ? nClosed : pairs.map((p) => p.clean.n);
  return stratifiedPermutationNull(
    signals,
    target,
    pairs.map((p) => p.clean.promptIds.length),
    opts ?? {},
  );
}

/** Controls of the partial r: prompt length and the share of the criterion's tokens (`)` or `(`). */
function lengthControls(pairs: PromptPair[], s: Settings): number[][] {
  const tokens = s.criterion.signal === "attn_close" ? s.sets.close : s.sets.open;
  return [
    pairs.map((p) => p.clean.promptIds.length),
    pairs.map((p) => p.clean.promptIds.filter((id) => tokens.has(id)).length / p.clean.promptIds.length),
  ];
}

/** Promotion rate (with interval), share of each promoted count and mean head LD over one group. */
function promotionRow(
  at: { layer: number; head: number; label: string },
  g: PromptGroup,
  att: AttentionPass,
  k: number,
  ns: number[],
  s: Settings,
  boot: BootstrapOptions,
): HeadPromotionRow {
  const promoted = att.promoted[k];
  const ci = bootstrapProportion(
    g.idx.map((i) => promoted[i] === ns[i]),
    boot,
  );
  const capped = g.idx.filter((i) => promoted[i] === ns[i] && att.promotedRank[k][i] <= s.vocabRankCap).length;
  return {
    ...at,
    group: g.group,
    n: g.n,
    count: g.idx.length,
    promoteRate: ci.estimate,
    lo: ci.lo,
    hi: ci.hi,
    promotedShare: Array.from(
      { length: s.parens.ids.length },
      (_, j) => g.idx.filter((i) => promoted[i] === j + 1).length / g.idx.length,
    ),
    headLogitDiff: g.idx.reduce((a, i) => a + att.headLd[k][i], 0) / g.idx.length,
    promoteRateCapped: s.vocabRankCap > 0 ? capped / g.idx.length : NaN,
  };
}

/** One summary per head with its ranks, sorted by countingRank. */
function headSummaries(
  promotion: HeadPromotionRow[],
  causal: HeadCausalRow[],
  criterionCi: Interval[],
  partial: number[],
  permutationP: number[],
  causalMethod: HeadCausalMethod,
): HeadSummary[] {
  const pooled = promotion.filter((x) => x.group === "all");
  const heads: HeadSummary[] = pooled.map((pr, k) => {
    const r = criterionCi[k];
    const cr = causal.find((x) => x.label === pr.label && x.group === "all" && x.method === causalMethod);
    return {
      layer: pr.layer,
      head: pr.head,
      label: pr.label,
      countingR: r.estimate,
      countingLo: r.lo,
      countingHi: r.hi,
      countingRank: 0,
      partialR: partial[k],
      permutationP: permutationP[k],
      promoteRate: pr.promoteRate,
      causalMethod,
      causalEffect: cr ? cr.effect : NaN,
      causalLo: cr ? cr.lo : NaN,
      causalHi: cr ? cr.hi : NaN,
      causalRank: 0,
      headLogitDiff: pr.headLogitDiff,
    };
  });
  const absOrNeg = (x: number) => (Number.isFinite(x) ? Math.abs(x) : -1);
  [...heads].sort((a, b) => absOrNeg(b.countingR) - absOrNeg(a.countingR)).forEach((x, i) => (x.countingRank = i + 1));
  [...heads]
    .sort((a, b) => absOrNeg(b.causalEffect) - absOrNeg(a.causalEffect))
    .forEach((x, i) => (x.causalRank = i + 1));
  return heads.sort((a, b) => a.countingRank - b.countingRank);
}

/**
 * r that uniform attention would give: over prompts, the share of the criterion's tokens (`)` for
 * attn_close, `(` for attn_open) among the prompt's tokens, correlated with the criterion's target.
 * Attention that merely spreads over more `)` tokens gets this r without counting anything.
 */
export function uniformAttentionBaseline(
  prompts: StudyPrompt[],
  sets: ParenTokenSets,
  criterion: CountingCriterion,
  nClosed: number[] = prompts.map((p) => p.nClosed ?? p.promptIds.reduce((a, id) => a + (sets.close.get(id) ?? 0), 0)),
): number {
  const tokens = criterion.signal === "attn_close" ? sets.close : sets.open;
  const share = prompts.map((p) => p.promptIds.filter((id) => tokens.has(id)).length / p.promptIds.length);
  return pearson(share, criterion.target === "nClosed" ? nClosed : prompts.map((p) => p.n));
}

/**
 * The forward passes `countingHeads(model, items, opts)` will run (what its progress announces),
 * from the model's config and tokenizer only (scripts/bench/notebook-forwards.ts).
 *
 * @example
 * countingHeadsForwards({ config: { ...model.config, numLayers: 32, numHeads: 32 }, tokenizer: tok }, prompts, { reference });
 */
export function countingHeadsForwards(
  model: Pick<HookedLlama, "config" | "tokenizer">,
  items: (StudyPrompt | PromptPair)[],
  opts: CountingHeadsOptions = {},
): number {
  const pairs = asPairs(items);
  const s = countingSettings(model as HookedLlama, pairs, opts);
  const causalIdx = firstPerN(pairs, s.causalPerN, (p) => p.clean.n);
  return countingForwards(model as HookedLlama, pairs, s, causalIdx, opts.reference);
}

/**
 * Run the three counting-head analyses over prompts (or clean/corrupted pairs), and return the
 * rule (thresholds, uniform baseline, causal threshold) that classifies the heads in findings/counting.ts.
 *
 * @example
 * const res = await countingHeads(model, prompts, { reference, methods: ["zero", "mean"], causalPerN: 30 });
 * countingHeadList(res.heads, res.rule);            // the counting heads, by |r|
 * const f3 = countingFinding(res, res.rule);        // the verdict, from the same rule
 */
export async function countingHeads(
  model: HookedLlama,
  items: (StudyPrompt | PromptPair)[],
  opts: CountingHeadsOptions = {},
): Promise<CountingHeadsResult> {
  if (!Array.isArray(items) || items.length === 0)
    throw new InputError("countingHeads: give at least one prompt", { field: "prompts" });
  const pairs = asPairs(items);
  const s = countingSettings(model, pairs, opts);
  const P = pairs.length;
  const nClosed = pairs.map(
    (p) => p.clean.nClosed ?? p.clean.promptIds.reduce((a, id) => a + (s.sets.close.get(id) ?? 0), 0),
  );
  const causalIdx = firstPerN(pairs, s.causalPerN, (p) => p.clean.n);
  const inCausal = new Uint8Array(P);
  for (const i of causalIdx) inCausal[i] = 1;
  const { att, causal, ldCorrupted } = await withForwardProgress(
    model,
    opts,
    "countingHeads",
    countingForwards(model, pairs, s, causalIdx, opts.reference),
    async () => {
      const att = await attentionPass(model, pairs, s);
      return { att, ...(await causalPass(model, pairs, s, causalIdx, att, opts)) };
    },
  );
  const tables = headTables(model, pairs, s, att, { causal, ldCorrupted, inCausal }, nClosed, opts.bootstrap ?? {});
  const nul = criterionNull(pairs, s, att, nClosed, opts.permutationNull);
  const causalMethod: HeadCausalMethod = s.methods.includes("zero") ? "zero" : (s.methods[0] ?? "zero");
  const meanCausalClean = causalIdx.reduce((a, i) => a + att.ldClean[i], 0) / causalIdx.length;
  const uniformR = uniformAttentionBaseline(
    pairs.map((p) => p.clean),
    s.sets,
    s.criterion,
    nClosed,
  );
  return {
    attention: tables.attention,
    correlations: tables.correlations,
    promotion: tables.promotion,
    causal: tables.causal,
    heads: headSummaries(
      tables.promotion,
      tables.causal,
      tables.criterionCi,
      tables.partial,
      nul ? nul.p : tables.partial.map(() => NaN),
      causalMethod,
    ),
    rule: {
      countingThreshold: opts.countingThreshold ?? 0.5,
      promoteThreshold: opts.promoteThreshold ?? 0.7,
      vocabRankCap: s.vocabRankCap,
      baselineR: uniformR,
      causalThreshold: opts.causalThreshold ?? (opts.causalThresholdFraction ?? 0.05) * Math.abs(meanCausalClean),
      permutationAlpha: 0.05,
    },
    baseline: {
      uniformR,
      cleanLogitDiff: Array.from(att.ldClean),
      causalPrompts: causalIdx,
      meanCausalCleanLogitDiff: meanCausalClean,
      permutationNull: nul
        ? { permutations: nul.permutations, seed: nul.seed, strata: nul.strata, maxAbsR95: nul.maxAbsR95 }
        : null,
    },
    metadata: {
      criterion: s.criterion,
      methods: s.methods,
      causalMethod,
      counterfactual: s.counterfactual,
      patchPositions: s.patchPositions,
      pairAlignments: s.methods.includes("patch") ? [...new Set(causalIdx.map((i) => pairAlignment(pairs[i])))] : [],
      promptCount: P,
      causalPromptCount: causalIdx.length,
      notes: NOTES,
    },
  };
}
