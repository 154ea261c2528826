// Verdicts computed from result rows: each finding on hand-made rows where it replicates, where it
// partly does, and where it does not.
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  AccuracyRow,
  HeadRow,
  LensRow,
  SublayerRow,
  accuracyFinding,
  causalRole,
  isCountingHead,
  countingFinding,
  countingHeadList,
  promotionRole,
  depthFraction,
  emergencePoint,
  layerwiseFinding,
  sublayerFinding,
  sublayerSummaries,
  InputError,
} from "../../lib/src";
import type {
  MetricSummaryRow,
  LogitLensRow,
  SublayerEffectRow,
  CountingRule,
  HeadSummary,
  CountingFindingOptions,
} from "../../lib/src";

// Compile-time checks: findings reads declared row shapes, and the analyses' rows must keep fitting them.
const _accuracy: AccuracyRow = {} as MetricSummaryRow;
const _lens: LensRow = {} as LogitLensRow;
const _sublayer: SublayerRow = {} as SublayerEffectRow;
const _head: HeadRow = {} as HeadSummary;
const _rule: CountingFindingOptions = {} as CountingRule;
void [_accuracy, _lens, _sublayer, _head, _rule];

const acc = (n: number | null, a: number, width = 0.03, paren = a): AccuracyRow => ({
  n,
  count: 100,
  accuracy: a,
  accuracyLo: a - width,
  accuracyHi: Math.min(1, a + width),
  parenAccuracy: paren,
});

describe("accuracyFinding", () => {
  it("replicates when every n is within the tolerance of CodeLlama's 99/100/98/87 %", () => {
    const f = accuracyFinding([acc(1, 1), acc(2, 0.97), acc(3, 0.93), acc(4, 0.8), acc(null, 0.92)]);
    assert.equal(f.verdict, "replicates");
    assert.equal(f.numbers.matching, 4);
    assert.equal(f.numbers.hardestN, 4);
    assert.match(f.markdown, /replicates/);
    assert.match(f.markdown, /n = 4: 80\.0 %/);
  });
  it("is partly when two or three n match, and does not replicate when one or none does", () => {
    assert.equal(accuracyFinding([acc(1, 1), acc(2, 0.95), acc(3, 0), acc(4, 0)]).verdict, "partly");
    // always predicting ")" is right for n = 1 only
    assert.equal(accuracyFinding([acc(1, 1), acc(2, 0), acc(3, 0), acc(4, 0)]).verdict, "does not replicate");
    const f = accuracyFinding([acc(1, 0.2), acc(2, 0.1), acc(3, 0), acc(4, 0)]);
    assert.equal(f.verdict, "does not replicate");
    assert.equal(f.numbers.matching, 0);
  });
  it("names no hardest count when every count is equally accurate", () => {
    const f = accuracyFinding([acc(1, 1), acc(2, 1), acc(3, 1), acc(4, 1)]);
    assert.equal(f.verdict, "replicates");
    assert.equal(f.numbers.hardestN, null);
    assert.match(f.summary, /equally accurate/);
  });
  it("refuses rows without any n of the paper", () => {
    assert.throws(() => accuracyFinding([acc(null, 0.5)]), InputError);
    assert.throws(() => accuracyFinding([]), InputError);
  });
});

/** Lens rows for one group from per-point LD (interval ± 0.5) and accuracy, in forward order. */
function lens(n: number | null, ld: number[], accs: number[]): LensRow[] {
  return ld.map((v, i) => ({
    point: `${Math.floor(i / 2)} ${i % 2 ? "post" : "pre"}`,
    pointIndex: i,
    layer: Math.floor(i / 2),
    where: i % 2 ? "post" : "pre",
    n,
    logitDiff: v,
    logitDiffLo: v - 0.5,
    logitDiffHi: v + 0.5,
    parenAccuracy: accs[i],
  }));
}

describe("layerwiseFinding", () => {
  // 6 layers → 12 points; "3 post" has depth 4/6.
  const late = [-1, -1, -1, -1, -1, -1, 0.2, 2, 2, 3, 3, 5];
  const lateAcc = [0.2, 0.2, 0.2, 0.2, 0.3, 0.3, 0.5, 0.9, 0.9, 0.95, 0.95, 1];
  it("depth fractions: L pre = L/layers, L post = (L+1)/layers", () => {
    assert.equal(depthFraction(0, "pre", 6), 0);
    assert.equal(depthFraction(2, "post", 6), 0.5);
  });
  it("replicates when the LD becomes confidently positive with high accuracy in the middle and stays", () => {
    const rows = [...lens(null, late, lateAcc), ...lens(1, late, lateAcc), ...lens(2, late, lateAcc)];
    const f = layerwiseFinding(rows, { numLayers: 6 });
    assert.equal(f.verdict, "replicates");
    assert.equal(f.numbers.emergence, "3 post");
    assert.equal(f.numbers.emergenceDepth, 4 / 6);
    assert.equal(f.numbers.firstPositive, "3 post"); // 0.2 − 0.5 < 0 at "3 pre"
  });
  it("needs persistence: a positive blip that fades does not count as emergence", () => {
    const blip = [-1, 2, -1, -1, -1, -1, -1, 2, 2, 3, 3, 5];
    const e = emergencePoint(
      lens(
        null,
        blip,
        lateAcc.map(() => 0.9),
      ),
      { numLayers: 6 },
    );
    assert.equal(e.firstPositive, "0 post");
    assert.equal(e.point, "3 post");
  });
  it("is partly when the answer is there from the first layers", () => {
    const early = late.map(() => 3);
    const f = layerwiseFinding(
      lens(
        null,
        early,
        early.map(() => 0.95),
      ),
      { numLayers: 6 },
    );
    assert.equal(f.verdict, "partly");
    assert.equal(f.numbers.emergence, "0 pre");
  });
  it("is partly when some n never gets there", () => {
    const never = late.map(() => -2);
    const f = layerwiseFinding([...lens(null, late, lateAcc), ...lens(1, late, lateAcc), ...lens(4, never, lateAcc)], {
      numLayers: 6,
    });
    assert.equal(f.verdict, "partly");
    assert.equal(f.numbers.emergence_n4, null);
  });
  it("does not replicate when the LD is never confidently positive at the end (a model that fails the task)", () => {
    const f = layerwiseFinding(
      lens(
        null,
        late.map((v) => -v),
        lateAcc,
      ),
      { numLayers: 6 },
    );
    assert.equal(f.verdict, "does not replicate");
    assert.equal(f.numbers.emergence, null);
  });
  it("needs high accuracy too, not only a positive LD", () => {
    const f = layerwiseFinding(
      lens(
        null,
        late,
        late.map(() => 0.4),
      ),
      { numLayers: 6 },
    );
    assert.equal(f.verdict, "does not replicate");
    assert.equal(
      layerwiseFinding(
        lens(
          null,
          late,
          late.map(() => 0.4),
        ),
        { numLayers: 6, accuracyThreshold: 0.3 },
      ).verdict,
      "replicates",
    );
  });
});

/** Pooled sub-layer rows of one method from per-layer attention and MLP effects (interval ± 0.05). */
function sub(method: string, unit: "logit" | "fraction", attn: number[], mlp: number[]): SublayerRow[] {
  const out: SublayerRow[] = [];
  attn.forEach((e, layer) =>
    out.push({ layer, sublayer: "attn", method, n: null, effect: e, lo: e - 0.05, hi: e + 0.05, unit }),
  );
  mlp.forEach((e, layer) =>
    out.push({ layer, sublayer: "mlp", method, n: null, effect: e, lo: e - 0.05, hi: e + 0.05, unit }),
  );
  return out;
}

describe("sublayerFinding", () => {
  it("replicates when both types matter and attention has the larger total in most methods", () => {
    const rows: SublayerRow[] = [
      ...sub("zero-ablation", "logit", [2, 1, 0], [0.8, 0, 0]),
      ...sub("denoising", "fraction", [0.6, 0.3, 0], [0.2, 0, 0]),
      ...sub("dla", "logit", [0.1, 0, 0], [1, 2, 0]), // disagrees: MLP larger
      // per-n rows are ignored
      { layer: 0, sublayer: "mlp", method: "dla", n: 1, effect: 99, lo: 98, hi: 100, unit: "logit" },
    ];
    const f = sublayerFinding(rows, { cleanLogitDiff: 5 });
    assert.equal(f.verdict, "replicates");
    assert.equal(f.numbers.mhaMore, 2);
    assert.equal(f.numbers.bothMatter, 2); // dla: attention 0.1 < threshold 0.5
    const s = sublayerSummaries(rows, { cleanLogitDiff: 5 });
    assert.deepEqual(s.find((x) => x.method === "zero-ablation")!.attnLayers, [0, 1]);
    assert.equal(s.find((x) => x.method === "zero-ablation")!.threshold, 0.5);
    assert.equal(s.find((x) => x.method === "denoising")!.threshold, 0.1);
  });
  it("is partly when both matter but the MLP is larger, and does not replicate when only the MLP matters", () => {
    const mlpMore = [...sub("zero-ablation", "logit", [1, 0], [3, 0]), ...sub("dla", "logit", [1, 0], [2, 0])];
    assert.equal(sublayerFinding(mlpMore, { logitThreshold: 0.5 }).verdict, "partly");
    const onlyMlp = [...sub("zero-ablation", "logit", [0, 0], [3, 0]), ...sub("dla", "logit", [0.01, 0], [2, 0])];
    const f = sublayerFinding(onlyMlp, { logitThreshold: 0.5 });
    assert.equal(f.verdict, "does not replicate");
    assert.equal(f.numbers.bothMatter, 0);
  });
  it("does not replicate when the model fails the task (mean clean logit difference ≤ 0), whatever the effects", () => {
    const rows = [
      ...sub("zero-ablation", "logit", [2, 1, 0], [0.8, 0, 0]),
      ...sub("denoising", "fraction", [0.6, 0.3, 0], [0.2, 0, 0]),
    ];
    assert.equal(sublayerFinding(rows, { cleanLogitDiff: 5 }).verdict, "replicates");
    const f = sublayerFinding(rows, { cleanLogitDiff: -5, logitThreshold: 0.5 });
    assert.equal(f.verdict, "does not replicate");
    assert.match(f.summary, /does not do the task/);
  });
  it("a method where nothing matters casts no vote for MHA", () => {
    const [s] = sublayerSummaries(sub("mean-ablation", "logit", [0.1, 0.05], [0.02, 0.01]), { logitThreshold: 0.5 });
    assert.equal(s.totalAttn > s.totalMlp, true);
    assert.equal(s.mhaMore, false);
  });
  it("an effect whose interval includes 0 does not matter, however large", () => {
    const rows: SublayerRow[] = [
      { layer: 0, sublayer: "attn", method: "zero-ablation", n: null, effect: 3, lo: -1, hi: 7, unit: "logit" },
      { layer: 0, sublayer: "mlp", method: "zero-ablation", n: null, effect: 1, lo: 0.8, hi: 1.2, unit: "logit" },
    ];
    const [s] = sublayerSummaries(rows, { logitThreshold: 0.5 });
    assert.deepEqual(s.attnLayers, []);
    assert.deepEqual(s.mlpLayers, [0]);
    assert.equal(s.mhaMore, true); // larger total, and the MLP matters in this method
  });
});

const head = (label: string, r: number, promoteRate: number, causal: number): HeadRow => ({
  label,
  countingR: r,
  countingLo: r - 0.1,
  countingHi: r + 0.1,
  promoteRate,
  causalEffect: causal,
  causalLo: causal - 0.05,
  causalHi: causal + 0.05,
});

describe("countingFinding", () => {
  it("replicates when counting heads exist and some promote the right count while others mislead", () => {
    const f = countingFinding([head("L3H1", 0.9, 0.8, 0.5), head("L2H4", -0.7, 0.1, -0.3), head("L0H0", 0.1, 0.25, 0)]);
    assert.equal(f.verdict, "replicates");
    assert.equal(f.numbers.countingHeads, 2);
    assert.equal(f.numbers.promoting, 1);
    assert.equal(f.numbers.misleading, 1);
    assert.equal(f.numbers.top, "L3H1");
    assert.match(f.markdown, /L2H4: r = -0\.70/);
  });
  it("is partly when every counting head plays the same role", () => {
    const f = countingFinding([head("L3H1", 0.9, 0.8, 0.5), head("L2H4", 0.7, 0.9, 0.3)]);
    assert.equal(f.verdict, "partly");
  });
  it("does not replicate without a counting head (weak or undefined correlations)", () => {
    const f = countingFinding([head("L0H0", 0.3, 0.9, 0.5), head("L0H1", NaN, 0.1, -0.5)]);
    assert.equal(f.verdict, "does not replicate");
    assert.match(f.summary, /strongest: L0H0/);
  });
  it("with a uniform-attention baseline, a positive r must clear it; a negative r is not explained by it", () => {
    const heads = [head("L2H2", 0.6, 0.2, 0.3), head("L3H4", 0.75, 0.9, 0.3), head("L5H1", -0.55, 0.1, -0.2)];
    assert.equal(countingFinding(heads).numbers.countingHeads, 3);
    const f = countingFinding(heads, { baselineR: 0.55 }); // L2H2's interval [0.5, 0.7] reaches below 0.55
    assert.equal(f.numbers.countingHeads, 2);
    assert.deepEqual(
      [
        isCountingHead(heads[0], { baselineR: 0.55 }),
        isCountingHead(heads[1], { baselineR: 0.55 }),
        isCountingHead(heads[2], { baselineR: 0.55 }),
      ],
      [false, true, true],
    );
  });
  it("tiny causal effects are neutral under a causal threshold, and missing ones untested", () => {
    const heads = [head("L3H4", 0.8, 0.2, 0.06), head("L5H1", -0.7, 0.2, -0.09)];
    assert.equal(countingFinding(heads).verdict, "replicates"); // one helps, one hurts
    const f = countingFinding(heads, { causalThreshold: 0.5 });
    assert.equal(f.verdict, "partly");
    assert.equal(f.numbers.helps, 0);
    assert.equal(causalRole({ ...heads[0], causalEffect: NaN, causalLo: NaN, causalHi: NaN }), "untested");
    assert.match(
      countingFinding(heads.map((h) => ({ ...h, causalEffect: NaN, causalLo: NaN, causalHi: NaN }))).summary,
      /no causal runs/,
    );
  });
  it("a strong r whose interval includes 0 is no counting head", () => {
    const h: HeadRow = { ...head("L1H1", 0.6, 0.8, 0.5), countingLo: -0.2 };
    assert.equal(countingFinding([h]).numbers.countingHeads, 0);
  });
});

describe("the one counting-head rule", () => {
  const head = (label: string, r: number, lo: number, hi: number, promoteRate = 0.6): HeadRow => ({
    label,
    countingR: r,
    countingLo: lo,
    countingHi: hi,
    promoteRate,
    causalEffect: NaN,
    causalLo: NaN,
    causalHi: NaN,
  });
  const heads = [head("L0H0", 0.6, 0.4, 0.7), head("L1H1", -0.9, -0.95, -0.8, 0.1), head("L2H2", 0.7, 0.6, 0.8)];
  it("lists the counting heads strongest |r| first, and the baseline removes those not beyond it", () => {
    assert.deepEqual(
      countingHeadList(heads).map((h) => h.label),
      ["L1H1", "L2H2", "L0H0"],
    );
    assert.deepEqual(
      countingHeadList(heads, { baselineR: 0.5 }).map((h) => h.label),
      ["L1H1", "L2H2"],
    );
  });
  it("names the promotion role of counting heads only", () => {
    assert.equal(promotionRole(heads[1]), "misleads");
    assert.equal(promotionRole(heads[2]), "promotes");
    assert.equal(promotionRole(head("L3H3", 0.1, -0.1, 0.3)), null);
  });
  it("countingFinding counts the same list", () => {
    const f = countingFinding(heads, { baselineR: 0.5 });
    assert.equal(f.numbers.countingHeads, 2);
    assert.equal(f.numbers.top, "L1H1");
  });
});
