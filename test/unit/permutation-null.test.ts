// The length-stratified permutation null of the counting criterion, on planted signals: a head that
// follows the count within a length must pass; a head whose attention is a function of prompt length
// only must fail, even where the linear partial correlation lets it through.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  HeadRow,
  InputError,
  countingFinding,
  isCountingHead,
  lengthControlFailures,
  partialCorrelation,
  pearson,
  seededRandom,
  stratifiedPermutationNull,
} from "../../lib/src";

/** 240 prompts where nClosed and length correlate strongly (as on the partly-closed template). */
function confoundedPrompts() {
  const rand = seededRandom(4);
  const nClosed: number[] = [];
  const length: number[] = [];
  for (let i = 0; i < 240; i++) {
    const c = 1 + Math.floor(rand() * 6);
    nClosed.push(c);
    length.push(20 + 2 * c + Math.floor(rand() * 6) + (c >= 5 ? 6 : 0)); // lengths overlap across counts, non-linearly
  }
  return { nClosed, length, rand };
}

/** A length-only head that knows the count as well as the length can tell: the mean nClosed of its length. */
function lengthMeanHead(nClosed: number[], length: number[]): number[] {
  const byLength = new Map<number, number[]>();
  length.forEach((L, i) => byLength.set(L, [...(byLength.get(L) ?? []), nClosed[i]]));
  return length.map((L) => byLength.get(L)!.reduce((a, b) => a + b, 0) / byLength.get(L)!.length);
}

test("a planted counting signal passes the length-stratified null; a length-only one gets p = 1", () => {
  const { nClosed, length, rand } = confoundedPrompts();
  assert.ok(pearson(nClosed, length) > 0.8);
  const counting = nClosed.map((c) => 0.1 * c + 0.02 * rand()); // follows the count at any length
  const lengthOnly = length.map((L) => 0.01 * L); // follows the length only
  const stepInLength = lengthMeanHead(nClosed, length); // non-linear in length only
  const nul = stratifiedPermutationNull([counting, lengthOnly, stepInLength], nClosed, length, {
    permutations: 200,
    seed: 1,
  });
  assert.ok(nul.r[1] > 0.8, `length-only r = ${nul.r[1]}`); // the raw criterion is fooled
  assert.ok(nul.p[0] <= 1 / 201 + 1e-12, `counting p = ${nul.p[0]}`);
  assert.equal(nul.p[1], 1);
  assert.equal(nul.pRaw[1], 1);
  assert.equal(nul.p[2], 1);
  assert.ok(nul.maxAbsR95 < nul.r[0]);
  // the linear partial r removes the linear length-only head, not the non-linear one: the null catches both
  assert.ok(!(Math.abs(partialCorrelation(lengthOnly, nClosed, [length])) >= 0.1)); // NaN: nothing left
  assert.ok(Math.abs(partialCorrelation(stepInLength, nClosed, [length])) > 0.3);
  // same seed → same p; a constant signal has no r and no p
  assert.deepEqual(stratifiedPermutationNull([counting], nClosed, length, { permutations: 50, seed: 3 }).p, [
    stratifiedPermutationNull([counting], nClosed, length, { permutations: 50, seed: 3 }).p[0],
  ]);
  assert.ok(Number.isNaN(stratifiedPermutationNull([nClosed.map(() => 1)], nClosed, length).p[0]));
  assert.throws(() => stratifiedPermutationNull([counting], nClosed, length.slice(1)), InputError);
  assert.throws(() => stratifiedPermutationNull([counting], nClosed, length, { permutations: 0 }), InputError);
});

test("the counting rule rejects the length-only head by the permutation null and says so", () => {
  const { nClosed, length } = confoundedPrompts();
  const step = lengthMeanHead(nClosed, length);
  const nul = stratifiedPermutationNull([step], nClosed, length, { permutations: 200, seed: 1 });
  const row = (label: string, p: number, partialR: number): HeadRow => ({
    label,
    countingR: nul.r[0],
    countingLo: nul.r[0] - 0.05,
    countingHi: nul.r[0] + 0.05,
    partialR,
    permutationP: p,
    promoteRate: 0,
    causalEffect: NaN,
    causalLo: NaN,
    causalHi: NaN,
  });
  const lengthHead = row("L1H1", nul.p[0], partialCorrelation(step, nClosed, [length]));
  assert.ok(Math.abs(lengthHead.partialR!) >= 0.3); // the partial-r control alone would accept it
  assert.equal(isCountingHead(lengthHead), false);
  assert.deepEqual(lengthControlFailures(lengthHead), ["permutation null"]);
  assert.equal(isCountingHead({ ...lengthHead, permutationP: NaN }), true); // not computed → not applied
  const f = countingFinding({ heads: [lengthHead], promotion: [] });
  assert.equal(f.verdict, "does not replicate");
  assert.equal(f.numbers.failPermutationNull, 1);
  assert.match(f.evidence.join("\n"), /L1H1: .*permutation p = 1\.000 — fails the permutation null/);
  assert.equal(isCountingHead({ ...lengthHead, permutationP: 0.01 }), true);
});
