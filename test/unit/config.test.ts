import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { parseLlamaConfig, loadLlamaConfig, llamaConfigToJson, ConfigError } from "../../lib/src";

const CODELLAMA_CONFIG = path.join(__dirname, "..", "fixtures/checkpoints/codellama-7b-hf.config.json");
const codellama = () => JSON.parse(fs.readFileSync(CODELLAMA_CONFIG, "utf8")) as Record<string, unknown>;

/** Expect a ConfigError whose field is `field` and whose message mentions every `words`. */
function throwsConfig(fn: () => unknown, field: string | undefined, ...words: string[]) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    assert.equal(e.field, field);
    for (const w of words) assert.ok(e.message.includes(w), `message "${e.message}" should mention "${w}"`);
    return true;
  });
}

test("CodeLlama-7b's config.json fields map onto LlamaConfig", () => {
  const c = parseLlamaConfig(codellama(), "config.json");
  assert.deepEqual(c, {
    architecture: "LlamaForCausalLM",
    hiddenSize: 4096,
    intermediateSize: 11008,
    numLayers: 32,
    numHeads: 32,
    numKvHeads: 32,
    headDim: 128,
    rmsNormEps: 1e-5,
    ropeTheta: 1000000,
    ropeScaling: null,
    tieWordEmbeddings: false,
    vocabSize: 32016,
    maxPositionEmbeddings: 16384,
    torchDtype: "bfloat16",
    qkvBias: false,
    outputBias: false,
    mlpBias: false,
    mlp: "gated",
    activation: "silu",
    norm: "rms",
    embedScale: false,
    slidingWindow: null,
  });
});

test("defaults: no num_key_value_heads → no GQA, rope_theta 10000, untied", () => {
  const c = parseLlamaConfig(
    {
      model_type: "llama",
      hidden_size: 64,
      intermediate_size: 128,
      num_hidden_layers: 1,
      num_attention_heads: 8,
      vocab_size: 100,
    },
    "c.json",
  );
  assert.equal(c.numKvHeads, 8);
  assert.equal(c.headDim, 8);
  assert.equal(c.ropeTheta, 10000);
  assert.equal(c.ropeScaling, null);
  assert.equal(c.tieWordEmbeddings, false);
  assert.equal(c.torchDtype, undefined);
});

test("GQA, explicit head_dim, linear rope scaling (type or rope_type)", () => {
  const base = { ...codellama(), hidden_size: 48, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16 };
  const c = parseLlamaConfig({ ...base, rope_scaling: { type: "linear", factor: 2 } }, "c.json");
  assert.equal(c.numKvHeads, 2);
  assert.equal(c.headDim, 16);
  assert.deepEqual(c.ropeScaling, { type: "linear", factor: 2 });
  const c2 = parseLlamaConfig({ ...base, rope_scaling: { rope_type: "linear", factor: 4 } }, "c.json");
  assert.deepEqual(c2.ropeScaling, { type: "linear", factor: 4 });
});

test("transformers 5 style rope_parameters and dtype", () => {
  const j = codellama();
  delete j.rope_theta;
  delete j.rope_scaling;
  delete j.torch_dtype;
  const c = parseLlamaConfig(
    { ...j, dtype: "float32", rope_parameters: { rope_theta: 500000, rope_type: "default" } },
    "c.json",
  );
  assert.equal(c.ropeTheta, 500000);
  assert.equal(c.ropeScaling, null);
  assert.equal(c.torchDtype, "float32");
  const lin = parseLlamaConfig(
    { ...j, rope_parameters: { rope_theta: 10000, rope_type: "linear", factor: 2 } },
    "c.json",
  );
  assert.deepEqual(lin.ropeScaling, { type: "linear", factor: 2 });
  throwsConfig(
    () =>
      parseLlamaConfig({ ...j, rope_parameters: { rope_theta: 1e4, rope_type: "proportional", factor: 2 } }, "c.json"),
    "rope_parameters",
    "proportional",
  );
});

test("rope_scaling and rope_parameters together: transformers' precedence (rope_scaling as a whole, its own rope_theta else the top-level one)", () => {
  const j = { ...codellama(), rope_theta: 1000 };
  const both = parseLlamaConfig(
    {
      ...j,
      rope_scaling: { type: "linear", factor: 2 },
      rope_parameters: { rope_type: "linear", factor: 4, rope_theta: 500 },
    },
    "c.json",
  );
  assert.deepEqual([both.ropeScaling, both.ropeTheta], [{ type: "linear", factor: 2 }, 1000]);
  // an empty or null rope_scaling falls back to rope_parameters, whose rope_theta wins over the top level
  for (const rope_scaling of [null, {}]) {
    const p = parseLlamaConfig(
      { ...j, rope_scaling, rope_parameters: { rope_type: "linear", factor: 4, rope_theta: 500 } },
      "c.json",
    );
    assert.deepEqual([p.ropeScaling, p.ropeTheta], [{ type: "linear", factor: 4 }, 500]);
  }
  // rope_type wins over type inside one object
  const t = parseLlamaConfig({ ...j, rope_scaling: { type: "linear", rope_type: "dynamic", factor: 2 } }, "c.json");
  assert.deepEqual(t.ropeScaling, { type: "dynamic", factor: 2 });
});

test("dynamic, yarn and llama3 rope settings with transformers' defaults", () => {
  const j = { ...codellama(), max_position_embeddings: 4096 };
  const yarn = parseLlamaConfig({ ...j, rope_scaling: { rope_type: "yarn", factor: 4 } }, "c.json");
  assert.deepEqual(yarn.ropeScaling, {
    type: "yarn",
    factor: 4,
    originalMaxPositionEmbeddings: 4096, // max_position_embeddings when absent
    attentionFactor: 0.1 * Math.log(4) + 1, // get_mscale(factor)
    betaFast: 32,
    betaSlow: 1,
    truncate: true,
  });
  const top = parseLlamaConfig(
    {
      ...j,
      original_max_position_embeddings: 1024,
      rope_scaling: { rope_type: "yarn", factor: 4, original_max_position_embeddings: 2048 },
    },
    "c.json",
  );
  assert.equal(
    top.ropeScaling?.type === "yarn" && top.ropeScaling.originalMaxPositionEmbeddings,
    1024,
    "top level wins",
  );
  const l3 = {
    rope_type: "llama3",
    factor: 8,
    low_freq_factor: 1,
    high_freq_factor: 4,
    original_max_position_embeddings: 8192,
  };
  assert.deepEqual(parseLlamaConfig({ ...j, rope_scaling: l3 }, "c.json").ropeScaling, {
    type: "llama3",
    factor: 8,
    lowFreqFactor: 1,
    highFreqFactor: 4,
    originalMaxPositionEmbeddings: 8192,
  });
  throwsConfig(
    () => parseLlamaConfig({ ...j, rope_scaling: { ...l3, high_freq_factor: undefined } }, "c.json"),
    "rope_scaling.high_freq_factor",
  );
  const lr = {
    rope_type: "longrope",
    short_factor: [1, 1, 1, 1],
    long_factor: [1, 2, 4, 8],
    original_max_position_embeddings: 1024,
  };
  const small = { ...j, hidden_size: 32, num_attention_heads: 4, num_key_value_heads: 4 }; // head_dim 8: 4 factors
  assert.deepEqual(parseLlamaConfig({ ...small, rope_scaling: lr }, "c.json").ropeScaling, {
    type: "longrope",
    shortFactor: [1, 1, 1, 1],
    longFactor: [1, 2, 4, 8],
    originalMaxPositionEmbeddings: 1024,
    attentionFactor: Math.sqrt(1 + Math.log(4096 / 1024) / Math.log(1024)), // factor = max_pos / original
  });
  throwsConfig(
    () => parseLlamaConfig({ ...small, rope_scaling: { ...lr, long_factor: [1, 2] } }, "c.json"),
    "rope_scaling.long_factor",
    "a list of 4 positive numbers",
  );
  throwsConfig(
    () => parseLlamaConfig({ ...j, rope_scaling: { rope_type: "dynamic" } }, "c.json"),
    "rope_scaling.factor",
    "positive number",
  );
  throwsConfig(
    () => parseLlamaConfig({ ...j, partial_rotary_factor: 0.5 }, "c.json"),
    "partial_rotary_factor",
    "not supported",
  );
});

test("each family's own fields and defaults", () => {
  const sizes = {
    hidden_size: 32,
    intermediate_size: 64,
    num_hidden_layers: 2,
    num_attention_heads: 4,
    vocab_size: 64,
  };
  const llama = parseLlamaConfig(
    { ...sizes, architectures: ["LlamaForCausalLM"], attention_bias: true, mlp_bias: true },
    "c.json",
  );
  assert.deepEqual([llama.qkvBias, llama.outputBias, llama.mlpBias], [true, true, true]);
  const qwen = parseLlamaConfig({ ...sizes, architectures: ["Qwen2ForCausalLM"], sliding_window: 4096 }, "c.json");
  assert.deepEqual(
    [qwen.qkvBias, qwen.outputBias, qwen.slidingWindow, qwen.tieWordEmbeddings],
    [true, false, null, false],
  );
  throwsConfig(
    () =>
      parseLlamaConfig(
        { ...sizes, architectures: ["Qwen2ForCausalLM"], use_sliding_window: true, max_window_layers: 1 },
        "c.json",
      ),
    "use_sliding_window",
    "not supported",
  );
  const mistral = parseLlamaConfig({ ...sizes, architectures: ["MistralForCausalLM"] }, "c.json");
  assert.equal(mistral.slidingWindow, 4096, "transformers' default window");
  assert.equal(
    parseLlamaConfig({ ...sizes, model_type: "mistral", sliding_window: null }, "c.json").slidingWindow,
    null,
  );
  const sc = parseLlamaConfig({ ...sizes, architectures: ["Starcoder2ForCausalLM"], norm_epsilon: 1e-5 }, "c.json");
  assert.deepEqual(
    [sc.norm, sc.mlp, sc.activation, sc.qkvBias, sc.mlpBias, sc.rmsNormEps, sc.tieWordEmbeddings],
    ["layer", "plain", "gelu_tanh", true, true, 1e-5, true],
  );
  const gemma = parseLlamaConfig({ ...sizes, architectures: ["GemmaForCausalLM"], hidden_act: "gelu" }, "c.json");
  assert.deepEqual(
    [gemma.headDim, gemma.norm, gemma.activation, gemma.embedScale, gemma.tieWordEmbeddings],
    [256, "rms_one_plus", "gelu_tanh", true, true],
    "head_dim 256 when absent; legacy gelu means the tanh approximation (as transformers)",
  );
  throwsConfig(
    () => parseLlamaConfig({ ...sizes, architectures: ["GemmaForCausalLM"], model_type: "llama" }, "c.json"),
    "model_type",
    "gemma",
  );
});

test("llamaConfigToJson round-trips, for every family and rope type", () => {
  const c = parseLlamaConfig({ ...codellama(), rope_scaling: { type: "linear", factor: 2 } }, "c.json");
  assert.deepEqual(parseLlamaConfig(llamaConfigToJson(c), "x.json"), c);
  const dir = path.join(__dirname, "..", "fixtures", "checkpoints");
  for (const name of fs.readdirSync(dir).filter((n) => n.startsWith("hf-"))) {
    const hf = loadLlamaConfig(path.join(dir, name));
    assert.deepEqual(parseLlamaConfig(llamaConfigToJson(hf), "x.json"), hf, name);
  }
});

test("unsupported architecture, model_type, activation and biases are refused by name", () => {
  throwsConfig(
    () => parseLlamaConfig({ ...codellama(), architectures: ["GPT2LMHeadModel"] }, "c.json"),
    "architectures",
    "GPT2LMHeadModel",
    "LlamaForCausalLM, Qwen2ForCausalLM, MistralForCausalLM, Starcoder2ForCausalLM, GemmaForCausalLM",
  );
  throwsConfig(() => parseLlamaConfig({ ...codellama(), model_type: "mistral" }, "c.json"), "model_type", "mistral");
  throwsConfig(() => parseLlamaConfig({ ...codellama(), hidden_act: "relu" }, "c.json"), "hidden_act", "relu", "silu");
  throwsConfig(() => parseLlamaConfig({ ...codellama(), attention_bias: "yes" }, "c.json"), "attention_bias");
  const j = codellama();
  delete j.architectures;
  delete j.model_type;
  throwsConfig(() => parseLlamaConfig(j, "c.json"), "architectures", "LlamaForCausalLM");
});

test("missing and wrong-typed fields name the file, the field and what was expected", () => {
  const j = codellama();
  delete j.hidden_size;
  throwsConfig(
    () => parseLlamaConfig(j, "/ck/config.json"),
    "hidden_size",
    "/ck/config.json",
    "missing",
    "positive integer",
  );
  throwsConfig(
    () => parseLlamaConfig({ ...codellama(), num_hidden_layers: "32" }, "/ck/config.json"),
    "num_hidden_layers",
    "/ck/config.json",
    "positive integer",
    '"32"',
  );
  throwsConfig(() => parseLlamaConfig({ ...codellama(), vocab_size: 3.5 }, "c.json"), "vocab_size", "positive integer");
  throwsConfig(
    () => parseLlamaConfig({ ...codellama(), rms_norm_eps: -1 }, "c.json"),
    "rms_norm_eps",
    "positive number",
  );
  throwsConfig(
    () => parseLlamaConfig({ ...codellama(), tie_word_embeddings: "no" }, "c.json"),
    "tie_word_embeddings",
    "boolean",
  );
  throwsConfig(() => parseLlamaConfig([1, 2], "c.json"), undefined, "JSON object");
});

test("rope types transformers does not implement for these families are refused by name", () => {
  throwsConfig(
    () => parseLlamaConfig({ ...codellama(), rope_scaling: { type: "proportional", factor: 2 } }, "c.json"),
    "rope_scaling",
    "proportional",
    "dynamic",
  );
  throwsConfig(
    () => parseLlamaConfig({ ...codellama(), rope_scaling: { type: "linear" } }, "c.json"),
    "rope_scaling.factor",
    "positive number",
  );
  throwsConfig(() => parseLlamaConfig({ ...codellama(), rope_scaling: "linear" }, "c.json"), "rope_scaling");
});

test("head counts must divide", () => {
  throwsConfig(
    () => parseLlamaConfig({ ...codellama(), num_attention_heads: 30 }, "c.json"),
    "num_attention_heads",
    "must divide hidden_size",
  );
  throwsConfig(
    () => parseLlamaConfig({ ...codellama(), num_key_value_heads: 5 }, "c.json"),
    "num_key_value_heads",
    "must divide",
  );
  // head_dim given: heads need not divide hidden_size
  assert.equal(
    parseLlamaConfig({ ...codellama(), num_attention_heads: 30, num_key_value_heads: 10, head_dim: 64 }, "c.json")
      .headDim,
    64,
  );
});

test("loadLlamaConfig: missing file and malformed JSON", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cfg-"));
  throwsConfig(() => loadLlamaConfig(dir), undefined, path.join(dir, "config.json"), "not found");
  fs.writeFileSync(path.join(dir, "config.json"), '{"hidden_size": 32,');
  throwsConfig(() => loadLlamaConfig(dir), undefined, "not valid JSON");
  fs.copyFileSync(CODELLAMA_CONFIG, path.join(dir, "config.json"));
  assert.equal(loadLlamaConfig(dir).vocabSize, 32016);
  fs.rmSync(dir, { recursive: true });
});
