/**
 * The float64 reference forward on its own: properties that follow from the Llama maths
 * (first-position attention, rotary identities, GQA sharing, tied unembedding), bad input, and
 * agreement with Hugging Face `transformers` goldens. This proves the reference independently
 * of the ONNX runtime, which test/parity.test.ts then checks against it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { writeRandomCheckpoint, RandomCheckpointSpec } from "../lib/src/random-checkpoint";
import { WeightStore } from "../lib/src/weights";
import { LlamaConfig } from "../lib/src/config";
import { CheckpointError, InputError } from "../lib/src/errors";
import { MASKED_SCORE, referenceForward, relativeError, RefTensor } from "../lib/src/reference-forward";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-ref-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

function checkpoint(name: string, spec: RandomCheckpointSpec): { config: LlamaConfig; get: (n: string) => Float32Array } {
  const { folder, config } = writeRandomCheckpoint(path.join(tmp, name), spec);
  const store = WeightStore.open(folder);
  return { config, get: (n) => store.getFloat32(n) };
}

/** The vector at [0, ...index] of a [1, ...] reference tensor, along its last dim. */
function row(t: RefTensor, ...index: number[]): Float64Array {
  const last = t.shape[t.shape.length - 1];
  let off = 0;
  const full = [0, ...index];
  for (let i = 0; i < full.length; i++) off = off * t.shape[i] + full[i];
  return t.data.subarray(off * last, off * last + last);
}

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

test("every hook of DESIGN.md is produced, with batch dim 1 and consistent shapes", () => {
  const { config, get } = checkpoint("gqa", { config: { numKvHeads: 2 }, seed: 1 });
  const n = 5;
  const { logits, hooks } = referenceForward(config, get, [1, 2, 3, 4, 5]);
  assert.deepEqual(logits.shape, [1, n, config.vocabSize]);
  assert.equal(hooks.get("blocks.1.attn.hook_k")!.shape.join(), [1, n, 2, config.headDim].join());
  assert.equal(hooks.get("blocks.1.attn.hook_q")!.shape.join(), [1, n, 4, config.headDim].join());
  assert.equal(hooks.get("blocks.0.attn.hook_pattern")!.dims.join(), "batch,head,query_pos,key_pos");
  assert.equal(hooks.get("blocks.0.attn.hook_result")!.shape.join(), [1, n, 4, config.hiddenSize].join());
  assert.equal(hooks.get("ln_final.hook_scale")!.shape.join(), [1, n, 1].join());
  // 1 embed + 21 per layer + 2 final.
  assert.equal(hooks.size, 1 + 21 * config.numLayers + 2);
  for (const [name, t] of hooks) {
    assert.equal(t.data.length, t.shape.reduce((a, s) => a * s, 1), name);
    assert.equal(t.dims.length, t.shape.length, name);
  }
});

test("a one-token prompt attends only to itself: pattern 1, z = v of the head's kv group, no rotation", () => {
  const { config, get } = checkpoint("gqa", { config: { numKvHeads: 2 }, seed: 1 });
  const { hooks } = referenceForward(config, get, [7]);
  for (let l = 0; l < config.numLayers; l++) {
    const h = (s: string) => hooks.get(`blocks.${l}.${s}`)!;
    assert.deepEqual(Array.from(h("attn.hook_pattern").data), [1, 1, 1, 1]);
    for (let head = 0; head < 4; head++) {
      // Heads 0,1 share kv head 0; heads 2,3 share kv head 1 (HF repeat_kv).
      assert.deepEqual(row(h("attn.hook_z"), 0, head), row(h("attn.hook_v"), 0, Math.floor(head / 2)));
      assert.deepEqual(row(h("attn.hook_rot_q"), 0, head), row(h("attn.hook_q"), 0, head)); // cos 0 = 1, sin 0 = 0
    }
  }
});

test("rotary keeps norms and makes q·k depend only on the position offset", () => {
  const { config, get } = checkpoint("mha", { seed: 2 });
  // Layer 0 q/k at a position depend only on that position's token, so a repeated token gives
  // the same un-rotated q and k at every position.
  const { hooks } = referenceForward(config, get, [9, 9, 9, 9, 9, 9]);
  const q = hooks.get("blocks.0.attn.hook_q")!;
  const rq = hooks.get("blocks.0.attn.hook_rot_q")!;
  const rk = hooks.get("blocks.0.attn.hook_rot_k")!;
  for (let p = 0; p < 6; p++) {
    assert.ok(Math.abs(dot(row(rq, p, 1), row(rq, p, 1)) - dot(row(q, p, 1), row(q, p, 1))) < 1e-9);
  }
  const d31 = dot(row(rq, 3, 1), row(rk, 1, 1));
  const d42 = dot(row(rq, 4, 1), row(rk, 2, 1));
  const d40 = dot(row(rq, 4, 1), row(rk, 0, 1));
  assert.ok(Math.abs(d31 - d42) < 1e-9, `${d31} vs ${d42}`);
  assert.ok(Math.abs(d31 - d40) > 1e-6, "a different offset must give a different score");
  // Scores are q·k / sqrt(d_head) below the diagonal and float32 lowest above it.
  const scores = hooks.get("blocks.0.attn.hook_attn_scores")!;
  const n = 6;
  assert.ok(Math.abs(scores.data[(1 * n + 3) * n + 1] - d31 / Math.sqrt(config.headDim)) < 1e-12);
  assert.equal(scores.data[(1 * n + 1) * n + 3], MASKED_SCORE);
});

test("linear rope scaling by 2 rotates position p as unscaled rope rotates p / 2", () => {
  const plain = checkpoint("rope1", { seed: 4 });
  const scaled = checkpoint("rope2", { seed: 4, config: { ropeScaling: { type: "linear", factor: 2 } } });
  const a = referenceForward(scaled.config, scaled.get, [3, 8, 5]).hooks; // token 5 at position 2
  const b = referenceForward(plain.config, plain.get, [3, 5]).hooks; // token 5 at position 1
  assert.ok(relativeError(row(a.get("blocks.0.attn.hook_rot_q")!, 2, 0), row(b.get("blocks.0.attn.hook_rot_q")!, 1, 0)) < 1e-12);
  assert.ok(relativeError(row(a.get("blocks.0.attn.hook_rot_k")!, 2, 3), row(b.get("blocks.0.attn.hook_rot_k")!, 1, 3)) < 1e-12);
});

test("tied embeddings unembed with the embedding matrix and never read lm_head", () => {
  const { config, get } = checkpoint("tied", { tied: true, seed: 5 });
  const asked: string[] = [];
  const { logits, hooks } = referenceForward(config, (n) => (asked.push(n), get(n)), [2, 4, 6]);
  assert.ok(!asked.includes("lm_head.weight"));
  const normed = row(hooks.get("ln_final.hook_normalized")!, 2);
  const w = get("model.norm.weight");
  const E = get("model.embed_tokens.weight");
  const d = config.hiddenSize;
  for (const tok of [0, 17, 63]) {
    let s = 0;
    for (let i = 0; i < d; i++) s += normed[i] * w[i] * E[tok * d + i];
    assert.ok(Math.abs(row(logits, 2)[tok] - s) < 1e-9);
  }
});

test("bad input: empty prompt, token outside the vocabulary, mis-sized weight", () => {
  const { config, get } = checkpoint("mha", { seed: 2 });
  assert.throws(() => referenceForward(config, get, []), InputError);
  assert.throws(() => referenceForward(config, get, [1, config.vocabSize]), (e: unknown) => e instanceof InputError && /outside the vocabulary/.test((e as Error).message));
  const short = (n: string) => (n === "model.layers.1.mlp.up_proj.weight" ? new Float32Array(3) : get(n));
  assert.throws(() => referenceForward(config, short, [1, 2]), (e: unknown) => e instanceof CheckpointError && (e as CheckpointError).field === "model.layers.1.mlp.up_proj.weight");
});
