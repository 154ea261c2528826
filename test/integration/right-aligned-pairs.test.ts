// Right-aligned clean/corrupted pairs: the authors' corruption on a tokenizer that keeps "((" apart
// (the test tokenizer) adds a token, so the pair is aligned from the end. These tests patch such
// pairs on a tiny random model and check what must hold whatever the weights.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import { tinyStudyModel } from "../helpers/planted-mechanisms";
import {
  CALL_BOUNDARY,
  InputError,
  Tensor,
  checkPromptPairs,
  countingHeads,
  generateDataset,
  makeCorruptedPairs,
  pairInputs,
  patchFrom,
  patchWhere,
  patchingGrid,
  sublayerEffects,
} from "../../lib/src";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

async function rightAlignedSetup() {
  const { model, tok, dir } = await tinyStudyModel({}, 7);
  dirs.push(dir);
  const data = generateDataset(tok, {
    template: "authors",
    perN: { analysis: 3, reference: 2 },
    seed: 7,
    ns: [1, 2, 3],
  });
  const { pairs } = makeCorruptedPairs(tok, data.splits.analysis, { strategies: CALL_BOUNDARY, seed: 3 });
  return { model, tok, data, pairs };
}

test("the authors' pairs on a tokenizer that keeps '((' apart are right-aligned: one more token, same tokens after the site", async () => {
  const { pairs } = await rightAlignedSetup();
  assert.equal(pairs.length, 9);
  for (const p of pairs) {
    assert.equal(p.alignment, "right-aligned");
    assert.equal(p.corrupted.promptIds.length, p.clean.promptIds.length + 1);
  }
});

test("patching the clean residual at every right-aligned position restores the clean logits; by index it does not", async () => {
  const { model, pairs } = await rightAlignedSetup();
  const L = model.config.numLayers;
  const hook = `blocks.${L - 1}.hook_resid_post`;
  const idx = pairs.map((_, i) => i).filter((i) => pairs[i].clean.n === 2);
  const inp = pairInputs(pairs, idx); // both sides left-padded to one width
  assert.equal(inp.alignment, "right-aligned");
  const clean = await model.runWithCache(inp.clean, { names: [hook], logitsAt: "last" });
  const unpadded = await model.run(
    idx.map((i) => pairs[i].clean.promptIds),
    { logitsAt: "last" },
  );
  for (const positions of ["all", "last"] as const) {
    const patched = await model.runWithHooks(
      inp.corrupted,
      [patchFrom(hook, clean.cache, patchWhere(positions, inp))],
      {
        logitsAt: "last",
      },
    );
    let worst = 0;
    for (let k = 0; k < patched.data.length; k++) worst = Math.max(worst, Math.abs(patched.data[k] - unpadded.data[k]));
    assert.ok(worst < 1e-4, `${positions}: patched logits differ from clean by ${worst}`);
  }
  // index for index (left-aligned: the clean prompts padded on the right) the last position gets a wrong token's residual
  const leftAligned = await model.runWithCache(
    {
      ...inp.clean,
      ids: idx.map((i) => [...pairs[i].clean.promptIds, 0]),
      attentionMask: idx.map((i) => [...pairs[i].clean.promptIds.map(() => 1), 0]),
      positions: idx.map((i) => [...pairs[i].clean.promptIds.map((_, t) => t), pairs[i].clean.promptIds.length - 1]),
      padding: "right",
    },
    { names: [hook], logitsAt: "all" },
  );
  const misaligned = await model.runWithHooks(
    inp.corrupted,
    [patchFrom(hook, leftAligned.cache.get(hook), { positions: [-1] })],
    {
      logitsAt: "last",
    },
  );
  let moved = 0;
  for (let k = 0; k < misaligned.data.length; k++)
    moved = Math.max(moved, Math.abs(misaligned.data[k] - unpadded.data[k]));
  assert.ok(moved > 1e-2, `index-for-index patching should not restore the clean logits (${moved})`);
});

test("a position only the longer prompt has is never patched: the source's pad rows do not matter", async () => {
  const { model, pairs } = await rightAlignedSetup();
  const hook = "blocks.0.hook_resid_pre";
  const idx = pairs.map((_, i) => i).filter((i) => pairs[i].clean.n === 3);
  const inp = pairInputs(pairs, idx);
  const src = (await model.runWithCache(inp.clean, { names: [hook], logitsAt: "last" })).cache.get(hook); // [batch, width, d_model]
  const [B, W, D] = src.shape;
  const garbage = src.clone();
  for (let b = 0; b < B; b++) for (let d = 0; d < D; d++) garbage.data[(b * W + 0) * D + d] = 50; // the clean pad row
  const run = (t: Tensor, where: { positions?: number[] }) =>
    model.runWithHooks(inp.corrupted, [patchFrom(hook, t, where)], { logitsAt: "last" });
  const a = await run(src, patchWhere("all", inp));
  const b = await run(garbage, patchWhere("all", inp));
  assert.deepEqual([...a.data], [...b.data]);
  assert.deepEqual(
    patchWhere("all", inp).positions,
    Array.from({ length: inp.shared }, (_, k) => k - inp.shared),
  );
  // patching whole rows would write the pad row into the corrupted prompt's first token
  const whole = await run(garbage, {});
  assert.notDeepEqual([...whole.data], [...b.data]);
});

test("a pair of different token counts must say it is right-aligned; the error names the pair", async () => {
  const { model, pairs } = await rightAlignedSetup();
  const V = model.config.vocabSize;
  assert.equal(checkPromptPairs(pairs, V), true);
  const unmarked = pairs.map(({ clean, corrupted }) => ({ clean, corrupted }));
  assert.throws(
    () => checkPromptPairs(unmarked, V),
    (e: unknown) =>
      e instanceof InputError &&
      e.field === "pairs[0].corrupted" &&
      e.message.includes(pairs[0].clean.id) &&
      e.message.includes('"right-aligned"'),
  );
  assert.throws(
    () => checkPromptPairs([{ ...pairs[0], alignment: "same-length" }], V),
    (e: unknown) => e instanceof InputError && /needs equal token counts/.test(e.message),
  );
  assert.throws(
    () => checkPromptPairs([{ ...pairs[0], alignment: "by-token" as "same-length" }], V),
    (e: unknown) => e instanceof InputError && e.field === "pairs[0].alignment",
  );
  await assert.rejects(sublayerEffects(model, unmarked), InputError);
  await assert.rejects(patchingGrid(model, unmarked), InputError);
});

test("patchingGrid on right-aligned pairs: rows by distance from the end, none for the unpaired token, 0 where the tokens agree", async () => {
  const { model, pairs } = await rightAlignedSetup();
  const grid = await patchingGrid(model, pairs, { components: ["resid_pre"], counterfactual: "corrupted-label" });
  assert.deepEqual(grid.metadata.alignments, ["right-aligned"]);
  for (const T of new Set(pairs.map((p) => p.clean.promptIds.length))) {
    const group = pairs.filter((p) => p.clean.promptIds.length === T);
    const rows = grid.rows.filter((r) => r.length === T && r.layer === 0);
    assert.equal(rows.length, T); // every clean position; the corrupted prompt's extra first token has no row
    assert.ok(rows.every((r) => r.corruptedLength === T + 1));
    // at a distance from the end where clean and corrupted hold the same token in every pair, patching resid_pre of layer 0 changes nothing
    for (const r of rows) {
      const same = group.every((p) => p.corrupted.promptIds[r.position + 1] === p.clean.promptIds[r.position]);
      if (same) assert.ok(Math.abs(r.fraction) < 1e-5, `fromEnd ${r.fromEnd}: ${r.fraction}`);
    }
    assert.ok(
      rows.some((r) => Math.abs(r.fraction) > 1e-3),
      "some position carries the corruption",
    );
  }
});

test("sublayerEffects and countingHeads patch right-aligned pairs; patching every sub-layer's last position is 'last'", async () => {
  const { model, data, pairs } = await rightAlignedSetup();
  const all = await sublayerEffects(model, pairs, { reference: data.splits.reference, bootstrap: { samples: 50 } });
  const last = await sublayerEffects(model, pairs, {
    methods: ["denoising"],
    positions: "last",
    bootstrap: { samples: 50 },
  });
  const den = (r: typeof all, l: number) =>
    r.rows.find((x) => x.method === "denoising" && x.layer === l && x.sublayer === "attn" && x.n === null)!.effect;
  const L = model.config.numLayers;
  // the last layer's attention output at the last position is the only place it reaches the logits
  assert.ok(Math.abs(den(all, L - 1) - den(last, L - 1)) < 1e-4, `${den(all, L - 1)} vs ${den(last, L - 1)}`);
  for (const r of all.rows) assert.ok(Number.isFinite(r.effect), `${r.method} L${r.layer} ${r.sublayer}`);
  assert.deepEqual(all.metadata.alignments, ["right-aligned"]);
  // ablations run on the padded clean prompts of a right-aligned batch: the same effects as on the clean prompts alone
  for (const meanOver of ["all-positions", "per-position-same-length", "right-aligned-all-lengths"] as const) {
    const opts = {
      reference: data.splits.reference,
      methods: ["zero-ablation", "mean-ablation"] as const,
      counterfactual: "strongest-wrong" as const,
      meanOver,
      bootstrap: { samples: 20 },
    };
    const padded = await sublayerEffects(model, pairs, { ...opts, methods: [...opts.methods] });
    const alone = await sublayerEffects(
      model,
      pairs.map((p) => ({ clean: p.clean })),
      { ...opts, methods: [...opts.methods] },
    );
    padded.perPrompt.forEach((r, k) =>
      assert.ok(
        Math.abs(r.value - alone.perPrompt[k].value) < 1e-4,
        `${meanOver} ${r.method} L${r.layer}: ${r.value} vs ${alone.perPrompt[k].value}`,
      ),
    );
  }
  const heads = await countingHeads(model, pairs, {
    methods: ["patch"],
    bootstrap: { samples: 50 },
    vocabRankCap: 0,
    permutationNull: false,
  });
  const patched = heads.causal.filter((c) => c.method === "patch" && c.n === null);
  assert.equal(patched.length, model.config.numLayers * model.config.numHeads);
  assert.ok(patched.every((c) => Number.isFinite(c.effect)));
  assert.deepEqual(heads.metadata.pairAlignments, ["right-aligned"]);
});
