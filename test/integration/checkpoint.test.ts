import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { AddressInfo } from "net";
import { env as hfEnv } from "@huggingface/transformers";
import { hubCacheFolder, looksLikeHubId } from "../../lib/src/checkpoint/load";
import { writeRandomCheckpoint } from "../../lib/src/testing/random-checkpoint";
import { referenceForward, promptSlice, relativeError } from "../../lib/src/testing/reference-forward";
import {
  loadCheckpoint,
  loadLocalCheckpoint,
  CheckpointError,
  ConfigError,
  SafetensorsFile,
  HookedLlama,
} from "../../lib/src";

const FIXTURES = path.join(__dirname, "..", "fixtures/checkpoints");
/** Fixtures without tokenizer.json are loaded as token-id-only models (an explicit choice). */
const tok = (folder: string) => ({ tokenizer: fs.existsSync(path.join(folder, "tokenizer.json")) });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ckpt-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));

/** The committed fixture checkpoints, each with an HF golden (scripts/golden/). */
const FIXTURE_CHECKPOINTS = [
  "tiny-f32",
  "tiny-gqa",
  "tiny-tied",
  "tiny-bf16",
  "tiny-sharded",
  "tiny-rope-linear",
  "tiny-tok",
  "codellama-shrunk",
];

test("every committed fixture checkpoint loads and validates", async () => {
  for (const name of FIXTURE_CHECKPOINTS) {
    const ck = await loadCheckpoint(path.join(FIXTURES, name), tok(path.join(FIXTURES, name)));
    assert.equal(ck.config.numLayers, 2, name);
    assert.equal(ck.weights.has("lm_head.weight"), !ck.config.tieWordEmbeddings, name);
  }
  assert.equal(
    (await loadCheckpoint(path.join(FIXTURES, "tiny-gqa"), tok(path.join(FIXTURES, "tiny-gqa")))).config.numKvHeads,
    2,
  );
  assert.equal(
    (await loadCheckpoint(path.join(FIXTURES, "tiny-bf16"), tok(path.join(FIXTURES, "tiny-bf16")))).weights.dtype(
      "model.norm.weight",
    ),
    "BF16",
  );
  assert.deepEqual(
    (await loadCheckpoint(path.join(FIXTURES, "tiny-rope-linear"), tok(path.join(FIXTURES, "tiny-rope-linear")))).config
      .ropeScaling,
    {
      type: "linear",
      factor: 2,
    },
  );
  assert.equal(
    (await loadCheckpoint(path.join(FIXTURES, "tiny-f32"), tok(path.join(FIXTURES, "tiny-f32")))).tokenizer,
    null,
  );
});

test("tiny-sharded holds exactly tiny-f32's weights", async () => {
  const one = await loadCheckpoint(path.join(FIXTURES, "tiny-f32"), tok(path.join(FIXTURES, "tiny-f32")));
  const two = await loadCheckpoint(path.join(FIXTURES, "tiny-sharded"), tok(path.join(FIXTURES, "tiny-sharded")));
  assert.equal(two.weights.files.length, 2);
  for (const n of one.weights.names()) assert.deepEqual(two.weights.getFloat32(n), one.weights.getFloat32(n), n);
});

test("codellama-shrunk: CodeLlama-7b's config.json with only the sizes shrunk, and its tensor names", async () => {
  const ck = await loadCheckpoint(
    path.join(FIXTURES, "codellama-shrunk"),
    tok(path.join(FIXTURES, "codellama-shrunk")),
  );
  const written = JSON.parse(fs.readFileSync(path.join(ck.folder, "config.json"), "utf8"));
  const original = JSON.parse(fs.readFileSync(path.join(FIXTURES, "codellama-7b-hf.config.json"), "utf8"));
  const shrunk = [
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
  ];
  assert.deepEqual(Object.keys(written), Object.keys(original));
  for (const k of Object.keys(original)) if (!shrunk.includes(k)) assert.deepEqual(written[k], original[k], k);
  assert.equal(ck.config.ropeTheta, 1e6);
  assert.equal(ck.config.vocabSize, 32016);
  assert.deepEqual(ck.weights.shape("model.layers.1.mlp.gate_proj.weight"), [86, 32]);
  assert.equal(ck.weights.dtype("lm_head.weight"), "BF16");
  assert.ok(ck.tokenizer);
  assert.equal(ck.tokenizer.bosId, written.bos_token_id);
  assert.equal(ck.tokenizer.eosId, written.eos_token_id);
});

test("missing config.json, malformed config, missing weights, mis-shaped weights", async () => {
  const dir = path.join(tmp, "broken");
  writeRandomCheckpoint(dir, { seed: 1 });
  fs.rmSync(path.join(dir, "config.json"));
  await assert.rejects(
    loadCheckpoint(dir),
    (e: unknown) => e instanceof CheckpointError && e.file === path.join(dir, "config.json"),
  );
  fs.writeFileSync(path.join(dir, "config.json"), "{ not json");
  await assert.rejects(loadCheckpoint(dir), ConfigError);
  fs.writeFileSync(
    path.join(dir, "config.json"),
    JSON.stringify({ architectures: ["GPT2LMHeadModel"], model_type: "gpt2" }),
  );
  await assert.rejects(
    loadCheckpoint(dir),
    (e: unknown) => e instanceof ConfigError && /GPT2LMHeadModel/.test(e.message),
  );
  writeRandomCheckpoint(dir, { seed: 1 });
  fs.rmSync(path.join(dir, "model.safetensors"));
  await assert.rejects(
    loadCheckpoint(dir),
    (e: unknown) => e instanceof CheckpointError && /model\.safetensors/.test(e.message),
  );
  // weights of one shape, config of another
  writeRandomCheckpoint(dir, { seed: 1 });
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ ...cfg, intermediate_size: 48 }));
  await assert.rejects(
    loadCheckpoint(dir),
    (e: unknown) =>
      e instanceof CheckpointError &&
      /mlp\.gate_proj\.weight has shape \[64, 32\], expected \[48, 32\]/.test(e.message),
  );
});

test("a tokenizer bigger than the model's vocabulary is refused", () => {
  const dir = path.join(tmp, "small-vocab");
  writeRandomCheckpoint(dir, { seed: 1, tokenizerFrom: path.join(__dirname, "..", "fixtures/tokenizer") }); // vocab 64
  assert.throws(
    () => loadLocalCheckpoint(dir),
    (e: unknown) => e instanceof CheckpointError && e.field === "vocab_size",
  );
  assert.equal(loadLocalCheckpoint(dir, { tokenizer: false }).tokenizer, null);
});

test("paths that are neither folders nor Hub ids", async () => {
  assert.equal(looksLikeHubId("codellama/CodeLlama-7b-hf"), true);
  assert.equal(looksLikeHubId("./models/x"), false);
  assert.equal(looksLikeHubId("/abs/path"), false);
  assert.equal(looksLikeHubId("a/b/c"), false);
  await assert.rejects(
    loadCheckpoint(path.join(tmp, "no/such/folder")),
    (e: unknown) => e instanceof CheckpointError && /no such folder/.test(e.message),
  );
});

test("a Hub id without network fails fast with a CheckpointError (no hang)", { timeout: 60_000 }, async () => {
  await assert.rejects(
    loadCheckpoint("codellama/CodeLlama-7b-hf", { timeoutMs: 5000, cacheDir: path.join(tmp, "hub-cache") }),
    (e: unknown) =>
      e instanceof CheckpointError && /unreachable|no answer|HTTP/.test(e.message) && /local/.test(e.message),
  );
  assert.equal(
    fs.existsSync(hubCacheFolder("codellama/CodeLlama-7b-hf", { cacheDir: path.join(tmp, "hub-cache") })),
    false,
  );
  await assert.rejects(
    loadCheckpoint("codellama/CodeLlama-7b-hf", { offline: true, cacheDir: path.join(tmp, "hub-cache") }),
    (e: unknown) => e instanceof CheckpointError && /offline/.test(e.message),
  );
});

/** A local stand-in for the Hub: serves /<org>/<name>/resolve/main/<file> from a folder, or never answers. */
async function withFakeHub(folder: string | null, fn: (host: string) => Promise<void>): Promise<void> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? "");
    if (folder === null) return; // hang: never answer
    const m = /^\/org\/model\/resolve\/main\/(.+)$/.exec(req.url ?? "");
    const file = m && path.join(folder, decodeURIComponent(m[1]));
    if (!file || !fs.existsSync(file)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/octet-stream" });
    fs.createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const saved = hfEnv.remoteHost;
  hfEnv.remoteHost = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  try {
    await fn(hfEnv.remoteHost);
  } finally {
    hfEnv.remoteHost = saved;
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

test("a Hub that never answers: CheckpointError after the timeout", { timeout: 30_000 }, async () => {
  await withFakeHub(null, async () => {
    await assert.rejects(
      loadCheckpoint("org/model", { timeoutMs: 300, cacheDir: path.join(tmp, "hang-cache") }),
      (e: unknown) => e instanceof CheckpointError && /no answer within 300 ms/.test(e.message),
    );
  });
});

test(
  "a reachable Hub: sharded checkpoint + tokenizer downloaded into the cache, then loaded offline",
  { timeout: 30_000 },
  async () => {
    const source = path.join(tmp, "served");
    writeRandomCheckpoint(source, {
      seed: 9,
      shards: 2,
      config: { vocabSize: 600 },
      tokenizerFrom: path.join(__dirname, "..", "fixtures/tokenizer"),
    });
    const cacheDir = path.join(tmp, "ok-cache");
    await withFakeHub(source, async () => {
      const ck = await loadCheckpoint("org/model", { cacheDir, timeoutMs: 5000 });
      assert.equal(ck.folder, path.join(cacheDir, "org/model"));
      assert.equal(ck.weights.files.length, 2);
      assert.ok(ck.tokenizer);
      const local = loadLocalCheckpoint(source);
      for (const n of local.weights.names()) assert.deepEqual(ck.weights.getFloat32(n), local.weights.getFloat32(n));
    });
    // server gone: the completed download is used from the cache
    const again = await loadCheckpoint("org/model", { cacheDir, offline: true });
    assert.equal(again.config.vocabSize, 600);
    // a repo the Hub does not have
    await withFakeHub(source, async () => {
      await assert.rejects(
        loadCheckpoint("org/other", { cacheDir, timeoutMs: 5000 }),
        (e: unknown) => e instanceof CheckpointError && /HTTP 404/.test(e.message),
      );
    });
  },
);

// ---- HF goldens (scripts/golden/make_random_goldens.py) agree with what this library loads ----

const GOLDEN = path.join(__dirname, "..", "fixtures/golden");

test("HF goldens: inputs match their JSON, text prompts match the TS tokenizer, unpadded rows match the float64 reference", async () => {
  for (const name of FIXTURE_CHECKPOINTS) {
    const info = JSON.parse(fs.readFileSync(path.join(GOLDEN, `random-${name}.json`), "utf8"));
    const g = SafetensorsFile.open(path.join(GOLDEN, `random-${name}.safetensors`));
    const ids = info.input_ids as number[][];
    const mask = info.attention_mask as number[][];
    assert.deepEqual(Array.from(g.readFloat32("input_ids")), ids.flat(), name);
    assert.deepEqual(Array.from(g.readFloat32("attention_mask")), mask.flat(), name);
    const ck = await loadCheckpoint(path.join(FIXTURES, name), tok(path.join(FIXTURES, name)));
    if (info.texts) {
      // left-padded token ids of each text = the TS tokenizer's encoding (with BOS)
      info.texts.forEach((text: string, b: number) =>
        assert.deepEqual(
          ids[b].filter((_, p) => mask[b][p] === 1),
          ck.tokenizer!.encode(text),
          text,
        ),
      );
    }
    const [B, P] = [ids.length, ids[0].length];
    const L = ck.config.numLayers;
    const resid = {
      data: g.readFloat32("resid_post"),
      shape: g.entry("resid_post").shape,
      dims: ["layer", "batch", "pos", "d_model"],
    };
    const lastOnly = g.has("logits_last");
    const logits = lastOnly ? g.readFloat32("logits_last") : g.readFloat32("logits"); // [batch, vocab] | [batch, pos, vocab]
    for (let b = 0; b < B; b++) {
      const n = mask[b].reduce((a, m) => a + m, 0);
      const toks = ids[b].slice(P - n);
      const ref = referenceForward(ck.config, (w) => ck.weights.getFloat32(w), toks, {
        keep: (h) => h.endsWith("hook_resid_post"),
      });
      const V = ck.config.vocabSize;
      const expected = lastOnly
        ? Array.from(logits.subarray(b * V, (b + 1) * V))
        : Array.from(
            promptSlice({ data: logits, shape: [B, P, V], dims: ["batch", "pos", "vocab"] }, b, P - n, n).data,
          );
      const mine = lastOnly ? Array.from(ref.logits.data.subarray((n - 1) * V)) : Array.from(ref.logits.data);
      assert.ok(
        relativeError(mine, expected) < 1e-4,
        `${name} row ${b}: logits rel err ${relativeError(mine, expected)}`,
      );
      for (let l = 0; l < L; l++) {
        const hf = promptSlice(
          {
            data: resid.data.subarray(l * B * P * resid.shape[3], (l + 1) * B * P * resid.shape[3]),
            shape: resid.shape.slice(1),
            dims: resid.dims.slice(1),
          },
          b,
          P - n,
          n,
        );
        const err = relativeError(ref.hooks.get(`blocks.${l}.hook_resid_post`)!.data, hf.data);
        assert.ok(err < 1e-4, `${name} row ${b} layer ${l}: resid_post rel err ${err}`);
      }
    }
  }
});

test("weights are validated once: by loadCheckpoint, or (validateWeights: false) by the HookedLlama constructor", async () => {
  const dir = path.join(tmp, "validate-once");
  writeRandomCheckpoint(dir, { seed: 2 });
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify({ ...cfg, intermediate_size: 48 }));
  const mismatch =
    /weights do not match config\.json: .*mlp\.gate_proj\.weight has shape \[64, 32\], expected \[48, 32\]/;
  assert.throws(() => loadLocalCheckpoint(dir, { tokenizer: false }), mismatch);
  const ck = loadLocalCheckpoint(dir, { validateWeights: false, tokenizer: false }); // what HookedLlama.fromPretrained does
  assert.throws(
    () => new HookedLlama(ck.config, ck.weights, ck.tokenizer),
    (e: unknown) => e instanceof CheckpointError && mismatch.test(e.message),
  );
  await assert.rejects(HookedLlama.fromPretrained(dir, { tokenizer: false }), mismatch);
  // any in-memory source is checked the same way
  const good = writeRandomCheckpoint(path.join(tmp, "validate-mem"), { seed: 2 });
  const store = loadLocalCheckpoint(good.folder, { tokenizer: false }).weights;
  const missingNorm = {
    has: (n: string) => n !== "model.norm.weight" && store.has(n),
    shape: (n: string) => store.shape(n),
    getFloat32: (n: string) => store.getFloat32(n),
  };
  assert.throws(
    () => new HookedLlama(good.config, missingNorm, null),
    (e: unknown) =>
      e instanceof CheckpointError &&
      /^weights: .*missing model\.norm\.weight \(expected shape \[32\]\)/.test(e.message),
  );
});
