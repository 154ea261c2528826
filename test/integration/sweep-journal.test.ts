/**
 * Long sweeps survive an interruption: with a journal folder set, each finished batch is kept on
 * disk and the same sweep run again reuses it — the same numbers as a run that never stopped,
 * fewer forward passes — while a journal that no longer fits (another checkpoint, edited weights)
 * is refused with a JournalError, never mixed in.
 */
import { test, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { tinyStudyModel } from "../helpers/planted-mechanisms";
import {
  DIGIT_REPLACEMENT,
  JournalError,
  countingHeads,
  generateDataset,
  makeCorruptedPairs,
  patchingGrid,
  setSweepJournal,
  sublayerEffects,
} from "../../lib/src";
import type { HookedLlama, Progress } from "../../lib/src";

const dirs: string[] = [];
const tempDir = (prefix: string) => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(d);
  return d;
};
afterEach(() => setSweepJournal(null));
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

async function setup(seed: number) {
  const { model, tok, dir } = await tinyStudyModel({}, seed);
  dirs.push(dir);
  const data = generateDataset(tok, { template: "authors", perN: { analysis: 3, reference: 3 }, seed, ns: [1, 2, 3] });
  const { pairs } = makeCorruptedPairs(tok, data.splits.analysis, { strategies: DIGIT_REPLACEMENT });
  return { model, tok, pairs, reference: data.splits.reference };
}

/** The forward passes `work` runs on `model`. */
async function forwardsOf<T>(model: HookedLlama, work: () => Promise<T>): Promise<{ value: T; forwards: number }> {
  const before = model.forwardPasses;
  const value = await work();
  return { value, forwards: model.forwardPasses - before };
}

const journalFiles = (dir: string) => fs.readdirSync(dir).filter((f) => f.endsWith(".jsonl"));

test("sublayerEffects stopped after its first batch resumes from the journal: the same rows, fewer forward passes", async () => {
  const { model, pairs, reference } = await setup(4);
  const opts = { reference, bootstrap: { samples: 50 }, batchSize: 3 };
  const plain = await forwardsOf(model, () => sublayerEffects(model, pairs, opts)); // no journal

  const dir = tempDir("parenlens-journal-");
  setSweepJournal(dir);
  const first = await forwardsOf(model, () => sublayerEffects(model, pairs, opts));
  assert.deepEqual(first.value.rows, plain.value.rows, "journaling changes no number");
  assert.equal(first.forwards, plain.forwards);
  const [file] = journalFiles(dir);
  assert.match(file, /^sublayerEffects-[0-9a-f]{16}\.jsonl$/);

  // as if killed after the first batch, while appending the second
  const lines = fs.readFileSync(path.join(dir, file), "utf8").split("\n");
  const batches = lines.length - 2; // the header, one line per batch, "" after the last newline
  assert.ok(batches >= 3, `${batches} batches`);
  fs.writeFileSync(path.join(dir, file), lines.slice(0, 2).join("\n") + "\n" + lines[2].slice(0, 40));

  const reports: Progress[] = [];
  const resumed = await forwardsOf(model, () =>
    sublayerEffects(model, pairs, { ...opts, onProgress: (p) => reports.push(p) }),
  );
  assert.deepEqual(resumed.value.rows, plain.value.rows, "the same numbers as a run that never stopped");
  assert.deepEqual(resumed.value.perPrompt, plain.value.perPrompt);
  const sitesPerBatch = 2 * model.config.numLayers * 4; // attn and mlp of every layer × 4 swept methods
  assert.equal(resumed.forwards, plain.forwards - (sitesPerBatch - 1), "batch 0: prepare and one check run only");
  assert.equal(reports.at(-1)!.done, reports.at(-1)!.total, "the progress still reaches its total");
  const after = fs.readFileSync(path.join(dir, file), "utf8");
  assert.equal(after.split("\n").length - 2, batches, "the cut-off line was dropped, the rest appended again");
  assert.ok(after.endsWith("\n"));

  const again = await forwardsOf(model, () => sublayerEffects(model, pairs, opts));
  assert.deepEqual(again.value.rows, plain.value.rows);
  assert.equal(again.forwards, plain.forwards - batches * (sitesPerBatch - 1), "every batch journaled");
});

test("other settings keep their own journal; a journal of another checkpoint or of edited weights is refused", async () => {
  const { model, pairs, reference } = await setup(5);
  const dir = tempDir("parenlens-journal-");
  setSweepJournal(dir);
  const opts = { reference, bootstrap: { samples: 20 }, methods: ["zero-ablation" as const, "mean-ablation" as const] };
  await sublayerEffects(model, pairs, opts);
  await sublayerEffects(model, pairs, { ...opts, meanOver: "per-position-same-length" });
  assert.equal(journalFiles(dir).length, 2, "other means: another journal");

  // zero ablation: nothing in the journal's name depends on the weights
  const zero = { bootstrap: { samples: 20 }, methods: ["zero-ablation" as const] };
  await sublayerEffects(model, pairs, zero);
  assert.equal(journalFiles(dir).length, 3);
  // the same config and prompts, other weights: the same file, other numbers
  const other = await tinyStudyModel({}, 6);
  dirs.push(other.dir);
  await assert.rejects(
    sublayerEffects(other.model, pairs, zero),
    (e: unknown) =>
      e instanceof JournalError &&
      e.file !== undefined &&
      journalFiles(dir).includes(path.basename(e.file)) &&
      /the same run gives .* now: the model, the inputs or the analysis code changed/.test(e.message),
  );
  // an edited weight changes the numbers too
  const name = "model.layers.0.mlp.down_proj.weight";
  const w = model.getWeight(name);
  model.setWeight(
    name,
    w.data.map((x) => 2 * x),
  );
  await assert.rejects(sublayerEffects(model, pairs, zero), (e: unknown) => e instanceof JournalError);
  model.setWeight(name, w.data);
  await sublayerEffects(model, pairs, zero); // the original weights fit the journal again
  assert.equal(journalFiles(dir).length, 3);
});

test("countingHeads and patchingGrid resume too", async () => {
  const { model, pairs, reference } = await setup(7);
  const headOpts = { reference, bootstrap: { samples: 20 }, batchSize: 4 };
  const heads = await forwardsOf(model, () => countingHeads(model, pairs, headOpts));
  const grid = await forwardsOf(model, () => patchingGrid(model, pairs, { counterfactual: "corrupted-label" }));

  setSweepJournal(tempDir("parenlens-journal-"));
  for (let round = 0; round < 2; round++) {
    const h = await forwardsOf(model, () => countingHeads(model, pairs, headOpts));
    const g = await forwardsOf(model, () => patchingGrid(model, pairs, { counterfactual: "corrupted-label" }));
    assert.deepEqual(h.value.causal, heads.value.causal);
    assert.deepEqual(h.value.correlations, heads.value.correlations);
    assert.deepEqual(g.value.rows, grid.value.rows);
    if (round === 0) {
      assert.equal(h.forwards, heads.forwards);
      assert.equal(g.forwards, grid.forwards);
    } else {
      assert.ok(h.forwards < heads.forwards / 4, `countingHeads: ${h.forwards} of ${heads.forwards}`);
      assert.ok(g.forwards < grid.forwards / 2, `patchingGrid: ${g.forwards} of ${grid.forwards}`);
    }
  }
});
