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
