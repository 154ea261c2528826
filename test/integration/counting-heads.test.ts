import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import { plantParenHead, tinyStudyModel, unembedDirection } from "../helpers/planted-mechanisms";
import {
  generateDataset,
  generatePrompts,
  makeCorruptedPairs,
  DIGIT_REPLACEMENT,
  parenRunTokens,
  parenTokenSets,
  countingHeads,
  closedCountContrast,
  makeClosedCountPairs,
  headLogitLens,
  uniformAttentionBaseline,
  causalRole,
  countingFinding,
  countingHeadList,
  isCountingHead,
  promotionRole,
  firstPerN,
  pearson,
  InputError,
} from "../../lib/src";
import type { HeadCausalMethod } from "../../lib/src";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

async function plantedModel(
  seed: number,
  opts: { bosCarriesValue?: boolean; closeKeyScale?: Map<number, number> } = {},
) {
  const { model, tok, dir } = await tinyStudyModel({ numLayers: 2 }, seed);
  dirs.push(dir);
  const parens = parenRunTokens(tok);
  const closeIds = [...parenTokenSets(tok).close.keys()];
  plantParenHead(model, 2, closeIds, tok.bosId!, unembedDirection(model, parens.ids[0]), 30, opts); // L0H2 attends to ")" and writes ")"
  return { model, tok, parens };
}

test("a head planted to attend to ')' is ranked first, tracks nClosed, and promotes ')'", async () => {
  const { model, tok } = await plantedModel(11);
  const data = generateDataset(tok, { template: "partial", perN: { analysis: 6, reference: 3 }, seed: 1 });
  const res = await countingHeads(model, data.splits.analysis, {
    reference: data.splits.reference,
    bootstrap: { samples: 200 },
  });
  assert.deepEqual(res.metadata.methods, ["zero", "mean"]);
  const top = res.heads[0];
  assert.equal(top.label, "L0H2");
  assert.equal(top.countingRank, 1);
  assert.ok(top.countingR > 0.7, `r = ${top.countingR}`);
  assert.ok(top.countingLo > 0.3);
  assert.ok(isCountingHead(top, res.rule));
  // nearly all of its attention is on the ")" tokens and BOS
  const att = res.attention.filter((r) => r.label === "L0H2");
  assert.equal(att.length, 24);
  for (const r of att) assert.ok(r.attnClose > 0.4 && r.attnOpen < 0.05, `${r.attnClose} ${r.attnOpen}`);
  // its output promotes ")" on every prompt: right only when one paren is missing
  for (const r of att) assert.equal(r.promotedCount, 1);
  const promo = (group: string) => res.promotion.find((r) => r.label === "L0H2" && r.group === group)!;
  assert.equal(promo("n=1").promoteRate, 1);
  assert.equal(promo("n=3").promoteRate, 0);
  assert.deepEqual(promo("all").promotedShare, [1, 0, 0, 0]);
  assert.equal(promo("all").promoteRate, 0.25);
  // it writes ")" whatever n is: the authors' per-subtask rule says it promotes n = 1 only, and it is count-agnostic
  assert.match(promotionRole(top, res, res.rule)!, /^promotes n = 1 \(1-general\); count-agnostic/);
  assert.equal(promo("n=1").promoteRateCapped, 1); // ")" also ranks within the top 100 of the vocabulary
  assert.ok(Number.isFinite(top.partialR));
  // it follows nClosed within prompts of one length: the length-stratified null (max-|r| over all heads) rejects chance
  assert.ok(top.permutationP <= 0.05, `permutation p = ${top.permutationP}`);
  assert.equal(res.baseline.permutationNull!.permutations, 1000);
  assert.ok(countingHeadList(res.heads, res.rule).some((h) => h.label === "L0H2"));
  // causally: ablating it lowers LD where ")" is right (n = 1) and raises it elsewhere
  const zero = (group: string) =>
    res.causal.find((r) => r.label === "L0H2" && r.method === "zero" && r.group === group)!;
  assert.ok(zero("n=1").effect > 1, `n=1: ${zero("n=1").effect}`);
  assert.ok(zero("n=3").effect < -1, `n=3: ${zero("n=3").effect}`);
  const n1 = res.causal.filter((r) => r.method === "zero" && r.group === "n=1");
  assert.equal(n1.reduce((a, b) => (b.effect > a.effect ? b : a)).label, "L0H2");
  // tidy shapes: 2 layers × 4 heads
  assert.equal(res.heads.length, 8);
  assert.equal(res.correlations.length, 8 * 4);
  assert.equal(res.promotion.length, 8 * 5);
  assert.equal(res.causal.length, 8 * 5 * 2);
});

test("attention knockout: silences a head that reads ')' values, leaves one whose BOS sink writes the same", async () => {
  const effects = async (bosCarriesValue: boolean) => {
    const { model, tok } = await plantedModel(11, { bosCarriesValue });
    const data = generateDataset(tok, { template: "partial", perN: { analysis: 4, reference: 2 }, seed: 1 });
    const res = await countingHeads(model, data.splits.analysis, {
      methods: ["zero", "knockout"],
      bootstrap: { samples: 100 },
      permutationNull: false,
    });
    const at = (m: string) => res.causal.find((r) => r.label === "L0H2" && r.method === m && r.group === "n=1")!.effect;
    assert.ok(Number.isNaN(res.heads[0].permutationP)); // skipped
    return { zero: at("zero"), knockout: at("knockout"), res };
  };
  // the value comes from the ")" tokens only: without them the head writes nothing, exactly as zeroing it
  const reads = await effects(false);
  assert.ok(reads.zero > 1, `zero ${reads.zero}`);
  assert.ok(Math.abs(reads.knockout - reads.zero) < 1e-3 * Math.abs(reads.zero), `${reads.knockout} vs ${reads.zero}`);
  assert.match(reads.res.metadata.notes.knockout, /renormalised/);
  // BOS writes the same value as the ")" tokens: removing them changes little of what the head writes
  const sink = await effects(true);
  assert.ok(sink.zero > 1, `zero ${sink.zero}`);
  assert.ok(Math.abs(sink.knockout) < 0.2 * sink.zero, `knockout ${sink.knockout} vs zero ${sink.zero}`);
});

test("the head's own logit lens: a head planted to write ')' has ')' on top of the whole vocabulary at every n", async () => {
  const { model, tok, parens } = await plantedModel(11);
  const data = generateDataset(tok, { template: "partial", perN: { analysis: 4, reference: 2 }, seed: 1 });
  const lens = await headLogitLens(
    model,
    data.splits.analysis,
    [
      { layer: 0, head: 2 },
      { layer: 1, head: 0 },
    ],
    { topK: 3 },
  );
  assert.equal(lens.length, 2 * 5 * 3); // 2 heads × (4 n + all) × top 3
  for (const g of ["n=1", "n=2", "n=3", "n=4", "all"]) {
    const top = lens.find((r) => r.label === "L0H2" && r.group === g && r.rank === 1)!;
    assert.equal(top.tokenId, parens.ids[0]);
    assert.equal(top.token, ")");
    assert.ok(top.logit > 2, `${g}: ${top.logit}`);
  }
  const other = lens.filter((r) => r.label === "L1H0" && r.group === "all");
  assert.ok(other[0].logit >= other[1].logit && other[1].logit >= other[2].logit);
  await assert.rejects(() => headLogitLens(model, data.splits.analysis, [{ layer: 2, head: 0 }]), InputError);
});

test("closed-count pairs: a head that counts ')' tokens does not move, one that weighs '))' over ')' does", async () => {
  const tok0 = (await plantedModel(11)).tok;
  const sets = parenTokenSets(tok0);
  const data = generateDataset(tok0, { template: "partial", perN: { analysis: 5, reference: 2 }, seed: 1 });
  const { pairs } = makeClosedCountPairs(tok0, data.splits.analysis);
  assert.ok(pairs.length >= 10);
  const delta = async (closeKeyScale?: Map<number, number>) => {
    const { model } = await plantedModel(11, { closeKeyScale });
    const rows = await closedCountContrast(model, pairs, { bootstrap: { samples: 200 } });
    return rows.find((r) => r.label === "L0H2" && r.group === "all")!;
  };
  // same number of ")" tokens in both prompts (")" became "))"): a token counter sees no change
  const tokens = await delta();
  assert.ok(Math.abs(tokens.effect) < 0.02, `token counter moved by ${tokens.effect}`);
  // a head whose key grows with the parens in the token follows the number closed
  const scale = new Map([...sets.close.entries()].map(([id, count]) => [id, 1 + 0.15 * (count - 1)]));
  const parensCounted = await delta(scale);
  assert.ok(
    parensCounted.lo > 0.02,
    `paren counter: ${parensCounted.effect} [${parensCounted.lo}, ${parensCounted.hi}]`,
  );
});

test("on the authors' template (no ')' in the prompt) attention on '(' tracks the missing count; patching works on pairs", async () => {
  const { model, tok } = await plantedModel(12);
  const prompts = generatePrompts(tok, { template: "authors", perN: 4, seed: 3, ns: [1, 2, 3] }).prompts;
  const { pairs } = makeCorruptedPairs(tok, prompts, { strategies: DIGIT_REPLACEMENT }); // same-length pairs: the test tokenizer keeps every "(" apart, so the call-boundary insertion would add a token (right-aligned pairs, test/integration/right-aligned-pairs.test.ts)
  const res = await countingHeads(model, pairs, {
    criterion: { signal: "attn_open", target: "nMissing" },
    bootstrap: { samples: 100 },
    causalPerN: 2,
  });
  assert.deepEqual(res.metadata.methods, ["zero", "patch"]);
  // causal runs on the first 2 prompts of each n; attention and promotion on all 12
  assert.equal(res.metadata.promptCount, 12);
  assert.equal(res.metadata.causalPromptCount, 6);
  assert.ok(res.causal.filter((r) => r.group === "all").every((r) => r.count === 6));
  assert.ok(res.promotion.filter((r) => r.group === "all").every((r) => r.count === 12));
  const close = res.correlations.find(
    (r) => r.label === "L0H2" && r.signal === "attn_close" && r.target === "nClosed",
  )!;
  assert.ok(Number.isNaN(close.r), "nClosed is 0 everywhere: the correlation is undefined, not 0");
  // the planted head puts its attention on BOS (no ")" here), so it is not the one tracking "("
  assert.ok(res.attention.filter((r) => r.label === "L0H2").every((r) => r.attnClose === 0));
  const patch = res.causal.filter((r) => r.method === "patch" && r.group === "all");
  assert.equal(patch.length, 8);
  assert.ok(patch.every((r) => r.unit === "fraction" && Number.isFinite(r.effect)));
  assert.equal(res.metadata.criterion.signal, "attn_open");
});

test("bad input is refused", async () => {
  const { model, tok } = await plantedModel(13);
  const prompts = generatePrompts(tok, { template: "partial", perN: 1, seed: 3 }).prompts;
  await assert.rejects(countingHeads(model, []), (e: unknown) => e instanceof InputError && e.field === "prompts");
  await assert.rejects(
    countingHeads(model, prompts, { methods: ["mean"] }),
    (e: unknown) => e instanceof InputError && e.field === "reference",
  );
  await assert.rejects(
    countingHeads(model, prompts, { methods: ["patch"] }),
    (e: unknown) => e instanceof InputError && e.field === "pairs.corrupted",
  );
});

test("a causal threshold turns small but consistent effects neutral", async () => {
  const { model, tok } = await plantedModel(11);
  const prompts = generatePrompts(tok, { template: "partial", perN: 3, seed: 1 }).prompts;
  const loose = await countingHeads(model, prompts, { bootstrap: { samples: 100 }, causalThreshold: 0 });
  const strict = await countingHeads(model, prompts, { bootstrap: { samples: 100 }, causalThreshold: 1 });
  assert.equal(strict.rule.causalThreshold, 1);
  const role = (h: { label: string }, res: typeof strict) =>
    causalRole(
      res.heads.find((x) => x.label === h.label)!,
      res.rule.causalThreshold,
    );
  for (const h of strict.heads) {
    if (Math.abs(h.causalEffect) < 1) assert.equal(role(h, strict), "neutral");
    else assert.equal(role(h, strict), role(h, loose));
  }
  const active = (res: typeof strict) => res.heads.filter((h) => role(h, res) !== "neutral").length;
  assert.ok(active(strict) <= active(loose));
  assert.notEqual(role({ label: "L0H2" }, strict), "neutral"); // the planted head's effect is large
});

test("countingHeads returns the rule that decides the verdict: uniform baseline and causal threshold", async () => {
  const { model, tok } = await plantedModel(11);
  const prompts = generatePrompts(tok, { template: "partial", perN: 4, seed: 1 }).prompts;
  const sets = parenTokenSets(tok);
  const res = await countingHeads(model, prompts, { causalPerN: 2, bootstrap: { samples: 100 } });
  // the baseline: r of the share of ")" tokens with the number already closed
  const share = prompts.map((p) => p.promptIds.filter((id) => sets.close.has(id)).length / p.length);
  const uniformR = pearson(
    share,
    prompts.map((p) => p.nClosed),
  );
  assert.equal(res.baseline.uniformR, uniformR);
  assert.equal(res.rule.baselineR, uniformR);
  assert.equal(uniformAttentionBaseline(prompts, sets, { signal: "attn_close", target: "nClosed" }), uniformR);
  // the causal threshold: 5 % of |mean clean LD| on the causal prompts (the first 2 per n)
  const causal = firstPerN(prompts, 2, (p) => p.n);
  assert.deepEqual(res.baseline.causalPrompts, causal);
  const meanLd = causal.reduce((a, i) => a + res.baseline.cleanLogitDiff[i], 0) / causal.length;
  assert.equal(res.baseline.meanCausalCleanLogitDiff, meanLd);
  assert.equal(res.rule.causalThreshold, 0.05 * Math.abs(meanLd));
  assert.deepEqual(
    { countingThreshold: res.rule.countingThreshold, promoteThreshold: res.rule.promoteThreshold },
    { countingThreshold: 0.5, promoteThreshold: 0.7 },
  );
  // countingHeads + countingFinding reproduce the verdict with no other input
  const finding = countingFinding(res, res.rule);
  assert.equal(finding.numbers.countingHeads, countingHeadList(res.heads, res.rule).length);
  assert.equal(finding.numbers.baselineR, uniformR);
});

test("padded mixed-length batches give the same numbers as one prompt at a time", async () => {
  const { model, tok } = await plantedModel(14, { bosCarriesValue: false });
  const prompts = generatePrompts(tok, { template: "partial", perN: 2, seed: 5 }).prompts;
  assert.ok(new Set(prompts.map((p) => p.length)).size > 2, "the prompts should differ in length");
  const { pairs } = makeCorruptedPairs(tok, prompts, { strategies: DIGIT_REPLACEMENT }); // same-length pairs: the test tokenizer keeps every "(" apart, so the call-boundary insertion would add a token (right-aligned pairs, test/integration/right-aligned-pairs.test.ts)
  const methods: HeadCausalMethod[] = ["zero", "patch", "knockout"]; // knockout maps each prompt's last row under left padding
  const batched = await countingHeads(model, pairs, { methods, bootstrap: { samples: 10 } });
  const single = await countingHeads(model, pairs, { methods, bootstrap: { samples: 10 }, batchSize: 1 });
  assert.ok(batched.causal.some((r) => r.method === "knockout" && Math.abs(r.effect) > 0.1));
  // float32 sums in another order: patching fractions divide by a small gap, so compare relatively
  batched.causal.forEach((r, i) =>
    assert.ok(
      Math.abs(r.effect - single.causal[i].effect) < 2e-3 * Math.max(1, Math.abs(r.effect)),
      `${r.label} ${r.method} ${r.group}: ${r.effect} vs ${single.causal[i].effect}`,
    ),
  );
  batched.attention.forEach((r, i) => assert.ok(Math.abs(r.attnClose - single.attention[i].attnClose) < 1e-5));
});
