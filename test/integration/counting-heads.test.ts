import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import { generateDataset, generatePrompts, makeCorruptedPairs } from "../../lib/src/task/prompts";
import { parenRunTokens, parenTokenSets } from "../../lib/src/task/paren-tokens";
import { countingHeads } from "../../lib/src/analysis/counting-heads";
import { InputError } from "../../lib/src/core/errors";
import { plantParenHead, tinyStudyModel, unembedDirection } from "../helpers/planted-mechanisms";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

async function plantedModel(seed: number) {
  const { model, tok, dir } = await tinyStudyModel({ numLayers: 2 }, seed);
  dirs.push(dir);
  const parens = parenRunTokens(tok);
  const closeIds = [...parenTokenSets(tok).close.keys()];
  plantParenHead(model, 2, closeIds, tok.bosId!, unembedDirection(model, parens.ids[0]), 30); // L0H2 attends to ")" and writes ")"
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
  assert.ok(top.isCounting);
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
  assert.equal(top.role, "misleads"); // a counting head that pushes the wrong count on 3/4 of the prompts
  assert.ok(res.classification.countingHeads.includes("L0H2"));
  assert.ok(res.classification.misleading.includes("L0H2"));
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

test("on the authors' template (no ')' in the prompt) attention on '(' tracks the missing count; patching works on pairs", async () => {
  const { model, tok } = await plantedModel(12);
  const prompts = generatePrompts(tok, { template: "authors", perN: 4, seed: 3, ns: [1, 2, 3] }).prompts;
  const { pairs } = makeCorruptedPairs(tok, prompts);
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
  assert.equal(res.classification.criterion.signal, "attn_open");
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
  const loose = await countingHeads(model, prompts, { bootstrap: { samples: 100 } });
  const strict = await countingHeads(model, prompts, { bootstrap: { samples: 100 }, causalThreshold: 1 });
  assert.equal(strict.classification.causalThreshold, 1);
  for (const h of strict.heads) {
    if (Math.abs(h.causalEffect) < 1) assert.equal(h.causal, "neutral");
    else assert.equal(h.causal, loose.heads.find((x) => x.label === h.label)!.causal);
  }
  assert.ok(
    strict.heads.filter((h) => h.causal !== "neutral").length <=
      loose.heads.filter((h) => h.causal !== "neutral").length,
  );
  assert.notEqual(strict.heads.find((h) => h.label === "L0H2")!.causal, "neutral"); // the planted head's effect is large
});

test("padded mixed-length batches give the same numbers as one prompt at a time", async () => {
  const { model, tok } = await plantedModel(14);
  const prompts = generatePrompts(tok, { template: "partial", perN: 2, seed: 5 }).prompts;
  assert.ok(new Set(prompts.map((p) => p.length)).size > 2, "the prompts should differ in length");
  const { pairs } = makeCorruptedPairs(tok, prompts);
  const batched = await countingHeads(model, pairs, { bootstrap: { samples: 10 } });
  const single = await countingHeads(model, pairs, { bootstrap: { samples: 10 }, batchSize: 1 });
  // float32 sums in another order: patching fractions divide by a small gap, so compare relatively
  batched.causal.forEach((r, i) =>
    assert.ok(
      Math.abs(r.effect - single.causal[i].effect) < 2e-3 * Math.max(1, Math.abs(r.effect)),
      `${r.label} ${r.method} ${r.group}: ${r.effect} vs ${single.causal[i].effect}`,
    ),
  );
  batched.attention.forEach((r, i) => assert.ok(Math.abs(r.attnClose - single.attention[i].attnClose) < 1e-5));
});
