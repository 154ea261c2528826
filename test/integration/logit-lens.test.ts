import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import { plantConstantMlp, tinyStudyModel, unembedDirection } from "../helpers/planted-mechanisms";
import {
  generatePrompts,
  parenRunTokens,
  lensPoints,
  logitLens,
  PromptScore,
  scoreLogits,
  InputError,
} from "../../lib/src";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

test("the lens at the last layer's output reproduces the model's own logits (both normalisations)", async () => {
  const { model, tok, dir } = await tinyStudyModel();
  dirs.push(dir);
  const parens = parenRunTokens(tok);
  const prompts = generatePrompts(tok, { template: "authors", perN: 3, seed: 1 }).prompts;
  const own = await logitLens(model, prompts, { bootstrap: { samples: 50 } });
  const cached = await logitLens(model, prompts, { normalisation: "cached-final", bootstrap: { samples: 50 } });
  assert.deepEqual(
    own.metadata.points.map((p) => p.point),
    ["0 pre", "0 post", "1 pre", "1 post", "2 pre", "2 post"],
  );
  assert.equal(own.metadata.normalisation, "own-rms");
  assert.equal(cached.metadata.normalisation, "cached-final");
  // reference: the model's logits scored directly
  const direct: PromptScore[] = [];
  for (const p of prompts) direct.push(scoreLogits(await model.run([p.promptIds]), [p], parens)[0]);
  for (const res of [own, cached]) {
    const last = res.perPrompt.filter((r) => r.point === "2 post");
    assert.equal(last.length, prompts.length);
    last.forEach((r, i) => {
      assert.ok(Math.abs(r.logitDiff - direct[i].logitDiff) < 1e-3, `${r.logitDiff} vs ${direct[i].logitDiff}`);
      assert.equal(r.correct, direct[i].correct);
      assert.equal(r.rank, direct[i].rank);
    });
  }
  // "L post" is the next layer's "L pre": the same residual, the same numbers
  const at = (point: string) => own.perPrompt.filter((r) => r.point === point).map((r) => r.logitDiff);
  assert.deepEqual(at("0 post"), at("1 pre"));
  // rows: per n and pooled, for every point
  assert.equal(own.rows.length, 6 * 5);
  assert.deepEqual(
    own.rows.filter((r) => r.point === "1 pre").map((r) => r.group),
    ["n=1", "n=2", "n=3", "n=4", "all"],
  );
});

test("a layer planted to push the label makes the lens jump at that layer", async () => {
  const { model, tok, dir } = await tinyStudyModel({}, 5);
  dirs.push(dir);
  const parens = parenRunTokens(tok);
  const prompts = generatePrompts(tok, { template: "authors", perN: 8, seed: 2, ns: [1] }).prompts; // label ")"
  plantConstantMlp(model, 1, unembedDirection(model, parens.ids[0]), 60);
  const res = await logitLens(model, prompts, { bootstrap: { samples: 50 } });
  const pooled = (point: string) => res.rows.find((r) => r.point === point && r.group === "all")!;
  for (const point of ["0 pre", "0 post", "1 pre"]) {
    assert.ok(pooled(point).logitDiff < 2, `${point}: ${pooled(point).logitDiff} before the planted layer`);
  }
  for (const point of ["1 post", "2 pre", "2 post"]) {
    assert.ok(pooled(point).logitDiff > 4, `${point}: ${pooled(point).logitDiff} from the planted layer on`);
    assert.equal(pooled(point).parenAccuracy, 1);
    assert.equal(pooled(point).accuracy, 1);
  }
  const jump = pooled("1 post").logitDiff - pooled("1 pre").logitDiff;
  for (let k = 1; k < 6; k++) {
    if (k === 3) continue;
    const [a, b] = [lensPoints(3)[k - 1].point, lensPoints(3)[k].point];
    assert.ok(pooled(b).logitDiff - pooled(a).logitDiff < jump, `the biggest step is at 1 post, not ${b}`);
  }
  // decoding only the paren runs gives the same logit differences, without vocabulary accuracy
  const sparse = await logitLens(model, prompts, { fullVocab: false, bootstrap: { samples: 50 } });
  sparse.perPrompt.forEach((r, i) => assert.ok(Math.abs(r.logitDiff - res.perPrompt[i].logitDiff) < 1e-4));
  assert.ok(sparse.rows.every((r) => Number.isNaN(r.accuracy)));
  assert.ok(sparse.perPrompt.every((r) => r.correct === null));
});

test("bad input is refused with a typed error", async () => {
  const { model, tok, dir } = await tinyStudyModel({ numLayers: 1 });
  dirs.push(dir);
  const prompts = generatePrompts(tok, { template: "authors", perN: 1, seed: 2, ns: [1] }).prompts;
  await assert.rejects(logitLens(model, []), (e: unknown) => e instanceof InputError && e.field === "prompts");
  await assert.rejects(
    logitLens(model, prompts, { normalisation: "nope" as never }),
    (e: unknown) => e instanceof InputError && e.field === "normalisation",
  );
  await assert.rejects(
    logitLens(model, prompts, { counterfactual: { kind: "tokens", ids: [1, 2] } }),
    (e: unknown) => e instanceof InputError && e.field === "counterfactual.ids",
  );
});
