/**
 * The long calls report progress: each announces a total of forward passes (done 0 first), then
 * counts up monotonically to exactly that total, which is what the model ran (model.forwardPasses).
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import { tinyStudyModel } from "../helpers/planted-mechanisms";
import {
  generateDataset,
  makeCorruptedPairs,
  makeClosedCountPairs,
  DIGIT_REPLACEMENT,
  CALL_BOUNDARY,
  sublayerEffects,
  countingHeads,
  patchingGrid,
  logitLens,
  closedCountContrast,
  headLogitLens,
  scorePrompts,
  setDefaultProgress,
  sublayerEffectsForwards,
  countingHeadsForwards,
  patchingGridForwards,
} from "../../lib/src";
import type { HookedLlama, Progress, ProgressOptions } from "../../lib/src";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

async function setup() {
  const { model, tok, dir } = await tinyStudyModel({ numLayers: 2 }, 5);
  dirs.push(dir);
  const data = generateDataset(tok, {
    template: "authors",
    perN: { analysis: 3, reference: 3 },
    seed: 5,
    ns: [1, 2, 3],
  });
  const { pairs } = makeCorruptedPairs(tok, data.splits.analysis, { strategies: DIGIT_REPLACEMENT });
  const partial = generateDataset(tok, { template: "partial", perN: { analysis: 4, reference: 1 }, seed: 1 });
  const closed = makeClosedCountPairs(tok, partial.splits.analysis).pairs;
  return { model, pairs, closed, prompts: data.splits.analysis, reference: data.splits.reference };
}

/** Runs `call` with an onProgress that records; checks the reports against the forwards the model ran. */
async function reports(model: HookedLlama, label: string, call: (o: ProgressOptions) => Promise<unknown>) {
  const seen: Progress[] = [];
  const before = model.forwardPasses;
  await call({ onProgress: (p) => seen.push(p) });
  const ran = model.forwardPasses - before;
  assert.ok(seen.length >= 2, `${label}: a start and at least one step`);
  assert.equal(seen[0].done, 0, `${label}: starts at 0`);
  const total = seen[0].total;
  assert.ok(
    seen.every((p) => p.total === total && p.label === label),
    `${label}: one total, one label`,
  );
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i].done > seen[i - 1].done, `${label}: monotone`);
  assert.equal(seen.at(-1)!.done, total, `${label}: ends at the total it announced`);
  assert.equal(ran, total, `${label}: the total is what the model ran`);
  return total;
}

test("every long call counts its forward passes up to the total it announced", async () => {
  const { model, pairs, closed, prompts, reference } = await setup();
  assert.ok(closed.length > 0);
  const L = model.config.numLayers;
  const H = model.config.numHeads;
  const subOpts = { reference, bootstrap: { samples: 10 } };
  const sub = await reports(model, "sublayerEffects", (o) => sublayerEffects(model, pairs, { ...o, ...subOpts }));
  // 4 swept methods × 2 sub-layers × L per batch, plus the clean and corrupted caches, plus the reference caches
  assert.ok(sub > 4 * 2 * L);
  assert.equal(sublayerEffectsForwards(model, pairs, subOpts), sub, "counted before running, without running");
  const headOpts = { reference, bootstrap: { samples: 10 }, permutationNull: false as const };
  const heads = await reports(model, "countingHeads", (o) => countingHeads(model, pairs, { ...o, ...headOpts }));
  assert.ok(heads > 3 * L * H);
  assert.equal(countingHeadsForwards(model, pairs, headOpts), heads);
  const gridPairs = pairs.filter((p) => p.clean.n === 2);
  const grid = await reports(model, "patchingGrid", (o) => patchingGrid(model, gridPairs, o));
  assert.equal(patchingGridForwards(model, gridPairs), grid);
  await reports(model, "logitLens", (o) => logitLens(model, prompts, { ...o, bootstrap: { samples: 10 } }));
  await reports(model, "closedCountContrast", (o) =>
    closedCountContrast(model, closed, { ...o, bootstrap: { samples: 10 } }),
  );
  await reports(model, "headLogitLens", (o) => headLogitLens(model, prompts, [{ layer: 1, head: 0 }], o));
  assert.equal(
    await reports(model, "scorePrompts", (o) => scorePrompts(model, prompts, { ...o, batchSize: 4 })),
    Math.ceil(prompts.length / 4),
  );
  await reports(model, "my lens", (o) =>
    logitLens(model, prompts, { ...o, label: "my lens", bootstrap: { samples: 10 } }),
  );
});

test("the announced totals hold on right-aligned pairs too (batches by clean and corrupted length)", async () => {
  const { model, prompts, reference } = await setup();
  const tok = model.tokenizer!;
  // the test tokenizer keeps "((" apart: the authors' insertion adds a token, so these pairs are right-aligned
  const { pairs } = makeCorruptedPairs(tok, prompts, { strategies: CALL_BOUNDARY, seed: 3 });
  assert.ok(pairs.some((p) => p.alignment === "right-aligned"));
  const subOpts = { reference, bootstrap: { samples: 10 } };
  const sub = await reports(model, "sublayerEffects", (o) => sublayerEffects(model, pairs, { ...o, ...subOpts }));
  assert.equal(sublayerEffectsForwards(model, pairs, subOpts), sub);
  const headOpts = { methods: ["patch" as const], bootstrap: { samples: 10 }, permutationNull: false as const };
  const heads = await reports(model, "countingHeads", (o) => countingHeads(model, pairs, { ...o, ...headOpts }));
  assert.equal(countingHeadsForwards(model, pairs, headOpts), heads);
  const grid = await reports(model, "patchingGrid", (o) => patchingGrid(model, pairs, o));
  assert.equal(patchingGridForwards(model, pairs), grid);
});

test("without onProgress a long call reports to the default reporter (what the notebooks install), else to none", async () => {
  const { model, prompts } = await setup();
  const seen: Progress[] = [];
  setDefaultProgress((p) => seen.push(p));
  try {
    await scorePrompts(model, prompts, { batchSize: 2 });
  } finally {
    setDefaultProgress(null);
  }
  assert.deepEqual(
    seen.map((p) => p.done),
    Array.from({ length: Math.ceil(prompts.length / 2) + 1 }, (_, i) => i),
  );
  const before = seen.length;
  await scorePrompts(model, prompts);
  assert.equal(seen.length, before);
});
