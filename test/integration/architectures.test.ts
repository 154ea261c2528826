/**
 * Every supported architecture through the hooked runtime, with the TransformerLens meaning of its
 * hooks: on each transformers-built fixture (test/fixtures/checkpoints/hf-*) the residual stream
 * adds up, heads (plus o_proj's bias) add up to attn_out, patterns are causal distributions that
 * respect the sliding window, the norm hooks undo the norm, the MLP hooks compose with the family's
 * activation, and logits are the final norm's output times W_U. A hook the family lacks is a
 * HookNameError that says why; analyses written for RMSNorm refuse a LayerNorm model.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { relativeError } from "../../lib/src/testing/reference-forward";
import { ConfigError, HookedLlama, HookNameError, hookNames, padTokens, Tensor } from "../../lib/src";

const FIXTURES = path.join(__dirname, "..", "fixtures", "checkpoints");
const names = fs.readdirSync(FIXTURES).filter((n) => n.startsWith("hf-") && !n.endsWith("-tok"));
const prompts = [
  [5, 9, 2, 33, 7, 18, 40, 12, 3],
  [11, 3, 60],
  [1, 2, 3, 4, 5, 6],
];
const batch = padTokens(prompts, { padding: "left", padId: 0 });
const [B, P] = [batch.ids.length, batch.ids[0].length];

/** The value at [b, p] of a [batch, pos, width] tensor. */
const at = (t: Tensor, b: number, p: number): Float32Array => {
  const w = t.shape[2];
  return t.data.subarray((b * P + p) * w, (b * P + p + 1) * w);
};

/** Every real (b, p) of the batch. */
const realPositions = (): [number, number][] =>
  batch.attentionMask.flatMap((row, b) => row.flatMap((m, p) => (m ? [[b, p] as [number, number]] : [])));

const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const silu = (x: number) => x / (1 + Math.exp(-x));

for (const name of names) {
  test(`${name}: TransformerLens hooks add up with this architecture's meaning`, async () => {
    const model = await HookedLlama.fromPretrained(path.join(FIXTURES, name), { tokenizer: false });
    const c = model.config;
    const all = hookNames(c);
    const { logits, cache } = await model.runWithCache(batch, { names: all });
    const [D, H, L] = [c.hiddenSize, c.numHeads, c.numLayers];
    let worst = 0;
    const close = (what: string, got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5) => {
      const e = relativeError(got, want);
      worst = Math.max(worst, e);
      assert.ok(e < tol, `${name} ${what}: relative error ${e.toExponential(2)}`);
    };
    for (let l = 0; l < L; l++) {
      const g = (h: string) => cache.get(`blocks.${l}.${h}`);
      for (const [b, p] of realPositions()) {
        const sum = Float64Array.from(at(g("hook_resid_pre"), b, p), (x, i) => x + at(g("hook_attn_out"), b, p)[i]);
        close(`L${l} resid_mid`, at(g("hook_resid_mid"), b, p), sum);
        // heads + b_O = attn_out
        const result = g("attn.hook_result"); // [batch, pos, head, d_model]
        const heads = new Float64Array(D);
        const oBias = c.outputBias ? model.getWeight(`model.layers.${l}.self_attn.o_proj.bias`).data : null;
        for (let i = 0; i < D; i++) {
          heads[i] = oBias ? oBias[i] : 0;
          for (let h = 0; h < H; h++) heads[i] += result.data[((b * P + p) * H + h) * D + i];
        }
        close(`L${l} sum of hook_result (+ b_O)`, at(g("hook_attn_out"), b, p), heads);
        // the norm's hooks undo it: normalized · scale = x (- mean for LayerNorm)
        const x = at(g("hook_resid_pre"), b, p);
        const mean = c.norm === "layer" ? x.reduce((a, v) => a + v, 0) / D : 0;
        const s = at(g("ln1.hook_scale"), b, p)[0];
        close(
          `L${l} ln1`,
          Float64Array.from(at(g("ln1.hook_normalized"), b, p), (v) => v * s + mean),
          x,
        );
        // MLP: post = act(pre) (· pre_linear when gated)
        const act = c.activation === "silu" ? silu : gelu;
        const pre = at(g("mlp.hook_pre"), b, p);
        const lin = c.mlp === "gated" ? at(g("mlp.hook_pre_linear"), b, p) : null;
        close(
          `L${l} mlp.hook_post`,
          at(g("mlp.hook_post"), b, p),
          Float64Array.from(pre, (v, i) => act(v) * (lin ? lin[i] : 1)),
        );
      }
      // patterns: rows of real queries sum to 1 over visible keys only (causal, in the window, no pad)
      const pattern = g("attn.hook_pattern"); // [batch, head, query_pos, key_pos]
      for (const [b, q] of realPositions()) {
        for (let h = 0; h < H; h++) {
          let total = 0;
          for (let k = 0; k < P; k++) {
            const a = pattern.data[((b * H + h) * P + q) * P + k];
            const visible =
              k <= q && batch.attentionMask[b][k] === 1 && (c.slidingWindow === null || q - k < c.slidingWindow);
            if (!visible) assert.equal(a, 0, `${name} L${l} prompt ${b} head ${h}: key ${k} hidden from query ${q}`);
            total += a;
          }
          assert.ok(Math.abs(total - 1) < 1e-5);
        }
      }
    }
    // logits = final norm output @ W_U
    const WU = model.W_U; // [d_model, vocab]
    const V = c.vocabSize;
    const w = model.getWeight("model.norm.weight").data;
    const bias = c.norm === "layer" ? model.getWeight("model.norm.bias").data : null;
    for (const [b, p] of realPositions()) {
      const n = at(cache.get("ln_final.hook_normalized"), b, p);
      const out = Float64Array.from(
        n,
        (v, i) => v * (w[i] + (c.norm === "rms_one_plus" ? 1 : 0)) + (bias ? bias[i] : 0),
      );
      const want = new Float64Array(V);
      for (let i = 0; i < D; i++) for (let v = 0; v < V; v++) want[v] += out[i] * WU.data[i * V + v];
      close("logits", logits.data.subarray((b * P + p) * V, (b * P + p + 1) * V), want, 1e-4);
    }
  });
}

test("Starcoder2's non-gated MLP has no mlp.hook_pre_linear: HookNameError saying why", async () => {
  const model = await HookedLlama.fromPretrained(path.join(FIXTURES, "hf-starcoder2"), { tokenizer: false });
  assert.ok(!hookNames(model.config).some((n) => n.endsWith("hook_pre_linear")));
  await assert.rejects(
    model.runWithCache(batch, { names: ["blocks.0.mlp.hook_pre_linear"] }),
    (e: unknown) =>
      e instanceof HookNameError &&
      /non-gated MLP/.test(e.message) &&
      /exists only for gated MLPs/.test(e.message) &&
      e.suggestions.includes("blocks.0.mlp.hook_pre"),
  );
  await assert.rejects(
    model.runWithHooks(batch, [{ hook: "blocks.1.mlp.hook_pre_linear", kind: "zero" }]),
    HookNameError,
  );
  // analyses that apply the final RMSNorm by hand refuse a LayerNorm model instead of being silently wrong
  assert.throws(() => model.finalNormWeight, ConfigError);
  const { cache } = await model.runWithCache(batch, { names: ["ln_final.hook_scale", "blocks.1.hook_resid_post"] });
  assert.throws(
    () =>
      cache.applyLnToStack(
        new Tensor(
          new Float32Array(B * model.config.hiddenSize),
          [1, B, model.config.hiddenSize],
          ["component", "batch", "d_model"],
        ),
      ),
    /LayerNorm/,
  );
});

test("Gemma's finalNormWeight is 1 + model.norm.weight (as TransformerLens folds it)", async () => {
  const model = await HookedLlama.fromPretrained(path.join(FIXTURES, "hf-gemma"), { tokenizer: false });
  const raw = model.getWeight("model.norm.weight").data;
  assert.deepEqual(
    Array.from(model.finalNormWeight.data),
    Array.from(raw, (x) => Math.fround(x + 1)),
  );
});
