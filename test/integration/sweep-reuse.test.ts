/**
 * Sweeps reuse work: on HookedLlama (which has runSites) the sites of a batch share the layers
 * below their edited hook; the results equal one runWithHooks per site, on float32 and bf16 weights.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "path";
import { HookedLlama, sweep, zeroAt, lengthBatches, SweepModel, Tensor } from "../../lib/src";

const FIXTURES = path.join(__dirname, "..", "fixtures", "checkpoints");
const prompts = [
  [1, 5, 9, 13, 17],
  [1, 30, 2, 7, 7],
  [1, 4, 4, 8],
  [1, 6, 2, 9],
];

/** Per-head zero ablation of layer 1 plus each layer's MLP: the metric is the last-position logit of token 3. */
async function perSiteEffects(model: SweepModel, heads: number, layers: number, sitesPerRun?: number) {
  const sites = [
    ...Array.from({ length: heads }, (_, h) => zeroAt("blocks.1.attn.hook_z", { heads: [h] })),
    ...Array.from({ length: layers }, (_, l) => zeroAt(`blocks.${l}.hook_mlp_out`)),
  ];
  return sweep(model, {
    promptCount: prompts.length,
    batches: lengthBatches(prompts, (p) => p.length, 8),
    sites,
    prepare: async ({ indices }) => indices.map((i) => prompts[i]),
    edit: (iv, _b, ids) => ({ input: ids, interventions: [iv] }),
    metric: (logits) => Array.from({ length: logits.shape[0] }, (_, b) => logits.data[b * logits.shape[1] + 3]),
    sitesPerRun,
  });
}

for (const fixture of ["tiny-f32", "tiny-bf16"]) {
  test(`sweep on ${fixture}: reused upstream equals one run per site`, async () => {
    const model = await HookedLlama.fromPretrained(path.join(FIXTURES, fixture), { tokenizer: false });
    const { numHeads, numLayers } = model.config;
    const oneRunPerSite: SweepModel = { runWithHooks: (i, ivs, o) => model.runWithHooks(i, ivs, o) };
    const alone = await perSiteEffects(oneRunPerSite, numHeads, numLayers);
    const reused = await perSiteEffects(model, numHeads, numLayers);
    const inPairs = await perSiteEffects(model, numHeads, numLayers, 2);
    assert.equal(reused.length, numHeads + numLayers);
    assert.deepEqual(reused, alone);
    assert.deepEqual(inPairs, alone);
    assert.ok(alone.every((row) => row.every(Number.isFinite)));
  });
}

test("runSites on bf16 weights: sites editing different hooks (two at once, or none) branch off one trunk, each equal to its own run", async () => {
  const model = await HookedLlama.fromPretrained(path.join(FIXTURES, "tiny-bf16"), { tokenizer: false });
  const ids = [prompts[0], prompts[1]];
  const { cache } = await model.runWithCache([prompts[1], prompts[0]], { names: ["blocks.0.hook_resid_post"] });
  const sites = [
    [zeroAt("blocks.1.hook_mlp_out")],
    [zeroAt("blocks.0.attn.hook_z", { heads: [1] }), zeroAt("blocks.1.hook_attn_out", { positions: [-1] })],
    [],
    [{ hook: "blocks.0.hook_resid_post", kind: "patch" as const, source: cache }],
    [zeroAt("blocks.0.hook_mlp_out")],
  ];
  const before = model.forwardPasses;
  const together = await model.runSites(ids, sites, { logitsAt: "last" });
  assert.equal(model.forwardPasses - before, sites.length);
  for (const [i, site] of sites.entries()) {
    const alone = await model.runWithHooks(ids, site, { logitsAt: "last" });
    assert.deepEqual(Array.from(together[i].data), Array.from(alone.data), `site ${i}`);
  }
  assert.notDeepEqual(Array.from(together[0].data), Array.from(together[2].data)); // the edits do something
});

/** Largest |a − b| over the largest |b| (0 when equal). */
function relDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return d / scale;
}

// Sites of one sweep batch: per-head zero ablations of one layer, sites at other layers and
// hooks (the MLP of each layer, a position-only edit, two sites editing the same two hooks: the
// later edit lands on each site's own rows), a mean ablation, and a site that edits nothing.
function mixedSites(model: HookedLlama, mean: Tensor) {
  const { numHeads, numLayers } = model.config;
  return [
    ...Array.from({ length: numHeads }, (_, h) => [zeroAt("blocks.1.attn.hook_z", { heads: [h] })]),
    ...Array.from({ length: numLayers }, (_, l) => [zeroAt(`blocks.${l}.hook_mlp_out`)]),
    [zeroAt("blocks.0.hook_attn_out", { positions: [-1] })],
    [zeroAt("blocks.0.attn.hook_z", { heads: [0] }), zeroAt("blocks.1.hook_mlp_out", { positions: [-2] })],
    [zeroAt("blocks.0.attn.hook_z", { heads: [1] }), zeroAt("blocks.1.hook_mlp_out", { positions: [-1] })],
    [{ hook: "blocks.0.hook_resid_post", kind: "mean" as const, mean }],
    [],
  ];
}

for (const fixture of ["tiny-f32", "tiny-bf16"]) {
  // B = 4 is the fixtures' head count: a tiling that took dims[0] === B for "has the batch axis"
  // would tile [head, …] tensors too
  for (const B of [1, 3, 4]) {
    test(`runSites on ${fixture}, batch of ${B} (left-padded, mixed lengths): sites run as one batch equal one run per site`, async () => {
      const model = await HookedLlama.fromPretrained(path.join(FIXTURES, fixture), { tokenizer: false });
      const ids = [prompts[0], prompts[2], prompts[1], [1, 8, 3]].slice(0, B); // lengths 5, 4, 5, 3
      const mean = new Tensor(
        Float32Array.from({ length: model.config.hiddenSize }, (_, i) => Math.sin(i)),
        [model.config.hiddenSize],
        ["d_model"],
      );
      const sites = mixedSites(model, mean);
      const alone: Tensor[] = [];
      for (const site of sites) alone.push(await model.runWithHooks(ids, site, { logitsAt: "last" }));
      const oneByOne = await model.runSites(ids, sites, { logitsAt: "last", sitesPerBatch: 1 });
      for (const K of [3, "auto" as const]) {
        // K = 3 divides neither the 4 heads nor the 11 sites
        const batched = await model.runSites(ids, sites, { logitsAt: "last", sitesPerBatch: K });
        for (const [i, a] of alone.entries()) {
          assert.deepEqual(batched[i].shape, a.shape);
          assert.ok(relDiff(batched[i].data, a.data) <= 1e-6, `site ${i}, K ${K}: ${relDiff(batched[i].data, a.data)}`);
          assert.deepEqual(Array.from(oneByOne[i].data), Array.from(a.data), `site ${i}, one by one`);
        }
      }
      if (fixture === "tiny-f32" && B === 1) {
        // float32, one prompt, last-position logits: "auto" keeps one batch per site (bit for bit)
        const auto = await model.runSites(ids, sites, { logitsAt: "last" });
        auto.forEach((t, i) => assert.deepEqual(Array.from(t.data), Array.from(alone[i].data), `site ${i}, auto`));
      }
      // all positions too (no in-graph slice), and the edits do something
      const all = await model.runSites(ids, sites.slice(0, 3), { sitesPerBatch: 2 });
      for (const [i, site] of sites.slice(0, 3).entries()) {
        const a = await model.runWithHooks(ids, site);
        assert.ok(relDiff(all[i].data, a.data) <= 1e-6, `all positions, site ${i}`);
      }
      assert.ok(relDiff(alone[0].data, alone[sites.length - 1].data) > 1e-4);
    });
  }
}

test("runSites' sitesPerBatch is checked: a positive integer or auto", async () => {
  const model = await HookedLlama.fromPretrained(path.join(FIXTURES, "tiny-f32"), { tokenizer: false });
  await assert.rejects(
    () => model.runSites([prompts[0]], [[zeroAt("blocks.0.hook_mlp_out")]], { sitesPerBatch: 0 }),
    /runSites: sitesPerBatch must be a positive integer or "auto", got 0/,
  );
  await assert.rejects(
    () => model.run([prompts[0]], { sitesPerBatch: 2 } as never),
    /run: unknown option "sitesPerBatch"/,
  );
});

test("sites as one batch on every family's graph (GQA, biases, Gemma's norms, LayerNorm + GELU, dynamic / long rope, sliding window) equal one run per site", async () => {
  for (const fixture of [
    "tiny-gqa",
    "hf-gemma",
    "hf-llama-bias",
    "hf-llama-dynamic",
    "hf-llama-longrope",
    "hf-mistral",
    "hf-qwen2",
    "hf-starcoder2",
  ]) {
    const model = await HookedLlama.fromPretrained(path.join(FIXTURES, fixture), { tokenizer: false });
    const ids = [prompts[0], [1, 4, 4], prompts[3]];
    const sites = [
      ...Array.from({ length: model.config.numHeads }, (_, h) => [zeroAt("blocks.0.attn.hook_z", { heads: [h] })]),
      ...Array.from({ length: model.config.numLayers }, (_, l) => [zeroAt(`blocks.${l}.hook_mlp_out`)]),
    ];
    const batched = await model.runSites(ids, sites, { logitsAt: "last", sitesPerBatch: 3 });
    for (const [i, site] of sites.entries()) {
      const alone = await model.runWithHooks(ids, site, { logitsAt: "last" });
      assert.ok(relDiff(batched[i].data, alone.data) <= 1e-6, `${fixture}, site ${i}`);
    }
  }
});
