/**
 * Verdicts on the paper's findings, computed from the result rows of a run (never typed in).
 *
 * Each function takes the tidy rows the analyses return (only the fields it reads, so hand-made
 * rows work too), applies a rule stated here and in its output, and returns a `Finding`: a
 * verdict ("replicates" / "partly" / "does not replicate"), the numbers it rests on, and a
 * markdown text for the notebook's last cell. The rules' thresholds are options with defaults.
 */
import { InputError } from "../core/errors";

export type Verdict = "replicates" | "partly" | "does not replicate";

export interface Finding {
  /** "accuracy", "layer-wise", "sub-layers", "counting-heads". */
  id: string;
  title: string;
  /** The paper's claim, in our words (mission.md). */
  claim: string;
  verdict: Verdict;
  /** One sentence: the verdict's reason, with numbers. */
  summary: string;
  /** The rule the verdict follows, with its thresholds. */
  rule: string;
  /** Supporting lines, with numbers. */
  evidence: string[];
  /** The numbers the verdict rests on (for tests and tables). */
  numbers: Record<string, number | string | boolean | null>;
  /** Everything above as markdown. */
  markdown: string;
}

const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)} %` : "n/a");
const num = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");

function finish(f: Omit<Finding, "markdown">): Finding {
  const lines = [
    `### Finding — ${f.title}`,
    "",
    `**Paper:** ${f.claim}`,
    "",
    `**Verdict on this model: ${f.verdict}.** ${f.summary}`,
    "",
    `*Rule:* ${f.rule}`,
    "",
    ...f.evidence.map((e) => `- ${e}`),
  ];
  return { ...f, markdown: lines.join("\n") + "\n" };
}

function requireRows<T>(rows: T[], field: string): void {
  if (!Array.isArray(rows) || rows.length === 0)
    throw new InputError(`${field}: give at least one result row`, { field });
}

// ---------------------------------------------------------------- accuracy (notebook 01)

/** CodeLlama-7b's accuracy reported by the authors for 1/2/3/4 missing parens. */
export const PAPER_ACCURACY: Record<number, number> = { 1: 0.99, 2: 1.0, 3: 0.98, 4: 0.87 };

/** What the accuracy finding reads of a summary row (MetricSummaryRow fits). */
export interface AccuracyRow {
  n: number | null;
  count: number;
  accuracy: number;
  accuracyLo: number;
  accuracyHi: number;
  parenAccuracy: number;
}

export interface AccuracyFindingOptions {
  /**
   * Tolerance
   *
   * A count matches the paper when its interval's upper bound is at least paper − tolerance.
   *
   * @default 0.1
   */
  tolerance?: number;
  /**
   * Paper's accuracies
   *
   * Accuracy per n that the rows are compared with.
   *
   * @default PAPER_ACCURACY
   */
  paper?: Record<number, number>;
}

/**
 * Does the model solve the authors' task as CodeLlama-7b does? Per n, the whole-vocabulary
 * accuracy matches when its upper bound reaches the paper's accuracy minus `tolerance`.
 * replicates: every n matches; partly: at least two match (a model that always predicts one run
 * matches one n); otherwise does not replicate.
 *
 * @example
 * const rows = summarizeScores(scoreLogits(await model.run(ids, { logitsAt: "last" }), prompts, parens));
 * accuracyFinding(rows).verdict; // "replicates" | "partly" | "does not replicate"
 */
export function accuracyFinding(rows: AccuracyRow[], opts: AccuracyFindingOptions = {}): Finding {
  requireRows(rows, "accuracy rows");
  const tol = opts.tolerance ?? 0.1;
  const paper = opts.paper ?? PAPER_ACCURACY;
  const perN = rows.filter((r) => r.n !== null && paper[r.n] !== undefined).sort((a, b) => a.n! - b.n!);
  if (perN.length === 0)
    throw new InputError("accuracy rows: no row has an n the paper reports (1..4)", { field: "n" });
  const matches = perN.map((r) => r.accuracyHi >= paper[r.n!] - tol);
  const nMatch = matches.filter(Boolean).length;
  // One count can be matched by always predicting one run: "partly" needs two.
  const verdict: Verdict =
    nMatch === perN.length ? "replicates" : nMatch >= Math.min(2, perN.length) ? "partly" : "does not replicate";
  const hardest = perN.reduce((a, b) => (b.accuracy < a.accuracy ? b : a));
  const pooled = rows.find((r) => r.n === null);
  const allEqual = perN.every((r) => r.accuracy === hardest.accuracy);
  const numbers: Finding["numbers"] = {
    tolerance: tol,
    matching: nMatch,
    of: perN.length,
    hardestN: allEqual ? null : hardest.n,
  };
  for (const r of perN) {
    numbers[`accuracy_n${r.n}`] = r.accuracy;
    numbers[`parenAccuracy_n${r.n}`] = r.parenAccuracy;
  }
  if (pooled) numbers.accuracy_all = pooled.accuracy;
  return finish({
    id: "accuracy",
    title: "the model closes parentheses as CodeLlama-7b does",
    claim:
      "CodeLlama-7b predicts the right run of closing parens on the authors' template 99 / 100 / 98 / 87 % of the time for 1 / 2 / 3 / 4 missing parens.",
    verdict,
    summary:
      `${nMatch} of ${perN.length} counts reach the paper's accuracy (within ${num(100 * tol, 0)} points); ` +
      (perN.every((r) => r.accuracy === hardest.accuracy)
        ? `every count is equally accurate here (${pct(hardest.accuracy)}); in the paper n = 4 is the hardest.`
        : `the hardest count here is n = ${hardest.n} (${pct(hardest.accuracy)}), ` +
          (hardest.n === Math.max(...perN.map((r) => r.n!))
            ? "the longest run, as in the paper."
            : "not the longest run as in the paper (n = 4).")),
    rule: `per n, whole-vocabulary argmax accuracy with a 95 % bootstrap interval; n matches when the interval's upper bound ≥ paper − ${tol}. All n match → replicates; at least two → partly (always predicting one run matches one n); fewer → does not replicate.`,
    evidence: perN.map(
      (r, i) =>
        `n = ${r.n}: ${pct(r.accuracy)} [${pct(r.accuracyLo)}, ${pct(r.accuracyHi)}] over the vocabulary, ${pct(r.parenAccuracy)} among the paren runs ` +
        `(paper ${pct(paper[r.n!])}; ${matches[i] ? "matches" : "below"}; ${r.count} prompts)`,
    ),
    numbers,
  });
}

// ---------------------------------------------------------------- finding 1: logit lens (notebook 02)

/** What the layer-wise finding reads of a logit-lens row (LogitLensRow fits). */
export interface LensRow {
  point: string;
  pointIndex: number;
  layer: number;
  where: "pre" | "post";
  n: number | null;
  logitDiff: number;
  logitDiffLo: number;
  logitDiffHi: number;
  /** Accuracy used for "high": among the paren runs by default (see accuracyField). */
  parenAccuracy: number;
  accuracy?: number;
}

export interface LayerwiseFindingOptions {
  /** The model's number of layers (depth fractions are relative to it). */
  numLayers: number;
  /**
   * Accuracy threshold
   *
   * Accuracy at or above this is "high".
   *
   * @default 0.8
   */
  accuracyThreshold?: number;
  /**
   * Accuracy field
   *
   * Which accuracy the threshold applies to: argmax among the four paren runs, or over the vocabulary.
   *
   * @default "parenAccuracy"
   */
  accuracyField?: "parenAccuracy" | "accuracy";
  /**
   * Middle from
   *
   * Depth fraction from which a point counts as middle-to-late (1/3: not in the first third of the layers).
   *
   * @default 1 / 3
   */
  middleFrom?: number;
}

/**
 * Depth fraction of a lens point: "L pre" = L / numLayers (layers already applied), "L post" = (L + 1) / numLayers.
 *
 * @example
 * depthFraction(1, "post", 6); // 2 / 6
 */
export function depthFraction(layer: number, where: "pre" | "post", numLayers: number): number {
  return (layer + (where === "post" ? 1 : 0)) / numLayers;
}

export interface Emergence {
  /** First point from which, to the end, the LD interval is above 0 and accuracy ≥ threshold; null when none. */
  point: string | null;
  depth: number | null;
  /** First point whose LD interval is above 0 (persisting or not); null when none. */
  firstPositive: string | null;
  firstPositiveDepth: number | null;
}

/**
 * Emergence point of one group's rows (sorted by pointIndex here).
 *
 * @example
 * emergencePoint(lens.rows.filter((r) => r.group === "all"), { numLayers: 6 }).point; // e.g. "3 post"
 */
export function emergencePoint(rows: LensRow[], opts: LayerwiseFindingOptions): Emergence {
  const thr = opts.accuracyThreshold ?? 0.8;
  const field = opts.accuracyField ?? "parenAccuracy";
  const sorted = [...rows].sort((a, b) => a.pointIndex - b.pointIndex);
  const good = sorted.map((r) => r.logitDiffLo > 0 && (r[field] ?? NaN) >= thr);
  let start = -1;
  for (let i = sorted.length - 1; i >= 0 && good[i]; i--) start = i;
  const fp = sorted.find((r) => r.logitDiffLo > 0) ?? null;
  const depth = (r: LensRow) => depthFraction(r.layer, r.where, opts.numLayers);
  return {
    point: start >= 0 ? sorted[start].point : null,
    depth: start >= 0 ? depth(sorted[start]) : null,
    firstPositive: fp ? fp.point : null,
    firstPositiveDepth: fp ? depth(fp) : null,
  };
}

/**
 * Finding 1. The emergence point is the first lens point from which, up to the last layer, the
 * logit difference's interval is above 0 and accuracy is high. It is middle-to-late when its depth
 * fraction is at least `middleFrom`. replicates: the pooled emergence is middle-to-late and every
 * n emerges, none early; partly: it emerges but early, or some n never emerge; does not replicate:
 * the pooled rows never emerge.
 *
 * @example
 * const lens = await logitLens(model, prompts);
 * layerwiseFinding(lens.rows, { numLayers: model.config.numLayers }).markdown;
 */
export function layerwiseFinding(rows: LensRow[], opts: LayerwiseFindingOptions): Finding {
  requireRows(rows, "logit-lens rows");
  if (!Number.isInteger(opts?.numLayers) || opts.numLayers < 1)
    throw new InputError("layerwiseFinding: numLayers must be a positive integer", { field: "numLayers" });
  const middle = opts.middleFrom ?? 1 / 3;
  const thr = opts.accuracyThreshold ?? 0.8;
  const field = opts.accuracyField ?? "parenAccuracy";
  const pooledRows = rows.filter((r) => r.n === null);
  if (pooledRows.length === 0)
    throw new InputError('logit-lens rows: no pooled row (n = null, group "all")', { field: "n" });
  const pooled = emergencePoint(pooledRows, opts);
  const ns = [...new Set(rows.filter((r) => r.n !== null).map((r) => r.n as number))].sort((a, b) => a - b);
  const perN = ns.map((n) => ({
    n,
    e: emergencePoint(
      rows.filter((r) => r.n === n),
      opts,
    ),
  }));
  const early = perN.filter((x) => x.e.depth !== null && x.e.depth < middle);
  const never = perN.filter((x) => x.e.point === null);
  let verdict: Verdict;
  let summary: string;
  const at = (e: Emergence) => `${e.point} (depth ${num(e.depth!, 2)})`;
  if (pooled.point === null) {
    verdict = "does not replicate";
    summary =
      `pooled over n, the logit difference is never confidently positive with accuracy ≥ ${pct(thr)} through to the last layer` +
      (pooled.firstPositive
        ? ` (its interval is first above 0 at ${pooled.firstPositive}, but that does not last or accuracy stays low).`
        : ".");
  } else if (pooled.depth! < middle) {
    verdict = "partly";
    summary = `the logit difference becomes confidently positive, but early: at ${at(pooled)}, before depth ${num(middle, 2)}.`;
  } else if (never.length > 0 || early.length > 0) {
    verdict = "partly";
    summary =
      `pooled, it emerges at ${at(pooled)}, middle-to-late, but not for every n: ` +
      [...never.map((x) => `n = ${x.n} never`), ...early.map((x) => `n = ${x.n} early at ${at(x.e)}`)].join(", ") +
      ".";
  } else {
    verdict = "replicates";
    summary = `pooled over n, the logit difference becomes confidently positive (with accuracy ≥ ${pct(thr)}) at ${at(pooled)} and stays so; every n emerges at depth ≥ ${num(middle, 2)}.`;
  }
  const last = [...pooledRows].sort((a, b) => b.pointIndex - a.pointIndex)[0];
  const numbers: Finding["numbers"] = {
    numLayers: opts.numLayers,
    middleFrom: middle,
    accuracyThreshold: thr,
    emergence: pooled.point,
    emergenceDepth: pooled.depth,
    firstPositive: pooled.firstPositive,
    finalLogitDiff: last.logitDiff,
    finalAccuracy: last[field] ?? NaN,
  };
  for (const x of perN) {
    numbers[`emergence_n${x.n}`] = x.e.point;
    numbers[`emergenceDepth_n${x.n}`] = x.e.depth;
  }
  return finish({
    id: "layer-wise",
    title: "the answer appears in middle-to-late layers (logit lens)",
    claim:
      "decoded through the final norm and unembedding, the logit difference between the correct closing-paren token and a counterfactual one becomes confidently positive only in middle-to-late layers.",
    verdict,
    summary,
    rule:
      `a lens point "L pre" has depth L/${opts.numLayers}, "L post" (L+1)/${opts.numLayers}. Emergence = the first point from which, to the last layer, ` +
      `the 95 % interval of the mean logit difference is above 0 and ${field === "parenAccuracy" ? "accuracy among the paren runs" : "whole-vocabulary accuracy"} ≥ ${pct(thr)}. ` +
      `Middle-to-late = depth ≥ ${num(middle, 2)}. Pooled emergence middle-to-late and every n emerges, none early → replicates; emerges early, or some n never → partly; never → does not replicate.`,
    evidence: [
      `pooled: emergence at ${pooled.point ? at(pooled) : "none"}; interval first above 0 at ${pooled.firstPositive ?? "none"}; at the last point (${last.point}) LD ${num(last.logitDiff)} [${num(last.logitDiffLo)}, ${num(last.logitDiffHi)}], accuracy ${pct(last[field] ?? NaN)}`,
      ...perN.map(
        (x) =>
          `n = ${x.n}: emergence at ${x.e.point ? at(x.e) : "none"}${x.e.firstPositive && x.e.firstPositive !== x.e.point ? `; interval first above 0 at ${x.e.firstPositive}` : ""}`,
      ),
    ],
    numbers,
  });
}

// ---------------------------------------------------------------- finding 2: MHA vs FF (notebook 03)

/** What the sub-layer finding reads of an effect row (SublayerEffectRow fits; pooled rows: n = null). */
export interface SublayerRow {
  layer: number;
  sublayer: "attn" | "mlp";
  method: string;
  n: number | null;
  effect: number;
  lo: number;
  hi: number;
  unit: "logit" | "fraction";
}

export interface SublayerFindingOptions {
  /**
   * Logit threshold
   *
   * |effect| at or above this "matters", for methods in logit units.
   *
   * @default 0.1 × |cleanLogitDiff| when given, else 0.5
   */
  logitThreshold?: number;
  /**
   * Clean logit difference
   *
   * Mean clean LD (`sublayerEffects(...).baseline`, pooled): sets the default logit threshold;
   * ≤ 0 (the model fails the task) → does not replicate.
   *
   * @default none
   */
  cleanLogitDiff?: number;
  /**
   * Fraction threshold
   *
   * |effect| at or above this "matters", for fraction-of-gap methods (patching).
   *
   * @default 0.1
   */
  fractionThreshold?: number;
}

export interface SublayerMethodSummary {
  method: string;
  unit: "logit" | "fraction";
  threshold: number;
  /** Σ over layers of |pooled effect|. */
  totalAttn: number;
  totalMlp: number;
  /** Layers whose effect's interval excludes 0 and whose |effect| ≥ threshold. */
  attnLayers: number[];
  mlpLayers: number[];
  bothMatter: boolean;
  /** Σ|effect| larger for attention, in a method where at least one sub-layer matters. */
  mhaMore: boolean;
}

/**
 * Per-method totals and "matters" layers from pooled rows.
 *
 * @example
 * sublayerSummaries(res.rows, { cleanLogitDiff: 3.2 }).map((s) => [s.method, s.totalAttn, s.totalMlp]);
 */
export function sublayerSummaries(rows: SublayerRow[], opts: SublayerFindingOptions = {}): SublayerMethodSummary[] {
  const pooled = rows.filter((r) => r.n === null);
  const methods = [...new Set(pooled.map((r) => r.method))];
  const logitThr =
    opts.logitThreshold ??
    (opts.cleanLogitDiff !== undefined && Number.isFinite(opts.cleanLogitDiff)
      ? 0.1 * Math.abs(opts.cleanLogitDiff)
      : 0.5);
  const fracThr = opts.fractionThreshold ?? 0.1;
  return methods.map((method) => {
    const m = pooled.filter((r) => r.method === method);
    const unit = m[0].unit;
    const threshold = unit === "fraction" ? fracThr : logitThr;
    const matters = (r: SublayerRow) => Math.abs(r.effect) >= threshold && (r.lo > 0 || r.hi < 0);
    const total = (s: "attn" | "mlp") =>
      m.filter((r) => r.sublayer === s).reduce((a, r) => a + (Number.isFinite(r.effect) ? Math.abs(r.effect) : 0), 0);
    const layers = (s: "attn" | "mlp") =>
      m
        .filter((r) => r.sublayer === s && matters(r))
        .map((r) => r.layer)
        .sort((a, b) => a - b);
    const attnLayers = layers("attn");
    const mlpLayers = layers("mlp");
    const totalAttn = total("attn");
    const totalMlp = total("mlp");
    // A method where no sub-layer matters casts no vote on which matters more.
    const anyMatters = attnLayers.length + mlpLayers.length > 0;
    return {
      method,
      unit,
      threshold,
      totalAttn,
      totalMlp,
      attnLayers,
      mlpLayers,
      bothMatter: attnLayers.length > 0 && mlpLayers.length > 0,
      mhaMore: anyMatters && totalAttn > totalMlp,
    };
  });
}

/**
 * Finding 2. Per method (pooled rows): a sub-layer type matters when some layer's effect has an
 * interval excluding 0 and |effect| ≥ the threshold; MHA is more important when Σ|effect| over
 * layers is larger for attention than for the MLP. replicates: in a majority of methods both
 * types matter AND MHA is more important; partly: one of the two holds in a majority; does not
 * replicate: neither does, or the mean clean logit difference (when given) is ≤ 0 — a model that
 * fails the task has no mechanism for it to localise.
 *
 * @example
 * const res = await sublayerEffects(model, pairs, { reference });
 * sublayerFinding(res.rows, { cleanLogitDiff: res.baseline.find((b) => b.n === null)!.cleanLogitDiff });
 */
export function sublayerFinding(rows: SublayerRow[], opts: SublayerFindingOptions = {}): Finding {
  requireRows(rows, "sub-layer rows");
  const sums = sublayerSummaries(rows, opts);
  if (sums.length === 0) throw new InputError('sub-layer rows: no pooled row (n = null, group "all")', { field: "n" });
  const k = sums.length;
  const both = sums.filter((s) => s.bothMatter).length;
  const mha = sums.filter((s) => s.mhaMore).length;
  const majority = (x: number) => x > k / 2;
  // Without the behaviour (mean clean LD ≤ 0) there is nothing for the sub-layers to carry.
  const noTask = opts.cleanLogitDiff !== undefined && !(opts.cleanLogitDiff > 0);
  const verdict: Verdict = noTask
    ? "does not replicate"
    : majority(both) && majority(mha)
      ? "replicates"
      : majority(both) || majority(mha)
        ? "partly"
        : "does not replicate";
  const list = (xs: number[]) => (xs.length ? xs.map((l) => `L${l}`).join(", ") : "none");
  const numbers: Finding["numbers"] = {
    methods: k,
    bothMatter: both,
    mhaMore: mha,
    cleanLogitDiff: opts.cleanLogitDiff ?? null,
  };
  for (const s of sums) {
    numbers[`${s.method}_totalAttn`] = s.totalAttn;
    numbers[`${s.method}_totalMlp`] = s.totalMlp;
  }
  return finish({
    id: "sub-layers",
    title: "attention and MLP sub-layers both matter, attention more",
    claim: "both multi-head attention (MHA) and feed-forward (FF) sub-layers matter for the task, MHA more so.",
    verdict,
    summary:
      (noTask
        ? `the model does not do the task on these prompts (mean clean logit difference ${num(opts.cleanLogitDiff!)} ≤ 0), so no sub-layer can be said to carry it; for the record, `
        : "") +
      `both sub-layer types matter in ${both} of ${k} methods; attention has the larger total effect in ${mha} of ${k} (${
        sums
          .filter((s) => s.mhaMore)
          .map((s) => s.method)
          .join(", ") || "none"
      }).`,
    rule:
      `per method, pooled over prompts: a sub-layer type matters when at least one layer's effect has a 95 % interval excluding 0 and |effect| ≥ the threshold ` +
      `(${sums.map((s) => `${s.method} ${num(s.threshold, 2)} ${s.unit === "fraction" ? "of the gap" : "logits"}`).join("; ")}); ` +
      `MHA is more important when Σ_layers |effect| is larger for attention (counted only in methods where some sub-layer matters). Both matter and MHA more, each in a majority of methods → replicates; one of the two → partly; neither, or a mean clean logit difference ≤ 0 (the model fails the task) → does not replicate.`,
    evidence: sums.map(
      (s) =>
        `${s.method}: Σ|effect| attention ${num(s.totalAttn)} vs MLP ${num(s.totalMlp)} ${s.unit === "fraction" ? "(fraction of the clean−corrupted gap)" : "(logits)"}; ` +
        `attention matters at ${list(s.attnLayers)}, MLP at ${list(s.mlpLayers)}`,
    ),
    numbers,
  });
}

// ---------------------------------------------------------------- finding 3: counting heads (notebook 04)

/** What the counting-head finding reads of a head summary (HeadSummary fits). */
export interface HeadRow {
  label: string;
  countingR: number;
  countingLo: number;
  countingHi: number;
  promoteRate: number;
  causalEffect: number;
  causalLo: number;
  causalHi: number;
}

/** The rule of finding 3; `countingHeads(...).rule` fits (thresholds, baseline, causal threshold). */
export interface CountingFindingOptions {
  /**
   * Counting threshold
   *
   * |r| at or above this, with an interval excluding 0, makes a counting head.
   *
   * @default 0.5
   */
  countingThreshold?: number;
  /**
   * Uniform-attention baseline
   *
   * r that a head attending uniformly to every token would get (e.g. the correlation of the share
   * of `)` tokens with the count). A head whose r has this sign must have its whole interval beyond
   * it: attention that merely spreads over more `)` tokens is not counting.
   *
   * @default 0 (no baseline)
   */
  baselineR?: number;
  /**
   * Promotion threshold
   *
   * A counting head promotes the right count when its promotion rate is ≥ this (chance among four runs is 0.25).
   *
   * @default 0.5
   */
  promoteThreshold?: number;
  /**
   * Causal threshold
   *
   * |causal effect| below this is neutral even when its interval excludes 0 (in logits).
   *
   * @default 0
   */
  causalThreshold?: number;
  /**
   * Criterion text
   *
   * What r correlates, for the text, e.g. "attention on `)` vs the number already closed".
   *
   * @default "its attention on `)` and the number already closed"
   */
  criterion?: string;
  /**
   * Causal method text
   *
   * The causal method's name, for the text, e.g. "zero ablation at the last position".
   *
   * @default "ablation"
   */
  causalMethod?: string;
}

/**
 * Is this head a counting head under the rule? |r| ≥ countingThreshold, an interval excluding 0,
 * and, on the side of the uniform-attention baseline, an interval entirely beyond it.
 *
 * @example
 * isCountingHead(res.heads[0], res.rule); // res = await countingHeads(model, prompts)
 */
export function isCountingHead(h: HeadRow, opts: CountingFindingOptions = {}): boolean {
  const thr = opts.countingThreshold ?? 0.5;
  const base = opts.baselineR ?? 0;
  if (!Number.isFinite(h.countingR) || Math.abs(h.countingR) < thr) return false;
  if (!(h.countingLo > 0 || h.countingHi < 0)) return false;
  if (base > 0 && h.countingR > 0) return h.countingLo > base;
  if (base < 0 && h.countingR < 0) return h.countingHi < base;
  return true;
}

/**
 * The counting heads under the rule, strongest |r| first: the one list to print.
 *
 * @example
 * countingHeadList(res.heads, res.rule).map((h) => h.label); // e.g. ["L3H5", "L2H1"]
 */
export function countingHeadList<H extends HeadRow>(heads: H[], opts: CountingFindingOptions = {}): H[] {
  return heads.filter((h) => isCountingHead(h, opts)).sort((a, b) => Math.abs(b.countingR) - Math.abs(a.countingR));
}

/**
 * "promotes" (promotion rate ≥ promoteThreshold) or "misleads" for a counting head; null for a
 * head that is not one.
 *
 * @example
 * promotionRole(h, res.rule); // "promotes" | "misleads" | null
 */
export function promotionRole(h: HeadRow, opts: CountingFindingOptions = {}): "promotes" | "misleads" | null {
  if (!isCountingHead(h, opts)) return null;
  return h.promoteRate >= (opts.promoteThreshold ?? 0.5) ? "promotes" : "misleads";
}

/**
 * "helps" / "hurts" / "neutral" / "untested" (no causal number) for one head.
 *
 * @example
 * causalRole(h, res.rule.causalThreshold);
 */
export function causalRole(h: HeadRow, causalThreshold = 0): "helps" | "hurts" | "neutral" | "untested" {
  if (!Number.isFinite(h.causalEffect)) return "untested";
  if (Math.abs(h.causalEffect) < causalThreshold) return "neutral";
  return h.causalLo > 0 ? "helps" : h.causalHi < 0 ? "hurts" : "neutral";
}

/**
 * Finding 3. Counting heads: |r| ≥ countingThreshold with an interval excluding 0 (and beyond the
 * uniform-attention baseline, when given). Among them a head "promotes" when its rank-among-four
 * promotion rate is ≥ promoteThreshold, else it "misleads"; causally it "helps" / "hurts" when its
 * ablation effect's interval is above / below 0 and |effect| ≥ causalThreshold.
 * replicates: counting heads exist and they include both a promoter and a misleader, or both a
 * helper and a hurter; partly: counting heads exist but all play one role; does not replicate:
 * no counting head.
 *
 * @example
 * const res = await countingHeads(model, prompts, { reference, causalPerN: 30 });
 * countingFinding(res.heads, res.rule).verdict; // the rule carries the baseline and causal threshold
 */
export function countingFinding(heads: HeadRow[], opts: CountingFindingOptions = {}): Finding {
  requireRows(heads, "head rows");
  const thr = opts.countingThreshold ?? 0.5;
  const pthr = opts.promoteThreshold ?? 0.5;
  const cthr = opts.causalThreshold ?? 0;
  const base = opts.baselineR ?? 0;
  const counting = countingHeadList(heads, opts);
  const promoters = counting.filter((h) => h.promoteRate >= pthr);
  const misleaders = counting.filter((h) => !(h.promoteRate >= pthr));
  const roles = counting.map((h) => causalRole(h, cthr));
  const helps = counting.filter((_, i) => roles[i] === "helps");
  const hurts = counting.filter((_, i) => roles[i] === "hurts");
  const tested = roles.filter((r) => r !== "untested").length;
  let verdict: Verdict;
  let summary: string;
  const names = (xs: HeadRow[]) => (xs.length ? xs.map((h) => h.label).join(", ") : "none");
  if (counting.length === 0) {
    const best = [...heads]
      .filter((h) => Number.isFinite(h.countingR))
      .sort((a, b) => Math.abs(b.countingR) - Math.abs(a.countingR))[0];
    verdict = "does not replicate";
    summary =
      `no head reaches |r| ≥ ${num(thr)}${base ? ` beyond the uniform-attention baseline r = ${num(base)}` : ""}` +
      (best
        ? ` (strongest: ${best.label}, r = ${num(best.countingR)} [${num(best.countingLo)}, ${num(best.countingHi)}]).`
        : ".");
  } else {
    const mixedPromotion = promoters.length > 0 && misleaders.length > 0;
    const mixedCausal = helps.length > 0 && hurts.length > 0;
    verdict = mixedPromotion || mixedCausal ? "replicates" : "partly";
    summary =
      `${counting.length} counting head${counting.length > 1 ? "s" : ""} (${names(counting.slice(0, 6))}${counting.length > 6 ? ", …" : ""}); ` +
      `by the rank-among-four rule ${promoters.length} promote the right count and ${misleaders.length} do not (mislead); ` +
      (tested ? `ablating them, ${helps.length} help and ${hurts.length} hurt the prediction` : "no causal runs") +
      (verdict === "replicates"
        ? " — so counting heads can help or hurt, as the paper says."
        : " — they all play one role here.");
  }
  return finish({
    id: "counting-heads",
    title: "counting heads track the parens already closed, and may help or mislead",
    claim:
      "some attention heads track precisely how many parentheses are already closed; such a head may or may not promote the right number of missing closing parentheses, so it can help or hurt the prediction.",
    verdict,
    summary,
    rule:
      `a counting head has |r| ≥ ${num(thr)} (r = Pearson correlation over prompts of ${opts.criterion ?? "its attention on `)` and the number already closed"}) with a 95 % interval excluding 0` +
      (base ? ` and, on the side of the uniform-attention baseline (r = ${num(base)}), entirely beyond it` : "") +
      `. It promotes when the correct run ranks first among the four paren runs in its own output (through the unembedding) on ≥ ${pct(pthr)} of prompts, else it misleads; ` +
      `it helps / hurts when the interval of its ${opts.causalMethod ?? "ablation"} effect on the logit difference is above / below 0${cthr ? ` and |effect| ≥ ${num(cthr, 3)} logits` : ""}. ` +
      `Counting heads of both kinds (promote and mislead, or help and hurt) → replicates; counting heads of one kind → partly; none → does not replicate.`,
    evidence: counting.length
      ? counting
          .slice(0, 8)
          .map(
            (h, i) =>
              `${h.label}: r = ${num(h.countingR)} [${num(h.countingLo)}, ${num(h.countingHi)}], promotes the right count on ${pct(h.promoteRate)} of prompts` +
              (roles[i] === "untested"
                ? ""
                : `, ablation effect ${num(h.causalEffect, 3)} [${num(h.causalLo, 3)}, ${num(h.causalHi, 3)}] (${roles[i]})`),
          )
      : ["no counting head to list"],
    numbers: {
      countingThreshold: thr,
      baselineR: base,
      promoteThreshold: pthr,
      causalThreshold: cthr,
      countingHeads: counting.length,
      promoting: promoters.length,
      misleading: misleaders.length,
      helps: helps.length,
      hurts: hurts.length,
      top: counting[0]?.label ?? null,
    },
  });
}
