/** Finding 3 (notebook 04): counting heads — the one classification rule, promotion per subtask, causal roles. */
import { Finding, Verdict, finish, num, pct, requireRows } from "./finding";

/** What the counting-head finding reads of a head summary (HeadSummary fits). */
export interface HeadRow {
  label: string;
  countingR: number;
  countingLo: number;
  countingHi: number;
  /** Partial r controlling for prompt length and the share of `)` tokens; absent → no length control. */
  partialR?: number;
  /** Family-wise p under the length-stratified permutation null; absent or NaN → not applied. */
  permutationP?: number;
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
   * Permutation-null level
   *
   * When heads carry a finite `permutationP` (nClosed shuffled within prompt-length strata,
   * family-wise over all heads), a counting head also needs p ≤ this.
   *
   * @default 0.05
   */
  permutationAlpha?: number;
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
 * beyond the uniform-attention baseline on its side, and (when the row has them) |partial r| ≥
 * partialThreshold and permutation p ≤ permutationAlpha — a head whose attention tracks length
 * only does not count.
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
  return lengthControlFailures(h, opts).length === 0;
}

/**
 * Which length controls a head fails: "partial r" (|partial r| below partialThreshold) and / or
 * "permutation null" (p above permutationAlpha); controls the row does not carry are not applied.
 *
 * @example
 * lengthControlFailures(res.heads[0], res.rule); // [] for a head that survives both
 */
export function lengthControlFailures(h: HeadRow, opts: CountingFindingOptions = {}): string[] {
  const out: string[] = [];
  if (
    h.partialR !== undefined &&
    !(Number.isFinite(h.partialR) && Math.abs(h.partialR) >= (opts.partialThreshold ?? 0.3))
  )
    out.push("partial r");
  if (
    h.permutationP !== undefined &&
    Number.isFinite(h.permutationP) &&
    h.permutationP > (opts.permutationAlpha ?? 0.05)
  )
    out.push("permutation null");
  return out;
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

const permText = (h: HeadRow) =>
  h.permutationP !== undefined && Number.isFinite(h.permutationP) ? `, permutation p = ${num(h.permutationP, 3)}` : "";

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
        (lengthOnly.length ? ` (${names(lengthOnly)} reach |r| ≥ ${num(thr)} but fail the length controls).` : ".")
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
      `, |partial r| ≥ ${num(opts.partialThreshold ?? 0.3)} controlling for prompt length and the share of \`)\` tokens, ` +
      `and (when computed) a family-wise p ≤ ${num(opts.permutationAlpha ?? 0.05)} under the length-stratified permutation null (the count shuffled among prompts of the same length, max-|r| over all heads). ` +
      `Per subtask n (the authors' rule) it promotes the right count when the correct run ranks first among the four in its own output, within the vocabulary-rank cap, on ≥ ${pct(pthr)} of the prompts of that n; ` +
      `it is count-agnostic when it promotes the same count at every n, and misleads at n when that wrong count is promoted there and ablating it helps. ` +
      `Per n it helps / hurts when its ${opts.causalMethod ?? "zero"}-ablation effect's interval is above / below 0${cthr ? ` and |effect| ≥ ${num(cthr, 3)} logits` : ""}. ` +
      `"May or may not promote" (promotes at some n, not at some n) and "help or hurt" (some head helps at some n, some hurts) → replicates; one of the two → partly; neither or no counting head → does not replicate.`,
    evidence: [
      ...counting.slice(0, 8).map((h, i) => {
        const sp = sps[i];
        return (
          `${h.label}: r = ${num(h.countingR)} [${num(h.countingLo)}, ${num(h.countingHi)}]${h.partialR !== undefined ? `, partial r = ${num(h.partialR)}` : ""}${permText(h)}; ${promotionRole(h, ev, opts)}; ` +
          `most-promoted count per n: ${sp.top.map((t) => `n=${t.n}→${t.count} (${pct(t.share)})`).join(", ")}; causal per n: ${sp.causal.map((c) => `n=${c.n} ${c.role}`).join(", ")}`
        );
      }),
      ...lengthOnly.map(
        (h) =>
          `${h.label}: r = ${num(h.countingR)} but partial r = ${num(h.partialR ?? NaN)}${permText(h)} — fails the ${lengthControlFailures(h, opts).join(" and the ")}: its r is explained by prompt length / share of \`)\` (not a counting head)`,
      ),
    ],
    numbers: {
      countingThreshold: thr,
      baselineR: base,
      partialThreshold: opts.partialThreshold ?? 0.3,
      permutationAlpha: opts.permutationAlpha ?? 0.05,
      failPermutationNull: lengthOnly.filter((h) => lengthControlFailures(h, opts).includes("permutation null")).length,
      failPartialR: lengthOnly.filter((h) => lengthControlFailures(h, opts).includes("partial r")).length,
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
