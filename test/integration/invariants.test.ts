/**
 * Invariants of the hooked runtime that hold whatever the weights: the residual stream adds up,
 * heads add up to attn_out, attention patterns are causal distributions that ignore pad keys,
 * ablations agree with each other, interventions only act downstream, and the cache's
 * TransformerLens helpers decompose the final residual stream and the logits exactly.
 * Run on a seeded random 3-layer GQA checkpoint with a left-padded batch.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { writeRandomCheckpoint } from "../../lib/src/testing/random-checkpoint";
import { relativeError } from "../../lib/src/testing/reference-forward";
import { HookedLlama, hookNames, padTokens, Tensor } from "../../lib/src";
import type { ActivationCache } from "../../lib/src";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-inv-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

const L = 3;
const H = 4;
const ck = writeRandomCheckpoint(path.join(tmp, "gqa3"), {
  config: { numLayers: L, numHeads: H, numKvHeads: 2 },
  seed: 21,
});
const { config } = ck;
const d = config.hiddenSize;
// Left-padded: prompt 1 has 4 pad positions, prompt 2 has 2.
const batch = padTokens(
  [
    [5, 9, 2, 33, 7, 18, 40],
    [11, 3, 60],
    [1, 2, 3, 4, 5],
  ],
  { padding: "left", padId: 0 },
);
const B = batch.ids.length;
const P = batch.ids[0].length;
const names = hookNames(config);

let model: HookedLlama;
let clean: { logits: Tensor; cache: ActivationCache };
before(async () => {
  model = await HookedLlama.fromPretrained(ck.folder, { tokenizer: false });
  clean = await model.runWithCache(batch, { names });
});

/**
 * Relative error over the real (unpadded) positions of every prompt: entries at a pad position of
 * any position dim (pos, query_pos, key_pos) and masked attention scores (float32 lowest) are skipped.
 */
function realPositionsError(actual: Tensor, expected: ArrayLike<number>): number {
  const posDims = actual.dims.flatMap((dim, k) =>
    dim === "pos" || dim === "query_pos" || dim === "key_pos" ? [k] : [],
  );
  const skip = (i: number) => {
    if (actual.data[i] < -1e30 || expected[i] < -1e30) return true;
    const b = Math.floor(i / actual.strides[0]) % B;
    return posDims.some((k) => batch.attentionMask[b][Math.floor(i / actual.strides[k]) % actual.shape[k]] === 0);
  };
  return relativeError(actual.data, expected, skip);
}

const get = (name: string) => clean.cache.get(name);
const add = (...ts: Tensor[]) => {
  const out = new Float64Array(ts[0].size);
  for (const t of ts) for (let i = 0; i < out.length; i++) out[i] += t.data[i];
  return out;
};

test("resid_mid = resid_pre + attn_out and resid_post = resid_mid + mlp_out = resid_pre + attn_out + mlp_out", () => {
  for (let l = 0; l < L; l++) {
    const pre = get(`blocks.${l}.hook_resid_pre`);
    const attn = get(`blocks.${l}.hook_attn_out`);
    const mlp = get(`blocks.${l}.hook_mlp_out`);
    assert.ok(realPositionsError(get(`blocks.${l}.hook_resid_mid`), add(pre, attn)) < 1e-6, `layer ${l} resid_mid`);
    assert.ok(
      realPositionsError(get(`blocks.${l}.hook_resid_post`), add(pre, attn, mlp)) < 1e-6,
      `layer ${l} resid_post`,
    );
    if (l + 1 < L)
      assert.deepEqual(get(`blocks.${l + 1}.hook_resid_pre`).data, get(`blocks.${l}.hook_resid_post`).data);
  }
  assert.deepEqual(get("blocks.0.hook_resid_pre").data, get("hook_embed").data);
});

test("the sum over heads of hook_result is hook_attn_out", () => {
  for (let l = 0; l < L; l++) {
    const result = get(`blocks.${l}.attn.hook_result`); // [batch, pos, head, d_model]
    assert.deepEqual(result.shape, [B, P, H, d]);
    const summed = new Float64Array(B * P * d); // [batch, pos, d_model]
    for (let bp = 0; bp < B * P; bp++)
      for (let h = 0; h < H; h++) for (let i = 0; i < d; i++) summed[bp * d + i] += result.data[(bp * H + h) * d + i];
    assert.ok(realPositionsError(get(`blocks.${l}.hook_attn_out`), summed) < 1e-5, `layer ${l}`);
  }
});

test("pattern rows sum to 1, nothing above the diagonal, nothing on pad keys", () => {
  for (let l = 0; l < L; l++) {
    const pattern = get(`blocks.${l}.attn.hook_pattern`); // [batch, head, query_pos, key_pos]
    assert.deepEqual(pattern.dims, ["batch", "head", "query_pos", "key_pos"]);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        for (let q = 0; q < P; q++) {
          if (batch.attentionMask[b][q] === 0) continue; // a pad query's row is not used
          let sum = 0;
          for (let k = 0; k < P; k++) {
            const a = pattern.get(b, h, q, k);
            if (k > q) assert.equal(a, 0, `layer ${l} prompt ${b} head ${h}: key ${k} after query ${q}`);
            if (batch.attentionMask[b][k] === 0) assert.equal(a, 0, `layer ${l} prompt ${b} head ${h}: pad key ${k}`);
            sum += a;
          }
          assert.ok(Math.abs(sum - 1) < 1e-5, `layer ${l} prompt ${b} head ${h} query ${q}: row sums to ${sum}`);
        }
      }
    }
  }
});

test("zero-ablating every head's hook_z equals zero-ablating hook_attn_out; one head's z removes that head's result", async () => {
  const l = 1;
  const viaZ = await model.runWithCache(batch, {
    interventions: [{ hook: `blocks.${l}.attn.hook_z`, kind: "zero" }],
    names,
  });
  const viaOut = await model.runWithCache(batch, {
    interventions: [{ hook: `blocks.${l}.hook_attn_out`, kind: "zero" }],
    names,
  });
  assert.ok(viaZ.cache.get(`blocks.${l}.hook_attn_out`).data.every((x) => x === 0));
  assert.ok(realPositionsError(viaZ.logits, viaOut.logits.data) < 1e-6);
  assert.ok(
    realPositionsError(
      viaZ.cache.get(`blocks.${L - 1}.hook_resid_post`),
      viaOut.cache.get(`blocks.${L - 1}.hook_resid_post`).data,
    ) < 1e-6,
  );
  assert.ok(
    realPositionsError(viaZ.logits, clean.logits.data) > 1e-3,
    "ablating a layer's attention must change the logits",
  );

  // Zeroing head 2 only: attn_out drops exactly that head's clean result at this layer.
  const head = 2;
  const one = await model.runWithCache(batch, {
    interventions: [{ hook: `blocks.${l}.attn.hook_z`, kind: "zero", heads: [head] }],
    names: [`blocks.${l}.hook_attn_out`],
  });
  const result = get(`blocks.${l}.attn.hook_result`); // [batch, pos, head, d_model]
  const expected = Float64Array.from(get(`blocks.${l}.hook_attn_out`).data);
  for (let bp = 0; bp < B * P; bp++)
    for (let i = 0; i < d; i++) expected[bp * d + i] -= result.data[(bp * H + head) * d + i];
  assert.ok(realPositionsError(one.cache.get(`blocks.${l}.hook_attn_out`), expected) < 1e-5);
});

test("an intervention on layer 1's hook_z leaves every upstream hook bit-identical and changes every downstream one", async () => {
  const target = "blocks.1.attn.hook_z";
  const { logits, cache } = await model.runWithCache(batch, {
    interventions: [{ hook: target, kind: "zero", heads: [0] }],
    names,
  });
  const at = names.indexOf(target);
  names.forEach((name, i) => {
    if (i < at) assert.deepEqual(cache.get(name).data, get(name).data, `${name} (upstream) must be bit-identical`);
    else assert.ok(realPositionsError(cache.get(name), get(name).data) > 1e-4, `${name} (downstream) must change`);
  });
  assert.ok(
    names.slice(0, at).some((n) => n.startsWith("blocks.0.")) && names.slice(at).some((n) => n.startsWith("blocks.2.")),
  );
  // The cache holds the value after the intervention (as TransformerLens): head 0 zero, others as clean.
  const z = cache.get(target); // [batch, pos, head, d_head]
  const zClean = get(target);
  const dh = config.headDim;
  for (let i = 0; i < z.size; i++) {
    const head = Math.floor(i / dh) % H;
    assert.equal(z.data[i], head === 0 ? 0 : zClean.data[i]);
  }
  assert.ok(realPositionsError(logits, clean.logits.data) > 1e-4);
});

test("decomposeResid's components sum to the final resid_post; accumulatedResid ends with it; applyLn then W_U gives the logits", () => {
  const { stack, labels } = clean.cache.decomposeResid(); // [component, batch, d_model] at each prompt's last token
  assert.deepEqual(labels, ["embed", ...Array.from({ length: L }, (_, l) => [`${l}_attn_out`, `${l}_mlp_out`]).flat()]);
  const final = clean.cache.atPos(`blocks.${L - 1}.hook_resid_post`); // [batch, d_model]
  const sum = new Float64Array(B * d);
  for (let c = 0; c < labels.length; c++) for (let i = 0; i < B * d; i++) sum[i] += stack.data[c * B * d + i];
  assert.ok(relativeError(final.data, sum) < 1e-5);

  const acc = clean.cache.accumulatedResid();
  assert.deepEqual(acc.labels, [...Array.from({ length: L }, (_, l) => `${l}_pre`), "final_post"]);
  assert.deepEqual(acc.stack.data.subarray(L * B * d), final.data);

  // Direct logit attribution adds up: sum over components of applyLn(stack) @ W_U = logits at the last token.
  const lnStack = clean.cache.decomposeResid({ applyLn: true }).stack;
  const WU = model.W_U; // [d_model, vocab]
  const V = config.vocabSize;
  for (let b = 0; b < B; b++) {
    const got = new Float64Array(V);
    for (let c = 0; c < labels.length; c++) {
      for (let i = 0; i < d; i++) {
        const x = lnStack.data[(c * B + b) * d + i];
        for (let v = 0; v < V; v++) got[v] += x * WU.data[i * V + v];
      }
    }
    const want = clean.logits.data.subarray((b * P + P - 1) * V, (b * P + P) * V);
    assert.ok(relativeError(got, want) < 1e-4, `prompt ${b}`);
  }

  // Per-head results at the last token add up to attn_out there.
  const heads = clean.cache.stackHeadResults();
  assert.equal(heads.labels.length, L * H);
  assert.equal(heads.labels[H + 1], "L1H1");
  const attn1 = clean.cache.atPos("blocks.1.hook_attn_out");
  const s1 = new Float64Array(B * d);
  for (let h = 0; h < H; h++) for (let i = 0; i < B * d; i++) s1[i] += heads.stack.data[(H + h) * B * d + i];
  assert.ok(relativeError(attn1.data, s1) < 1e-5);
});
