/**
 * The graph layer: GraphBuilder (hooks are Identity nodes named after the hook), partitioning at
 * hooks, ONNX serialisation (opset 21, weights as inputs, dynamic batch/pos), and the Llama graph's
 * hook points. Segments run one after the other must equal the uncut graph.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as ort from "onnxruntime-node";
import { onnx } from "onnx-proto";
import { GraphBuilder } from "../../lib/src/runtime/graph/ir";
import { partitionGraph } from "../../lib/src/runtime/graph/partition";
import { OPSET, flatOutputs, foldOutputIdentities, segmentToModel } from "../../lib/src/runtime/graph/onnx-model";
import { buildLlamaGraph } from "../../lib/src/runtime/graph/llama-graph";
import { TINY_CONFIG } from "../../lib/src/testing/random-checkpoint";
import { hookNames, expectedLlamaWeights } from "../../lib/src";

/** x → h1 = 2x → h2 = h1 + x → out = 3·h2 (so out = 9x): x is used on both sides of the cut at h1. */
function toyGraph() {
  const b = new GraphBuilder();
  const x = b.input("x", "float32", ["n"]);
  const h1 = b.hook("h1", b.op("Mul", [x, b.scalar(2)]));
  const h2 = b.hook("h2", b.op("Add", [h1, x]));
  b.output("out", b.op("Mul", [h2, b.scalar(3)]));
  return b.build(["out"]);
}

async function runSegments(
  graph: ReturnType<typeof toyGraph>,
  cuts: string[],
  x: Float32Array,
  edit: (hook: string, v: Float32Array) => Float32Array = (_, v) => v,
) {
  const env = new Map<string, ort.Tensor>([["x", new ort.Tensor("float32", x, [x.length])]]);
  for (const seg of partitionGraph(graph, cuts, ["out"])) {
    const s = await ort.InferenceSession.create(segmentToModel(graph, seg));
    assert.deepEqual([...s.inputNames].sort(), [...seg.inputs].sort());
    const out = await s.run(Object.fromEntries(seg.inputs.map((n) => [n, env.get(n)!])));
    for (const o of seg.outputs) env.set(o, out[o]);
    if (seg.cutHook)
      env.set(
        seg.cutHook,
        new ort.Tensor("float32", edit(seg.cutHook, out[seg.cutHook].data as Float32Array), [x.length]),
      );
  }
  return env.get("out")!.data as Float32Array;
}

test("GraphBuilder: a hook is an Identity node whose output is the hook name; misuse is caught", () => {
  const g = toyGraph();
  const i = g.hooks.get("h1")!;
  assert.equal(g.nodes[i].op, "Identity");
  assert.deepEqual(g.nodes[i].outputs, ["h1"]);
  assert.ok(g.nodes.findIndex((n) => n.inputs.includes("h1")) > i, "consumers of the hook come after it");
  const b = new GraphBuilder();
  assert.throws(() => b.op("Relu", ["nope"]), /before it is defined/);
  const x = b.input("x", "float32", [2]);
  b.hook("h", x);
  assert.throws(() => b.hook("h", x), /defined twice/);
});

test("partition: cut after h1 → two segments; the second takes h1 and the graph input it still needs", () => {
  const g = toyGraph();
  const [s0, s1] = partitionGraph(g, ["h1"], ["out"]);
  assert.equal(s0.cutHook, "h1");
  assert.deepEqual(s0.outputs, ["h1"]);
  assert.deepEqual(s1.inputs.sort(), ["h1", "x"]);
  assert.deepEqual(s1.outputs, ["out"]);
  assert.equal(partitionGraph(g, [], ["out", "h2"]).length, 1);
  assert.deepEqual(partitionGraph(g, [], ["out", "h2"])[0].outputs, ["h2", "out"]);
  assert.throws(() => partitionGraph(g, ["h3"], ["out"]), /not a hook/);
});

test("segments run in turn equal the whole graph, and an edit between them flows downstream", async () => {
  const g = toyGraph();
  const x = Float32Array.from([1, -2, 0.5]);
  assert.deepEqual(Array.from(await runSegments(g, [], x)), [9, -18, 4.5]);
  assert.deepEqual(Array.from(await runSegments(g, ["h1", "h2"], x)), [9, -18, 4.5]);
  // zero h1: out = 3·(0 + x)
  assert.deepEqual(Array.from(await runSegments(g, ["h1"], x, (_, v) => v.map(() => 0))), [3, -6, 1.5]);
});

test("the ONNX model: opset 21, standard domain, constants as initializers that are not inputs", () => {
  const g = toyGraph();
  const m = onnx.ModelProto.decode(segmentToModel(g, partitionGraph(g, [], ["out"])[0]));
  assert.equal(Number(m.opsetImport[0].version), OPSET);
  assert.equal(OPSET, 21);
  assert.equal(m.opsetImport[0].domain, "");
  const graph = m.graph;
  assert.ok(graph && graph.input && graph.initializer, "the model has a graph with inputs and initializers");
  const inputs = graph.input.map((i) => i.name);
  assert.deepEqual(inputs, ["x"]);
  assert.ok(graph.initializer.length >= 2);
  for (const init of graph.initializer) assert.ok(!inputs.includes(init.name!));
  assert.equal(graph.input[0].type!.tensorType!.shape!.dim![0].dimParam, "n");
});

test("the Llama graph has every hook point in forward order, weights as inputs, standard ops only", () => {
  const config = { ...TINY_CONFIG, numLayers: 2, numKvHeads: 2 };
  const g = buildLlamaGraph(config, { withHeadResult: true });
  const hooks = [...g.hooks.entries()].sort((a, b) => a[1] - b[1]).map(([n]) => n);
  assert.deepEqual(hooks, hookNames(config));
  const plain = buildLlamaGraph(config);
  assert.deepEqual([...plain.hooks.keys()].sort(), hookNames(config, { withHeadResult: false }).sort());
  assert.deepEqual(
    g.inputs.map((i) => i.name),
    ["input_ids", "attention_mask", "position_ids", ...expectedLlamaWeights(config).keys()],
  );
  assert.deepEqual(g.inputs[0].shape, ["batch", "pos"]);
  const ops = new Set(g.nodes.map((n) => n.op));
  for (const op of ops) assert.match(op, /^[A-Z][A-Za-z]+$/);
  assert.ok(!ops.has("Constant"));
  // a cut at layer 0's z: the next segment needs z and resid_pre (for the residual add), plus the weights it uses
  const segs = partitionGraph(g, ["blocks.0.attn.hook_z"], ["logits"]);
  assert.ok(segs[1].inputs.includes("blocks.0.attn.hook_z"));
  assert.ok(segs[1].inputs.includes("blocks.0.hook_resid_pre"));
  assert.ok(segs[1].inputs.includes("model.layers.1.self_attn.q_proj.weight"));
  assert.ok(!segs[1].inputs.includes("model.layers.0.self_attn.q_proj.weight"));
});

test("the Llama graph runs on onnxruntime with any batch and length (dynamic dims)", async () => {
  const config = { ...TINY_CONFIG, numLayers: 1 };
  const g = buildLlamaGraph(config);
  const s = await ort.InferenceSession.create(segmentToModel(g, partitionGraph(g, [], ["logits"])[0]));
  const weights = Object.fromEntries(
    [...expectedLlamaWeights(config)].map(([n, shape]) => [
      n,
      new ort.Tensor(
        "float32",
        Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i) * 0.1),
        shape,
      ),
    ]),
  );
  for (const [B, P] of [
    [1, 3],
    [2, 5],
  ]) {
    const ints = (f: (b: number, p: number) => number) =>
      new ort.Tensor(
        "int64",
        BigInt64Array.from({ length: B * P }, (_, i) => BigInt(f(Math.floor(i / P), i % P))),
        [B, P],
      );
    const out = await s.run({
      ...weights,
      input_ids: ints((b, p) => (b + p) % 64),
      attention_mask: ints(() => 1),
      position_ids: ints((_, p) => p),
    });
    assert.deepEqual(out.logits.dims, [B, P, 64]);
    assert.ok((out.logits.data as Float32Array).every(Number.isFinite));
  }
});

test("hook outputs are written by their producers: no Identity copies a cached value (foldOutputIdentities)", async () => {
  // toy: both hooks returned; h2 also feeds `out`, h1 feeds h2 and is itself returned
  const graph = toyGraph();
  const [seg] = partitionGraph(graph, [], ["h1", "h2", "out"]);
  const folded = foldOutputIdentities(seg);
  assert.equal(folded.filter((n) => n.op === "Identity").length, 0);
  assert.deepEqual(
    folded
      .map((n) => n.outputs[0])
      .filter((o) => seg.outputs.includes(o))
      .sort(),
    ["h1", "h2", "out"],
  );
  const s = await ort.InferenceSession.create(segmentToModel(graph, seg));
  const out = await s.run({ x: new ort.Tensor("float32", Float32Array.from([1, 2]), [2]) });
  assert.deepEqual([...(out.h1.data as Float32Array)], [2, 4]);
  assert.deepEqual([...(out.h2.data as Float32Array)], [3, 6]);
  assert.deepEqual([...(out.out.data as Float32Array)], [9, 18]);
  // the Llama graph with every hook cached: an Identity stays only where two hooks name one value
  const llama = buildLlamaGraph(TINY_CONFIG, {});
  const [all] = partitionGraph(llama, [], ["logits", ...llama.hooks.keys()]);
  const outputs = new Set(all.outputs);
  for (const n of foldOutputIdentities(all).filter((m) => m.op === "Identity"))
    assert.ok(outputs.has(n.inputs[0]), `${n.outputs[0]} still copies ${n.inputs[0]}`);
});

test("projection hooks and the logits are written flat by their Gemm: the same floats, no Reshape copy", async () => {
  const config = { ...TINY_CONFIG, numLayers: 1 };
  const g = buildLlamaGraph(config);
  const [seg] = partitionGraph(g, [], ["logits", ...g.hooks.keys()]);
  const flat = flatOutputs(seg);
  // every projection's hook (q, k, v, attn_out, pre, pre_linear, mlp_out) and the logits; nothing else
  assert.deepEqual([...flat].sort(), [
    "blocks.0.attn.hook_k",
    "blocks.0.attn.hook_q",
    "blocks.0.attn.hook_v",
    "blocks.0.hook_attn_out",
    "blocks.0.hook_mlp_out",
    "blocks.0.mlp.hook_pre",
    "blocks.0.mlp.hook_pre_linear",
    "logits",
  ]);
  const [B, P] = [2, 5];
  const ints = (f: (b: number, p: number) => number) =>
    new ort.Tensor(
      "int64",
      BigInt64Array.from({ length: B * P }, (_, i) => BigInt(f(Math.floor(i / P), i % P))),
      [B, P],
    );
  const feeds: Record<string, ort.Tensor> = {
    input_ids: ints((b, p) => (3 * b + p) % 64),
    attention_mask: ints(() => 1),
    position_ids: ints((_, p) => p),
  };
  for (const [n, shape] of expectedLlamaWeights(config))
    feeds[n] = new ort.Tensor(
      "float32",
      Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i + n.length) * 0.1),
      shape,
    );
  const run = async (opts: { flat?: boolean }) => {
    const s = await ort.InferenceSession.create(segmentToModel(g, seg, "parenlens", opts));
    return s.run(Object.fromEntries(s.inputNames.map((n) => [n, feeds[n]])));
  };
  const [plain, folded] = [await run({}), await run({ flat: true })];
  for (const name of seg.outputs) {
    const dims = plain[name].dims;
    // a flat output is [batch*pos, rest] of the same values: the planner views it with the hook's shape
    if (flat.has(name))
      assert.deepEqual(folded[name].dims, [dims[0] * dims[1], dims.slice(2).reduce((a, d) => a * d, 1)]);
    else assert.deepEqual(folded[name].dims, dims);
    assert.deepEqual(folded[name].data, plain[name].data, `${name} is bit-equal`);
  }
});
