import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Tensor,
  InputError,
  ParenRunTokens,
  lastPositionLogits,
  logitDiffByCount,
  logitDiffFor,
  scoreLogits,
  summarizeScores,
} from "../../lib/src";

// A vocabulary of 8 tokens; the paren runs ")" … "))))" are ids 4, 5, 6, 7.
const parens: ParenRunTokens = { ids: [4, 5, 6, 7], runs: [")", "))", ")))", "))))"], maxN: 4 };

/** [batch, vocab] logits from rows. */
function logits(rows: number[][]): Tensor {
  return new Tensor(Float32Array.from(rows.flat()), [rows.length, rows[0].length], ["batch", "vocab"]);
}

const rows = [
  // n=1: correct ")" (id 4) is the argmax overall; strongest wrong run is id 5 (logit 2)
  [0, 0, 0, 0, 5, 2, 1, 0],
  // n=2: token 0 wins over the vocabulary (3 > 2.5); among parens "))" (id 5) wins
  [3, 0, 0, 0, 1, 2.5, 2, -1],
  // n=2: ")))" (id 6) beats the correct "))": wrong among parens too
  [0, 0, 0, 0, 0, 1, 4, 0],
];
const targets = [{ n: 1 }, { n: 2 }, { n: 2 }];

test("accuracy over the vocabulary and among the paren runs, probability and rank", () => {
  const s = scoreLogits(logits(rows), targets, parens);
  assert.deepEqual(
    s.map((x) => x.correct),
    [true, false, false],
  );
  assert.deepEqual(
    s.map((x) => x.parenCorrect),
    [true, true, false],
  );
  assert.deepEqual(
    s.map((x) => x.parenArgmaxCount),
    [1, 2, 3],
  );
  assert.deepEqual(
    s.map((x) => x.argmaxId),
    [4, 0, 6],
  );
  assert.deepEqual(
    s.map((x) => x.rank),
    [1, 2, 2],
  );
  const z0 = rows[0].reduce((a, v) => a + Math.exp(v), 0);
  assert.ok(Math.abs(s[0].prob - Math.exp(5) / z0) < 1e-6);
  assert.deepEqual(s[1].parenLogits, [1, 2.5, 2, -1]);
});

test("logit difference against each counterfactual choice", () => {
  const strongest = scoreLogits(logits(rows), targets, parens); // default: strongest wrong count
  assert.deepEqual(
    strongest.map((x) => x.counterfactualId),
    [5, 6, 6],
  );
  assert.deepEqual(
    strongest.map((x) => x.logitDiff),
    [3, 0.5, -3],
  );
  const vs4 = scoreLogits(logits(rows), targets, parens, { counterfactual: { kind: "count", count: 4 } });
  assert.deepEqual(
    vs4.map((x) => x.logitDiff),
    [5, 3.5, 1],
  );
  const same = scoreLogits(logits(rows), targets, parens, { counterfactual: { kind: "count", count: 1 } });
  assert.ok(Number.isNaN(same[0].logitDiff), "correct vs itself is undefined");
  const corrupted = scoreLogits(logits(rows), targets, parens, { counterfactual: { kind: "tokens", ids: [5, 6, 6] } });
  assert.deepEqual(
    corrupted.map((x) => x.logitDiff),
    [3, 0.5, -3],
  );
  assert.deepEqual(logitDiffFor(logits(rows), [4, 5, 5], [0, 0, 7]), [5, -0.5, 1]);
});

test("per-count table: every correct n against every other count", () => {
  const t = logitDiffByCount(scoreLogits(logits(rows), targets, parens), { bootstrap: { seed: 1, samples: 100 } });
  assert.deepEqual(
    t.map((r) => [r.n, r.vsCount]),
    [
      [1, 2],
      [1, 3],
      [1, 4],
      [2, 1],
      [2, 3],
      [2, 4],
    ],
  );
  const r21 = t.find((r) => r.n === 2 && r.vsCount === 1)!;
  assert.equal(r21.logitDiff, (1.5 + 1) / 2);
  assert.equal(r21.winRate, 1);
  const r23 = t.find((r) => r.n === 2 && r.vsCount === 3)!;
  assert.equal(r23.logitDiff, (0.5 - 3) / 2);
  assert.equal(r23.winRate, 0.5);
  assert.equal(r23.lo, -3);
  assert.equal(r23.hi, 0.5);
});

test("summaries per n and pooled", () => {
  const rowsOut = summarizeScores(scoreLogits(logits(rows), targets, parens), { bootstrap: { seed: 0, samples: 200 } });
  assert.deepEqual(
    rowsOut.map((r) => r.group),
    ["n=1", "n=2", "all"],
  );
  const [n1, n2, all] = rowsOut;
  assert.equal(n1.count, 1);
  assert.equal(n1.accuracy, 1);
  assert.equal(n2.accuracy, 0);
  assert.equal(n2.parenAccuracy, 0.5);
  assert.equal(n2.logitDiff, -1.25);
  assert.equal(all.n, null);
  assert.equal(all.count, 3);
  assert.ok(Math.abs(all.accuracy - 1 / 3) < 1e-12);
  assert.ok(Math.abs(all.parenAccuracy - 2 / 3) < 1e-12);
  assert.ok(all.accuracyLo <= all.accuracy && all.accuracy <= all.accuracyHi);
  assert.equal(all.medianRank, 2);
});

test("last-position logits of a [batch, pos, vocab] tensor, and bad input", () => {
  const t = new Tensor(Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]), [2, 2, 3], ["batch", "pos", "vocab"]);
  assert.deepEqual(Array.from(lastPositionLogits(t).data), [3, 4, 5, 9, 10, 11]);
  assert.throws(
    () => scoreLogits(logits(rows), [{ n: 1 }], parens),
    (e: unknown) => e instanceof InputError && e.field === "targets",
  );
  assert.throws(
    () => scoreLogits(logits(rows), [{ n: 5 }, { n: 1 }, { n: 1 }], parens),
    (e: unknown) => e instanceof InputError && e.field === "labelId",
  );
  assert.throws(
    () => scoreLogits(logits(rows), targets, parens, { counterfactual: { kind: "count", count: 7 } }),
    (e: unknown) => e instanceof InputError && e.field === "counterfactual.count",
  );
});
