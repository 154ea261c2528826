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
  subtaskPromotion,
  CountingEvidence,
  HeadSubtaskRow,
  HeadCausalNRow,
  depthFraction,
  emergencePoint,
  countSensitivePoints,
  layerwiseFinding,
  sublayerFinding,
  sublayerSummaries,
  sublayerContrast,
  SublayerEvidence,
  InputError,
} from "../../lib/src";
import type {
  MetricSummaryRow,
  LogitLensRow,
  SublayerEffectRow,
  SublayerEffectsResult,
  CountingRule,
  HeadSummary,
  CountingFindingOptions,
} from "../../lib/src";

// Compile-time checks: findings reads declared row shapes, and the analyses' rows must keep fitting them.
const _accuracy: AccuracyRow = {} as MetricSummaryRow;
const _lens: LensRow = {} as LogitLensRow;
const _sublayer: SublayerRow = {} as SublayerEffectRow;
const _evidence: SublayerEvidence = {} as SublayerEffectsResult;
const _head: HeadRow = {} as HeadSummary;
const _rule: CountingFindingOptions = {} as CountingRule;
void [_accuracy, _lens, _sublayer, _evidence, _head, _rule];

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

/**
 * Hand-made sub-layer evidence: `prompts` pairs per n, clean LD `clean` and corrupted LD −1, and per
 * method one effect per layer for attention and MLP (patching: the fraction of the gap), with a
 * small deterministic per-prompt jitter so that intervals have width.
 */
function evidence(
  spec: { n: number; clean?: number; effects: Record<string, { attn: number[]; mlp: number[] }> }[],
  prompts = 20,
): SublayerEvidence {
  const perPrompt: SublayerEvidence["perPrompt"] = [];
  const promptBaseline: SublayerEvidence["promptBaseline"] = [];
  for (const { n, clean = 2, effects } of spec) {
    for (let j = 0; j < prompts; j++) {
      const prompt = promptBaseline.length;
      const jitter = ((j % 5) - 2) * 0.01;
      promptBaseline.push({ prompt, n, clean, corrupted: -1 });
      for (const [method, e] of Object.entries(effects)) {
        for (const sublayer of ["attn", "mlp"] as const) {
          e[sublayer].forEach((x, layer) => {
            const f = x + jitter;
            const value =
              method === "denoising" ? -1 + f * (clean + 1) : method === "noising" ? clean - f * (clean + 1) : f;
            perPrompt.push({ prompt, n, layer, sublayer, method, value });
          });
        }
      }
    }
  }
  return { perPrompt, promptBaseline };
}

const attnMore = {
  "zero-ablation": { attn: [1, 0.8], mlp: [0.4, 0] },
  "mean-ablation": { attn: [0.9, 0.6], mlp: [0.3, 0] },
  denoising: { attn: [0.6, 0.3], mlp: [0.2, 0] },
  noising: { attn: [0.5, 0.3], mlp: [0.2, 0] },
  dla: { attn: [0.7, 0.5], mlp: [0.3, 0] },
};

describe("sublayerFinding (families, per n, paired intervals)", () => {
  it("replicates when every family says both matter and attention more, with paired intervals above 0", () => {
    const ev = evidence([2, 3, 4].map((n) => ({ n, effects: attnMore })));
    const f = sublayerFinding(ev);
    assert.equal(f.verdict, "replicates");
    assert.ok((f.numbers["denoising_diffLo"] as number) > 0);
    assert.equal(f.numbers.patching_mhaMore, true);
    const c = sublayerContrast(ev, "zero-ablation", [0, 1, 2, 3, 4]);
    assert.ok(Math.abs(c.diff - (1.8 - 0.4)) < 0.05);
    assert.deepEqual(c.attnLayers, [0, 1]);
    assert.deepEqual(c.mlpLayers, [0]);
  });
  it("one family that disagrees makes it partly (no majority vote of correlated methods)", () => {
    const dlaMlp = { ...attnMore, dla: { attn: [0.1, 0], mlp: [0.9, 0.5] } };
    const f = sublayerFinding(evidence([2, 3].map((n) => ({ n, effects: dlaMlp }))));
    assert.equal(f.verdict, "partly");
    assert.equal(f.numbers.attribution_mhaMore, false);
    assert.match(f.summary, /attribution: not both matter, MLP more/);
  });
  it("headline on n = 2–4: an n = 1 dominated by the MLP is reported beside it, not pooled in", () => {
    const mlpOnly = Object.fromEntries(Object.keys(attnMore).map((m) => [m, { attn: [0, 0], mlp: [5, 3] }]));
    const f = sublayerFinding(
      evidence([{ n: 1, clean: 9, effects: mlpOnly }, ...[2, 3].map((n) => ({ n, effects: attnMore }))]),
    );
    assert.equal(f.verdict, "replicates");
    assert.equal(f.numbers.verdict_n1, "does not replicate");
    assert.equal(f.numbers.verdict_n2, "replicates");
    assert.match(f.markdown, /n = 1 \(beside the headline\)/);
  });
  it("without layer 0: attention that matters only at layer 0 no longer makes MHA more", () => {
    const layer0 = Object.fromEntries(Object.keys(attnMore).map((m) => [m, { attn: [0.9, 0], mlp: [0.2, 0.3] }]));
    const ev = evidence([2, 3].map((n) => ({ n, effects: layer0 })));
    assert.equal(sublayerFinding(ev).numbers.ablation_mhaMore, true);
    const f = sublayerFinding(ev, { excludeLayers: [0] });
    assert.equal(f.verdict, "does not replicate");
    assert.match(f.summary, /without layer 0/);
  });
  it("does not replicate when nothing matters, when the model fails the task, or without headline pairs", () => {
    const zero = Object.fromEntries(Object.keys(attnMore).map((m) => [m, { attn: [0, 0], mlp: [0, 0] }]));
    assert.equal(sublayerFinding(evidence([{ n: 2, effects: zero }])).verdict, "does not replicate");
    const fails = sublayerFinding(evidence([{ n: 2, clean: -0.5, effects: attnMore }]));
    assert.equal(fails.verdict, "does not replicate");
    assert.match(fails.summary, /does not do the task/);
    assert.equal(sublayerFinding(evidence([{ n: 1, effects: attnMore }])).verdict, "does not replicate");
    assert.throws(() => sublayerFinding({ perPrompt: [], promptBaseline: [] }), InputError);
  });
});

describe("sublayerSummaries (pooled totals table)", () => {
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
    assert.equal(s.mhaMore, true);
  });
});

const head = (label: string, r: number, partialR?: number): HeadRow => ({
  label,
  countingR: r,
  countingLo: r - 0.1,
  countingHi: r + 0.1,
  partialR,
  promoteRate: NaN,
  causalEffect: NaN,
  causalLo: NaN,
  causalHi: NaN,
});

/**
 * Per-n evidence of one head: `writes(n)` is the count it promotes on prompts of that n (all of
 * them), `effect(n)` its zero-ablation effect at n (interval ± 0.05).
 */
function subtasks(label: string, writes: (n: number) => number, effect: (n: number) => number = () => 0) {
  const promotion: HeadSubtaskRow[] = [];
  const causal: HeadCausalNRow[] = [];
  for (const n of [1, 2, 3, 4]) {
    const c = writes(n);
    const share = [1, 2, 3, 4].map((k) => (k === c ? 1 : 0));
    promotion.push({
      label,
      n,
      promoteRate: c === n ? 1 : 0,
      promoteRateCapped: c === n ? 1 : 0,
      promotedShare: share,
    });
    const e = effect(n);
    causal.push({ label, n, method: "zero", effect: e, lo: e - 0.05, hi: e + 0.05 });
  }
  return { promotion, causal };
}

function evidenceOf(heads: HeadRow[], per: ReturnType<typeof subtasks>[]): CountingEvidence {
  return { heads, promotion: per.flatMap((p) => p.promotion), causal: per.flatMap((p) => p.causal) };
}

describe("countingFinding (the authors' per-subtask rule)", () => {
  it("replicates: a 1-general head promotes at one n and not the others, and heads help at some n and hurt at others", () => {
    // L3H6 always writes "))))": right for n = 4 only; ablating it hurts n = 4 (it helped) and helps n = 1
    const ev = evidenceOf(
      [head("L3H6", 0.7, 0.75), head("L2H7", 0.6, 0.54)],
      [
        subtasks(
          "L3H6",
          () => 4,
          (n) => (n === 4 ? 0.3 : n === 1 ? -0.3 : 0),
        ),
        subtasks("L2H7", () => 1),
      ],
    );
    const f = countingFinding(ev);
    assert.equal(f.verdict, "replicates");
    assert.deepEqual(subtaskPromotion(ev, "L3H6").promotes, [4]);
    assert.equal(subtaskPromotion(ev, "L3H6").countAgnostic, true);
    assert.deepEqual(subtaskPromotion(ev, "L3H6").misleadsAt, [1]); // writes "))))" at n = 1 and ablating it helps there
    assert.equal(
      promotionRole(ev.heads[0], ev),
      "promotes n = 4 (1-general); count-agnostic (`))))` at every n); misleads at n = 1",
    );
    assert.equal(f.numbers.promotingSomeN, 2);
  });
  it("a head that always promotes one count is count-agnostic, not a misleader, where it does not matter causally", () => {
    const ev = evidenceOf([head("L2H7", 0.6, 0.6)], [subtasks("L2H7", () => 1)]);
    assert.equal(promotionRole(ev.heads[0], ev), "promotes n = 1 (1-general); count-agnostic (`)` at every n)");
    const f = countingFinding(ev);
    assert.equal(f.verdict, "partly"); // may or may not promote, but no head helps or hurts
    assert.equal(f.numbers.helpOrHurt, false);
  });
  it("a head that writes the right count at every n promotes at every n (4-general)", () => {
    const ev = evidenceOf([head("L4H0", 0.8, 0.8)], [subtasks("L4H0", (n) => n)]);
    assert.deepEqual(subtaskPromotion(ev, "L4H0").promotes, [1, 2, 3, 4]);
    assert.equal(subtaskPromotion(ev, "L4H0").countAgnostic, false);
    assert.equal(countingFinding(ev).numbers.mayOrMayNot, false);
  });
  it("rejects a head whose attention tracks length only (high raw r, partial r near 0)", () => {
    const ev = evidenceOf(
      [head("L3H4", 0.58, 0.05), head("L5H0", 0.57, 0.22)],
      [subtasks("L3H4", () => 4), subtasks("L5H0", () => 2)],
    );
    assert.equal(isCountingHead(ev.heads[0]), false);
    const f = countingFinding(ev);
    assert.equal(f.verdict, "does not replicate");
    assert.equal(f.numbers.lengthExplained, 2);
    assert.match(f.markdown, /L3H4: r = 0\.58 but partial r = 0\.05/);
    // without the length control (no partialR) it would count
    assert.equal(isCountingHead({ ...ev.heads[0], partialR: undefined }), true);
  });
  it("the uniform-attention baseline and the interval still apply", () => {
    assert.equal(isCountingHead(head("L2H2", 0.6), { baselineR: 0.55 }), false); // interval [0.5, 0.7] reaches below 0.55
    assert.equal(isCountingHead(head("L5H1", -0.55), { baselineR: 0.55 }), true);
    assert.equal(isCountingHead({ ...head("L1H1", 0.6), countingLo: -0.2 }), false);
  });
  it("the causal threshold decides helps / hurts; the sensitivity table shows the flip", () => {
    const ev = evidenceOf(
      [head("L3H6", 0.7, 0.7)],
      [
        subtasks(
          "L3H6",
          () => 4,
          (n) => (n === 4 ? 0.1 : n === 1 ? -0.1 : 0),
        ),
      ],
    );
    const sens = findingSensitivity({ causalThreshold: [0, 0.184] }, (o) => countingFinding(ev, o));
    assert.deepEqual(
      sens.map((r) => r.verdict),
      ["replicates", "partly"],
    );
  });
  it("does not replicate without a counting head", () => {
    const f = countingFinding(evidenceOf([head("L0H0", 0.3), head("L0H1", NaN)], [subtasks("L0H0", () => 1)]));
    assert.equal(f.verdict, "does not replicate");
    assert.deepEqual(
      countingHeadList([head("L0H0", 0.6), head("L1H1", -0.9), head("L2H2", 0.7)]).map((h) => h.label),
      ["L1H1", "L2H2", "L0H0"],
    );
    assert.equal(causalRole({ ...head("L0H0", 0.6) }), "untested");
  });
});
