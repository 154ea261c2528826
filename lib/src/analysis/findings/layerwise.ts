/** Finding 1 (notebook 02): where in depth the count becomes readable, by a count-sensitive rule. */
import { InputError } from "../../core/errors";
import { binomialInterval, meanOf } from "../stats";
import { Finding, Verdict, finish, num, pct, requireRows } from "./finding";

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
