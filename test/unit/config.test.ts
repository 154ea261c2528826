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
    () => parseLlamaConfig({ ...j, rope_parameters: { rope_theta: 1e4, rope_type: "yarn", factor: 2 } }, "c.json"),
    "rope_parameters",
    "yarn",
  );
});

test("llamaConfigToJson round-trips", () => {
  const c = parseLlamaConfig({ ...codellama(), rope_scaling: { type: "linear", factor: 2 } }, "c.json");
  assert.deepEqual(parseLlamaConfig(llamaConfigToJson(c), "x.json"), c);
});

test("unsupported architecture, model_type, activation and biases are refused by name", () => {
  throwsConfig(
    () => parseLlamaConfig({ ...codellama(), architectures: ["GPT2LMHeadModel"] }, "c.json"),
    "architectures",
    "GPT2LMHeadModel",
    "LlamaForCausalLM",
  );
  throwsConfig(() => parseLlamaConfig({ ...codellama(), model_type: "mistral" }, "c.json"), "model_type", "mistral");
  throwsConfig(() => parseLlamaConfig({ ...codellama(), hidden_act: "gelu" }, "c.json"), "hidden_act", "gelu", "silu");
  throwsConfig(() => parseLlamaConfig({ ...codellama(), attention_bias: true }, "c.json"), "attention_bias");
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

test("rope_scaling other than null/linear is refused", () => {
  throwsConfig(
    () => parseLlamaConfig({ ...codellama(), rope_scaling: { type: "dynamic", factor: 2 } }, "c.json"),
    "rope_scaling",
    "dynamic",
    "linear",
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
