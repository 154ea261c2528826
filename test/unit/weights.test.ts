import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { writeRandomCheckpoint, seededNormal } from "../../lib/src/testing/random-checkpoint";
import { writeSafetensors } from "../../lib/src/testing/safetensors-writer";
import {
  WeightStore,
  validateLlamaWeights,
  expectedLlamaWeights,
  loadLlamaConfig,
  CheckpointError,
} from "../../lib/src";

const root = fs.mkdtempSync(path.join(os.tmpdir(), "weights-"));
process.on("exit", () => fs.rmSync(root, { recursive: true, force: true }));
const folder = (name: string) => path.join(root, name);

function throwsCk(fn: () => unknown, ...words: string[]) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof CheckpointError, `expected CheckpointError, got ${e}`);
    for (const w of words) assert.ok(e.message.includes(w), `message "${e.message}" should mention "${w}"`);
    return true;
  });
}

test("a random checkpoint has every Llama tensor with the config's shapes", () => {
  const { config } = writeRandomCheckpoint(folder("gqa"), { seed: 3, config: { numKvHeads: 2 } });
  const store = WeightStore.open(folder("gqa"));
  validateLlamaWeights(config, store);
  assert.deepEqual(store.shape("model.layers.1.self_attn.k_proj.weight"), [16, 32]); // [kv_head*d_head, d_model]
  assert.deepEqual(store.shape("model.layers.0.self_attn.o_proj.weight"), [32, 32]);
  assert.deepEqual(store.shape("model.layers.0.mlp.down_proj.weight"), [32, 64]); // [d_model, d_mlp]
  assert.equal(store.names().length, 1 + 2 * 9 + 2);
  assert.equal(store.dtype("lm_head.weight"), "F32");
  const norm = store.getFloat32("model.norm.weight"); // [d_model]
  const mean = norm.reduce((a, b) => a + b, 0) / norm.length;
  assert.ok(Math.abs(mean - 1) < 0.1, `norm weights around 1, mean ${mean}`);
  throwsCk(() => store.getFloat32("model.layers.9.mlp.up_proj.weight"), "no tensor");
});

test("same seed → same bytes; other seed → other weights", () => {
  writeRandomCheckpoint(folder("s1"), { seed: 7, dtype: "BF16" });
  writeRandomCheckpoint(folder("s2"), { seed: 7, dtype: "BF16" });
  writeRandomCheckpoint(folder("s3"), { seed: 8, dtype: "BF16" });
  const bytes = (f: string) => fs.readFileSync(path.join(folder(f), "model.safetensors"));
  assert.ok(bytes("s1").equals(bytes("s2")));
  assert.ok(!bytes("s1").equals(bytes("s3")));
  assert.equal(
    fs.readFileSync(path.join(folder("s1"), "config.json"), "utf8"),
    fs.readFileSync(path.join(folder("s2"), "config.json"), "utf8"),
  );
});

test("sharded = single, tensor by tensor, for every dtype", () => {
  for (const dtype of ["F32", "F16", "BF16"] as const) {
    writeRandomCheckpoint(folder(`one-${dtype}`), { seed: 1, dtype });
    const { files } = writeRandomCheckpoint(folder(`three-${dtype}`), { seed: 1, dtype, shards: 3 });
    assert.equal(files.filter((f) => f.endsWith(".safetensors")).length, 3);
    const one = WeightStore.open(folder(`one-${dtype}`));
    const three = WeightStore.open(folder(`three-${dtype}`));
    assert.equal(three.files.length, 3);
    assert.deepEqual(three.names().sort(), one.names().sort());
    for (const n of one.names()) {
      assert.equal(three.dtype(n), dtype);
      assert.deepEqual(three.getFloat32(n), one.getFloat32(n), n);
    }
  }
});

test("BF16 weights are the F32 weights rounded to bfloat16", () => {
  const f32 = WeightStore.open(folder("one-F32")).getFloat32("model.embed_tokens.weight");
  const bf = WeightStore.open(folder("one-BF16")).getFloat32("model.embed_tokens.weight");
  for (let i = 0; i < f32.length; i++) assert.ok(Math.abs(bf[i] - f32[i]) <= Math.abs(f32[i]) * 2 ** -8);
  assert.deepEqual(f32, seededNormal(1, "model.embed_tokens.weight", 64 * 32, 0, 1));
});

test("tied embeddings: no lm_head tensor, and validation does not ask for one", () => {
  const { config } = writeRandomCheckpoint(folder("tied"), { tied: true });
  const store = WeightStore.open(folder("tied"));
  assert.equal(config.tieWordEmbeddings, true);
  assert.equal(store.has("lm_head.weight"), false);
  validateLlamaWeights(config, store);
  // ... but an untied config over the same weights is missing lm_head
  throwsCk(
    () => validateLlamaWeights({ ...config, tieWordEmbeddings: false }, store),
    "missing lm_head.weight",
    "[64, 32]",
  );
});

test("mis-shaped and missing tensors are listed with their expected shapes", () => {
  const dir = folder("bad-shapes");
  const { config } = writeRandomCheckpoint(dir, { seed: 2 });
  const expected = expectedLlamaWeights(config);
  const tensors = [...expected]
    .filter(([n]) => n !== "model.norm.weight")
    .map(([name, shape]) => ({
      name,
      shape: name === "model.layers.1.mlp.up_proj.weight" ? [64, 31] : shape,
      data: () =>
        new Float32Array(name === "model.layers.1.mlp.up_proj.weight" ? 64 * 31 : shape.reduce((a, b) => a * b, 1)),
    }));
  writeSafetensors(path.join(dir, "model.safetensors"), tensors);
  const store = WeightStore.open(dir);
  assert.throws(
    () => validateLlamaWeights(loadLlamaConfig(dir), store),
    (e: unknown) => {
      assert.ok(e instanceof CheckpointError);
      assert.match(e.message, /model\.layers\.1\.mlp\.up_proj\.weight has shape \[64, 31\], expected \[64, 32\]/);
      assert.match(e.message, /missing model\.norm\.weight \(expected shape \[32\]\)/);
      return true;
    },
  );
});

test("a shard listed in the index but absent", () => {
  const dir = folder("missing-shard");
  writeRandomCheckpoint(dir, { shards: 2 });
  fs.rmSync(path.join(dir, "model-00002-of-00002.safetensors"));
  throwsCk(() => WeightStore.open(dir), "model-00002-of-00002.safetensors", "does not exist");
});

test("an index that maps a tensor to a shard without it, or is malformed", () => {
  const dir = folder("lying-index");
  writeRandomCheckpoint(dir, { shards: 2 });
  const indexFile = path.join(dir, "model.safetensors.index.json");
  const index = JSON.parse(fs.readFileSync(indexFile, "utf8"));
  index.weight_map["model.norm.weight"] = "model-00001-of-00002.safetensors";
  index.weight_map["lm_head.weight"] = "model-00001-of-00002.safetensors";
  fs.writeFileSync(indexFile, JSON.stringify(index));
  throwsCk(() => WeightStore.open(dir), "that shard has no such tensor");
  fs.writeFileSync(indexFile, "{");
  throwsCk(() => WeightStore.open(dir), "not valid JSON");
  fs.writeFileSync(indexFile, JSON.stringify({ weight_map: ["a"] }));
  throwsCk(() => WeightStore.open(dir), "weight_map");
  fs.writeFileSync(indexFile, JSON.stringify({ weight_map: { "model.norm.weight": "../elsewhere.safetensors" } }));
  throwsCk(() => WeightStore.open(dir), "inside the checkpoint folder");
});

test("a folder without safetensors weights", () => {
  const dir = folder("no-weights");
  fs.mkdirSync(dir);
  throwsCk(() => WeightStore.open(dir), "model.safetensors", "model.safetensors.index.json");
  fs.writeFileSync(path.join(dir, "pytorch_model.bin"), "");
  throwsCk(() => WeightStore.open(dir), "pytorch_model.bin", "only safetensors");
});
