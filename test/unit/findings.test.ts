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
  binomialInterval,
  findingSensitivity,
  causalRole,
  isCountingHead,
  countingFinding,
  countingHeadList,
  promotionRole,
  depthFraction,
  emergencePoint,
  countSensitivePoints,
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

/** An accuracy row with its exact (Clopper–Pearson) interval over 100 prompts. */
const acc = (n: number | null, a: number, paren = a): AccuracyRow => {
  const ci = binomialInterval(Math.round(100 * a), 100);
  return { n, count: 100, accuracy: a, accuracyLo: ci.lo, accuracyHi: ci.hi, parenAccuracy: paren };
};

describe("accuracyFinding", () => {
  it("replicates when every n is consistent two-sidedly with CodeLlama's 99/100/98/87 % (arXiv 2507.00322)", () => {
    const f = accuracyFinding([acc(1, 0.98), acc(2, 0.99), acc(3, 0.96), acc(4, 0.85), acc(null, 0.94)]);
    assert.equal(f.verdict, "replicates");
    assert.equal(f.numbers.consistent, 4);
    assert.equal(f.numbers.hardestN, 4);
    assert.match(f.markdown, /2507\.00322/);
    assert.match(f.markdown, /n = 4: 85\.0 %/);
  });
  it("is only partly when the model is too accurate: 100 % at n = 4 is not CodeLlama's 87 %", () => {
    const f = accuracyFinding([acc(1, 1), acc(2, 1), acc(3, 1), acc(4, 1)]);
    assert.equal(f.verdict, "partly");
    assert.equal(f.numbers.solves, true);
    assert.equal(f.numbers.vsReference_n4, "higher");
    assert.equal(f.numbers.hardestN, null);
    assert.match(f.summary, /equally accurate/);
    assert.match(f.summary, /gate/);
    // the verdict flips only once the tolerance covers the 9.4-point gap
    const sens = findingSensitivity({ tolerance: [0, 0.02, 0.1] }, (o) => accuracyFinding([acc(4, 1)], o));
    assert.deepEqual(
      sens.map((r) => r.verdict),
      ["partly", "partly", "replicates"],
    );
  });
  it("does not replicate when the model fails the gate, e.g. a constant predictor of `)`", () => {
    const constant = [acc(1, 1), acc(2, 0), acc(3, 0), acc(4, 0)];
    const f = accuracyFinding(constant);
    assert.equal(f.verdict, "does not replicate");
    assert.equal(f.numbers.solves, false);
    assert.match(f.summary, /does not solve the task/);
  });
  it("reports the margins beside accuracy", () => {
    const f = accuracyFinding([
      { ...acc(2, 1), meanProb: 0.49, logitDiff: 0.53, logitDiffLo: 0.52, logitDiffHi: 0.54 },
    ]);
    assert.match(f.markdown, /p\(correct\) 0\.49, LD to the strongest wrong run 0\.53 \[0\.52, 0\.54\]/);
    assert.equal(f.numbers.meanProb_n2, 0.49);
  });
  it("refuses rows without any n of the paper", () => {
    assert.throws(() => accuracyFinding([acc(null, 0.5)]), InputError);
    assert.throws(() => accuracyFinding([]), InputError);
  });
});

/** Lens rows for one group from per-point LD (interval ± 0.5) and accuracy, in forward order. */
function lens(n: number | null, ld: number[], accs: number[], shares?: (i: number) => number[]): LensRow[] {
  return ld.map((v, i) => ({
    point: `${Math.floor(i / 2)} ${i % 2 ? "post" : "pre"}`,
    pointIndex: i,
    layer: Math.floor(i / 2),
    where: i % 2 ? "post" : "pre",
    n,
    count: 100,
    logitDiff: v,
    logitDiffLo: v - 0.5,
    logitDiffHi: v + 0.5,
    parenAccuracy: accs[i],
    parenShares: shares?.(i),
  }));
}

/**
 * A lens over n = 1..4 (plus pooled rows) from a per-point "readout": which run the lens predicts
 * for a prompt of each n. `read(i, n)` returns the predicted count at point i.
 */
function lensOf(read: (i: number, n: number) => number, points = 12): LensRow[] {
  const rows: LensRow[] = [];
  const share = (i: number, ns: number[]) =>
    [1, 2, 3, 4].map((c) => ns.filter((n) => read(i, n) === c).length / ns.length);
  for (const n of [1, 2, 3, 4]) {
    const accs = Array.from({ length: points }, (_, i) => (read(i, n) === n ? 1 : 0));
    rows.push(
      ...lens(
        n,
        accs.map((a) => (a ? 2 : -2)),
        accs,
        (i) => share(i, [n]),
      ),
    );
  }
  const pooledAcc = Array.from({ length: points }, (_, i) => [1, 2, 3, 4].filter((n) => read(i, n) === n).length / 4);
  rows.push(
    ...lens(
      null,
      pooledAcc.map(() => 1),
      pooledAcc,
      (i) => share(i, [1, 2, 3, 4]),
    ),
  );
  return rows;
}

describe("layerwiseFinding (count-sensitive)", () => {
  it("depth fractions: L pre = L/layers, L post = (L+1)/layers", () => {
    assert.equal(depthFraction(0, "pre", 6), 0);
    assert.equal(depthFraction(2, "post", 6), 0.5);
  });
  it("a constant predictor (always `)`) never passes, however confident it is on n = 1", () => {
    const constant = lensOf(() => 1);
    const f = layerwiseFinding(constant, { numLayers: 6 });
    assert.equal(f.verdict, "does not replicate");
    assert.equal(f.numbers.emergence, null);
    assert.equal(f.numbers.emergence_n1, null); // n = 1 is right, but `)` is also said for every other n
    const pts = countSensitivePoints(constant, { numLayers: 6 });
    assert.ok(pts.every((p) => p.macroAccuracy === 0 && p.defaultRun === 1 && p.defaultRunShare === 1));
  });
  it("the embedded model's pattern: `)` everywhere, counting only after the last block → partly at 6 layers", () => {
    const rows = lensOf((i, n) => (i === 11 ? n : 1));
    const f = layerwiseFinding(rows, { numLayers: 6 });
    assert.equal(f.verdict, "partly");
    assert.equal(f.numbers.emergence, "5 post");
    assert.equal(f.numbers.emergence_n1, "5 post"); // not "0 pre": `)` at n = 1 is the default run
    assert.equal(f.numbers.middleTestable, false);
    assert.match(f.summary, /not "middle"/);
    assert.match(f.evidence[0], /default-run baseline/);
    // the count-blind rule would have called n = 1 early
    assert.match(f.markdown, /count-blind rule .* would say 0 pre/);
  });
  it("replicates in a deep enough model where the count appears in the middle and stays", () => {
    const rows = lensOf((i, n) => (i >= 7 ? n : 1), 24); // 12 layers, from "3 post" (depth 4/12)
    const f = layerwiseFinding(rows, { numLayers: 12 });
    assert.equal(f.verdict, "replicates");
    assert.equal(f.numbers.emergence, "3 post");
  });
  it("does not replicate when the count is readable from the first layers", () => {
    const f = layerwiseFinding(
      lensOf((_, n) => n),
      { numLayers: 12 },
    );
    assert.equal(f.verdict, "does not replicate");
    assert.equal(f.numbers.emergence, "0 pre");
  });
  it("a constant `))` predictor reaches chance (1/3 over n = 2–4) but not above it", () => {
    const pts = countSensitivePoints(
      lensOf(() => 2),
      { numLayers: 6, accuracyThreshold: 0.3 },
    );
    assert.ok(pts.every((p) => Math.abs(p.macroAccuracy - 1 / 3) < 1e-12 && !p.countSensitive));
  });
  it("needs persistence: a readable blip that fades does not count", () => {
    const rows = lensOf((i, n) => (i === 1 || i >= 9 ? n : 1));
    assert.equal(layerwiseFinding(rows, { numLayers: 6 }).numbers.emergence, "4 post");
    const e = emergencePoint(lens(null, [-1, 2, -1, -1, -1, -1, -1, 2, 2, 3, 3, 5], new Array(12).fill(0.9)), {
      numLayers: 6,
    });
    assert.equal(e.firstPositive, "0 post");
    assert.equal(e.point, "3 post");
  });
  it("the sensitivity table shows whether the verdict flips with a threshold", () => {
    const rows = lensOf((i, n) => (i === 11 ? n : 1));
    const sens = findingSensitivity(
      { minLayersForMiddle: [4, 12] },
      (o) => layerwiseFinding(rows, { numLayers: 6, ...o }),
      ["emergence"],
    );
    assert.deepEqual(
      sens.map((r) => [r.minLayersForMiddle, r.emergence, r.verdict]),
      [
        [4, "5 post", "replicates"],
        [12, "5 post", "partly"],
      ],
    );
  });
  it("refuses rows without the headline n", () => {
    assert.throws(() => layerwiseFinding(lens(1, [1], [1]), { numLayers: 6 }), InputError);
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
