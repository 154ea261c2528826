/**
 * The hooked runtime against Hugging Face `transformers` (LlamaForCausalLM, eager attention,
 * float32; goldens written by scripts/golden/make_random_goldens.py) on every fixture checkpoint,
 * with the goldens' own left-padded batch. HF outputs map to hook points as follows:
 *   hidden_states[l] (l < n_layers)  = blocks.l.hook_resid_pre   (hidden_states[0] = hook_embed)
 *   hidden_states[n_layers]          = ln_final.hook_normalized * model.norm.weight (after the final norm)
 *   resid_post[l] (layer forward hook) = blocks.l.hook_resid_post
 *   attentions[l]                    = blocks.l.attn.hook_pattern
 * Compared per prompt over its real positions (HF's rows for pad queries are implementation-defined);
 * for attention rows every key is compared, pad keys included (both must be 0 there).
 * Metric: max|runtime - HF| / max(1e-6, max|HF|) per tensor and prompt, required < 1e-4.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { promptSlice, relativeError, NamedArray } from "../../lib/src/testing/reference-forward";
import { HookedLlama, LlamaConfig, loadLlamaConfig, SafetensorsFile, TokenBatch, WeightStore } from "../../lib/src";

const TOL = 1e-4;
const GOLDEN = path.join(__dirname, "..", "fixtures", "golden");
const CHECKPOINTS = path.join(__dirname, "..", "fixtures", "checkpoints");

const names = fs
  .readdirSync(GOLDEN)
  .filter((f) => /^random-.*\.json$/.test(f))
  .map((f) => f.slice("random-".length, -".json".length))
  .sort();

/** Layer l of a golden tensor stored as [layer, batch, ...]: drops the layer dim. */
function layerOf(g: SafetensorsFile, name: string, l: number, dims: string[]): NamedArray {
  const shape = g.entry(name).shape;
  const per = shape.slice(1).reduce((a, s) => a * s, 1);
  return { data: g.readFloat32(name).subarray(l * per, (l + 1) * per), shape: shape.slice(1), dims };
}

test("there is an HF golden for every fixture checkpoint", () => {
  assert.ok(names.length >= 8, `only ${names.length} goldens in ${GOLDEN}`);
  for (const n of names) assert.ok(fs.existsSync(path.join(CHECKPOINTS, n, "config.json")), n);
});

for (const name of names) {
  test(`HookedLlama = HF transformers on ${name}: logits, hidden states, resid_post, attentions`, async (t) => {
    const info = JSON.parse(fs.readFileSync(path.join(GOLDEN, `random-${name}.json`), "utf8"));
    const g = SafetensorsFile.open(path.join(GOLDEN, `random-${name}.safetensors`));
    const model = await HookedLlama.fromPretrained(path.join(CHECKPOINTS, name), {
      tokenizer: fs.existsSync(path.join(CHECKPOINTS, name, "tokenizer.json")),
    });
    const config = model.config;
    const L = config.numLayers;
    const ids = info.input_ids as number[][]; // [batch, pos], left-padded with pad id 0
    const mask = info.attention_mask as number[][];
    const [B, P] = [ids.length, ids[0].length];
    const lengths = mask.map((row) => row.reduce((a, m) => a + m, 0));

    // Text goldens go in as text (tokenizer + left padding end to end); the others as the golden's batch.
    let input: string[] | TokenBatch;
    if (info.texts) {
      input = info.texts as string[];
    } else {
      input = { ids, attentionMask: mask, positions: info.position_ids, lengths, padding: "left" };
    }
    const wanted = [
      ...Array.from({ length: L }, (_, l) => [
        `blocks.${l}.hook_resid_pre`,
        `blocks.${l}.hook_resid_post`,
        `blocks.${l}.attn.hook_pattern`,
      ]).flat(),
      "ln_final.hook_normalized",
    ];
    const { logits, cache } = await model.runWithCache(input, { names: wanted });
    assert.deepEqual(cache.batch.attentionMask, mask, "same padding as the golden");
    cache.batch.ids.forEach((row, b) =>
      assert.deepEqual(row.slice(P - lengths[b]), ids[b].slice(P - lengths[b]), `prompt ${b} tokens`),
    );

    let worst = 0;
    const expectClose = (
      what: string,
      mine: ArrayLike<number>,
      hf: ArrayLike<number>,
      skip?: (i: number) => boolean,
    ) => {
      const err = relativeError(mine, hf, skip);
      worst = Math.max(worst, err);
      assert.ok(err < TOL, `${name} ${what}: relative error ${err.toExponential(2)}`);
    };
    const V = config.vocabSize;
    const d = config.hiddenSize;
    const bpd = ["batch", "pos", "d_model"];
    const normW = config.norm === "layer" ? model.getWeight("model.norm.weight").data : model.finalNormWeight.data;
    const normB = config.norm === "layer" ? model.getWeight("model.norm.bias").data : null;
    for (let b = 0; b < B; b++) {
      const n = lengths[b];
      const start = P - n;
      if (g.has("logits_last")) {
        expectClose(
          `prompt ${b} logits (last position)`,
          logits.data.subarray((b * P + P - 1) * V, (b * P + P) * V),
          g.readFloat32("logits_last").subarray(b * V, (b + 1) * V),
        );
      } else {
        const hf = promptSlice(
          { data: g.readFloat32("logits"), shape: [B, P, V], dims: ["batch", "pos", "vocab"] },
          b,
          start,
          n,
        );
        expectClose(`prompt ${b} logits`, promptSlice(logits, b, start, n).data, hf.data);
      }
      for (let l = 0; l < L; l++) {
        const hs = promptSlice(layerOf(g, "hidden_states", l, bpd), b, start, n);
        expectClose(
          `prompt ${b} hidden_states[${l}] vs blocks.${l}.hook_resid_pre`,
          promptSlice(cache.get(`blocks.${l}.hook_resid_pre`), b, start, n).data,
          hs.data,
        );
        const rp = promptSlice(layerOf(g, "resid_post", l, bpd), b, start, n);
        expectClose(
          `prompt ${b} resid_post[${l}] vs blocks.${l}.hook_resid_post`,
          promptSlice(cache.get(`blocks.${l}.hook_resid_post`), b, start, n).data,
          rp.data,
        );
        // Pattern rows of this prompt's real queries, over all P keys (pad keys must be 0 in both).
        const mine = cache.get(`blocks.${l}.attn.hook_pattern`); // [batch, head, query_pos, key_pos]
        const hf = layerOf(g, "attentions", l, mine.dims);
        const H = mine.shape[1];
        const notThisPromptsRow = (i: number) =>
          Math.floor(i / (H * P * P)) !== b || mask[b][Math.floor(i / P) % P] === 0;
        expectClose(
          `prompt ${b} attentions[${l}] vs blocks.${l}.attn.hook_pattern`,
          mine.data,
          hf.data,
          notThisPromptsRow,
        );
      }
      // HF's last hidden state is the final norm's output: normalized · w (+ b for LayerNorm; Gemma: 1 + w)
      const normed = promptSlice(cache.get("ln_final.hook_normalized"), b, start, n).data.map(
        (x, i) => x * normW[i % d] + (normB ? normB[i % d] : 0),
      );
      expectClose(
        `prompt ${b} hidden_states[${L}] vs ln_final.hook_normalized * norm weight`,
        normed,
        promptSlice(layerOf(g, "hidden_states", L, bpd), b, start, n).data,
      );
    }
    t.diagnostic(`worst relative error ${worst.toExponential(2)}`);
  });
}

/**
 * Each variant's golden tells its feature apart: the same weights run with the feature switched
 * off in the config miss the golden logits by far more than the tolerance (so the parity above
 * cannot pass with the feature ignored).
 */
const FEATURE_OFF: Record<string, (c: LlamaConfig) => LlamaConfig> = {
  "hf-llama-dynamic": (c) => ({ ...c, ropeScaling: null, maxPositionEmbeddings: 128 }),
  "hf-llama-yarn": (c) => ({ ...c, ropeScaling: null }),
  "hf-llama3": (c) => ({ ...c, ropeScaling: null }),
  // the short factors for a batch longer than original_max_position_embeddings
  "hf-llama-longrope": (c) =>
    c.ropeScaling?.type === "longrope"
      ? { ...c, ropeScaling: { ...c.ropeScaling, longFactor: c.ropeScaling.shortFactor } }
      : c,
  // rope_parameters' reading (factor 4, theta 500) instead of transformers' (rope_scaling: factor 2, theta 1000)
  "hf-llama-spellings": (c) => ({ ...c, ropeScaling: { type: "linear", factor: 4 }, ropeTheta: 500 }),
  "hf-mistral": (c) => ({ ...c, slidingWindow: null }),
  // Llama's graph on Gemma's weights: no embedding scale, w instead of 1 + w, SiLU instead of GELU
  "hf-gemma": (c) => ({ ...c, architecture: "LlamaForCausalLM", embedScale: false, norm: "rms", activation: "silu" }),
  "hf-starcoder2": (c) => ({ ...c, qkvBias: false, outputBias: false, mlpBias: false }),
  "hf-llama-bias": (c) => ({ ...c, qkvBias: false, outputBias: false, mlpBias: false }),
  "hf-qwen2": (c) => ({ ...c, qkvBias: false }),
};

for (const [name, off] of Object.entries(FEATURE_OFF)) {
  test(`${name}: the golden differs when the feature is switched off`, async () => {
    const info = JSON.parse(fs.readFileSync(path.join(GOLDEN, `random-${name}.json`), "utf8"));
    const g = SafetensorsFile.open(path.join(GOLDEN, `random-${name}.safetensors`));
    const folder = path.join(CHECKPOINTS, name);
    const config = off(loadLlamaConfig(folder));
    const model = new HookedLlama(config, WeightStore.open(folder), null);
    const batch: TokenBatch = {
      ids: info.input_ids,
      attentionMask: info.attention_mask,
      positions: info.position_ids,
      lengths: (info.attention_mask as number[][]).map((r) => r.reduce((a, m) => a + m, 0)),
      padding: "left",
    };
    const logits = await model.run(batch);
    const P = batch.ids[0].length;
    const V = config.vocabSize;
    // prompt 0 (unpadded, the longest): every feature here acts on it
    const err = relativeError(logits.data.subarray(0, P * V), g.readFloat32("logits").subarray(0, P * V));
    assert.ok(err > 1e-3, `${name} with the feature off still matches (relative error ${err.toExponential(2)})`);
  });
}
