/**
 * The float64 reference forward on its own: properties that follow from the Llama maths
 * (first-position attention, rotary identities, GQA sharing, tied unembedding), bad input, and
 * agreement with Hugging Face `transformers` goldens. This proves the reference independently
 * of the ONNX runtime, which test/parity/parity.test.ts then checks against it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { writeRandomCheckpoint, RandomCheckpointSpec } from "../../lib/src/testing/random-checkpoint";
import {
  MASKED_SCORE,
  NamedArray,
  promptSlice,
  referenceForward,
  relativeError,
  RefTensor,
} from "../../lib/src/testing/reference-forward";
import { WeightStore, LlamaConfig, loadLlamaConfig, CheckpointError, InputError, SafetensorsFile } from "../../lib/src";

const FIXTURES = path.join(__dirname, "..", "fixtures");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-ref-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

function checkpoint(
  name: string,
  spec: RandomCheckpointSpec,
): { config: LlamaConfig; get: (n: string) => Float32Array } {
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
    assert.equal(
      t.data.length,
      t.shape.reduce((a, s) => a * s, 1),
      name,
    );
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
  assert.ok(
    relativeError(row(a.get("blocks.0.attn.hook_rot_q")!, 2, 0), row(b.get("blocks.0.attn.hook_rot_q")!, 1, 0)) < 1e-12,
  );
  assert.ok(
    relativeError(row(a.get("blocks.0.attn.hook_rot_k")!, 2, 3), row(b.get("blocks.0.attn.hook_rot_k")!, 1, 3)) < 1e-12,
  );
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
  assert.throws(
    () => referenceForward(config, get, [1, config.vocabSize]),
    (e: unknown) => e instanceof InputError && /outside the vocabulary/.test((e as Error).message),
  );
  const short = (n: string) => (n === "model.layers.1.mlp.up_proj.weight" ? new Float32Array(3) : get(n));
  assert.throws(
    () => referenceForward(config, short, [1, 2]),
    (e: unknown) =>
      e instanceof CheckpointError && (e as CheckpointError).field === "model.layers.1.mlp.up_proj.weight",
  );
});

// ---- against Hugging Face transformers (scripts/golden/make_random_goldens.py) ----

/** Layer l of a golden tensor stored as [layer, batch, ...]: drops the layer dim. */
function layerOf(g: SafetensorsFile, name: string, l: number, dims: string[]): NamedArray {
  const shape = g.entry(name).shape;
  const per = shape.slice(1).reduce((a, s) => a * s, 1);
  return { data: g.readFloat32(name).subarray(l * per, (l + 1) * per), shape: shape.slice(1), dims };
}

const goldenNames = fs
  .readdirSync(path.join(FIXTURES, "golden"))
  .filter((f) => /^random-.*\.json$/.test(f))
  .map((f) => f.slice("random-".length, -".json".length))
  .sort();

test("HF goldens exist for every fixture checkpoint", () => {
  const checkpoints = fs
    .readdirSync(path.join(FIXTURES, "checkpoints"), { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
  assert.deepEqual(goldenNames, checkpoints);
});

for (const name of goldenNames) {
  test(`reference = HF transformers on ${name}: logits, hidden states, resid_post, attentions of every prompt`, (t) => {
    const info = JSON.parse(fs.readFileSync(path.join(FIXTURES, "golden", `random-${name}.json`), "utf8"));
    const g = SafetensorsFile.open(path.join(FIXTURES, "golden", `random-${name}.safetensors`));
    const folder = path.join(FIXTURES, "checkpoints", name);
    const store = WeightStore.open(folder);
    const config = loadLlamaConfig(folder);
    const ids = info.input_ids as number[][]; // [batch, pos], left-padded
    const mask = info.attention_mask as number[][];
    const [B, P] = [ids.length, ids[0].length];
    const L = config.numLayers;
    const V = config.vocabSize;
    const normW = store.getFloat32("model.norm.weight");
    let worst = 0;
    const expectClose = (what: string, mine: ArrayLike<number>, hf: ArrayLike<number>) => {
      const err = relativeError(mine, hf);
      worst = Math.max(worst, err);
      assert.ok(err < 1e-4, `${name} ${what}: relative error ${err.toExponential(2)}`);
    };
    for (let b = 0; b < B; b++) {
      const n = mask[b].reduce((a, m) => a + m, 0);
      const start = P - n; // left padding
      // dynamic NTK rope: transformers scales for the batch's longest prompt (P under left padding)
      const ref = referenceForward(config, (w) => store.getFloat32(w), ids[b].slice(start), { ropeLength: P });
      if (g.has("logits_last")) {
        expectClose(
          `prompt ${b} logits (last position)`,
          ref.logits.data.subarray((n - 1) * V),
          g.readFloat32("logits_last").subarray(b * V, (b + 1) * V),
        );
      } else {
        const hf = promptSlice(
          { data: g.readFloat32("logits"), shape: [B, P, V], dims: ["batch", "pos", "vocab"] },
          b,
          start,
          n,
        );
        expectClose(`prompt ${b} logits`, ref.logits.data, hf.data);
      }
      const bpd = ["batch", "pos", "d_model"];
      for (let l = 0; l < L; l++) {
        // HF hidden_states[l] = input of decoder layer l = blocks.l.hook_resid_pre.
        expectClose(
          `prompt ${b} hidden_states[${l}]`,
          ref.hooks.get(`blocks.${l}.hook_resid_pre`)!.data,
          promptSlice(layerOf(g, "hidden_states", l, bpd), b, start, n).data,
        );
        expectClose(
          `prompt ${b} resid_post[${l}]`,
          ref.hooks.get(`blocks.${l}.hook_resid_post`)!.data,
          promptSlice(layerOf(g, "resid_post", l, bpd), b, start, n).data,
        );
        const pattern = promptSlice(
          layerOf(g, "attentions", l, ["batch", "head", "query_pos", "key_pos"]),
          b,
          start,
          n,
        );
        expectClose(`prompt ${b} attentions[${l}]`, ref.hooks.get(`blocks.${l}.attn.hook_pattern`)!.data, pattern.data);
      }
      // HF's last hidden state is after the final norm, weight (1 + w for Gemma) and bias (LayerNorm) included.
      const normB = config.norm === "layer" ? store.getFloat32("model.norm.bias") : null;
      const plus = config.norm === "rms_one_plus" ? 1 : 0;
      const normed = ref.hooks
        .get("ln_final.hook_normalized")!
        .data.map((x, i) => x * (normW[i % config.hiddenSize] + plus) + (normB ? normB[i % config.hiddenSize] : 0));
      expectClose(
        `prompt ${b} hidden_states[${L}]`,
        normed,
        promptSlice(layerOf(g, "hidden_states", L, bpd), b, start, n).data,
      );
    }
    t.diagnostic(`worst relative error ${worst.toExponential(2)}`);
  });
}
