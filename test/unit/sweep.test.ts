import { test } from "node:test";
import assert from "node:assert/strict";
import { asPairs, groupsOf } from "../../lib/src/analysis/study";
import { Tensor, meanAt, patchFrom, sweep, zeroAt, firstPerN, lengthBatches, InputError } from "../../lib/src";
import type { Intervention } from "../../lib/src";

/**
 * A stand-in for HookedLlama.runWithHooks: the "logit" of each prompt is the sum of its ids, and a
 * zero edit on hook "h{k}" removes the id k. Enough to see which run the sweep makes for which site.
 */
function fakeModel() {
  const calls: { input: number[][]; interventions: Intervention[] }[] = [];
  return {
    calls,
    async runWithHooks(input: number[][], interventions: Intervention[]) {
      calls.push({ input, interventions });
      const dropped = new Set(interventions.filter((iv) => iv.kind === "zero").map((iv) => Number(iv.hook.slice(1))));
      const sums = input.map((ids) => ids.filter((id) => !dropped.has(id)).reduce((a, b) => a + b, 0));
      return new Tensor(Float32Array.from(sums), [input.length, 1], ["batch", "vocab"]);
    },
  };
}

test("sweep: one run per site per batch, a metric per prompt, results in prompt order", async () => {
  const prompts = [[1, 2], [3], [1, 4], [5]];
  const model = fakeModel();
  const batches = lengthBatches(prompts, (p) => p.length, 8); // lengths 1 then 2: prompts [1, 3], then [0, 2]
  const sites = [1, 4]; // zero the token 1, then the token 4
  const effects = await sweep(model, {
    promptCount: prompts.length,
    batches,
    sites,
    prepare: async ({ indices }: { indices: number[] }) => ({ ids: indices.map((i) => prompts[i]) }),
    edit: (id, _batch, ctx) => ({ input: ctx.ids, interventions: [zeroAt(`h${id}`)] }),
    metric: (logits) => Array.from(logits.data), // [batch, 1] → one value per prompt
  });
  assert.equal(model.calls.length, batches.length * sites.length);
  assert.deepEqual(Array.from(effects[0]), [2, 3, 4, 5]); // token 1 removed
  assert.deepEqual(Array.from(effects[1]), [3, 3, 1, 5]); // token 4 removed
});

test("sweep: prompts no batch covers stay NaN; a metric of the wrong length is refused", async () => {
  const model = fakeModel();
  const spec = {
    promptCount: 3,
    batches: [{ indices: [2] }],
    sites: ["a"],
    prepare: async () => null,
    edit: () => ({ input: [[7]], interventions: [] }),
    metric: () => [1],
  };
  const [v] = await sweep(model, spec);
  assert.ok(Number.isNaN(v[0]) && Number.isNaN(v[1]));
  assert.equal(v[2], 1);
  await assert.rejects(
    sweep(model, { ...spec, metric: () => [1, 2] }),
    (e: unknown) => e instanceof InputError && e.field === "metric",
  );
});

test("the named edits build the interventions of zero / mean ablation and patching", () => {
  const mean = new Tensor(new Float32Array(4), [2, 2], ["head", "d_head"]);
  assert.deepEqual(zeroAt("blocks.0.hook_mlp_out"), { hook: "blocks.0.hook_mlp_out", kind: "zero" });
  assert.deepEqual(meanAt("blocks.1.attn.hook_z", mean, { heads: [1], positions: [-1] }), {
    hook: "blocks.1.attn.hook_z",
    kind: "mean",
    mean,
    heads: [1],
    positions: [-1],
  });
  assert.equal(patchFrom("blocks.0.hook_attn_out", mean).kind, "patch");
});

test("firstPerN keeps the first k prompts of each n, in input order", () => {
  const ns = [1, 2, 1, 1, 2, 3, 2];
  assert.deepEqual(
    firstPerN(ns, 2, (n) => n),
    [0, 1, 2, 4, 5],
  );
  assert.deepEqual(
    firstPerN(ns, Infinity, (n) => n),
    [0, 1, 2, 3, 4, 5, 6],
  );
});

test("groupsOf: one group per n, then the pooled group", () => {
  assert.deepEqual(groupsOf([2, 1, 2]), [
    { group: "n=1", n: 1, idx: [1] },
    { group: "n=2", n: 2, idx: [0, 2] },
    { group: "all", n: null, idx: [0, 1, 2] },
  ]);
});

test("asPairs wraps bare prompts and keeps pairs", () => {
  const p = { promptIds: [1], n: 1, labelId: 2 };
  const pair = { clean: p, corrupted: p };
  assert.deepEqual(asPairs([p, pair]), [{ clean: p }, pair]);
});

test("sweep journal: -0, NaN and ±Infinity come back as they were; a damaged line or another sweep's file is refused", async () => {
  const fs = await import("fs");
  const os = await import("os");
  const path = await import("path");
  const { setSweepJournal, JournalError } = await import("../../lib/src");
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-journal-unit-"));
  const odd = [-0, NaN, Infinity, -Infinity, 0.1 + 0.2];
  const spec = {
    promptCount: 5,
    batches: [{ indices: [0, 1] }, { indices: [2, 3, 4] }],
    sites: ["a", "b"],
    prepare: async () => null,
    edit: () => ({ input: [[7]], interventions: [] }),
    metric: (_l: unknown, site: string, batch: { indices: number[] }) =>
      batch.indices.map((i) => (site === "a" ? odd[i] : i)),
  };
  try {
    setSweepJournal(dir);
    const model = fakeModel();
    const first = await sweep(model, spec);
    const again = await sweep(model, spec);
    assert.deepEqual(again, first);
    assert.ok(Object.is(again[0][0], -0) && Number.isNaN(again[0][1]) && again[0][3] === -Infinity);
    assert.equal(model.calls.length, 4 + 2, "the second sweep ran one check per batch");

    const [file] = fs.readdirSync(dir);
    const lines = fs.readFileSync(path.join(dir, file), "utf8").split("\n");
    fs.writeFileSync(path.join(dir, file), [lines[0], "{not json", lines[2], ""].join("\n"));
    await assert.rejects(
      sweep(model, spec),
      (e: unknown) => e instanceof JournalError && /line 2: not JSON/.test(e.message),
    );
    fs.writeFileSync(path.join(dir, file), lines.join("\n").replace('"sites":2', '"sites":3'));
    await assert.rejects(
      sweep(model, spec),
      (e: unknown) => e instanceof JournalError && /another sweep/.test(e.message),
    );

    // opting out, or another label: not this file
    await sweep(model, { ...spec, journal: false });
    await sweep(model, { ...spec, label: "other" });
    assert.equal(fs.readdirSync(dir).length, 2);
    assert.throws(
      () => setSweepJournal(""),
      (e: unknown) => e instanceof JournalError,
    );
  } finally {
    setSweepJournal(null);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
