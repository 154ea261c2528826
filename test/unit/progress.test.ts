/**
 * Progress of long calls: the sweep reports done / total site runs; the notebook line says how
 * many forward passes and a rough time first, then updates in place, one write per update.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Tensor, sweep, zeroAt, progressLine, progressText, PROGRESS_MARKER } from "../../lib/src";
import type { Intervention, Progress } from "../../lib/src";

const model = {
  async runWithHooks(input: number[][], _ivs: Intervention[]) {
    return new Tensor(new Float32Array(input.length), [input.length, 1], ["batch", "vocab"]);
  },
};

test("sweep: onProgress at the start and after each site group, done of batches × sites", async () => {
  const seen: Progress[] = [];
  await sweep(model, {
    promptCount: 2,
    batches: [{ indices: [0] }, { indices: [1] }],
    sites: ["h0", "h1", "h2"],
    prepare: async () => null,
    edit: (hook) => ({ input: [[1, 2]], interventions: [zeroAt(hook)] }),
    metric: () => [0],
    onProgress: (p) => seen.push(p),
    label: "heads",
  });
  assert.deepEqual(
    seen.map((p) => p.done),
    [0, 3, 6],
  ); // the three sites of a batch feed the same ids: one group per batch
  assert.ok(seen.every((p) => p.total === 6 && p.label === "heads"));
});

test("sweep: sitesPerRun must be a positive integer", async () => {
  const spec = {
    promptCount: 1,
    batches: [{ indices: [0] }],
    sites: ["a"],
    prepare: async () => null,
    edit: () => ({ input: [[1]], interventions: [] }),
    metric: () => [0],
    sitesPerRun: 0,
  };
  await assert.rejects(sweep(model, spec), /sitesPerRun must be a positive integer, got 0/);
});

test("progressText: the count and rough time first, then done / total with time left", () => {
  const p = (done: number): Progress => ({ label: "sweep", done, total: 96 });
  assert.equal(
    progressText(p(0), null, null),
    `${PROGRESS_MARKER} sweep: 0/96 forward passes, rough time known after the first step`,
  );
  assert.equal(progressText(p(0), null, 500), `${PROGRESS_MARKER} sweep: 0/96 forward passes, rough time 48 s`);
  assert.equal(
    progressText(p(12), 5000, null),
    `${PROGRESS_MARKER} sweep: 12/96 forward passes in 5 s, about 35 s left`,
  );
  assert.equal(progressText(p(96), 40000, null), `${PROGRESS_MARKER} sweep: 96/96 forward passes in 40 s`);
  assert.equal(
    progressText(p(1), 62000, null),
    `${PROGRESS_MARKER} sweep: 1/96 forward passes in 62 s, about 98 min left`,
  );
  assert.equal(
    progressText({ label: "countingHeads", done: 1, total: 3101 }, 62000, null),
    `${PROGRESS_MARKER} countingHeads: 1/3101 forward passes in 62 s, about 53.4 h left`,
  );
});

test("progressLine: every update rewrites the line (\\r), the last ends it, one write each", () => {
  const writes: string[] = [];
  const report = progressLine((t) => writes.push(t), { minIntervalMs: 0 });
  for (const done of [0, 1, 2]) report({ label: "s", done, total: 2 });
  assert.equal(writes.length, 3);
  assert.ok(writes.every((w) => w.startsWith(`\r${PROGRESS_MARKER} s: `)));
  assert.ok(writes[2].endsWith("\n") && !writes[1].endsWith("\n"));
});

test("progressLine rewrites the line at most every minIntervalMs, but always shows the start and the end", () => {
  const writes: string[] = [];
  let clock = 0;
  const report = progressLine((t) => writes.push(t), { now: () => clock });
  for (let done = 0; done <= 10; done++) {
    report({ label: "s", done, total: 10 });
    clock += 100; // a forward pass every 100 ms: with the default 250 ms, every third update
  }
  assert.deepEqual(
    writes.map((w) => Number(/: (\d+)\/10/.exec(w)![1])),
    [0, 3, 6, 9, 10],
  );
  assert.ok(writes.at(-1)!.endsWith("\n"));
});
