import { test } from "node:test";
import assert from "node:assert/strict";
import { bootstrapIndices } from "../../lib/src/analysis/bootstrap";
import {
  bootstrapGapFraction,
  bootstrapMean,
  bootstrapPearson,
  bootstrapProportion,
  binomialInterval,
  binomialCdf,
  normalQuantile,
  partialCorrelation,
  meanOf,
  medianOf,
  pearson,
  quantile,
  stdOf,
  seededRandom,
  InputError,
} from "../../lib/src";

test("descriptive statistics on values with known answers", () => {
  assert.equal(meanOf([1, 2, 3, 6]), 3);
  assert.ok(Number.isNaN(meanOf([])));
  assert.ok(Math.abs(stdOf([2, 4, 4, 4, 5, 5, 7, 9]) - 2.138089935) < 1e-8);
  assert.equal(quantile([4, 1, 3, 2], 0.5), 2.5); // numpy.quantile([1,2,3,4], .5)
  assert.equal(quantile([1, 2, 3, 4, 5], 0.25), 2);
  assert.equal(medianOf([9, 1, 5]), 5);
  assert.ok(Math.abs(pearson([1, 2, 3, 4], [2, 4, 6, 8]) - 1) < 1e-12);
  assert.ok(Math.abs(pearson([1, 2, 3, 4], [8, 6, 4, 2]) + 1) < 1e-12);
  assert.ok(Math.abs(pearson([1, 2, 3], [1, 3, 2]) - 0.5) < 1e-12);
  assert.ok(Number.isNaN(pearson([1, 2, 3], [5, 5, 5])), "correlation with a constant is undefined");
});

test("bootstrap intervals are deterministic for a seed and bracket the estimate", () => {
  const rand = seededRandom(1);
  const xs = Array.from({ length: 50 }, () => rand() * 10);
  const a = bootstrapMean(xs, { seed: 5, samples: 500 });
  const b = bootstrapMean(xs, { seed: 5, samples: 500 });
  const c = bootstrapMean(xs, { seed: 6, samples: 500 });
  assert.deepEqual(a, b);
  assert.notDeepEqual([a.lo, a.hi], [c.lo, c.hi]);
  assert.equal(a.estimate, meanOf(xs));
  assert.ok(a.lo < a.estimate && a.estimate < a.hi);
  assert.equal(a.samples, 500);
  assert.equal(a.level, 0.95);
  // a wider level gives a wider interval
  const w = bootstrapMean(xs, { seed: 5, samples: 500, level: 0.99 });
  assert.ok(w.lo <= a.lo && w.hi >= a.hi);
});

test("coverage sanity: the 90% interval of a mean covers the true mean about 90% of the time", () => {
  const rand = seededRandom(42);
  let covered = 0;
  const trials = 200;
  for (let t = 0; t < trials; t++) {
    const xs = Array.from({ length: 40 }, () => rand()); // uniform(0, 1), true mean 0.5
    const ci = bootstrapMean(xs, { seed: t, samples: 200, level: 0.9 });
    if (ci.lo <= 0.5 && 0.5 <= ci.hi) covered++;
  }
  // percentile bootstrap slightly under-covers at n = 40; a broken one is far off
  assert.ok(covered / trials > 0.8 && covered / trials < 0.97, `coverage ${covered / trials}`);
});

test("proportion, correlation and the general form", () => {
  const p = bootstrapProportion([true, true, true, false], { seed: 1 });
  assert.equal(p.estimate, 0.75);
  assert.ok(p.lo >= 0 && p.hi <= 1 && p.lo <= 0.75 && p.hi >= 0.75);
  const all = bootstrapProportion([true, true, true], { seed: 1 });
  assert.deepEqual([all.lo, all.hi], [1, 1]);
  const xs = [1, 2, 3, 4, 5, 6, 7, 8];
  const r = bootstrapPearson(
    xs,
    xs.map((x) => 2 * x + 1),
    { seed: 2 },
  );
  assert.ok(Math.abs(r.estimate - 1) < 1e-12 && Math.abs(r.lo - 1) < 1e-9);
  // a constant variable: undefined everywhere, reported as NaN, not as 0
  const c = bootstrapPearson(
    xs,
    xs.map(() => 3),
    { seed: 2 },
  );
  assert.ok(Number.isNaN(c.estimate) && Number.isNaN(c.lo) && c.samples === 0);
  const med = bootstrapIndices(5, (idx) => medianOf(Array.from(idx, (i) => [5, 1, 4, 2, 3][i])), {
    seed: 3,
    samples: 100,
  });
  assert.equal(med.estimate, 3);
  assert.throws(() => bootstrapMean([1], { samples: 0 }), InputError);
  assert.throws(() => bootstrapMean([1], { level: 1 }), InputError);
  assert.throws(() => bootstrapPearson([1, 2], [1]), InputError);
});

test("bootstrapGapFraction: the fraction of the clean − corrupted gap, as a ratio of means", () => {
  const clean = [3, 2, 4];
  const corrupted = [-1, -2, 0];
  const patched = [1, 0, 2]; // each restores half of its gap
  const restored = bootstrapGapFraction(clean, corrupted, patched, [0, 1, 2], "restored", { seed: 0, samples: 200 });
  assert.equal(restored.estimate, 0.5);
  assert.equal(restored.lo, 0.5); // every resample restores half too
  const destroyed = bootstrapGapFraction(clean, corrupted, patched, [0, 2], "destroyed", { seed: 0 });
  assert.equal(destroyed.estimate, (3 + 4 - 1 - 2) / (3 + 4 - -1 - 0));
  // the same numbers as the general form with the statistic written out
  const byHand = bootstrapIndices(
    2,
    (idx) => {
      let cl = 0,
        co = 0,
        pa = 0;
      for (const j of idx) {
        const i = [0, 2][j];
        cl += clean[i];
        co += corrupted[i];
        pa += patched[i];
      }
      return (cl - pa) / (cl - co);
    },
    { seed: 0 },
  );
  assert.deepEqual(destroyed, byHand);
});

test("pearson refuses lists of different lengths with an InputError", () => {
  assert.throws(
    () => pearson([1, 2], [1]),
    (e: unknown) => e instanceof InputError,
  );
});

test("exact binomial intervals match R's binom.test and do not collapse at 100 %", () => {
  const close = (a: number, b: number, tol = 1e-4) => assert.ok(Math.abs(a - b) < tol, `${a} vs ${b}`);
  const all = binomialInterval(100, 100); // binom.test(100, 100): 0.9637833 1
  close(all.lo, 0.9637833);
  assert.equal(all.hi, 1);
  const some = binomialInterval(88, 100); // binom.test(88, 100): 0.7997643 0.9364311
  close(some.lo, 0.7997643);
  close(some.hi, 0.9364311);
  const none = binomialInterval(0, 100);
  assert.equal(none.lo, 0);
  close(none.hi, 0.0362167);
  const w = binomialInterval(50, 100, 0.95, "wilson"); // prop.test(50, 100, correct = FALSE): 0.4038315 0.5961685
  close(w.lo, 0.4038315);
  close(w.hi, 0.5961685);
  close(normalQuantile(0.975), 1.959964, 1e-6);
  close(binomialCdf(3, 10, 0.5), 176 / 1024, 1e-12);
  assert.throws(() => binomialInterval(5, 3), InputError);
  // the percentile bootstrap of the same 100 / 100 is the degenerate [1, 1]
  const boot = bootstrapProportion(new Array(100).fill(true));
  assert.deepEqual([boot.lo, boot.hi], [1, 1]);
});

test("partial correlation removes a shared confound (length) and keeps a real dependence", () => {
  const rand = seededRandom(3);
  const length = Array.from({ length: 400 }, () => 10 + Math.floor(rand() * 20));
  const count = length.map((l) => l / 5 + rand()); // the count grows with length
  const lengthOnly = length.map((l) => l * 0.03 + 0.1 * rand()); // attention that tracks length only
  const counting = count.map((c) => c * 0.2 + 0.05 * rand()); // attention that tracks the count itself
  assert.ok(pearson(lengthOnly, count) > 0.8, "raw r is high for the length-only head");
  assert.ok(Math.abs(partialCorrelation(lengthOnly, count, [length])) < 0.15);
  assert.ok(partialCorrelation(counting, count, [length]) > 0.8);
  assert.throws(() => partialCorrelation([1, 2], [1, 2, 3], []), InputError);
});
