/** Accuracy (notebook 01): the model solves the task (a gate), then a two-sided comparison with the reference accuracies. */
import { InputError } from "../../core/errors";
import { Finding, Verdict, finish, num, pct, requireRows } from "./finding";

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
