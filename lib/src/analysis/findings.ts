/**
 * Verdicts on the paper's findings, computed from the result rows of a run (never typed in).
 *
 * Each function takes the tidy rows the analyses return (only the fields it reads, so hand-made
 * rows work too), applies a rule stated here and in its output, and returns a `Finding`: a
 * verdict ("replicates" / "partly" / "does not replicate"), the numbers it rests on, and a
 * markdown text for the notebook's last cell. The rules' thresholds are options with defaults.
 */
import { InputError } from "../core/errors";
import { binomialInterval, meanOf } from "./stats";

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

/**
 * CodeLlama-7b's accuracy for 1/2/3/4 missing parens on the authors' template, as reported in the
 * authors' follow-up paper (Rai et al., "Failure by Interference", arXiv 2507.00322, Table 3, on
 * its test split). The workshop paper reproduced here (arXiv 2502.18499) gives no accuracy that
 * could be recovered; these are the nearest reference numbers from the same group.
 */
export const PAPER_ACCURACY: Record<number, number> = { 1: 0.99, 2: 1.0, 3: 0.98, 4: 0.87 };

/** Where `PAPER_ACCURACY` comes from, for tables and text. */
export const PAPER_ACCURACY_SOURCE =
  'CodeLlama-7b in the authors\' follow-up (arXiv 2507.00322, "Failure by Interference", Table 3; not in 2502.18499)';

/** What the accuracy finding reads of a summary row (MetricSummaryRow fits). */
export interface AccuracyRow {
  n: number | null;
  count: number;
  accuracy: number;
  /** Exact binomial interval of `accuracy` (summarizeScores: Clopper–Pearson). */
  accuracyLo: number;
  accuracyHi: number;
  parenAccuracy: number;
  /** Mean probability of the correct run (a margin, shown beside accuracy). */
  meanProb?: number;
  /** Mean logit difference to the strongest wrong run (a margin). */
  logitDiff?: number;
  logitDiffLo?: number;
  logitDiffHi?: number;
}

export interface AccuracyFindingOptions {
  /**
   * Gate
   *
   * The model "solves the task" when every n's whole-vocabulary accuracy is ≥ this. Below it the
   * later notebooks have no behaviour to explain: does not replicate.
   *
   * @default 0.8
   */
  gate?: number;
  /**
   * Tolerance
   *
   * Two-sided: an n is consistent with the reference when the reference accuracy lies within the
   * model's exact interval widened by this on both sides (the reference's own sampling error is unknown).
   *
   * @default 0.02
   */
  tolerance?: number;
  /**
   * Reference accuracies
   *
   * Accuracy per n that the rows are compared with.
   *
   * @default PAPER_ACCURACY (CodeLlama-7b, arXiv 2507.00322)
   */
  paper?: Record<number, number>;
}

/** Per-n comparison of one accuracy row with the reference, two-sided. */
function compareAccuracy(r: AccuracyRow, ref: number, tol: number): "consistent" | "higher" | "lower" {
  if (ref > r.accuracyHi + tol) return "lower";
  if (ref < r.accuracyLo - tol) return "higher";
  return "consistent";
}

/** Margins of one row, as text: p(correct run) and the logit difference to the strongest wrong run. */
function marginText(r: AccuracyRow): string {
  const p = r.meanProb !== undefined ? `p(correct) ${num(r.meanProb)}` : "";
  const ld =
    r.logitDiff !== undefined
      ? `LD to the strongest wrong run ${num(r.logitDiff)}` +
        (r.logitDiffLo !== undefined ? ` [${num(r.logitDiffLo)}, ${num(r.logitDiffHi ?? NaN)}]` : "")
      : "";
  return [p, ld].filter(Boolean).join(", ");
}

/**
 * Accuracy: a gate, then the difficulty profile. The model solves the task when every n's
 * whole-vocabulary accuracy is ≥ `gate` (else does not replicate: later findings have nothing to
 * explain). Past the gate, each n is compared two-sidedly with the reference (CodeLlama-7b,
 * arXiv 2507.00322): consistent when the reference lies inside the model's exact interval ± `tolerance`,
 * else the model is higher or lower. replicates: every n consistent (the profile matches, too
 * accurate counts as a mismatch); partly: solves the task but the profile differs.
 * Margins (p(correct), logit difference) are reported beside accuracy.
 *
 * @example
 * const rows = summarizeScores(scoreLogits(await model.run(ids, { logitsAt: "last" }), prompts, parens));
 * accuracyFinding(rows).verdict; // "replicates" | "partly" | "does not replicate"
 */
export function accuracyFinding(rows: AccuracyRow[], opts: AccuracyFindingOptions = {}): Finding {
  requireRows(rows, "accuracy rows");
  const tol = opts.tolerance ?? 0.02;
  const gate = opts.gate ?? 0.8;
  const paper = opts.paper ?? PAPER_ACCURACY;
  const perN = rows.filter((r) => r.n !== null && paper[r.n] !== undefined).sort((a, b) => a.n! - b.n!);
  if (perN.length === 0)
    throw new InputError("accuracy rows: no row has an n the paper reports (1..4)", { field: "n" });
  const cmp = perN.map((r) => compareAccuracy(r, paper[r.n!], tol));
  const consistent = cmp.filter((c) => c === "consistent").length;
  const solves = perN.every((r) => r.accuracy >= gate);
  const verdict: Verdict = !solves ? "does not replicate" : consistent === perN.length ? "replicates" : "partly";
  const hardest = perN.reduce((a, b) => (b.accuracy < a.accuracy ? b : a));
  const allEqual = perN.every((r) => r.accuracy === hardest.accuracy);
  const refHardest = perN.reduce((a, b) => (paper[b.n!] < paper[a.n!] ? b : a)).n!;
  const off = perN.filter((_, i) => cmp[i] !== "consistent");
  const numbers: Finding["numbers"] = { gate, tolerance: tol, solves, consistent, of: perN.length };
  numbers.hardestN = allEqual ? null : hardest.n;
  perN.forEach((r, i) => {
    numbers[`accuracy_n${r.n}`] = r.accuracy;
    numbers[`accuracyLo_n${r.n}`] = r.accuracyLo;
    numbers[`parenAccuracy_n${r.n}`] = r.parenAccuracy;
    numbers[`vsReference_n${r.n}`] = cmp[i];
    if (r.meanProb !== undefined) numbers[`meanProb_n${r.n}`] = r.meanProb;
    if (r.logitDiff !== undefined) numbers[`logitDiff_n${r.n}`] = r.logitDiff;
  });
  const pooled = rows.find((r) => r.n === null);
  if (pooled) numbers.accuracy_all = pooled.accuracy;
  const profile = allEqual
    ? `every n is equally accurate here (${pct(hardest.accuracy)}); in the reference n = ${refHardest} is the hardest`
    : `the hardest n here is ${hardest.n} (${pct(hardest.accuracy)})${hardest.n === refHardest ? ", as in the reference" : `; in the reference it is n = ${refHardest}`}`;
  const gateText = solves
    ? `the model solves the task (every n ≥ ${pct(gate)}: a gate for the later notebooks, not a replication)`
    : `the model does not solve the task (n = ${perN
        .filter((r) => r.accuracy < gate)
        .map((r) => `${r.n} at ${pct(r.accuracy)}`)
        .join(", ")} below ${pct(gate)})`;
  return finish({
    id: "accuracy",
    title: "the model solves the task, with CodeLlama-7b's difficulty profile",
    claim: `CodeLlama-7b predicts the right run of closing parens on the authors' template 99 / 100 / 98 / 87 % of the time for 1 / 2 / 3 / 4 missing parens — reported in the authors' follow-up (arXiv 2507.00322), not in 2502.18499, which gives no accuracy.`,
    verdict,
    summary:
      `${gateText}; ${consistent} of ${perN.length} n are consistent with the reference two-sidedly` +
      (off.length
        ? ` (${off.map((r) => `n = ${r.n}: ${pct(r.accuracy)} [${pct(r.accuracyLo)}, ${pct(r.accuracyHi)}] vs ${pct(paper[r.n!])}, ${cmp[perN.indexOf(r)]}`).join("; ")})`
        : "") +
      `; ${profile}.`,
    rule:
      `per n, whole-vocabulary argmax accuracy with an exact (Clopper–Pearson) 95 % interval. Gate: every n ≥ ${pct(gate)}, else does not replicate. ` +
      `Past the gate, n is consistent when the reference accuracy lies within the interval ± ${num(100 * tol, 0)} points (two-sided: too accurate is a mismatch too). ` +
      `Every n consistent → replicates; some not → partly. Margins are reported, not judged.`,
    evidence: perN.map(
      (r, i) =>
        `n = ${r.n}: ${pct(r.accuracy)} [${pct(r.accuracyLo)}, ${pct(r.accuracyHi)}] over the vocabulary, ${pct(r.parenAccuracy)} among the paren runs; ` +
        `${marginText(r) || "no margins given"} (reference ${pct(paper[r.n!])}: ${cmp[i]}; ${r.count} prompts)`,
    ),
    numbers,
  });
}

/** One row of a sensitivity table: the option values tried and what the finding gave. */
export interface SensitivityRow {
  [option: string]: number | string | boolean | null;
  verdict: Verdict;
}

/**
 * Re-run a finding over every combination of option values: does the verdict flip with a threshold?
 * `pick` names extra `numbers` to copy into each row.
 *
 * @example
 * findingSensitivity({ tolerance: [0, 0.02, 0.1] }, (o) => accuracyFinding(rows, o));
 */
export function findingSensitivity<O extends object>(
  grid: { [K in keyof O]?: Array<O[K]> },
  run: (opts: O) => Finding,
  pick: string[] = [],
): SensitivityRow[] {
  let combos: Record<string, unknown>[] = [{}];
  for (const [k, values] of Object.entries(grid) as [string, unknown[]][])
    combos = combos.flatMap((c) => values.map((v) => ({ ...c, [k]: v })));
  return combos.map((c) => {
    const f = run(c as O);
    const row: Record<string, number | string | boolean | null> = {};
    for (const [k, v] of Object.entries(c)) row[k] = typeof v === "number" || typeof v === "string" ? v : String(v);
    for (const k of pick) row[k] = f.numbers[k] ?? null;
    return { ...row, verdict: f.verdict };
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
  /** Prompts in the group (needed for exact accuracy bounds). */
  count?: number;
  /** Share of prompts whose four-way argmax is `)`, `))`, … (the default-run baseline). */
  parenShares?: number[];
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

/** Options of the count-sensitive layer-wise rule (`layerwiseFinding`, `countSensitivePoints`). */
export interface CountSensitiveOptions extends LayerwiseFindingOptions {
  /**
   * Headline counts
   *
   * The n the verdict rests on. n = 1 is the model's default run (a constant `)` predictor is right
   * on it), so it is reported beside the headline, not in it.
   *
   * @default [2, 3, 4]
   */
  headline?: number[];
  /**
   * Minimum layers for "middle"
   *
   * With fewer layers, a third of the model is under 4 blocks: the lens cannot tell "middle" from
   * "late", and the verdict says what it can test (not early; where the answer appears).
   *
   * @default 12
   */
  minLayersForMiddle?: number;
}

/** One lens point under the count-sensitive rule. */
export interface CountSensitivePoint {
  point: string;
  pointIndex: number;
  depth: number;
  /** Mean over the headline n of four-way accuracy (a constant predictor scores ≤ 1 / #headline). */
  macroAccuracy: number;
  /** Mean over the headline n of exact per-n lower bounds at level 1 − 0.05 / #headline (Bonferroni). */
  macroAccuracyLo: number;
  /** 1 / #headline: the best a constant predictor can score. */
  chance: number;
  /** The run predicted most often over all prompts at this point (1..4), and its share: the default-run baseline. */
  defaultRun: number | null;
  defaultRunShare: number | null;
  /** Every headline n's LD interval is above 0. */
  ldPositive: boolean;
  /** macroAccuracy ≥ threshold, macroAccuracyLo > chance and ldPositive. */
  countSensitive: boolean;
}

/** Lower bound of a row's four-way accuracy at `level`, exact (needs `count`). */
function parenLower(r: LensRow, level: number): number {
  if (!(r.count && r.count > 0)) return NaN;
  return binomialInterval(Math.round(r.parenAccuracy * r.count), r.count, level).lo;
}

/**
 * The count-sensitive readout at every lens point: macro-averaged four-way accuracy over the
 * headline n with a Bonferroni-exact lower bound, the default-run baseline, and whether the point
 * passes (a constant predictor, e.g. always `)`, never does: its macro accuracy is ≤ chance).
 *
 * @example
 * countSensitivePoints(lens.rows, { numLayers: 6 }).map((p) => [p.point, p.macroAccuracy]);
 */
export function countSensitivePoints(rows: LensRow[], opts: CountSensitiveOptions): CountSensitivePoint[] {
  const thr = opts.accuracyThreshold ?? 0.8;
  const headline = opts.headline ?? [2, 3, 4];
  const byPoint = new Map<number, LensRow[]>();
  for (const r of rows) byPoint.set(r.pointIndex, [...(byPoint.get(r.pointIndex) ?? []), r]);
  const level = 1 - 0.05 / headline.length;
  return [...byPoint.keys()]
    .sort((a, b) => a - b)
    .map((k) => {
      const at = byPoint.get(k)!;
      const hl = headline.map((n) => at.find((r) => r.n === n));
      const ok = hl.every((r) => r !== undefined);
      const macro = ok ? meanOf(hl.map((r) => r!.parenAccuracy)) : NaN;
      const macroLo = ok ? meanOf(hl.map((r) => parenLower(r!, level))) : NaN;
      const pooled = at.find((r) => r.n === null);
      const shares = pooled?.parenShares;
      const def = shares && shares.length ? shares.indexOf(Math.max(...shares)) : -1;
      const ldPositive = ok && hl.every((r) => r!.logitDiffLo > 0);
      const chance = 1 / headline.length;
      return {
        point: at[0].point,
        pointIndex: k,
        depth: depthFraction(at[0].layer, at[0].where, opts.numLayers),
        macroAccuracy: macro,
        macroAccuracyLo: macroLo,
        chance,
        defaultRun: def >= 0 ? def + 1 : null,
        defaultRunShare: def >= 0 ? shares![def] : null,
        ldPositive,
        countSensitive: macro >= thr && macroLo > chance && ldPositive,
      };
    });
}

/**
 * Count-specific emergence of one n: the first point from which, to the end, its four-way accuracy
 * is ≥ threshold, its LD interval is above 0, and its run is not what the lens says for the other
 * counts (mean share of other-n prompts predicted as this run ≤ 1 − threshold). A constant predictor
 * fails it for every n, n = 1 included.
 *
 * @example
 * countSpecificEmergence(lens.rows, 1, { numLayers: 6 }).point; // "5 post" on the embedded model
 */
export function countSpecificEmergence(rows: LensRow[], n: number, opts: LayerwiseFindingOptions): Emergence {
  const thr = opts.accuracyThreshold ?? 0.8;
  const own = rows.filter((r) => r.n === n).sort((a, b) => a.pointIndex - b.pointIndex);
  const good = own.map((r) => {
    const others = rows.filter((o) => o.pointIndex === r.pointIndex && o.n !== null && o.n !== n && o.parenShares);
    const falseAlarm = others.length ? meanOf(others.map((o) => o.parenShares![n - 1] ?? 0)) : 0;
    return r.parenAccuracy >= thr && r.logitDiffLo > 0 && falseAlarm <= 1 - thr;
  });
  let start = -1;
  for (let i = own.length - 1; i >= 0 && good[i]; i--) start = i;
  const fp = own.find((r) => r.logitDiffLo > 0) ?? null;
  const depth = (r: LensRow) => depthFraction(r.layer, r.where, opts.numLayers);
  return {
    point: start >= 0 ? own[start].point : null,
    depth: start >= 0 ? depth(own[start]) : null,
    firstPositive: fp ? fp.point : null,
    firstPositiveDepth: fp ? depth(fp) : null,
  };
}

/** Verdict and summary of finding 1 from the count-sensitive emergence. */
function layerwiseVerdict(
  e: CountSensitivePoint | null,
  numLayers: number,
  middle: number,
  minLayers: number,
  headline: number[],
): { verdict: Verdict; summary: string } {
  const hl = `n = ${headline.join(", ")}`;
  if (!e)
    return {
      verdict: "does not replicate",
      summary: `on ${hl}, no lens point — not even the model's output — reads the count out (macro four-way accuracy above chance and ≥ the threshold, LD > 0 for each n).`,
    };
  const where = `the count becomes readable on ${hl} at ${e.point} (depth ${num(e.depth)}${e.depth === 1 ? ", i.e. only after the last block" : ""}; macro four-way accuracy ${pct(e.macroAccuracy)}, chance ${pct(e.chance)})`;
  if (e.depth < middle)
    return {
      verdict: "does not replicate",
      summary: `${where}: early, before depth ${num(middle)}, not only in middle-to-late layers.`,
    };
  if (numLayers < minLayers)
    return {
      verdict: "partly",
      summary:
        `${where}, so it is absent from the early layers as the paper says; but with ${numLayers} layers "middle" spans ${Math.max(1, Math.round(numLayers / 3))} block(s), ` +
        `too few to tell middle from late — this model tests "not early" and "late", not "middle".`,
    };
  return {
    verdict: "replicates",
    summary: `${where}, at or after depth ${num(middle)}: middle-to-late, as the paper says.`,
  };
}

/**
 * Finding 1, count-sensitive. At each lens point the count is "readable" when the macro-average
 * over the headline n (default 2–4) of four-way accuracy is ≥ `accuracyThreshold`, its
 * Bonferroni-exact lower bound is above chance (1 / #headline: what a constant predictor can
 * reach), and every headline n's LD interval is above 0. Emergence = the first point from which it
 * stays readable to the end. does not replicate: never readable, or readable early (depth <
 * middleFrom); partly: readable only from middle-to-late depth but the model has fewer than
 * `minLayersForMiddle` layers ("middle" untestable); replicates: middle-to-late in a deep enough model.
 * n = 1 and every other n get a count-specific emergence beside it (`countSpecificEmergence`).
 *
 * @example
 * const lens = await logitLens(model, prompts);
 * layerwiseFinding(lens.rows, { numLayers: model.config.numLayers }).markdown;
 */
export function layerwiseFinding(rows: LensRow[], opts: CountSensitiveOptions): Finding {
  requireRows(rows, "logit-lens rows");
  if (!Number.isInteger(opts?.numLayers) || opts.numLayers < 1)
    throw new InputError("layerwiseFinding: numLayers must be a positive integer", { field: "numLayers" });
  const middle = opts.middleFrom ?? 1 / 3;
  const thr = opts.accuracyThreshold ?? 0.8;
  const minLayers = opts.minLayersForMiddle ?? 12;
  const headline = opts.headline ?? [2, 3, 4];
  if (!headline.every((n) => rows.some((r) => r.n === n)))
    throw new InputError(`logit-lens rows: need rows for every headline n (${headline.join(", ")})`, { field: "n" });
  const pts = countSensitivePoints(rows, opts);
  let start = -1;
  for (let i = pts.length - 1; i >= 0 && pts[i].countSensitive; i--) start = i;
  const e = start >= 0 ? pts[start] : null;
  const { verdict, summary } = layerwiseVerdict(e, opts.numLayers, middle, minLayers, headline);
  const ns = [...new Set(rows.filter((r) => r.n !== null).map((r) => r.n as number))].sort((a, b) => a - b);
  const perN = ns.map((n) => ({
    n,
    e: countSpecificEmergence(rows, n, opts),
    old: emergencePoint(
      rows.filter((r) => r.n === n),
      opts,
    ),
  }));
  const before = pts.filter((p) => !p.countSensitive && p.defaultRunShare !== null);
  const lowest = before.length ? Math.min(...before.map((p) => p.defaultRunShare!)) : null;
  const numbers: Finding["numbers"] = {
    numLayers: opts.numLayers,
    middleFrom: middle,
    accuracyThreshold: thr,
    minLayersForMiddle: minLayers,
    headline: headline.join(","),
    emergence: e?.point ?? null,
    emergenceDepth: e?.depth ?? null,
    middleTestable: opts.numLayers >= minLayers,
    finalMacroAccuracy: pts[pts.length - 1].macroAccuracy,
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
      `"L pre" has depth L/${opts.numLayers}, "L post" (L+1)/${opts.numLayers}. At a point the count is readable when, over n = ${headline.join(", ")}, ` +
      `the macro-averaged four-way accuracy is ≥ ${pct(thr)}, its lower bound (mean of exact per-n bounds at ${num(100 * (1 - 0.05 / headline.length), 1)} %) is above chance ${pct(1 / headline.length)} — ` +
      `what a constant predictor such as always \`)\` can reach — and each n's 95 % LD interval is above 0. Emergence = first point readable from there to the end. ` +
      `Never, or early (depth < ${num(middle)}) → does not replicate; middle-to-late in a model under ${minLayers} layers → partly ("middle" untestable); otherwise → replicates.`,
    evidence: [
      ...(lowest !== null
        ? [
            `default-run baseline: before emergence the lens's four-way argmax is one run (\`${")".repeat(before[0].defaultRun!)}\` at most points) for ≥ ${pct(lowest)} of all prompts — a constant readout, right only for n = 1`,
          ]
        : []),
      ...perN.map(
        (x) =>
          `n = ${x.n}${headline.includes(x.n) ? "" : " (beside the headline)"}: count-specific emergence at ${x.e.point ? `${x.e.point} (depth ${num(x.e.depth!)})` : "none"}` +
          (x.old.point && x.old.point !== x.e.point
            ? `; the count-blind rule (LD > 0 and own accuracy) would say ${x.old.point}`
            : ""),
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
