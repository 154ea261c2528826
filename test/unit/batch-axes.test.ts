/**
 * Where the batch lives in each tensor of a graph (graph/batch-axes.ts), and what a tiled run of
 * several sites does with the tensors crossing its cut (graph/site-tiling.ts): read from the
 * graph's ops, not from a run's sizes.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { GraphBuilder } from "../../lib/src/runtime/graph/ir";
import { batchAxes } from "../../lib/src/runtime/graph/batch-axes";
import { siteTiling } from "../../lib/src/runtime/graph/site-tiling";
import { partitionGraph } from "../../lib/src/runtime/graph/partition";
import { buildLlamaGraph } from "../../lib/src/runtime/graph/llama-graph";
import { TINY_CONFIG } from "../../lib/src/testing/random-checkpoint";

for (const config of [TINY_CONFIG, { ...TINY_CONFIG, numKvHeads: 2 }, { ...TINY_CONFIG, slidingWindow: 3 }]) {
  test(`every hook and the logits carry the batch on axis 0 (kv heads ${config.numKvHeads}, window ${config.slidingWindow})`, () => {
    const graph = buildLlamaGraph(config, { withHeadResult: true, logitsAt: "last" });
    const info = batchAxes(graph);
    for (const hook of [...graph.hooks.keys(), "logits"]) {
      const i = info.get(hook)!;
      assert.equal(i.axis, 0, hook);
      assert.equal(i.bad, null, hook);
      assert.equal(i.origin, "mixed", hook);
    }
    // W_O as [head, d_head, d_model]: its first dim is the head count, not a batch
    const einsum = graph.nodes.find((n) => n.op === "Einsum")!;
    const wo = info.get(einsum.inputs[1])!;
    assert.deepEqual([wo.origin, wo.axis], ["weights", null]);
  });
}

test("the tensors crossing a cut: activations concatenated, token-derived ones recomputed", () => {
  const graph = buildLlamaGraph(TINY_CONFIG, {});
  const cut = "blocks.0.attn.hook_z"; // layer 1 still needs the mask and the rotary tables
  const segments = partitionGraph(graph, [cut], ["logits"]);
  const tiling = siteTiling(graph, segments, 0, new Set([cut]));
  assert.ok(!("reason" in tiling));
  assert.ok(tiling.concat.includes(cut) && tiling.concat.includes("blocks.0.hook_resid_pre"));
  const info = batchAxes(graph);
  for (const t of tiling.recompute) assert.equal(info.get(t)!.origin, "tokens", t);
  // the shape tensors (their values hold the batch size), the attention mask and the rotary tables are recomputed
  assert.ok(tiling.recompute.some((t) => info.get(t)!.batchElem === 0));
  assert.ok(tiling.recompute.some((t) => graph.elemTypes.get(t) === "bool")); // [batch, 1, query, key]
  assert.ok(tiling.recompute.some((t) => graph.elemTypes.get(t) === "float32" && info.get(t)!.axis === 0)); // cos / sin
  assert.ok(tiling.prologue!.inputs.every((x) => ["input_ids", "attention_mask", "position_ids"].includes(x)));
});

test("an op that mixes batch rows after the cut turns tiling off, with the reason", () => {
  const b = new GraphBuilder();
  const ids = b.input("input_ids", "int64", ["batch", "pos"]);
  const w = b.input("w", "float32", [8, 4]);
  const x = b.hook("hook_embed", b.op("Gather", [w, ids], { axis: 0 })); // [batch, pos, 4]
  const pooled = b.op("ReduceSum", [x, b.ints([0])], { keepdims: 1 }); // [1, pos, 4]: sums the batch
  b.output("logits", b.op("Add", [x, pooled]));
  const graph = b.build(["logits"]);
  const info = batchAxes(graph);
  assert.match(info.get(pooled)!.bad!, /ReduceSum over the batch axis/);
  const segments = partitionGraph(graph, ["hook_embed"], ["logits"]);
  const tiling = siteTiling(graph, segments, 0, new Set(["hook_embed"]));
  assert.ok("reason" in tiling && /ReduceSum over the batch axis/.test(tiling.reason));
  // a transpose moves the batch axis; a reshape of it to [-1, …] keeps it first
  const c = new GraphBuilder();
  const i2 = c.input("input_ids", "int64", ["batch", "pos"]);
  const e = c.op("Gather", [c.input("w", "float32", [8, 4]), i2], { axis: 0 });
  const t = c.op("Transpose", [e], { perm: [1, 0, 2] });
  const r = c.op("Reshape", [e, c.ints([-1, 4])]);
  c.output("logits", r);
  const ci = batchAxes(c.build(["logits"]));
  assert.equal(ci.get(t)!.axis, 1);
  assert.equal(ci.get(r)!.axis, 0);
});
