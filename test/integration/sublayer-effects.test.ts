import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import { referenceMeans, sublayerHook } from "../../lib/src/analysis/sublayer-effects";
import { plantConstantMlp, tinyStudyModel, unembedDirection } from "../helpers/planted-mechanisms";
import {
  generateDataset,
  makeCorruptedPairs,
  DIGIT_REPLACEMENT,
  parenRunTokens,
  sublayerEffects,
  SUBLAYER_METHODS,
  SublayerMethod,
  lengthBatches,
  zeroAt,
  logitDiffFor,
  InputError,
} from "../../lib/src";
import type { Tensor } from "../../lib/src";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

async function setup(seed: number, ns = [1, 2, 3]) {
  const { model, tok, dir } = await tinyStudyModel({}, seed);
  dirs.push(dir);
  const data = generateDataset(tok, { template: "authors", perN: { analysis: 3, reference: 3 }, seed, ns });
  const { pairs } = makeCorruptedPairs(tok, data.splits.analysis, { strategies: DIGIT_REPLACEMENT }); // same-length pairs: the test tokenizer keeps every "(" apart, so the call-boundary insertion would add a token (right-aligned pairs, test/integration/right-aligned-pairs.test.ts)
  return { model, tok, pairs, reference: data.splits.reference };
}

const effect = (
  rows: { layer: number; sublayer: string; method: string; group: string; effect: number }[],
  layer: number,
  sublayer: string,
  method: string,
) => rows.find((r) => r.layer === layer && r.sublayer === sublayer && r.method === method && r.group === "all")!.effect;

test("a zeroed MLP (down_proj = 0) has no effect by any method; the other sub-layers do", async () => {
  const { model, pairs, reference } = await setup(4);
  const D = model.config.hiddenSize;
  model.setWeight("model.layers.1.mlp.down_proj.weight", new Float32Array(D * model.config.intermediateSize));
  const res = await sublayerEffects(model, pairs, { reference, bootstrap: { samples: 50 } });
  assert.deepEqual(res.metadata.methods, SUBLAYER_METHODS);
  assert.equal(res.metadata.counterfactual, "corrupted-label");
  assert.deepEqual(res.metadata.meanFallbackLengths, []);
  for (const m of SUBLAYER_METHODS) {
    assert.ok(
      Math.abs(effect(res.rows, 1, "mlp", m)) < 1e-4,
      `${m} at the zeroed MLP: ${effect(res.rows, 1, "mlp", m)}`,
    );
    // the attention of the same layer, and the other MLPs, do something
    assert.ok(Math.abs(effect(res.rows, 1, "attn", m)) > 1e-3, `${m} at 1 attn`);
    assert.ok(Math.abs(effect(res.rows, 0, "mlp", m)) > 1e-3, `${m} at 0 mlp`);
  }
  // 3 layers × 2 sub-layers × 5 methods × (n = 1, 2, 3, all)
  assert.equal(res.rows.length, 3 * 2 * 5 * 4);
  assert.ok(res.rows.every((r) => (r.unit === "fraction") === (r.method === "denoising" || r.method === "noising")));
});

test("direct logit attributions add up to the clean logit difference", async () => {
  const { model, pairs } = await setup(6);
  const res = await sublayerEffects(model, pairs, { methods: ["dla"], bootstrap: { samples: 20 } });
  const total = res.rows
    .filter((r) => r.method === "dla" && r.group === "all")
    .reduce((a, r) => a + r.effect, res.metadata.dlaEmbed);
  const clean = res.baseline.find((b) => b.group === "all")!.cleanLogitDiff;
  assert.ok(Math.abs(total - clean) < 1e-3, `${total} vs ${clean}`);
});

test("an MLP planted to push the label: largest ablation and DLA effect, but no patching effect (its output does not depend on the prompt)", async () => {
  const { model, tok, pairs, reference } = await setup(7, [1]);
  const parens = parenRunTokens(tok);
  plantConstantMlp(model, 2, unembedDirection(model, parens.ids[0]), 40); // pushes ")" = the clean label
  const res = await sublayerEffects(model, pairs, { reference, bootstrap: { samples: 50 } });
  for (const m of ["zero-ablation", "dla"]) {
    const all = res.rows.filter((r) => r.method === m && r.group === "all");
    const top = all.reduce((a, b) => (b.effect > a.effect ? b : a));
    assert.deepEqual([top.layer, top.sublayer], [2, "mlp"], `${m}: top is ${top.layer} ${top.sublayer}`);
    assert.ok(top.effect > 2);
  }
  // the constant output is the same in clean, corrupted and mean: patching and mean ablation see nothing
  for (const m of ["denoising", "noising", "mean-ablation"])
    assert.ok(Math.abs(effect(res.rows, 2, "mlp", m)) < 0.02, `${m}: ${effect(res.rows, 2, "mlp", m)}`);
});

test("options and bad input", async () => {
  const { model, pairs, reference } = await setup(8, [1, 2]);
  const cleanOnly = pairs.map((p) => ({ clean: p.clean }));
  const res = await sublayerEffects(model, cleanOnly, { reference, positions: "last", bootstrap: { samples: 20 } });
  assert.deepEqual(res.metadata.methods, ["zero-ablation", "mean-ablation", "dla"]);
  assert.equal(res.metadata.counterfactual, "strongest-wrong");
  assert.equal(res.metadata.positions, "last");
  await assert.rejects(
    sublayerEffects(model, cleanOnly, { methods: ["denoising"] }),
    (e: unknown) => e instanceof InputError && e.field === "pairs.corrupted",
  );
  await assert.rejects(
    sublayerEffects(model, pairs, { methods: ["mean-ablation"] }),
    (e: unknown) => e instanceof InputError && e.field === "reference",
  );
  await assert.rejects(sublayerEffects(model, []), (e: unknown) => e instanceof InputError && e.field === "pairs");
  await assert.rejects(
    sublayerEffects(model, pairs, { reference, meanOver: "per-position" as never }),
    (e: unknown) => e instanceof InputError && e.field === "meanOver",
  );
  const misaligned = [
    { clean: pairs[0].clean, corrupted: { ...pairs[0].corrupted, promptIds: pairs[0].corrupted.promptIds.slice(1) } },
  ];
  await assert.rejects(
    sublayerEffects(model, misaligned),
    (e: unknown) => e instanceof InputError && e.field === "pairs[0].corrupted",
  );
});

test("per-position mean ablation without a same-length reference falls back to the mean over all reference positions, and says so", async () => {
  const { model, pairs, reference } = await setup(9, [1, 2]);
  const lengths = new Set(pairs.map((p) => p.clean.length));
  const otherLengths = reference.filter((p) => p.n === 1); // only the n = 1 length is covered
  const res = await sublayerEffects(model, pairs, {
    reference: otherLengths,
    methods: ["mean-ablation"],
    meanOver: "per-position-same-length",
    bootstrap: { samples: 20 },
  });
  assert.equal(res.metadata.meanOver, "per-position-same-length");
  const covered = new Set(otherLengths.map((p) => p.length));
  assert.deepEqual(
    res.metadata.meanFallbackLengths,
    [...lengths].filter((L) => !covered.has(L)).sort((a, b) => a - b),
  );
  assert.ok(res.metadata.meanFallbackLengths.length > 0);
  assert.ok(res.rows.every((r) => Number.isFinite(r.effect)));
});

test("the per-position same-length mean keeps what a prompt has at each position, the all-positions mean (default) removes it", async () => {
  const { model, pairs } = await setup(10);
  // one clean prompt per token count, which is also the whole reference set: the same-length
  // per-position mean of every sub-layer output is then that prompt's own output, count included
  const seen = new Set<number>();
  const single = pairs.filter((p) => !seen.has(p.clean.promptIds.length) && !!seen.add(p.clean.promptIds.length));
  assert.ok(single.length >= 2, "prompts of at least two lengths");
  const reference = single.map((p) => p.clean);
  const opts = {
    reference,
    methods: ["zero-ablation", "mean-ablation"] as SublayerMethod[],
    bootstrap: { samples: 20 },
  };
  const perPosition = await sublayerEffects(model, single, { ...opts, meanOver: "per-position-same-length" });
  const allPositions = await sublayerEffects(model, single, opts);
  assert.equal(allPositions.metadata.meanOver, "all-positions");
  assert.match(allPositions.metadata.methodNotes["mean-ablation"], /every position of every reference prompt/);
  assert.deepEqual(perPosition.metadata.meanFallbackLengths, []);
  const values = (res: typeof perPosition, m: SublayerMethod) =>
    res.perPrompt.filter((v) => v.method === m).map((v) => Math.abs(v.value));
  // ablating to the per-position mean changes nothing, though the sub-layers matter (zero ablation) ...
  assert.ok(
    Math.max(...values(perPosition, "mean-ablation")) < 1e-4,
    `per-position: ${Math.max(...values(perPosition, "mean-ablation"))}`,
  );
  assert.ok(Math.max(...values(perPosition, "zero-ablation")) > 0.05);
  // ... while the all-positions mean takes each position's own output (and the count) away
  const byLayer = allPositions.rows
    .filter((r) => r.method === "mean-ablation" && r.group === "all")
    .map((r) => Math.abs(r.effect));
  assert.ok(
    byLayer.filter((x) => x > 0.05).length >= 2,
    `all-positions effects: ${byLayer.map((x) => x.toFixed(3)).join(" ")}`,
  );
});

test("sweep with a zero edit gives exactly what one run per sub-layer gives", async () => {
  const { model, pairs } = await setup(8);
  const res = await sublayerEffects(model, pairs, { methods: ["zero-ablation"], counterfactual: "corrupted-label" });
  // the same numbers by hand: for each sub-layer, LD(clean) − LD(clean with its output zeroed)
  const ids = pairs.map((p) => p.clean.promptIds);
  const correct = pairs.map((p) => p.clean.labelId);
  const cf = pairs.map((p) => p.corrupted.labelId);
  for (const { indices } of lengthBatches(pairs, (p) => p.clean.promptIds.length, 32)) {
    const batch = indices.map((i) => ids[i]);
    const ld = (logits: Tensor) =>
      logitDiffFor(
        logits,
        indices.map((i) => correct[i]),
        indices.map((i) => cf[i]),
      );
    const base = ld(await model.run(batch, { logitsAt: "last" }));
    for (let layer = 0; layer < model.config.numLayers; layer++) {
      for (const sublayer of ["attn", "mlp"] as const) {
        const hook = sublayerHook(layer, sublayer);
        const ablated = ld(await model.runWithHooks(batch, [zeroAt(hook)], { logitsAt: "last" }));
        indices.forEach((i, b) => {
          const row = res.perPrompt.find((r) => r.prompt === i && r.layer === layer && r.sublayer === sublayer)!;
          assert.equal(row.value, base[b] - ablated[b]);
        });
      }
    }
  }
});

test("the right-aligned mean over every length: equal to the same-length mean when all references share the length, else pooled over n", async () => {
  const { model, tok, dir } = await tinyStudyModel({}, 11);
  dirs.push(dir);
  const data = generateDataset(tok, {
    template: "authors",
    perN: { analysis: 1, reference: 3 },
    seed: 11,
    ns: [1, 2, 3],
  });
  const ref = data.splits.reference;
  const hooks = [sublayerHook(0, "attn")];
  const T = ref[ref.length - 1].promptIds.length;
  const sameT = ref.filter((p) => p.promptIds.length === T);
  const aligned = await referenceMeans(model, sameT, [T], { meanOver: "right-aligned-all-lengths" });
  const perPos = await referenceMeans(model, sameT, [T], { meanOver: "per-position-same-length" });
  const a = aligned.means.get(T)!.get(hooks[0])!.data;
  const b = perPos.means.get(T)!.get(hooks[0])!.data;
  assert.ok(a.every((x, i) => Math.abs(x - b[i]) < 1e-6));
  // over every length: the last position averages every reference's last position
  const all = await referenceMeans(model, ref, [T], { meanOver: "right-aligned-all-lengths" });
  const D = model.config.hiddenSize;
  const { cache } = await model.runWithCache(
    ref.map((p) => p.promptIds),
    { names: hooks, logitsAt: "last" },
  );
  const last = cache.atPos(hooks[0], "last").data; // [batch, d_model]
  const expect = Array.from({ length: D }, (_, d) => ref.reduce((s, _p, i) => s + last[i * D + d], 0) / ref.length);
  const got = all.means
    .get(T)!
    .get(hooks[0])!
    .data.subarray((T - 1) * D, T * D);
  assert.ok(
    got.every((x, d) => Math.abs(x - expect[d]) < 1e-4),
    `${got[0]} vs ${expect[0]}`,
  );
});

test("the reference activations are summed once: a result's `reference` (or sublayerReference) passed to the next call gives the same numbers without the reference caches", async () => {
  const { model, pairs, reference } = await setup(6);
  const opts = { methods: ["mean-ablation" as const], bootstrap: { samples: 20 } };
  const first = await sublayerEffects(model, pairs, { ...opts, reference });
  assert.ok(first.reference && first.reference.prompts === reference);
  for (const meanOver of ["all-positions", "per-position-same-length", "right-aligned-all-lengths"] as const) {
    const t0 = model.forwardPasses;
    const fresh = await sublayerEffects(model, pairs, { ...opts, reference, meanOver });
    const t1 = model.forwardPasses;
    const reused = await sublayerEffects(model, pairs, { ...opts, reference: first.reference!, meanOver });
    const refCaches = lengthBatches(reference, (p) => p.promptIds.length, 32).length;
    assert.equal(t1 - t0 - (model.forwardPasses - t1), refCaches, "the reused call runs no reference cache");
    assert.deepEqual(reused.rows, fresh.rows, meanOver);
    assert.deepEqual(reused.perPrompt, fresh.perPrompt, meanOver);
    assert.deepEqual(reused.metadata.meanFallbackLengths, fresh.metadata.meanFallbackLengths);
    assert.equal(reused.reference, first.reference);
    assert.ok(refCaches > 1);
  }
  // another model's sums are refused
  const other = await tinyStudyModel({ numLayers: 2 }, 6);
  dirs.push(other.dir);
  await assert.rejects(
    () => sublayerEffects(other.model, pairs, { ...opts, reference: first.reference! }),
    (e: unknown) =>
      e instanceof InputError && /reference: these summed activations are of a model with/.test(e.message),
  );
});
