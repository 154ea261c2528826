/**
 * ActivationCache on hand-made values: lookup errors, values at each prompt's last token (left
 * and right padding), TransformerLens' accumulated_resid / decompose_resid / stack_head_results
 * labels, and the final norm applied to a stack.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ActivationCache, headLabel, HookNameError, InputError, Tensor, padTokens } from "../../lib/src";

const L = 2;
const H = 2;
const D = 3;
// Two prompts of lengths 3 and 2 → P = 3.
const left = padTokens(
  [
    [1, 2, 3],
    [4, 5],
  ],
  { padding: "left" },
);
const right = padTokens(
  [
    [1, 2, 3],
    [4, 5],
  ],
  { padding: "right" },
);
const B = 2;
const P = 3;

/** [batch, pos, d_model] with value = base + 100b + 10p + d. */
function resid(base: number): Tensor {
  const t = Tensor.zeros([B, P, D], ["batch", "pos", "d_model"]);
  for (let b = 0; b < B; b++)
    for (let p = 0; p < P; p++) for (let d = 0; d < D; d++) t.set([b, p, d], base + 100 * b + 10 * p + d);
  return t;
}

function makeCache(batch = left): ActivationCache {
  const values = new Map<string, Tensor>();
  values.set("hook_embed", resid(1000));
  for (let l = 0; l < L; l++) {
    values.set(`blocks.${l}.hook_resid_pre`, resid(2000 + 1000 * l));
    values.set(`blocks.${l}.hook_resid_mid`, resid(2500 + 1000 * l));
    values.set(`blocks.${l}.hook_attn_out`, resid(10000 + 1000 * l));
    values.set(`blocks.${l}.hook_mlp_out`, resid(20000 + 1000 * l));
    const r = Tensor.zeros([B, P, H, D], ["batch", "pos", "head", "d_model"]);
    for (let i = 0; i < r.size; i++) r.data[i] = 30000 + 1000 * l + i;
    values.set(`blocks.${l}.attn.hook_result`, r);
  }
  values.set(`blocks.${L - 1}.hook_resid_post`, resid(9000));
  const scale = Tensor.zeros([B, P, 1], ["batch", "pos", "one"]);
  for (let b = 0; b < B; b++) for (let p = 0; p < P; p++) scale.set([b, p, 0], 2 + b + p);
  values.set("ln_final.hook_scale", scale);
  return new ActivationCache(values, batch, {
    numLayers: L,
    numHeads: H,
    hiddenSize: D,
    finalNormWeight: Float32Array.from([1, 10, 100]),
  });
}

test("get / has / names, and a clear error for what was not cached", () => {
  const c = makeCache();
  assert.ok(c.has("hook_embed"));
  assert.equal(c.names()[0], "hook_embed");
  assert.equal(c.get("blocks.0.hook_resid_pre").get(1, 2, 0), 2000 + 100 + 20);
  assert.throws(
    () => c.get("blocks.0.attn.hook_pattern"),
    (e: unknown) =>
      e instanceof InputError &&
      /does not hold "blocks\.0\.attn\.hook_pattern"/.test(e.message) &&
      /runWithCache/.test(e.message),
  );
});

test("atPos: the last real token of each prompt under left and right padding, or a fixed index", () => {
  assert.deepEqual(Array.from(makeCache(left).atPos("hook_embed").data), [1020, 1021, 1022, 1120, 1121, 1122]);
  // right padding: prompt 1 (length 2) ends at index 1
  assert.deepEqual(Array.from(makeCache(right).atPos("hook_embed").data), [1020, 1021, 1022, 1110, 1111, 1112]);
  assert.deepEqual(makeCache().atPos("hook_embed", -1).data, makeCache().atPos("hook_embed", "last").data);
  assert.throws(() => makeCache().atPos("hook_embed", 3), InputError);
});

test("atPos(name, 0) is every prompt's first token (its BOS), whatever the padding side", () => {
  // left: prompt 1 (2 tokens) starts at padded index 1; right: at 0
  assert.deepEqual(Array.from(makeCache(left).atPos("hook_embed", 0).data), [1000, 1001, 1002, 1110, 1111, 1112]);
  assert.deepEqual(Array.from(makeCache(right).atPos("hook_embed", 0).data), [1000, 1001, 1002, 1100, 1101, 1102]);
  // position 2 exists in prompt 0 only: an error naming prompt 1, not its pad
  assert.throws(() => makeCache(left).atPos("hook_embed", 2), /outside prompt 1 \(2 tokens\)/);
  assert.equal(makeCache(left).atPos("hook_embed", -2).get(1, 0), 1110);
  assert.equal(makeCache(right).atPos("hook_embed", -2).get(1, 0), 1100);
});

test('get by TL shorthand and layer, as cache["resid_pre", 1]; unknown shorthands are HookNameErrors', () => {
  const c = makeCache();
  assert.equal(c.get("resid_pre", 1), c.get("blocks.1.hook_resid_pre"));
  assert.equal(c.get("attn_out", 0), c.get("blocks.0.hook_attn_out"));
  assert.equal(c.get("result", 1), c.get("blocks.1.attn.hook_result"));
  assert.equal(c.get("embed"), c.get("hook_embed"));
  assert.equal(c.get("scale"), c.get("ln_final.hook_scale"));
  assert.throws(
    () => c.get("resid_pree", 1),
    (e: unknown) =>
      e instanceof HookNameError && /from "resid_pree", layer 1/.test(e.message) && e.suggestions[0] === "resid_pre",
  );
  assert.throws(() => c.get("resid_pre", 5), HookNameError); // only 2 layers
  // a valid hook that was not cached: the cache's own message
  assert.throws(() => c.get("pattern", 0), /does not hold "blocks\.0\.attn\.hook_pattern"/);
});

test("accumulatedResid: TL labels and layer cut-off", () => {
  const c = makeCache();
  const { stack, labels } = c.accumulatedResid();
  assert.deepEqual(labels, ["0_pre", "1_pre", "final_post"]);
  assert.deepEqual(stack.shape, [3, B, D]);
  assert.deepEqual(stack.dims, ["component", "batch", "d_model"]);
  assert.equal(stack.get(2, 1, 0), 9000 + 100 + 20);
  assert.deepEqual(c.accumulatedResid({ layer: 1 }).labels, ["0_pre", "1_pre"]);
  assert.deepEqual(c.accumulatedResid({ inclMid: true }).labels, ["0_pre", "0_mid", "1_pre", "1_mid", "final_post"]);
  assert.throws(() => c.accumulatedResid({ layer: 3 }), /out of range/);
});

test("decomposeResid and stackHeadResults", () => {
  const c = makeCache();
  const d = c.decomposeResid();
  assert.deepEqual(d.labels, ["embed", "0_attn_out", "0_mlp_out", "1_attn_out", "1_mlp_out"]);
  assert.equal(d.stack.get(3, 0, 2), 11000 + 20 + 2);
  const h = c.stackHeadResults({ pos: 0 });
  assert.deepEqual(h.labels, ["L0H0", "L0H1", "L1H0", "L1H1"]);
  assert.deepEqual(h.labels, [headLabel(0, 0), headLabel(0, 1), headLabel(1, 0), headLabel(1, 1)]); // the one format
  assert.deepEqual(h.stack.shape, [L * H, B, D]);
  // L1H1 at batch 1, its token 0 (padded index 1 under left padding), d 2: flat index in [B,P,H,D]
  assert.equal(h.stack.get(3, 1, 2), 31000 + ((1 * P + 1) * H + 1) * D + 2);
});

test("applyLnToStack divides by ln_final.hook_scale at the position and multiplies by the norm weight", () => {
  const c = makeCache();
  const { stack } = c.accumulatedResid({ applyLn: true }); // last position (2) for both prompts
  // component 0 (0_pre), batch 1, d 1: (2000 + 100 + 20 + 1) / (2 + 1 + 2) * 10
  assert.ok(Math.abs(stack.get(0, 1, 1) - (2121 / 5) * 10) < 1e-3);
  const s = c.applyLnToStack(
    new Tensor(Float32Array.from([4, 4, 4, 6, 6, 6]), [1, B, D], ["component", "batch", "d_model"]),
    { pos: 0 },
  );
  // token 0 of each prompt: scale 2 + b + p at padded p = 0 (prompt 0) and p = 1 (prompt 1) → 2 and 4
  assert.deepEqual(Array.from(s.data), [2, 20, 200, 1.5, 15, 150]);
  assert.throws(
    () => c.applyLnToStack(Tensor.zeros([1, B, 4], ["component", "batch", "d_model"])),
    /expected \[component, 2, 3\]/,
  );
});
