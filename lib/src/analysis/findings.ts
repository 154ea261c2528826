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
import { BootstrapOptions, bootstrapIndices } from "./bootstrap";

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
    for (const [k, v] of Object.entries(c))
      row[k] =
        typeof v === "number" || typeof v === "string" ? v : Array.isArray(v) ? v.join(" ") || "none" : String(v);
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
        `${where}, so it is absent from the early layers as the paper says; but with ${numLayers} layers "middle" spans ${Math.max(1, Math.round(numLayers / 3))} of ${numLayers} blocks, ` +
        `too few to tell middle from late — this model tests "not early" and "late", not "middle".`,
    };
  return {
    verdict: "replicates",
    summary: `${where}, at or after depth ${num(middle)}: middle-to-late, as the paper says.`,
  };
}

/** The default-run baseline before emergence, as one evidence line (null when there is nothing before it). */
function defaultRunText(before: CountSensitivePoint[]): string | null {
  const pts = before.filter((p) => p.defaultRun !== null);
  if (pts.length === 0) return null;
  const counts = new Map<number, number>();
  for (const p of pts) counts.set(p.defaultRun!, (counts.get(p.defaultRun!) ?? 0) + 1);
  const run = [...counts.entries()].sort((a, b) => b[1] - a[1])[0][0];
  const shares = pts.filter((p) => p.defaultRun === run).map((p) => p.defaultRunShare!);
  return (
    `default-run baseline: at ${counts.get(run)} of the ${pts.length} points before emergence the lens's most common four-way readout is \`${")".repeat(run)}\`, ` +
    `given for ${pct(Math.min(...shares))}–${pct(Math.max(...shares))} of all prompts — a constant readout, right only for n = ${run}; ` +
    `macro accuracy there ${pct(Math.min(...pts.map((p) => p.macroAccuracy)))}–${pct(Math.max(...pts.map((p) => p.macroAccuracy)))} (chance ${pct(pts[0].chance)})`
  );
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
  const baseline = defaultRunText(pts.slice(0, start >= 0 ? start : pts.length));
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
      ...(baseline ? [baseline] : []),
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

/** One prompt's value for one sub-layer and method (SublayerPromptValue fits): ablation/DLA effect, or the patched run's LD. */
export interface SublayerPromptRow {
  prompt: number;
  n: number;
  layer: number;
  sublayer: "attn" | "mlp";
  method: string;
  value: number;
}

/** What finding 2 reads of a sub-layer run (`sublayerEffects(...)` fits): per-prompt values and LDs. */
export interface SublayerEvidence {
  perPrompt: SublayerPromptRow[];
  /** Each pair's clean and corrupted LD, by prompt index. */
  promptBaseline: { prompt: number; n: number; clean: number; corrupted: number }[];
}

/**
 * The methods in families of closely related methods: zero and mean ablation remove a sub-layer;
 * denoising and noising patch it between clean and corrupted runs; DLA reads its direct effect.
 * Finding 2 asks each family, not a vote of correlated methods.
 */
export const SUBLAYER_METHOD_FAMILIES: Record<string, string[]> = {
  ablation: ["zero-ablation", "mean-ablation"],
  patching: ["denoising", "noising"],
  attribution: ["dla"],
};

/** The rule of finding 2 (thresholds, prompts, layers, bootstrap). */
export interface SublayerRuleOptions extends SublayerFindingOptions {
  /**
   * Headline counts
   *
   * The n the verdict rests on (n = 1, the default run, is reported per n beside it).
   *
   * @default [2, 3, 4]
   */
  headline?: number[];
  /**
   * Excluded layers
   *
   * Layers left out of the totals and of "matters" (e.g. [0]: layer 0 carries the corrupted
   * token's identity when every position is patched).
   *
   * @default []
   */
  excludeLayers?: number[];
  /**
   * Bootstrap
   *
   * Resamples and seed of the per-layer and paired intervals (prompts resampled together across sub-layers).
   *
   * @default { samples: 1000, seed: 0 }
   */
  bootstrap?: BootstrapOptions;
}

/** One method on one set of prompts: per-layer effects, totals and the paired contrast. */
export interface SublayerContrast {
  method: string;
  family: string;
  unit: "logit" | "fraction";
  threshold: number;
  totalAttn: number;
  totalMlp: number;
  /** Σ|attn| − Σ|MLP| over the kept layers, with a paired bootstrap interval. */
  diff: number;
  diffLo: number;
  diffHi: number;
  attnLayers: number[];
  mlpLayers: number[];
  bothMatter: boolean;
}

const PATCHING = new Set(["denoising", "noising"]);
const familyOf = (m: string) => Object.entries(SUBLAYER_METHOD_FAMILIES).find(([, ms]) => ms.includes(m))?.[0] ?? m;

/** Statistic of one sub-layer on the resampled prompts `sample` (indices into `idx`). */
function siteStat(
  method: string,
  v: Float64Array,
  base: SublayerEvidence["promptBaseline"],
  idx: number[],
): (sample: ArrayLike<number>) => number {
  return (sample) => {
    let sv = 0,
      cl = 0,
      co = 0;
    for (let j = 0; j < sample.length; j++) {
      const i = idx[sample[j]];
      sv += v[i];
      cl += base[i].clean;
      co += base[i].corrupted;
    }
    if (method === "denoising") return (sv - co) / (cl - co);
    if (method === "noising") return (cl - sv) / (cl - co);
    return sv / sample.length;
  };
}

/**
 * Per-layer effects, totals and the paired Σ|attn| − Σ|MLP| interval of one method on the prompts
 * `idx` (resampled together for every sub-layer, so the contrast's interval is paired).
 *
 * @example
 * sublayerContrast(res, "denoising", res.promptBaseline.filter((b) => b.n >= 2).map((b) => b.prompt));
 */
export function sublayerContrast(
  ev: SublayerEvidence,
  method: string,
  idx: number[],
  opts: SublayerRuleOptions = {},
): SublayerContrast {
  const excl = new Set(opts.excludeLayers ?? []);
  const P = ev.promptBaseline.length;
  const sites = new Map<string, { layer: number; sublayer: "attn" | "mlp"; v: Float64Array }>();
  for (const r of ev.perPrompt) {
    if (r.method !== method || excl.has(r.layer)) continue;
    const key = `${r.layer}|${r.sublayer}`;
    if (!sites.has(key)) sites.set(key, { layer: r.layer, sublayer: r.sublayer, v: new Float64Array(P).fill(NaN) });
    sites.get(key)!.v[r.prompt] = r.value;
  }
  const unit = PATCHING.has(method) ? "fraction" : "logit";
  const clean = meanOf(idx.map((i) => ev.promptBaseline[i].clean));
  const threshold =
    unit === "fraction" ? (opts.fractionThreshold ?? 0.1) : (opts.logitThreshold ?? 0.1 * Math.abs(clean));
  const boot = { samples: 1000, seed: 0, ...opts.bootstrap };
  const list = [...sites.values()].sort((a, b) => a.layer - b.layer);
  const stats = list.map((s) => siteStat(method, s.v, ev.promptBaseline, idx));
  const matters: Record<"attn" | "mlp", number[]> = { attn: [], mlp: [] };
  list.forEach((s, k) => {
    const ci = bootstrapIndices(idx.length, (x) => stats[k](x), boot);
    if (Math.abs(ci.estimate) >= threshold && (ci.lo > 0 || ci.hi < 0)) matters[s.sublayer].push(s.layer);
  });
  const total = (sample: ArrayLike<number>, which: "attn" | "mlp") =>
    list.reduce((a, s, k) => (s.sublayer === which ? a + Math.abs(stats[k](sample)) : a), 0);
  const d = bootstrapIndices(idx.length, (x) => total(x, "attn") - total(x, "mlp"), boot);
  const all = Int32Array.from(idx.keys());
  return {
    method,
    family: familyOf(method),
    unit,
    threshold,
    totalAttn: total(all, "attn"),
    totalMlp: total(all, "mlp"),
    diff: d.estimate,
    diffLo: d.lo,
    diffHi: d.hi,
    attnLayers: matters.attn,
    mlpLayers: matters.mlp,
    bothMatter: matters.attn.length > 0 && matters.mlp.length > 0,
  };
}

/** Verdict of finding 2 on one set of prompts, from its contrasts grouped by family. */
function familyVerdict(cs: SublayerContrast[]): {
  verdict: Verdict;
  families: { family: string; both: boolean; mha: boolean; mlp: boolean }[];
} {
  const fams = [...new Set(cs.map((c) => c.family))];
  const families = fams.map((family) => {
    const m = cs.filter((c) => c.family === family);
    return {
      family,
      both: m.every((c) => c.bothMatter),
      mha: m.every((c) => c.diffLo > 0),
      mlp: m.every((c) => c.diffHi < 0),
    };
  });
  const verdict: Verdict = families.every((f) => f.both && f.mha)
    ? "replicates"
    : families.some((f) => f.mha)
      ? "partly"
      : "does not replicate";
  return { verdict, families };
}

/** Contrasts of every method on the prompts of `ns`, and their family verdict. */
function contrastsFor(ev: SublayerEvidence, ns: number[], opts: SublayerRuleOptions) {
  const idx = ev.promptBaseline.filter((b) => ns.includes(b.n)).map((b) => b.prompt);
  if (idx.length === 0) return null;
  const methods = [...new Set(ev.perPrompt.map((r) => r.method))];
  const cs = methods.map((m) => sublayerContrast(ev, m, idx, opts));
  const clean = meanOf(idx.map((i) => ev.promptBaseline[i].clean));
  const fv = familyVerdict(cs);
  return { idx, cs, clean, ...fv, verdict: clean > 0 ? fv.verdict : ("does not replicate" as Verdict) };
}

const famText = (f: { family: string; both: boolean; mha: boolean; mlp: boolean }) =>
  `${f.family}: ${f.both ? "both types matter" : "not both matter"}, ${f.mha ? "MHA more" : f.mlp ? "MLP more" : "no clear order"}`;

/**
 * Finding 2, by method family and per n. For each method on the headline prompts (default n = 2–4):
 * per layer, a sub-layer matters when its effect's bootstrap interval excludes 0 and |effect| ≥ the
 * threshold (10 % of the mean clean LD, or 0.1 of the gap); Σ|attn| − Σ|MLP| gets a paired
 * bootstrap interval. A family (ablation, patching, attribution) says "both matter" when each of
 * its methods does, "MHA more" when each method's paired interval is above 0.
 * replicates: every family says both and MHA more; partly: some family says MHA more; does not
 * replicate: none does, no headline pair, or the mean clean LD ≤ 0. The same rule per n beside it.
 *
 * @example
 * const res = await sublayerEffects(model, pairs, { reference });
 * sublayerFinding(res).verdict;
 * sublayerFinding(res, { excludeLayers: [0] }).summary; // without layer 0
 */
export function sublayerFinding(ev: SublayerEvidence, opts: SublayerRuleOptions = {}): Finding {
  if (!ev || !Array.isArray(ev.perPrompt) || !Array.isArray(ev.promptBaseline) || ev.promptBaseline.length === 0)
    throw new InputError("sub-layer evidence: give perPrompt and promptBaseline (sublayerEffects' result)", {
      field: "promptBaseline",
    });
  const headline = opts.headline ?? [2, 3, 4];
  const ns = [...new Set(ev.promptBaseline.map((b) => b.n))].sort((a, b) => a - b);
  const head = contrastsFor(ev, headline, opts);
  const perN = ns.map((n) => ({ n, r: contrastsFor(ev, [n], opts)! }));
  const hl = `n = ${headline.filter((n) => ns.includes(n)).join(", ") || headline.join(", ")}`;
  const excl = opts.excludeLayers?.length
    ? ` without layer${opts.excludeLayers.length > 1 ? "s" : ""} ${opts.excludeLayers.join(", ")}`
    : "";
  const verdict: Verdict = head ? head.verdict : "does not replicate";
  const summary = !head
    ? `no clean/corrupted pair has n in ${headline.join(", ")}: nothing to judge.`
    : (head.clean > 0 ? "" : `the model does not do the task on these pairs (mean clean LD ${num(head.clean)} ≤ 0); `) +
      `on ${hl}${excl} (${head.idx.length} pairs): ${head.families.map(famText).join("; ")}. Per n: ${perN.map((x) => `n = ${x.n} ${x.r.verdict}`).join(", ")}.`;
  const numbers: Finding["numbers"] = {
    headline: headline.join(","),
    excludeLayers: (opts.excludeLayers ?? []).join(","),
  };
  for (const c of head?.cs ?? []) {
    numbers[`${c.method}_diff`] = c.diff;
    numbers[`${c.method}_diffLo`] = c.diffLo;
    numbers[`${c.method}_diffHi`] = c.diffHi;
  }
  for (const f of head?.families ?? []) numbers[`${f.family}_mhaMore`] = f.mha;
  for (const x of perN) numbers[`verdict_n${x.n}`] = x.r.verdict;
  return finish({
    id: "sub-layers",
    title: "attention and MLP sub-layers both matter, attention more",
    claim: "both multi-head attention (MHA) and feed-forward (FF) sub-layers matter for the task, MHA more so.",
    verdict,
    summary,
    rule:
      `on the headline pairs (${hl}), per method and layer, a sub-layer matters when its 95 % bootstrap interval excludes 0 and |effect| ≥ ${opts.logitThreshold !== undefined ? num(opts.logitThreshold) + " logits" : "10 % of the mean clean LD"} ` +
      `(logit methods) or ≥ ${num(opts.fractionThreshold ?? 0.1)} of the gap (patching)${excl}. Σ|attn| − Σ|MLP| gets a paired bootstrap interval (prompts resampled together). ` +
      `Families, not a vote of correlated methods: ${Object.entries(SUBLAYER_METHOD_FAMILIES)
        .map(([f, ms]) => `${f} (${ms.join(", ")})`)
        .join(
          "; ",
        )}; a family says "both matter" / "MHA more" when each of its methods does (MHA more: interval above 0). ` +
      `Every family both and MHA more → replicates; some family MHA more → partly; none, or mean clean LD ≤ 0 → does not replicate. The same rule per n.`,
    evidence: [
      ...(head?.cs ?? []).map(
        (c) =>
          `${c.family} · ${c.method}: Σ|attn| − Σ|MLP| = ${num(c.diff)} [${num(c.diffLo)}, ${num(c.diffHi)}] (attention ${num(c.totalAttn)}, MLP ${num(c.totalMlp)} ${c.unit === "fraction" ? "of the gap" : "logits"}); ` +
          `attention matters at ${c.attnLayers.map((l) => `L${l}`).join(", ") || "none"}, MLP at ${c.mlpLayers.map((l) => `L${l}`).join(", ") || "none"}`,
      ),
      ...perN.map(
        (x) =>
          `n = ${x.n}${headline.includes(x.n) ? "" : " (beside the headline)"}: ${x.r.verdict} — ${x.r.families.map(famText).join("; ")}`,
      ),
    ],
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
  /** Partial r controlling for prompt length and the share of `)` tokens; absent → no length control. */
  partialR?: number;
  promoteRate: number;
  causalEffect: number;
  causalLo: number;
  causalHi: number;
}

/** One head on the prompts of one n (HeadPromotionRow fits; n = null rows are ignored). */
export interface HeadSubtaskRow {
  label: string;
  n: number | null;
  /** Correct run first among the four in the head's output. */
  promoteRate: number;
  /** … and within the whole-vocabulary rank cap (the authors' rule); NaN → promoteRate is used. */
  promoteRateCapped?: number;
  /** Share of prompts promoting each count (index c − 1). */
  promotedShare: number[];
}

/** One head's causal effect on the prompts of one n (HeadCausalRow fits). */
export interface HeadCausalNRow {
  label: string;
  n: number | null;
  method: string;
  effect: number;
  lo: number;
  hi: number;
}

/** What finding 3 reads (`countingHeads(...)` fits): per-head summaries, per-n promotion and causal rows. */
export interface CountingEvidence {
  heads: HeadRow[];
  promotion: HeadSubtaskRow[];
  causal?: HeadCausalNRow[];
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
   * r that a head attending uniformly to every token would get. A head whose r has this sign
   * must have its whole interval beyond it.
   *
   * @default 0 (no baseline)
   */
  baselineR?: number;
  /**
   * Partial-r threshold
   *
   * When heads carry `partialR` (length and `)`-share controlled), a counting head also needs
   * |partial r| ≥ this; heads that fail it are reported as explained by length.
   *
   * @default 0.3
   */
  partialThreshold?: number;
  /**
   * Promotion threshold
   *
   * The authors' per-subtask rule: a head promotes count n when its (rank-capped) promotion rate
   * on the prompts of that n is ≥ this.
   *
   * @default 0.7
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
   * Causal method
   *
   * Which per-n causal rows decide helps / hurts.
   *
   * @default "zero"
   */
  causalMethod?: string;
  /**
   * Criterion text
   *
   * @default "its attention on `)` and the number already closed"
   */
  criterion?: string;
}

/**
 * Is this head a counting head under the rule? |r| ≥ countingThreshold, an interval excluding 0,
 * beyond the uniform-attention baseline on its side, and (when the row has one) |partial r| ≥
 * partialThreshold — a head whose attention tracks length only does not count.
 *
 * @example
 * isCountingHead(res.heads[0], res.rule); // res = await countingHeads(model, prompts)
 */
export function isCountingHead(h: HeadRow, opts: CountingFindingOptions = {}): boolean {
  return passesRawCriterion(h, opts) && passesLengthControl(h, opts);
}

function passesRawCriterion(h: HeadRow, opts: CountingFindingOptions): boolean {
  const thr = opts.countingThreshold ?? 0.5;
  const base = opts.baselineR ?? 0;
  if (!Number.isFinite(h.countingR) || Math.abs(h.countingR) < thr) return false;
  if (!(h.countingLo > 0 || h.countingHi < 0)) return false;
  if (base > 0 && h.countingR > 0) return h.countingLo > base;
  if (base < 0 && h.countingR < 0) return h.countingHi < base;
  return true;
}

function passesLengthControl(h: HeadRow, opts: CountingFindingOptions): boolean {
  if (h.partialR === undefined) return true;
  return Number.isFinite(h.partialR) && Math.abs(h.partialR) >= (opts.partialThreshold ?? 0.3);
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

/** A head's per-subtask promotion under the authors' rule. */
export interface SubtaskPromotion {
  label: string;
  /** The n at which it promotes the right count (rate ≥ promoteThreshold). */
  promotes: number[];
  /** Per n: the count it promotes most often, and that share. */
  top: { n: number; count: number; share: number }[];
  /** The same most-promoted count at every n: what it writes does not depend on n. */
  countAgnostic: boolean;
  /** n at which it promotes a wrong count (share ≥ threshold) and ablating it helps the prediction (it hurts there). */
  misleadsAt: number[];
  /** Per-n causal roles. */
  causal: { n: number; role: "helps" | "hurts" | "neutral" | "untested" }[];
}

/**
 * The authors' per-subtask promotion of one head (with per-n causal roles when causal rows are given).
 *
 * @example
 * subtaskPromotion(res, "L3H6", res.rule).promotes; // e.g. [4]: a 1-general head for n = 4
 */
export function subtaskPromotion(
  ev: CountingEvidence,
  label: string,
  opts: CountingFindingOptions = {},
): SubtaskPromotion {
  const thr = opts.promoteThreshold ?? 0.7;
  const rows = ev.promotion.filter((r) => r.label === label && r.n !== null).sort((a, b) => a.n! - b.n!);
  const rate = (r: HeadSubtaskRow) =>
    r.promoteRateCapped !== undefined && Number.isFinite(r.promoteRateCapped) ? r.promoteRateCapped : r.promoteRate;
  const top = rows.map((r) => {
    const share = Math.max(...r.promotedShare);
    return { n: r.n!, count: r.promotedShare.indexOf(share) + 1, share };
  });
  const method = opts.causalMethod ?? "zero";
  const causal = rows.map((r) => {
    const c = ev.causal?.find((x) => x.label === label && x.n === r.n && x.method === method);
    return {
      n: r.n!,
      role: c
        ? causalRole({ causalEffect: c.effect, causalLo: c.lo, causalHi: c.hi } as HeadRow, opts.causalThreshold ?? 0)
        : ("untested" as const),
    };
  });
  const misleadsAt = top
    .filter((t, i) => t.count !== t.n && t.share >= thr && causal[i].role === "hurts")
    .map((t) => t.n);
  return {
    label,
    promotes: rows.filter((r) => rate(r) >= thr).map((r) => r.n!),
    top,
    countAgnostic: top.length > 1 && top.every((t) => t.count === top[0].count),
    misleadsAt,
    causal,
  };
}

/**
 * A counting head's role under the authors' per-subtask rule, as text: "promotes n = 4 (1-general)",
 * "count-agnostic", "misleads at n = 2", "promotes none"; null for a head that is not a counting head.
 *
 * @example
 * promotionRole(res.heads[0], res, res.rule); // e.g. "promotes n = 4 (1-general); count-agnostic"
 */
export function promotionRole(h: HeadRow, ev: CountingEvidence, opts: CountingFindingOptions = {}): string | null {
  if (!isCountingHead(h, opts)) return null;
  const sp = subtaskPromotion(ev, h.label, opts);
  const parts = [
    sp.promotes.length ? `promotes n = ${sp.promotes.join(", ")} (${sp.promotes.length}-general)` : "promotes none",
  ];
  if (sp.countAgnostic) parts.push(`count-agnostic (\`${")".repeat(sp.top[0].count)}\` at every n)`);
  if (sp.misleadsAt.length) parts.push(`misleads at n = ${sp.misleadsAt.join(", ")}`);
  return parts.join("; ");
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

/** The summary sentence of finding 3. */
function countingSummary(
  counting: HeadRow[],
  lengthOnly: HeadRow[],
  sps: SubtaskPromotion[],
  t: { thr: number; mayOrMayNot: boolean; helpOrHurt: boolean; helps: SubtaskPromotion[]; hurts: SubtaskPromotion[] },
): string {
  const { thr, mayOrMayNot, helpOrHurt, helps, hurts } = t;
  const names = (xs: { label: string }[]) => (xs.length ? xs.map((h) => h.label).join(", ") : "none");
  return counting.length === 0
    ? `no head passes the counting criterion with the length control` +
        (lengthOnly.length
          ? ` (${names(lengthOnly)} reach |r| ≥ ${num(thr)} but are explained by prompt length / share of \`)\`).`
          : ".")
    : `${counting.length} counting head${counting.length > 1 ? "s" : ""} (${names(counting)})` +
        (lengthOnly.length ? `; ${names(lengthOnly)} fail the length control` : "") +
        `. By the authors' per-subtask rule ${sps.filter((sp) => sp.promotes.length).length} promote the right count at some n (${
          sps
            .filter((sp) => sp.promotes.length)
            .map((sp) => `${sp.label}: n = ${sp.promotes.join(", ")}`)
            .join("; ") || "none"
        })` +
        `${mayOrMayNot ? " and not at the others — they may or may not promote, as the paper says" : ""}; ` +
        `per n, ${helps.length} help somewhere (${names(helps)}) and ${hurts.length} hurt somewhere (${names(hurts)})${helpOrHurt ? "" : " — no help-and-hurt pair"}.`;
}

/**
 * Finding 3. Counting heads: |r| ≥ countingThreshold beyond the uniform-attention baseline, and
 * |partial r| (length and `)`-share controlled) ≥ partialThreshold. Per subtask n (the authors'
 * rule) a head promotes the right count when its rank-capped rate is ≥ promoteThreshold; per n it
 * helps / hurts when its causal effect's interval is above / below 0 with |effect| ≥ causalThreshold.
 * "May or may not promote": some counting head promotes the right count at some n, and at some n
 * a counting head does not. "Can help or hurt": per n, some counting head helps and some hurts.
 * replicates: both; partly: one; does not replicate: neither, or no counting head.
 *
 * @example
 * const res = await countingHeads(model, prompts, { reference, causalPerN: 30 });
 * countingFinding(res, res.rule).verdict;
 */
export function countingFinding(ev: CountingEvidence, opts: CountingFindingOptions = {}): Finding {
  requireRows(ev?.heads, "head rows");
  const thr = opts.countingThreshold ?? 0.5;
  const pthr = opts.promoteThreshold ?? 0.7;
  const cthr = opts.causalThreshold ?? 0;
  const base = opts.baselineR ?? 0;
  const counting = countingHeadList(ev.heads, opts);
  const lengthOnly = ev.heads.filter((h) => passesRawCriterion(h, opts) && !passesLengthControl(h, opts));
  const sps = counting.map((h) => subtaskPromotion(ev, h.label, opts));
  const ns = [...new Set(ev.promotion.filter((r) => r.n !== null).map((r) => r.n!))];
  const promotesSome = sps.some((sp) => sp.promotes.length > 0);
  const failsSome = sps.some((sp) => sp.promotes.length < ns.length);
  const helps = sps.filter((sp) => sp.causal.some((c) => c.role === "helps"));
  const hurts = sps.filter((sp) => sp.causal.some((c) => c.role === "hurts"));
  const mayOrMayNot = promotesSome && failsSome;
  const helpOrHurt = helps.length > 0 && hurts.length > 0;
  const verdict: Verdict =
    counting.length === 0
      ? "does not replicate"
      : mayOrMayNot && helpOrHurt
        ? "replicates"
        : mayOrMayNot || helpOrHurt
          ? "partly"
          : "does not replicate";
  const summary = countingSummary(counting, lengthOnly, sps, { thr, mayOrMayNot, helpOrHurt, helps, hurts });
  return finish({
    id: "counting-heads",
    title: "counting heads track the parens already closed, and may or may not promote the right count",
    claim:
      "some attention heads track precisely how many parentheses are already closed; such a head may or may not promote the right number of missing closing parentheses, so it can help or hurt the prediction.",
    verdict,
    summary,
    rule:
      `a counting head has |r| ≥ ${num(thr)} (Pearson r over prompts of ${opts.criterion ?? "its attention on `)` and the number already closed"}) with a 95 % interval excluding 0` +
      (base ? ` and, on the side of the uniform-attention baseline (r = ${num(base)}), entirely beyond it` : "") +
      `, and |partial r| ≥ ${num(opts.partialThreshold ?? 0.3)} controlling for prompt length and the share of \`)\` tokens. ` +
      `Per subtask n (the authors' rule) it promotes the right count when the correct run ranks first among the four in its own output, within the vocabulary-rank cap, on ≥ ${pct(pthr)} of the prompts of that n; ` +
      `it is count-agnostic when it promotes the same count at every n, and misleads at n when that wrong count is promoted there and ablating it helps. ` +
      `Per n it helps / hurts when its ${opts.causalMethod ?? "zero"}-ablation effect's interval is above / below 0${cthr ? ` and |effect| ≥ ${num(cthr, 3)} logits` : ""}. ` +
      `"May or may not promote" (promotes at some n, not at some n) and "help or hurt" (some head helps at some n, some hurts) → replicates; one of the two → partly; neither or no counting head → does not replicate.`,
    evidence: [
      ...counting.slice(0, 8).map((h, i) => {
        const sp = sps[i];
        return (
          `${h.label}: r = ${num(h.countingR)} [${num(h.countingLo)}, ${num(h.countingHi)}]${h.partialR !== undefined ? `, partial r = ${num(h.partialR)}` : ""}; ${promotionRole(h, ev, opts)}; ` +
          `most-promoted count per n: ${sp.top.map((t) => `n=${t.n}→${t.count} (${pct(t.share)})`).join(", ")}; causal per n: ${sp.causal.map((c) => `n=${c.n} ${c.role}`).join(", ")}`
        );
      }),
      ...lengthOnly.map(
        (h) =>
          `${h.label}: r = ${num(h.countingR)} but partial r = ${num(h.partialR ?? NaN)} — its attention tracks prompt length / share of \`)\`, not the count (not a counting head)`,
      ),
    ],
    numbers: {
      countingThreshold: thr,
      baselineR: base,
      partialThreshold: opts.partialThreshold ?? 0.3,
      promoteThreshold: pthr,
      causalThreshold: cthr,
      countingHeads: counting.length,
      lengthExplained: lengthOnly.length,
      promotingSomeN: sps.filter((sp) => sp.promotes.length).length,
      countAgnostic: sps.filter((sp) => sp.countAgnostic).length,
      helps: helps.length,
      hurts: hurts.length,
      mayOrMayNot,
      helpOrHurt,
      top: counting[0]?.label ?? null,
    },
  });
}
