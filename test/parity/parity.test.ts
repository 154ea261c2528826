/**
 * Parity: the ONNX runtime (HookedLlama) against the independent float64 reference
 * (lib/src/testing/reference-forward.ts) on every fixture checkpoint — logits and EVERY hook point,
 * for single prompts and for padded batches (left and right padding, real positions compared).
 *
 * Metric, per tensor and per prompt: max|runtime - reference| / max(1e-6, max|reference|)
 * (relativeError in reference-forward.ts), required < 1e-4. Masked attention scores (float32
 * lowest in both) are left out of that metric and checked to be < -1e30 in the runtime instead.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { RandomCheckpointSpec, TINY_CONFIG, writeRandomCheckpoint } from "../../lib/src/testing/random-checkpoint";
import {
  MASKED_SCORE,
  promptSlice,
  referenceForward,
  relativeError,
  RefTensor,
} from "../../lib/src/testing/reference-forward";
import {
  HookedLlama,
  hookNames,
  llamaConfigToJson,
  loadLlamaConfig,
  LlamaConfig,
  WeightStore,
  WEIGHTS_INDEX_FILE,
  padTokens,
  TokenBatch,
  seededRandom,
} from "../../lib/src";
import type { Tensor } from "../../lib/src";

const TOL = 1e-4;
const FIXTURES = path.join(__dirname, "..", "fixtures", "checkpoints");

/** Every fixture checkpoint folder (a folder with a config.json). */
const fixtures = fs
  .readdirSync(FIXTURES, { withFileTypes: true })
  .filter((e) => e.isDirectory() && fs.existsSync(path.join(FIXTURES, e.name, "config.json")))
  .map((e) => e.name)
  .sort();

/** Seeded token ids, so a failure reproduces. */
function randomPrompt(vocab: number, length: number, seed: number): number[] {
  const rand = seededRandom(seed);
  return Array.from({ length }, () => Math.floor(rand() * vocab));
}

/**
 * Compare one prompt (batch row b, real positions [start, start + n)) of a runtime run against
 * the reference; returns the worst (error, name) and throws listing every tensor over TOL.
 */
function compareRun(
  logits: Tensor,
  cache: { get(name: string): Tensor },
  names: string[],
  ref: { logits: RefTensor; hooks: Map<string, RefTensor> },
  b: number,
  start: number,
  n: number,
): { worst: number; worstName: string } {
  const failures: string[] = [];
  let worst = 0;
  let worstName = "";
  const check = (name: string, actual: Tensor, expected: RefTensor) => {
    assert.deepEqual(actual.dims, expected.dims, `${name}: dims`);
    const got = promptSlice(actual, b, start, n);
    assert.deepEqual(got.shape, expected.shape, `${name}: shape`);
    const masked = (i: number) => expected.data[i] === MASKED_SCORE;
    const err = relativeError(got.data, expected.data, masked);
    if (name.endsWith("hook_attn_scores")) {
      for (let i = 0; i < got.data.length; i++) {
        if (masked(i) && !(got.data[i] < -1e30))
          failures.push(`${name}: masked score ${i} is ${got.data[i]}, expected float32 lowest`);
      }
    }
    if (err > worst) [worst, worstName] = [err, name];
    if (!(err < TOL)) failures.push(`${name}: relative error ${err.toExponential(2)}`);
  };
  check("logits", logits, ref.logits);
  for (const name of names) check(name, cache.get(name), ref.hooks.get(name)!);
  assert.equal(
    failures.length,
    0,
    `prompt ${b}: ${failures.length} tensors over ${TOL}:\n${failures.slice(0, 20).join("\n")}`,
  );
  return { worst, worstName };
}

test("the fixtures cover F32, BF16, GQA, tied, sharded, every rope type, biases, head_dim, sliding window, each architecture and CodeLlama's shrunk config", () => {
  const configs = fixtures.map((f) => ({ f, c: loadLlamaConfig(path.join(FIXTURES, f)) }));
  const has = (what: string, p: (c: LlamaConfig, f: string) => boolean) =>
    assert.ok(
      configs.some(({ f, c }) => p(c, f)),
      `no fixture checkpoint with ${what} in ${FIXTURES} (have: ${fixtures.join(", ")})`,
    );
  has("float32 weights", (c) => c.torchDtype === "float32");
  has("bf16 weights", (c) => c.torchDtype === "bfloat16");
  has("grouped-query attention", (c) => c.numKvHeads < c.numHeads);
  has("tied embeddings", (c) => c.tieWordEmbeddings);
  has("untied embeddings", (c) => !c.tieWordEmbeddings);
  has("sharded weights", (_, f) => fs.existsSync(path.join(FIXTURES, f, WEIGHTS_INDEX_FILE)));
  has("linear rope scaling", (c) => c.ropeScaling?.type === "linear");
  has("CodeLlama's rope_theta 1e6", (c) => c.ropeTheta === 1e6);
  for (const rope of ["dynamic", "yarn", "llama3", "longrope"])
    has(`${rope} rope`, (c) => c.ropeScaling?.type === rope);
  has("attention and MLP biases", (c) => c.qkvBias && c.outputBias && c.mlpBias && c.mlp === "gated");
  has("an explicit head_dim", (c) => c.headDim * c.numHeads !== c.hiddenSize);
  has("a sliding window shorter than the prompts", (c) => c.slidingWindow !== null && c.slidingWindow < 7);
  for (const arch of ["Qwen2ForCausalLM", "MistralForCausalLM", "Starcoder2ForCausalLM", "GemmaForCausalLM"])
    has(arch, (c) => c.architecture === arch);
});

for (const fixture of fixtures) {
  const folder = path.join(FIXTURES, fixture);

  test(`parity ${fixture}: logits and every hook point vs the float64 reference`, async (t) => {
    const config = loadLlamaConfig(folder);
    const store = WeightStore.open(folder); // the reference reads the files itself
    const model = await HookedLlama.fromPretrained(folder, {
      tokenizer: fs.existsSync(path.join(folder, "tokenizer.json")),
    });
    const names = hookNames(config); // includes attn.hook_result
    const prompt = randomPrompt(config.vocabSize, 9, 11);
    const ref = referenceForward(config, (n) => store.getFloat32(n), prompt);
    const { logits, cache } = await model.runWithCache([prompt], { names });
    assert.deepEqual(logits.shape, [1, 9, config.vocabSize]);
    assert.deepEqual(cache.names().slice().sort(), names.slice().sort());
    const { worst, worstName } = compareRun(logits, cache, names, ref, 0, 0, prompt.length);
    t.diagnostic(`worst relative error ${worst.toExponential(2)} (${worstName})`);
  });

  for (const padding of ["left", "right"] as const) {
    test(`parity ${fixture}: ${padding}-padded batch of 3 prompts, real positions vs the reference`, async (t) => {
      const config = loadLlamaConfig(folder);
      const store = WeightStore.open(folder);
      const model = await HookedLlama.fromPretrained(folder, {
        tokenizer: fs.existsSync(path.join(folder, "tokenizer.json")),
      });
      const names = hookNames(config);
      const prompts = [7, 3, 5].map((len, i) => randomPrompt(config.vocabSize, len, 100 + i));
      const batch: TokenBatch = padTokens(prompts, { padding, padId: 0 });
      const { logits, cache } = await model.runWithCache(batch, { names });
      const P = batch.ids[0].length;
      let worst = 0;
      prompts.forEach((prompt, b) => {
        const ref = referenceForward(config, (n) => store.getFloat32(n), prompt);
        const start = padding === "left" ? P - prompt.length : 0;
        worst = Math.max(worst, compareRun(logits, cache, names, ref, b, start, prompt.length).worst);
      });
      t.diagnostic(`worst relative error ${worst.toExponential(2)}`);
    });
  }
}

test("parity through graph cuts: identity interventions at several hooks leave every hook equal to the reference", async (t) => {
  // A `function` intervention cuts the graph after its hook (segments fed from JS); returning the
  // value unchanged must not change any number, so the cut runtime must still match the reference.
  const folder = path.join(FIXTURES, "tiny-gqa");
  const config = loadLlamaConfig(folder);
  const store = WeightStore.open(folder);
  const model = await HookedLlama.fromPretrained(folder, {
    tokenizer: fs.existsSync(path.join(folder, "tokenizer.json")),
  });
  const names = hookNames(config);
  const prompts = [8, 4].map((len, i) => randomPrompt(config.vocabSize, len, 200 + i));
  const batch = padTokens(prompts, { padding: "left", padId: 0 });
  const seen: string[] = [];
  const identity = (hook: string) => ({ hook, kind: "function" as const, fn: (v: Tensor) => (seen.push(hook), v) });
  const cuts = [
    "hook_embed",
    "blocks.0.attn.hook_rot_k",
    "blocks.0.attn.hook_pattern",
    "blocks.1.hook_resid_mid",
    "blocks.1.mlp.hook_post",
  ];
  const { logits, cache } = await model.runWithCache(batch, { interventions: cuts.map(identity), names });
  assert.deepEqual(seen, cuts, "each intervention ran once, in forward order");
  const P = batch.ids[0].length;
  let worst = 0;
  prompts.forEach((prompt, b) => {
    const ref = referenceForward(config, (n) => store.getFloat32(n), prompt);
    worst = Math.max(worst, compareRun(logits, cache, names, ref, b, P - prompt.length, prompt.length).worst);
  });
  t.diagnostic(`worst relative error ${worst.toExponential(2)}`);
});

test("the random-checkpoint writer covers every architecture: runtime = reference on each, every hook", async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-arch-"));
  try {
    const specs: Record<string, RandomCheckpointSpec> = {
      qwen2: { seed: 31, config: { architecture: "Qwen2ForCausalLM", numKvHeads: 2 } },
      mistral: {
        seed: 32,
        configJson: {
          ...llamaConfigToJson(TINY_CONFIG),
          architectures: ["MistralForCausalLM"],
          model_type: "mistral",
          sliding_window: 3,
        },
      },
      starcoder2: { seed: 33, config: { architecture: "Starcoder2ForCausalLM" } },
      gemma: { seed: 34, config: { architecture: "GemmaForCausalLM", headDim: 16 } },
      llama3: {
        seed: 35,
        config: {
          ropeScaling: {
            type: "llama3",
            factor: 8,
            lowFreqFactor: 1,
            highFreqFactor: 4,
            originalMaxPositionEmbeddings: 8,
          },
        },
      },
    };
    for (const [name, spec] of Object.entries(specs)) {
      const { folder, config } = writeRandomCheckpoint(path.join(tmp, name), spec);
      const store = WeightStore.open(folder);
      const model = await HookedLlama.fromPretrained(folder, { tokenizer: false });
      const names = hookNames(config);
      const prompt = randomPrompt(config.vocabSize, 8, 40);
      const ref = referenceForward(config, (n) => store.getFloat32(n), prompt);
      const { logits, cache } = await model.runWithCache([prompt], { names });
      const { worst } = compareRun(logits, cache, names, ref, 0, 0, prompt.length);
      t.diagnostic(`${name} (${config.architecture}): worst relative error ${worst.toExponential(2)}`);
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
