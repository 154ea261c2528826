/**
 * Metrics of the closing-paren task on next-token logits: accuracy (argmax over the whole
 * vocabulary, and among the paren-run tokens only), logit difference correct − counterfactual
 * with an explicit counterfactual choice, probability and rank of the correct token; summaries
 * per n and pooled, with exact binomial intervals for accuracies and bootstrap intervals for means.
 */
import { Tensor } from "../core/tensor";
import { InputError } from "../core/errors";
import { ParenRunTokens } from "../task/paren-tokens";
import { BootstrapOptions, bootstrapMean } from "./bootstrap";
import { BinomialIntervalMethod, binomialInterval, meanOf, medianOf } from "./stats";

/**
 * Which token the correct label is compared against:
 * - "strongest-wrong": the highest-logit paren run other than the correct one (per prompt);
 * - "count": the run of `count` parens (prompts whose label has that count get NaN);
 * - "tokens": one token id per prompt, e.g. each pair's corrupted label.
 */
export type CounterfactualSpec =
  { kind: "strongest-wrong" } | { kind: "count"; count: number } | { kind: "tokens"; ids: number[] };

/** What a metric needs of a prompt: its label length, and optionally its label id. */
export interface MetricTarget {
  n: number;
  /** Defaults to the paren-run id of n. */
  labelId?: number;
}

export interface PromptScore {
  /** Index of the prompt in the batch. */
  index: number;
  n: number;
  correctId: number;
  /** Argmax over the whole vocabulary. */
  argmaxId: number;
  /** argmaxId === correctId. */
  correct: boolean;
  /** Count of the highest-logit paren run (1..maxN). */
  parenArgmaxCount: number;
  /** parenArgmaxCount === n (argmax among the paren-run tokens only). */
  parenCorrect: boolean;
  counterfactualId: number;
  /** logit[correct] − logit[counterfactual]; NaN when the counterfactual is the correct token. */
  logitDiff: number;
  /** Softmax probability of the correct token over the whole vocabulary. */
  prob: number;
  /** 1 + the number of tokens with a strictly higher logit (1 = top). */
  rank: number;
  /** Logits of the paren runs 1..maxN. */
  parenLogits: number[];
}

/** The logits at the last position: [batch, vocab] from [batch, pos, vocab] (left-padded batches end at -1). */
export function lastPositionLogits(logits: Tensor): Tensor {
  if (logits.shape.length === 2) return logits; // already [batch, vocab]
  if (logits.shape.length !== 3) {
    throw new InputError(`logits should be [batch, pos, vocab] or [batch, vocab], got [${logits.shape.join(", ")}]`, {
      field: "logits",
    });
  }
  return logits.select(1, -1); // [batch, vocab]
}

/** One row of a [batch, vocab] tensor as a view. */
function row(t: Tensor, b: number): Float32Array {
  const V = t.shape[1];
  return t.data.subarray(b * V, (b + 1) * V);
}

/**
 * Score each prompt of a batch from its last-position logits ([batch, pos, vocab] or [batch, vocab]).
 *
 * @example
 * const scores = scoreLogits(await model.run(prompts.map((p) => p.promptIds), { logitsAt: "last" }), prompts, parens);
 * scores[0].logitDiff; // logit[label] − logit[strongest wrong run]
 */
export function scoreLogits(
  logits: Tensor,
  targets: MetricTarget[],
  parens: ParenRunTokens,
  opts: { counterfactual?: CounterfactualSpec } = {},
): PromptScore[] {
  const last = lastPositionLogits(logits); // [batch, vocab]
  const [B, V] = last.shape;
  if (targets.length !== B) {
    throw new InputError(`scoreLogits: ${targets.length} targets for a batch of ${B}`, { field: "targets" });
  }
  const cf = opts.counterfactual ?? { kind: "strongest-wrong" };
  if (cf.kind === "tokens" && cf.ids.length !== B) {
    throw new InputError(`counterfactual tokens: ${cf.ids.length} ids for a batch of ${B}`, {
      field: "counterfactual.ids",
    });
  }
  if (cf.kind === "count" && !(Number.isInteger(cf.count) && cf.count >= 1 && cf.count <= parens.maxN)) {
    throw new InputError(`counterfactual count must be 1..${parens.maxN}, got ${cf.count}`, {
      field: "counterfactual.count",
    });
  }
  const out: PromptScore[] = [];
  for (let b = 0; b < B; b++) {
    const x = row(last, b);
    const t = targets[b];
    if (!Number.isInteger(t.n) || t.n < 1)
      throw new InputError(`target ${b}: n must be a positive integer, got ${t.n}`, { field: "n" });
    if (t.labelId === undefined && t.n > parens.maxN) {
      throw new InputError(`target ${b}: n = ${t.n} has no paren-run token (maxN ${parens.maxN}); give labelId`, {
        field: "labelId",
      });
    }
    const correctId = t.labelId ?? parens.ids[t.n - 1];
    if (!(correctId >= 0 && correctId < V))
      throw new InputError(`target ${b}: label id ${correctId} outside vocab ${V}`, { field: "labelId" });
    out.push(scoreRow(x, b, t.n, correctId, parens, cf));
  }
  return out;
}

/** Score one logit vector (exported for analyses that build logits themselves, e.g. the logit lens). */
export function scoreRow(
  x: ArrayLike<number>,
  index: number,
  n: number,
  correctId: number,
  parens: ParenRunTokens,
  cf: CounterfactualSpec,
): PromptScore {
  const V = x.length;
  let argmaxId = 0;
  let max = -Infinity;
  for (let v = 0; v < V; v++) {
    if (x[v] > max) {
      max = x[v];
      argmaxId = v;
    }
  }
  const c = x[correctId];
  let sum = 0;
  let higher = 0;
  for (let v = 0; v < V; v++) {
    sum += Math.exp(x[v] - max);
    if (x[v] > c) higher++;
  }
  const parenLogits = parens.ids.map((id) => x[id]);
  let best = 0;
  for (let i = 1; i < parenLogits.length; i++) if (parenLogits[i] > parenLogits[best]) best = i;
  let counterfactualId: number;
  if (cf.kind === "strongest-wrong") {
    let w = -1;
    for (let i = 0; i < parens.ids.length; i++) {
      if (parens.ids[i] === correctId) continue;
      if (w < 0 || parenLogits[i] > parenLogits[w]) w = i;
    }
    counterfactualId = parens.ids[w];
  } else if (cf.kind === "count") {
    counterfactualId = parens.ids[cf.count - 1];
  } else {
    counterfactualId = cf.ids[index];
    if (!(counterfactualId >= 0 && counterfactualId < V)) {
      throw new InputError(`counterfactual id ${counterfactualId} (prompt ${index}) outside vocab ${V}`, {
        field: "counterfactual.ids",
      });
    }
  }
  return {
    index,
    n,
    correctId,
    argmaxId,
    correct: argmaxId === correctId,
    parenArgmaxCount: best + 1,
    parenCorrect: parens.ids[best] === correctId,
    counterfactualId,
    logitDiff: counterfactualId === correctId ? NaN : c - x[counterfactualId],
    prob: Math.exp(c - max) / sum,
    rank: 1 + higher,
    parenLogits,
  };
}

export interface MetricSummaryRow {
  /** "n=1" … or "all". */
  group: string;
  /** null for the pooled row. */
  n: number | null;
  count: number;
  accuracy: number;
  accuracyLo: number;
  accuracyHi: number;
  parenAccuracy: number;
  parenAccuracyLo: number;
  parenAccuracyHi: number;
  /** Mean logit difference over prompts where it is defined. */
  logitDiff: number;
  logitDiffLo: number;
  logitDiffHi: number;
  meanProb: number;
  meanRank: number;
  medianRank: number;
  /**
   * Share of prompts whose highest-logit paren run is `)`, `))`, … (index c − 1 for c parens): how
   * much of the group a constant predictor of one run would account for.
   */
  parenShares: number[];
}

/** Options of `summarizeScores` and `logitDiffByCount`. */
export interface SummaryOptions {
  /**
   * Bootstrap
   *
   * Resamples, seed and level of the mean logit difference's interval (and the level of accuracy intervals).
   *
   * @default { samples: 1000, seed: 0, level: 0.95 }
   */
  bootstrap?: BootstrapOptions;
  /**
   * Accuracy interval
   *
   * Exact binomial interval for accuracies: Clopper–Pearson (conservative) or Wilson (score).
   * A percentile bootstrap of a proportion collapses to [1, 1] at 100 %; these do not.
   *
   * @default "clopper-pearson"
   */
  accuracyInterval?: BinomialIntervalMethod;
}

function proportion(flags: boolean[], opts: SummaryOptions) {
  const k = flags.filter(Boolean).length;
  return binomialInterval(k, flags.length, opts.bootstrap?.level ?? 0.95, opts.accuracyInterval);
}

function summarizeGroup(group: string, n: number | null, s: PromptScore[], opts: SummaryOptions): MetricSummaryRow {
  const acc = proportion(
    s.map((x) => x.correct),
    opts,
  );
  const pacc = proportion(
    s.map((x) => x.parenCorrect),
    opts,
  );
  const ld = bootstrapMean(
    s.map((x) => x.logitDiff).filter((v) => Number.isFinite(v)),
    opts.bootstrap ?? {},
  );
  return {
    group,
    n,
    count: s.length,
    accuracy: acc.estimate,
    accuracyLo: acc.lo,
    accuracyHi: acc.hi,
    parenAccuracy: pacc.estimate,
    parenAccuracyLo: pacc.lo,
    parenAccuracyHi: pacc.hi,
    logitDiff: ld.estimate,
    logitDiffLo: ld.lo,
    logitDiffHi: ld.hi,
    meanProb: meanOf(s.map((x) => x.prob)),
    meanRank: meanOf(s.map((x) => x.rank)),
    medianRank: medianOf(s.map((x) => x.rank)),
    parenShares: Array.from(
      { length: s[0]?.parenLogits.length ?? 0 },
      (_, c) => s.filter((x) => x.parenArgmaxCount === c + 1).length / s.length,
    ),
  };
}

/**
 * One row per n (ascending) and a pooled "all" row: accuracies with exact binomial intervals
 * (Clopper–Pearson by default), the mean logit difference with a percentile bootstrap interval.
 *
 * @example
 * summarizeScores(scores, { bootstrap: { samples: 1000, seed: 0 } }).find((r) => r.group === "all")!.accuracy;
 */
export function summarizeScores(scores: PromptScore[], opts: SummaryOptions = {}): MetricSummaryRow[] {
  const ns = [...new Set(scores.map((s) => s.n))].sort((a, b) => a - b);
  const rows = ns.map((n) =>
    summarizeGroup(
      `n=${n}`,
      n,
      scores.filter((s) => s.n === n),
      opts,
    ),
  );
  rows.push(summarizeGroup("all", null, scores, opts));
  return rows;
}

export interface LogitDiffByCountRow {
  /** Correct count (label length). */
  n: number;
  /** The counterfactual count. */
  vsCount: number;
  count: number;
  /** Mean of logit[run n] − logit[run vsCount]. */
  logitDiff: number;
  lo: number;
  hi: number;
  /** Fraction of prompts where the correct run beats this one. */
  winRate: number;
}

/**
 * The "each other count" table: for every correct n and every other count m, mean logit[n] − logit[m].
 *
 * @example
 * logitDiffByCount(scores).filter((r) => r.n === 2); // run of 2 vs runs of 1, 3, 4
 */
export function logitDiffByCount(
  scores: PromptScore[],
  opts: { bootstrap?: BootstrapOptions } = {},
): LogitDiffByCountRow[] {
  const rows: LogitDiffByCountRow[] = [];
  const ns = [...new Set(scores.map((s) => s.n))].sort((a, b) => a - b);
  for (const n of ns) {
    const s = scores.filter((x) => x.n === n && n <= x.parenLogits.length);
    if (s.length === 0) continue;
    const maxN = s[0].parenLogits.length;
    for (let m = 1; m <= maxN; m++) {
      if (m === n) continue;
      const diffs = s.map((x) => x.parenLogits[n - 1] - x.parenLogits[m - 1]);
      const ci = bootstrapMean(diffs, opts.bootstrap ?? {});
      rows.push({
        n,
        vsCount: m,
        count: s.length,
        logitDiff: ci.estimate,
        lo: ci.lo,
        hi: ci.hi,
        winRate: meanOf(diffs.map((d) => (d > 0 ? 1 : 0))),
      });
    }
  }
  return rows;
}

/**
 * logit[correct] − logit[counterfactual] for fixed token ids (a linear metric: use it for patching).
 *
 * @example
 * logitDiffFor(await model.runWithHooks(ids, [zeroAt("blocks.2.hook_mlp_out")], { logitsAt: "last" }), labels, cfs);
 */
export function logitDiffFor(logits: Tensor, correctIds: number[], counterfactualIds: number[]): number[] {
  const last = lastPositionLogits(logits); // [batch, vocab]
  const [B] = last.shape;
  if (correctIds.length !== B || counterfactualIds.length !== B) {
    throw new InputError(`logitDiffFor: ${correctIds.length}/${counterfactualIds.length} ids for a batch of ${B}`, {
      field: "correctIds",
    });
  }
  return correctIds.map((c, b) => last.get(b, c) - last.get(b, counterfactualIds[b]));
}

/**
 * Columns of a model's unembedding for some token ids, one [d_model] view each, read from the
 * HF rows (`model.unembedColumns`) without the [d_model, vocab] copy `model.W_U` makes.
 */
export function modelUnembedColumns(model: { unembedColumns(ids: number[]): Tensor }, ids: number[]): Float32Array[] {
  const t = model.unembedColumns(ids); // [column, d_model]
  const D = t.shape[1];
  return ids.map((_, j) => t.data.subarray(j * D, (j + 1) * D));
}

/** Columns of the unembedding W_U [d_model, vocab] for some token ids: one [d_model] vector each. */
export function unembedColumns(W_U: Tensor, ids: number[]): Float32Array[] {
  const [D, V] = W_U.shape;
  return ids.map((id) => {
    if (!(Number.isInteger(id) && id >= 0 && id < V))
      throw new InputError(`token id ${id} outside the unembedding's vocab ${V}`, { field: "ids" });
    const col = new Float32Array(D);
    for (let d = 0; d < D; d++) col[d] = W_U.data[d * V + id];
    return col;
  });
}

/** Dot product of two equal-length vectors (float64 accumulation). */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
