// The position × layer patching grid on a tiny random model: exact invariants of single-position
// residual patching that hold whatever the weights.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import { tinyStudyModel } from "../helpers/planted-mechanisms";
import { generateDataset, makeCorruptedPairs, patchingGrid, InputError, DIGIT_REPLACEMENT } from "../../lib/src";

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

test("patching resid_pre of layer 0 restores all of the gap at the corrupted position and none elsewhere", async () => {
  const { model, tok, dir } = await tinyStudyModel({}, 7);
  dirs.push(dir);
  const data = generateDataset(tok, { template: "authors", perN: { analysis: 3, reference: 1 }, seed: 7, ns: [2, 3] });
  const { pairs } = makeCorruptedPairs(tok, data.splits.analysis, { strategies: DIGIT_REPLACEMENT }); // same-length pairs: the test tokenizer keeps every "(" apart, so the call-boundary insertion would add a token (right-aligned pairs, test/integration/right-aligned-pairs.test.ts)
  const grid = await patchingGrid(model, pairs, { counterfactual: "corrupted-label" });
  const L = model.config.numLayers;
  let exact = 0;
  for (const T of new Set(pairs.map((p) => p.clean.promptIds.length))) {
    const group = pairs.filter((p) => p.clean.promptIds.length === T);
    // positions where some pair's clean and corrupted tokens differ
    const differs = new Set<number>();
    for (const p of group) p.clean.promptIds.forEach((id, i) => id !== p.corrupted!.promptIds[i] && differs.add(i));
    const rows = grid.rows.filter((r) => r.length === T && r.component === "resid_pre" && r.layer === 0);
    assert.equal(rows.length, T);
    assert.equal(grid.rows.filter((r) => r.length === T).length, 3 * L * T);
    for (const r of rows) {
      if (!differs.has(r.position)) assert.ok(Math.abs(r.fraction) < 1e-5, `position ${r.position}: ${r.fraction}`);
    }
    if (differs.size === 1) {
      const [pos] = [...differs];
      const r = rows.find((x) => x.position === pos)!;
      assert.ok(Math.abs(r.fraction - 1) < 1e-4, `the corrupted position ${pos}: ${r.fraction}`);
      assert.equal(r.fromEnd, pos - T);
      exact++;
    }
  }
  assert.ok(exact > 0, "some length group has one corrupted position");
  await assert.rejects(
    patchingGrid(
      model,
      pairs.map((p) => ({ clean: p.clean })),
    ),
    InputError,
  );
});
