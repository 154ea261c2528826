/**
 * No silent wrong answers with a real (random, tiny) checkpoint: corrupt and lying checkpoints
 * and tokenizers, non-finite weights and intervention values, inputs the model cannot run. Each
 * case asserts the typed error, its code, and the file / field / hook it names.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { writeRandomCheckpoint } from "../../lib/src/testing/random-checkpoint";
import { writeSafetensors } from "../../lib/src/testing/safetensors-writer";
import {
  CheckpointError,
  ConfigError,
  HookedLlama,
  HookNameError,
  InputError,
  NonFiniteError,
  ParenlensError,
  loadCheckpoint,
  loadLocalCheckpoint,
} from "../../lib/src";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bad-inputs-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
const TOK = path.join(__dirname, "..", "fixtures", "checkpoints", "tiny-tok");
let n = 0;
const fresh = (spec: Parameters<typeof writeRandomCheckpoint>[1] = {}) =>
  writeRandomCheckpoint(path.join(tmp, `ck${n++}`), spec);

/** Asserts that `p` rejects with `cls`, whose code, file and field match. */
async function rejects(
  p: Promise<unknown> | (() => unknown),
  cls: new (...a: never[]) => ParenlensError,
  want: { field?: string | RegExp; file?: string | RegExp; message?: RegExp },
): Promise<void> {
  await assert.rejects(
    async () => (typeof p === "function" ? p() : p),
    (e: unknown) => {
      assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
      const match = (got: string | undefined, w: string | RegExp | undefined, what: string) => {
        if (w === undefined) return;
        if (typeof w === "string") assert.equal(got, w, what);
        else assert.match(got ?? "", w, what);
      };
      match(e.field, want.field, "field");
      match(e.file, want.file, "file");
      match(e.message, want.message, "message");
      return true;
    },
  );
}

test("a NaN in a checkpoint weight is refused at load, naming the tensor and its file; allowNonFinite loads it", async () => {
  const ck = fresh({ shards: 2 });
  const index = JSON.parse(fs.readFileSync(path.join(ck.folder, "model.safetensors.index.json"), "utf8"));
  const shard = index.weight_map["model.layers.1.mlp.up_proj.weight"];
  const store = (await loadCheckpoint(ck.folder, { tokenizer: false })).weights;
  const tensors = store
    .names()
    .filter((name) => index.weight_map[name] === shard)
    .map((name) => {
      const data = store.getFloat32(name);
      if (name === "model.layers.1.mlp.up_proj.weight") data[3] = NaN;
      return { name, shape: store.shape(name), data };
    });
  writeSafetensors(path.join(ck.folder, shard), tensors);
  await rejects(HookedLlama.fromPretrained(ck.folder, { tokenizer: false }), NonFiniteError, {
    field: "model.layers.1.mlp.up_proj.weight",
    file: path.join(ck.folder, shard),
    message: /value 3 of \d+ is NaN/,
  });
  const model = await HookedLlama.fromPretrained(ck.folder, { tokenizer: false, allowNonFinite: true });
  const logits = await model.run([[1, 2, 3]]);
  assert.ok(logits.data.some(Number.isNaN), "NaN propagates when asked for");
});

test("setWeight and interventions refuse NaN / Infinity, naming the weight or hook; a run may opt out", async () => {
  const model = await HookedLlama.fromPretrained(fresh().folder, { tokenizer: false });
  const w = model.getWeight("model.norm.weight");
  w.data[0] = Infinity;
  await rejects(() => model.setWeight("model.norm.weight", w), NonFiniteError, { field: "model.norm.weight" });
  const hook = "blocks.0.hook_resid_post";
  const prompts = [[1, 2, 3]];
  await rejects(model.runWithHooks(prompts, [{ hook, kind: "constant", value: NaN }]), NonFiniteError, {
    field: hook,
  });
  await rejects(
    model.runWithHooks(prompts, [
      {
        hook,
        kind: "function",
        fn: (v) => {
          v.data[0] = 0 / 0;
        },
      },
    ]),
    NonFiniteError,
    { field: hook, message: /function result/ },
  );
  const logits = await model.runWithHooks(prompts, [{ hook, kind: "constant", value: NaN }], { allowNonFinite: true });
  assert.ok(logits.data.every(Number.isNaN));
});

test("inputs the model cannot run: too long, wrong types, bad options, malformed hook names", async () => {
  const model = await HookedLlama.fromPretrained(fresh({ config: { maxPositionEmbeddings: 8 } }).folder, {
    tokenizer: false,
  });
  await rejects(model.run([[1, 2, 3, 4, 5, 6, 7, 8, 9]]), InputError, {
    field: "input",
    message: /9 tokens .* max_position_embeddings \(8\)/,
  });
  await rejects(model.run([[1, 2]], { logitsAt: "Last" as "last" }), InputError, { field: "logitsAt" });
  await rejects(model.run([[1, 2]], { logitAt: "last" } as object), InputError, {
    field: "logitAt",
    message: /did you mean logitsAt/,
  });
  await rejects(model.run([[1, 2]], { padId: 10_000 }), InputError, { field: "padId" });
  await rejects(model.runWithCache([[1, 2]], { names: ["blocks.01.hook_resid_pre"] }), HookNameError, {
    field: "blocks.01.hook_resid_pre",
  });
  await rejects(model.runWithCache([[1, 2]], { names: ["blocks.6.hook_resid_pre"] }), HookNameError, {
    message: /layer 6 out of range 0\.\.1/,
  });
  await rejects(model.runWithHooks([[1, 2]], [{ hook: "blocks.01.hook_resid_pre", kind: "zero" }]), HookNameError, {});
  const weights = (await loadCheckpoint(fresh().folder, { tokenizer: false })).weights;
  await rejects(() => new HookedLlama(model.config, weights, null, { threads: -1 }), InputError, { field: "threads" });
  await rejects(model.runWithCache([[1, 2]], { names: "hook_embed" as never }), HookNameError, {
    message: /names must be a list, a predicate or \{ prefix \}: write \["hook_embed"\]/,
  });
  assert.equal((await model.run([[1, 2]], null as never)).shape.length, 3, "null options are no options");
  const tok = await HookedLlama.fromPretrained(TOK);
  await rejects(() => tok.toStrTokens(5 as unknown as string), InputError, { field: "input" });
  await rejects(() => tok.decode("x" as unknown as number), InputError, { field: "ids" });
  await rejects(() => tok.toTokens(42 as unknown as string), InputError, { field: "input" });
});

test("lying checkpoints: duplicate index keys, a tensor in two shards, a directory as weights, 2,000,000 layers", async () => {
  // a duplicate key in the shard index (JSON.parse would keep the last without a word)
  const dup = fresh({ shards: 2 });
  const indexFile = path.join(dup.folder, "model.safetensors.index.json");
  const text = fs.readFileSync(indexFile, "utf8");
  fs.writeFileSync(
    indexFile,
    text.replace('"weight_map": {', '"weight_map": {\n    "model.norm.weight": "x.safetensors",'),
  );
  await rejects(loadCheckpoint(dup.folder, { tokenizer: false }), CheckpointError, {
    file: indexFile,
    field: "model.norm.weight",
    message: /appears twice in weight_map/,
  });
  // a tensor stored in both shards
  const two = fresh({ shards: 2 });
  const index = JSON.parse(fs.readFileSync(path.join(two.folder, "model.safetensors.index.json"), "utf8"));
  const [first, second] = [...new Set(Object.values(index.weight_map) as string[])];
  const store = (await loadCheckpoint(two.folder, { tokenizer: false })).weights;
  const inSecond = store.names().filter((name) => index.weight_map[name] === second);
  const moved = store.names().find((name) => index.weight_map[name] === first)!;
  writeSafetensors(
    path.join(two.folder, second),
    [...inSecond, moved].map((name) => ({ name, shape: store.shape(name), data: store.getFloat32(name) })),
  );
  await rejects(loadCheckpoint(two.folder, { tokenizer: false }), CheckpointError, {
    field: moved,
    message: /stored in two shards/,
  });
  // model.safetensors that is a directory
  const dir = fresh();
  fs.rmSync(path.join(dir.folder, "model.safetensors"));
  fs.mkdirSync(path.join(dir.folder, "model.safetensors"));
  await rejects(loadCheckpoint(dir.folder, { tokenizer: false }), CheckpointError, {
    file: path.join(dir.folder, "model.safetensors"),
    message: /is a directory/,
  });
  // a config claiming 2,000,000 layers fails at once, naming the field
  const huge = fresh();
  const cfgFile = path.join(huge.folder, "config.json");
  const cfg = JSON.parse(fs.readFileSync(cfgFile, "utf8"));
  fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, num_hidden_layers: 2_000_000 }));
  await rejects(loadCheckpoint(huge.folder, { tokenizer: false }), ConfigError, {
    field: "num_hidden_layers",
    message: /at most 4096/,
  });
  // a duplicate key in config.json
  fs.writeFileSync(cfgFile, JSON.stringify(cfg).replace("{", '{"num_hidden_layers": 7,'));
  await rejects(loadCheckpoint(huge.folder, { tokenizer: false }), ConfigError, { field: "num_hidden_layers" });
});

test("rope: rope_scaling beside a disagreeing rope_parameters is read as transformers reads it; incomplete or unsupported types are refused by name", async () => {
  const ck = fresh();
  const cfgFile = path.join(ck.folder, "config.json");
  const cfg = JSON.parse(fs.readFileSync(cfgFile, "utf8"));
  const write = (extra: object) => fs.writeFileSync(cfgFile, JSON.stringify({ ...cfg, ...extra }));
  // transformers 5: `rope_parameters = rope_scaling or rope_parameters` (test/fixtures/golden/random-hf-llama-spellings is HF's reading)
  write({ rope_scaling: { type: "linear", factor: 2 }, rope_parameters: { rope_type: "default", rope_theta: 500 } });
  const both = (await loadCheckpoint(ck.folder, { tokenizer: false })).config;
  assert.deepEqual([both.ropeScaling, both.ropeTheta], [{ type: "linear", factor: 2 }, cfg.rope_theta]);
  write({ rope_scaling: { rope_type: "default" } });
  assert.equal((await loadCheckpoint(ck.folder, { tokenizer: false })).config.ropeScaling, null);
  write({ rope_scaling: { rope_type: "llama3", factor: 8 } });
  await rejects(loadCheckpoint(ck.folder, { tokenizer: false }), ConfigError, {
    field: "rope_scaling.low_freq_factor",
    message: /must be a number/,
  });
  write({ rope_scaling: { rope_type: "proportional", factor: 8 } });
  await rejects(loadCheckpoint(ck.folder, { tokenizer: false }), ConfigError, {
    field: "rope_scaling",
    message:
      /rope type "proportional"; supported rope types are "default", "linear", "dynamic", "yarn", "llama3", "longrope"/,
  });
});

test("tokenizer faults: missing tokenizer.json, a BOS outside the vocabulary, an unknown model type", async () => {
  const none = fresh();
  await rejects(loadCheckpoint(none.folder), CheckpointError, {
    file: path.join(none.folder, "tokenizer.json"),
    message: /tokenizer: false/,
  });
  assert.equal(loadLocalCheckpoint(none.folder, { tokenizer: false }).tokenizer, null);

  const bos = fresh({ tokenizerFrom: TOK });
  const tcFile = path.join(bos.folder, "tokenizer_config.json");
  const tc = fs.existsSync(tcFile) ? JSON.parse(fs.readFileSync(tcFile, "utf8")) : {};
  fs.writeFileSync(tcFile, JSON.stringify({ ...tc, bos_token: "<start>" }));
  await rejects(loadCheckpoint(bos.folder), CheckpointError, { file: tcFile, field: "bos_token" });

  const type = fresh({ tokenizerFrom: TOK });
  const tjFile = path.join(type.folder, "tokenizer.json");
  const tj = JSON.parse(fs.readFileSync(tjFile, "utf8"));
  fs.writeFileSync(tjFile, JSON.stringify({ ...tj, model: { ...tj.model, type: "SentencePieceBPE" } }));
  await rejects(loadCheckpoint(type.folder), CheckpointError, { file: tjFile, field: "model.type" });
});

test("a symlink loop is reported as a loop, not as a missing file", async () => {
  const ck = fresh();
  const cfg = path.join(ck.folder, "config.json");
  fs.rmSync(cfg);
  fs.symlinkSync(path.join(ck.folder, "loop-b"), path.join(ck.folder, "loop-a"));
  fs.symlinkSync(path.join(ck.folder, "loop-a"), path.join(ck.folder, "loop-b"));
  fs.symlinkSync(path.join(ck.folder, "loop-a"), cfg);
  await rejects(loadCheckpoint(ck.folder, { tokenizer: false }), CheckpointError, {
    file: cfg,
    message: /symbolic link loop \(ELOOP\)/,
  });
  const loopFolder = path.join(tmp, "loop-folder");
  fs.symlinkSync(loopFolder, loopFolder);
  await rejects(loadCheckpoint(loopFolder), CheckpointError, { message: /symbolic link loop/ });
});
