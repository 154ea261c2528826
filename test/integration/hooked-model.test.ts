/**
 * HookedLlama end to end on a seeded random 3-layer GQA checkpoint: shapes, what the cache holds,
 * padding, interventions (upstream untouched, patching, ablations), per-head results, attention
 * patterns, weights, and loud failures on bad names and inputs.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { checkFeedNames } from "../../lib/src/runtime/session-plan";
import { writeRandomCheckpoint } from "../../lib/src/testing/random-checkpoint";
import { HookedLlama, HookNameError, InputError, InterventionError, ParenlensError } from "../../lib/src";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-hooked-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
const ck = writeRandomCheckpoint(path.join(tmp, "gqa3"), {
  config: { numLayers: 3, numHeads: 4, numKvHeads: 2 },
  seed: 7,
});
const { config } = ck;
const V = config.vocabSize;
const D = config.hiddenSize;
const H = config.numHeads;

const promptA = [3, 14, 15, 9, 26, 5];
const promptB = [2, 7, 18, 28, 18, 28];
let model: HookedLlama;
before(async () => {
  model = await HookedLlama.fromPretrained(ck.folder, { tokenizer: false });
});

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

test("run: logits [batch, pos, vocab], or [batch, vocab] at the last token", async () => {
  const logits = await model.run([promptA]);
  assert.deepEqual(logits.shape, [1, 6, V]);
  assert.deepEqual(logits.dims, ["batch", "pos", "vocab"]);
  const last = await model.run([promptA], { logitsAt: "last" });
  assert.deepEqual(last.shape, [1, V]);
  assert.ok(maxAbsDiff(last.data, logits.data.subarray(5 * V)) < 1e-5);
  assert.equal(model.hookNames().length, 1 + 3 * 21 + 2);
});

test("the cache holds exactly what was asked, with shapes and dims", async () => {
  const { cache } = await model.runWithCache([promptA], {
    names: ["blocks.1.attn.hook_pattern", "blocks.0.hook_resid_post"],
  });
  assert.deepEqual(cache.names(), ["blocks.0.hook_resid_post", "blocks.1.attn.hook_pattern"]);
  assert.deepEqual(cache.get("blocks.1.attn.hook_pattern").shape, [1, H, 6, 6]);
  assert.deepEqual(cache.get("blocks.1.attn.hook_pattern").dims, ["batch", "head", "query_pos", "key_pos"]);
  const byPrefix = await model.runWithCache([promptA], { names: { prefix: "blocks.2.mlp." } });
  assert.deepEqual(byPrefix.cache.names(), [
    "blocks.2.mlp.hook_pre",
    "blocks.2.mlp.hook_pre_linear",
    "blocks.2.mlp.hook_post",
  ]);
  const byPredicate = await model.runWithCache([promptA], { names: (n) => n.endsWith("hook_k") });
  assert.deepEqual(byPredicate.cache.names(), ["blocks.0.attn.hook_k", "blocks.1.attn.hook_k", "blocks.2.attn.hook_k"]);
  assert.deepEqual(byPredicate.cache.get("blocks.2.attn.hook_k").shape, [1, 6, 2, config.headDim]);
});

test("a left-padded batch gives each prompt's last-token logits as when run alone", async () => {
  const prompts = [promptA, [9, 9, 1], [4], promptB.slice(0, 5)];
  const batched = await model.run(prompts, { logitsAt: "last" }); // [batch, vocab]
  const rightPadded = await model.run(prompts, { logitsAt: "last", padding: "right" });
  for (let b = 0; b < prompts.length; b++) {
    const alone = await model.run([prompts[b]], { logitsAt: "last" });
    assert.ok(maxAbsDiff(batched.data.subarray(b * V, (b + 1) * V), alone.data) < 1e-5, `prompt ${b} (left)`);
    assert.ok(maxAbsDiff(rightPadded.data.subarray(b * V, (b + 1) * V), alone.data) < 1e-5, `prompt ${b} (right)`);
  }
});

test("an intervention on layer 2 leaves every earlier hook bit-identical", async () => {
  const names = model.hookNames().filter((n) => !n.includes("hook_result"));
  const clean = await model.runWithCache([promptA, promptB], { names });
  const target = "blocks.2.hook_resid_mid";
  const hooked = await model.runWithCache([promptA, promptB], {
    interventions: [{ hook: target, kind: "scale", factor: 0.5, positions: [-1] }],
    names,
  });
  const at = names.indexOf(target);
  for (const n of names.slice(0, at)) assert.deepEqual(hooked.cache.get(n).data, clean.cache.get(n).data, n);
  assert.ok(
    maxAbsDiff(hooked.cache.get("ln_final.hook_normalized").data, clean.cache.get("ln_final.hook_normalized").data) >
      1e-3,
  );
  // only the last position was scaled; earlier positions downstream are unchanged (causal)
  const post = hooked.cache.get("blocks.2.hook_resid_post");
  const cleanPost = clean.cache.get("blocks.2.hook_resid_post");
  assert.deepEqual(post.select(1, 0).data, cleanPost.select(1, 0).data);
  assert.ok(maxAbsDiff(post.select(1, 5).data, cleanPost.select(1, 5).data) > 1e-3);
});

test("an identity function intervention changes nothing (cut graph = whole graph)", async () => {
  const clean = await model.run([promptA, promptB]);
  let calls = 0;
  const same = await model.runWithHooks(
    [promptA, promptB],
    [
      { hook: "blocks.0.attn.hook_rot_k", kind: "function", fn: () => void calls++ },
      { hook: "blocks.1.mlp.hook_post", kind: "function", fn: (v) => v },
    ],
  );
  assert.equal(calls, 1);
  assert.ok(maxAbsDiff(same.data, clean.data) < 1e-6);
});

test("patching a residual stream from another run's cache reproduces that run downstream", async () => {
  const name = "blocks.1.hook_resid_post";
  const runB = await model.runWithCache([promptB], { names: [name] });
  const patched = await model.runWithHooks([promptA], [{ hook: name, kind: "patch", source: runB.cache }]);
  assert.ok(maxAbsDiff(patched.data, runB.logits.data) < 1e-5);
  // patching the last layer's output at the last position only: earlier logits stay A's, the last is B's
  const lastName = "blocks.2.hook_resid_post";
  const runB2 = await model.runWithCache([promptB], { names: [lastName] });
  const cleanA = await model.run([promptA]);
  const lastOnly = await model.runWithHooks(
    [promptA],
    [{ hook: lastName, kind: "patch", source: runB2.cache, positions: [-1] }],
  );
  assert.ok(maxAbsDiff(lastOnly.data.subarray(0, 5 * V), cleanA.data.subarray(0, 5 * V)) < 1e-6);
  assert.ok(maxAbsDiff(lastOnly.data.subarray(5 * V), runB2.logits.data.subarray(5 * V)) < 1e-5);
  // a source of another batch size is rejected
  const two = await model.runWithCache([promptA, promptB], { names: [name] });
  await assert.rejects(
    model.runWithHooks([promptA], [{ hook: name, kind: "patch", source: two.cache }]),
    InterventionError,
  );
});

test("zeroing every head's z equals zeroing attn_out; per-head results sum to attn_out", async () => {
  const names = ["blocks.1.hook_attn_out", "blocks.1.attn.hook_result", "blocks.2.hook_resid_pre"];
  const clean = await model.runWithCache([promptA, promptB], { names });
  const result = clean.cache.get("blocks.1.attn.hook_result"); // [batch, pos, head, d_model]
  const attnOut = clean.cache.get("blocks.1.hook_attn_out"); // [batch, pos, d_model]
  const sum = new Float64Array(attnOut.size);
  for (let bp = 0; bp < attnOut.size / D; bp++)
    for (let h = 0; h < H; h++) for (let d = 0; d < D; d++) sum[bp * D + d] += result.data[(bp * H + h) * D + d];
  assert.ok(maxAbsDiff(sum, attnOut.data) < 1e-5);

  const viaZ = await model.runWithCache([promptA, promptB], {
    interventions: [{ hook: "blocks.1.attn.hook_z", kind: "zero", heads: [0, 1, 2, 3] }],
    names: ["blocks.1.hook_attn_out", "blocks.2.hook_resid_pre"],
  });
  const viaOut = await model.runWithCache([promptA, promptB], {
    interventions: [{ hook: "blocks.1.hook_attn_out", kind: "zero" }],
    names: ["blocks.1.hook_attn_out", "blocks.2.hook_resid_pre"],
  });
  assert.ok(viaZ.cache.get("blocks.1.hook_attn_out").data.every((x) => x === 0));
  assert.ok(maxAbsDiff(viaZ.logits.data, viaOut.logits.data) < 1e-6);
  assert.ok(
    maxAbsDiff(viaZ.cache.get("blocks.2.hook_resid_pre").data, viaOut.cache.get("blocks.2.hook_resid_pre").data) < 1e-6,
  );
});

test("attention patterns: rows sum to 1, nothing above the diagonal, pad keys get nothing", async () => {
  const { cache } = await model.runWithCache([promptA, [5, 6, 7]], { names: { prefix: "blocks.0.attn.hook_pattern" } });
  const p = cache.get("blocks.0.attn.hook_pattern"); // [batch, head, query_pos, key_pos]
  const scores = await model.runWithCache([promptA], { names: ["blocks.0.attn.hook_attn_scores"] });
  assert.ok(
    scores.cache.get("blocks.0.attn.hook_attn_scores").get(0, 0, 0, 1) < -1e38,
    "masked scores are float32 lowest",
  );
  const P = 6;
  const pad = [0, 3];
  for (let b = 0; b < 2; b++)
    for (let h = 0; h < H; h++)
      for (let q = pad[b]; q < P; q++) {
        let s = 0;
        for (let k = 0; k < P; k++) {
          const v = p.get(b, h, q, k);
          if (k > q || k < pad[b]) assert.equal(v, 0, `b${b} h${h} q${q} k${k}`);
          s += v;
        }
        assert.ok(Math.abs(s - 1) < 1e-5);
      }
});

test("weights: W_U, W_E, W_O per head, final norm; setWeight changes the next run", async () => {
  assert.deepEqual(model.W_U.shape, [D, V]);
  assert.deepEqual(model.W_E.shape, [V, D]);
  assert.deepEqual(model.finalNormWeight.shape, [D]);
  const WO = model.W_O(1);
  assert.deepEqual(WO.dims, ["head", "d_head", "d_model"]);
  const o = model.getWeight("model.layers.1.self_attn.o_proj.weight"); // [d_model, head*d_head]
  assert.equal(WO.get(2, 3, 5), o.get(5, 2 * config.headDim + 3));
  assert.equal(model.W_U.get(4, 9), model.getWeight("lm_head.weight").get(9, 4));
  assert.throws(() => model.W_O(3), InputError);

  const before = await model.run([promptA]);
  const lm = model.getWeight("lm_head.weight");
  model.setWeight("lm_head.weight", new Float32Array(lm.size));
  try {
    assert.ok((await model.run([promptA])).data.every((x) => x === 0));
  } finally {
    model.setWeight("lm_head.weight", lm);
  }
  assert.deepEqual((await model.run([promptA])).data, before.data);
  assert.throws(() => model.setWeight("lm_head.weight", new Float32Array(3)), /expected a Float32Array of/);
  assert.throws(() => model.setWeight("lm_head.weights", new Float32Array(3)), InputError);
});

test("W_E, W_U, W_O and finalNormWeight are copies: editing one changes nothing, setWeight changes them all", async () => {
  const before = await model.run([promptA]);
  const WU = model.W_U; // [d_model, vocab]
  const WE = model.W_E; // [vocab, d_model]
  const WO = model.W_O(0); // [head, d_head, d_model]
  const norm = model.finalNormWeight; // [d_model]
  for (const t of [WU, WE, WO, norm]) t.data.fill(0);
  // no silent half-effect: neither the next run nor the next getter sees the edit
  assert.deepEqual((await model.run([promptA])).data, before.data);
  assert.ok(model.W_U.data.some((x) => x !== 0));
  assert.ok(model.W_E.data.some((x) => x !== 0));
  assert.ok(model.W_O(0).data.some((x) => x !== 0));
  assert.ok(model.finalNormWeight.data.some((x) => x !== 0));
  assert.notEqual(model.W_U.data, model.W_U.data, "a fresh array each access");

  // the way to edit: setWeight in HF layout; every getter follows (no stale cache)
  const lm = model.getWeight("lm_head.weight"); // [vocab, d_model]
  const o = model.getWeight("model.layers.0.self_attn.o_proj.weight"); // [d_model, head*d_head]
  const edited = lm.clone();
  edited.set([9, 4], 123);
  const editedO = o.clone();
  editedO.set([5, 2 * config.headDim + 3], -7);
  model.setWeight("lm_head.weight", edited);
  model.setWeight("model.layers.0.self_attn.o_proj.weight", editedO);
  try {
    assert.equal(model.W_U.get(4, 9), 123);
    assert.equal(model.W_O(0).get(2, 3, 5), -7);
    assert.notDeepEqual((await model.run([promptA])).data, before.data);
  } finally {
    model.setWeight("lm_head.weight", lm);
    model.setWeight("model.layers.0.self_attn.o_proj.weight", o);
  }
  assert.deepEqual((await model.run([promptA])).data, before.data);
});

test("string coercion of a model describes it and never throws; decode(ids) gives text", async () => {
  assert.equal(`${model}`, `HookedLlama(3 layers, 4 heads, d_model ${D}, vocab ${V} from ${ck.folder})`);
  assert.equal("" + model, String(model));
  // the old toString(ids) fails loudly instead of printing the description as a token
  assert.throws(() => (model as unknown as { toString(ids: number): string }).toString(3), /is now decode\(ids\)/);
  assert.throws(() => model.decode([1]), /no tokenizer to decode with/); // random checkpoint: no tokenizer.json
  assert.equal(model.tokenizer, null);
});

test("only runtime/session-plan.ts imports onnxruntime-node in lib/", () => {
  const lib = path.join(__dirname, "..", "..", "lib", "src");
  const importers: string[] = [];
  const walk = (dir: string): void => {
    for (const f of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, f.name);
      if (f.isDirectory()) walk(p);
      else if (f.name.endsWith(".ts") && /from "onnxruntime-node"/.test(fs.readFileSync(p, "utf8")))
        importers.push(path.relative(lib, p));
    }
  };
  walk(lib);
  assert.deepEqual(importers, [path.join("runtime", "session-plan.ts")]);

  assert.throws(() => model.setWeight("lm_head.weights", new Float32Array(3)), InputError);
});

test("bad names and inputs fail loudly with typed errors", async () => {
  await assert.rejects(
    model.runWithCache([promptA], { names: ["blocks.0.attn.hook_patern"] }),
    (e: unknown) => e instanceof HookNameError && e.suggestions[0] === "blocks.0.attn.hook_pattern",
  );
  await assert.rejects(
    model.runWithHooks([promptA], [{ hook: "blocks.9.hook_resid_pre", kind: "zero" }]),
    HookNameError,
  );
  await assert.rejects(
    model.runWithHooks([promptA], [{ hook: "blocks.0.attn.hook_z", kind: "zero", heads: [H] }]),
    InterventionError,
  );
  await assert.rejects(
    model.runWithHooks([promptA], [{ hook: "blocks.0.hook_resid_pre", kind: "zero", positions: [6] }]),
    /position 6 is outside prompt 0 \(6 tokens\)/,
  );
  await assert.rejects(
    model.run([[1, V]]),
    (e: unknown) => e instanceof InputError && /outside the vocabulary/.test(e.message),
  );
  await assert.rejects(model.run([]), InputError);
  await assert.rejects(model.run("text"), /needs a tokenizer/);
  // ORT would silently drop an unknown feed: the runtime checks names itself
  assert.throws(
    () => checkFeedNames(["input_ids", "x"], { input_ids: 1, x: 2, blocks_typo: 3 }, "segment 1/1"),
    (e: unknown) => e instanceof ParenlensError && e.code === "FEED" && /blocks_typo/.test(e.message),
  );
  assert.throws(() => checkFeedNames(["input_ids", "x"], { input_ids: 1 }, "segment 1/1"), /missing inputs x/);
  await assert.rejects(HookedLlama.fromPretrained(path.join(tmp, "nope")), ParenlensError);
});

test("the CUDA execution provider either works or fails with a clear EXECUTION_PROVIDER error", async () => {
  try {
    const gpu = await HookedLlama.fromPretrained(ck.folder, { executionProvider: "cuda", tokenizer: false });
    assert.ok(maxAbsDiff((await gpu.run([promptA])).data, (await model.run([promptA])).data) < 1e-3);
  } catch (e) {
    assert.ok(e instanceof ParenlensError && e.code === "EXECUTION_PROVIDER", String(e));
    assert.match((e as Error).message, /executionProvider: "cpu"/);
  }
});

test("per-head results from a cached z (TL compute_head_results) equal attn.hook_result", async () => {
  const withResult = await model.runWithCache([promptA, promptB], {
    names: { prefix: "blocks." },
    withHeadResult: true,
  });
  const withZ = await model.runWithCache([promptA, promptB], { names: (n) => n.endsWith("attn.hook_z") });
  const a = withResult.cache.stackHeadResults({ pos: -2 });
  const b = withZ.cache.stackHeadResults({ pos: -2 });
  assert.deepEqual(b.labels, a.labels);
  assert.equal(a.labels.length, 3 * H);
  assert.ok(maxAbsDiff(a.stack.data, b.stack.data) < 1e-5);
});

test("text in: left-padded TokenBatch with BOS, positions from the mask, tokens as strings", async () => {
  const tok = await HookedLlama.fromPretrained(path.join(__dirname, "..", "fixtures", "checkpoints", "tiny-tok"));
  const batch = tok.toTokens(["print(str(", "x = f(g("]);
  assert.equal(batch.padding, "left");
  assert.deepEqual(
    batch.lengths.map((n, b) => batch.attentionMask[b].reduce((s, m) => s + m, 0)),
    batch.lengths,
  );
  const short = batch.lengths[0] < batch.lengths[1] ? 0 : 1;
  const pads = batch.ids[0].length - batch.lengths[short];
  assert.ok(pads > 0);
  assert.deepEqual(
    batch.positions[short].slice(pads),
    Array.from({ length: batch.lengths[short] }, (_, i) => i),
  );
  assert.deepEqual(tok.toStrTokens("print(str("), ["<s>", "print", "(", "str", "("]);
  assert.equal(tok.decode(tok.toTokens("print(str(").ids[0].slice(1)), "print(str(");
  const fromText = await tok.run(["print(str(", "x = f(g("], { logitsAt: "last" });
  const fromIds = await tok.run(batch, { logitsAt: "last" });
  assert.deepEqual(fromText.data, fromIds.data);
});
