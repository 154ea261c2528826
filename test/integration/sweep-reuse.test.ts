/**
 * Sweeps reuse work: on HookedLlama (which has runSites) the sites of a batch share the layers
 * below their edited hook; the results equal one runWithHooks per site, on float32 and bf16 weights.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "path";
import { HookedLlama, sweep, zeroAt, lengthBatches, SweepModel } from "../../lib/src";

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
