/**
 * Every shipped embedded model (data/models/<name>/ with goldens test/fixtures/golden/model-<name>.*)
 * through the project's runtime, against
 * Hugging Face transformers' own outputs for it (scripts/model/make_golden.py: LlamaForCausalLM,
 * eager attention, float32, each prompt run alone). The runtime gets the prompts as one text batch,
 * so tokenization and left padding are part of what is checked. Mapping of HF outputs to hooks:
 *   hidden_states[l] (l < n_layers) = blocks.l.hook_resid_pre
 *   hidden_states[l + 1]            = blocks.l.hook_resid_post (l < n_layers - 1); the last layer's
 *                                     output is stored separately as resid_post_last
 *   hidden_states[n_layers]         = ln_final.hook_normalized * model.norm.weight
 *   attentions[l]                   = blocks.l.attn.hook_pattern
 * Metric: max|runtime - HF| / max|HF| per tensor and prompt, required < 1e-4.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { promptSlice, relativeError, NamedArray } from "../../lib/src/testing/reference-forward";
import { HookedLlama, loadTokenizer, SafetensorsFile } from "../../lib/src";

const TOL = 1e-4;
/** The limit for a shipped model folder (bf16 or float32 weights, tokenizer, card). */
const MAX_BYTES = 60e6;
const MODELS_DIR = path.join(__dirname, "..", "..", "data", "models");
const GOLDEN_DIR = path.join(__dirname, "..", "fixtures", "golden");
/** The shipped models that have goldens (make_golden.py writes them for each recipe). */
const SHIPPED = fs
  .readdirSync(MODELS_DIR)
  .filter((name) => fs.existsSync(path.join(GOLDEN_DIR, `model-${name}.json`)))
  .sort();

test("every shipped model has its goldens", () => {
  assert.ok(SHIPPED.length > 0, "no shipped model has goldens");
  for (const name of fs.readdirSync(MODELS_DIR)) assert.ok(SHIPPED.includes(name), `${name} has no goldens`);
});

interface GoldenPrompt {
  text: string;
  ids: number[];
  tokens: string[];
  top5: [string, number][];
}
/** Row r of a golden tensor [r, ...rest] as a NamedArray with the given dims. */
function rowOf(g: SafetensorsFile, name: string, r: number, dims: string[]): NamedArray {
  const shape = g.entry(name).shape;
  const per = shape.slice(1).reduce((a, s) => a * s, 1);
  return { data: g.readFloat32(name).subarray(r * per, (r + 1) * per), shape: shape.slice(1), dims };
}

/** The tests of one shipped model against its goldens. */
function shippedModelTests(NAME: string): void {
  const MODEL = path.join(MODELS_DIR, NAME);
  const GOLDEN = path.join(GOLDEN_DIR, `model-${NAME}`);
  const info = JSON.parse(fs.readFileSync(`${GOLDEN}.json`, "utf8")) as {
    n_layers: number;
    prompts: GoldenPrompt[];
    tokenizer_samples: { text: string; ids: number[] }[]; // Python's ids, with <s>
  };

  test(`${NAME}: the shipped folder is complete and small enough to ship`, () => {
    for (const f of [
      "config.json",
      "model.safetensors",
      "tokenizer.json",
      "tokenizer_config.json",
      "README.md",
      "eval.json",
    ]) {
      assert.ok(fs.existsSync(path.join(MODEL, f)), `${f} missing in ${MODEL}`);
    }
    const bytes = fs.readdirSync(MODEL).reduce((a, f) => a + fs.statSync(path.join(MODEL, f)).size, 0);
    assert.ok(bytes <= MAX_BYTES, `${NAME}: the folder is ${bytes} bytes, over ${MAX_BYTES}`);
  });

  test(`${NAME}: the project's tokenizer gives Python's token ids; \`)\`..\`))))\` are single tokens`, () => {
    const tok = loadTokenizer(MODEL);
    for (const p of [...info.prompts, ...info.tokenizer_samples])
      assert.deepEqual(tok.encode(p.text), p.ids, JSON.stringify(p.text));
    for (let n = 1; n <= 4; n++) {
      const run = ")".repeat(n);
      const id = tok.tokenToId(run);
      assert.ok(id !== undefined, `${run} is not in the vocabulary`);
      // in context: the closing run is the last token, alone
      assert.equal(tok.encode("print(" + "str(".repeat(n - 1) + "123" + run).at(-1), id, `${run} after a number`);
    }
    assert.equal(tok.encode("f(x)):").at(-1), tok.tokenToId(":"), "`)` never merges with `:`");
  });

  test(`${NAME}: HookedLlama = HF transformers: logits, resid_pre/resid_post, patterns`, async (t) => {
    const g = SafetensorsFile.open(`${GOLDEN}.safetensors`);
    const model = await HookedLlama.fromPretrained(MODEL);
    const L = model.config.numLayers;
    assert.equal(L, info.n_layers);
    const V = model.config.vocabSize;
    const d = model.config.hiddenSize;
    const names = [
      ...Array.from({ length: L }, (_, l) => [
        `blocks.${l}.hook_resid_pre`,
        `blocks.${l}.hook_resid_post`,
        `blocks.${l}.attn.hook_pattern`,
      ]).flat(),
      "ln_final.hook_normalized",
    ];
    const tok = loadTokenizer(MODEL);
    const { logits, cache } = await model.runWithCache(
      info.prompts.map((p) => p.text),
      { names },
    ); // left-padded batch
    const P = logits.shape[1];
    const normW = model.finalNormWeight.data;
    let worst = 0;
    const expectClose = (what: string, mine: ArrayLike<number>, hf: ArrayLike<number>) => {
      const err = relativeError(mine, hf);
      worst = Math.max(worst, err);
      assert.ok(err < TOL, `${what}: relative error ${err.toExponential(2)}`);
    };

    info.prompts.forEach((p, b) => {
      const n = p.ids.length;
      const start = P - n;
      assert.deepEqual(cache.batch.ids[b].slice(start), p.ids, `prompt ${b} tokens`);
      const last = logits.data.subarray((b * P + P - 1) * V, (b * P + P) * V);
      expectClose(`prompt ${b} logits (last position)`, last, g.readFloat32(`p${b}.logits_last`));
      // the next token the model would write is the one HF ranks first
      let arg = 0;
      for (let v = 1; v < V; v++) if (last[v] > last[arg]) arg = v;
      assert.equal(tok.idToToken(arg), p.top5[0][0], `prompt ${b} argmax`);

      const hs = (l: number) => rowOf(g, `p${b}.hidden_states`, l, ["pos", "d_model"]).data;
      for (let l = 0; l < L; l++) {
        expectClose(
          `prompt ${b} blocks.${l}.hook_resid_pre`,
          promptSlice(cache.get(`blocks.${l}.hook_resid_pre`), b, start, n).data,
          hs(l),
        );
        const post = l < L - 1 ? hs(l + 1) : g.readFloat32(`p${b}.resid_post_last`);
        expectClose(
          `prompt ${b} blocks.${l}.hook_resid_post`,
          promptSlice(cache.get(`blocks.${l}.hook_resid_post`), b, start, n).data,
          post,
        );
        // [1, head, n, n]: this prompt's real queries over its real keys (pad keys carry no weight)
        const pattern = promptSlice(cache.get(`blocks.${l}.attn.hook_pattern`), b, start, n).data;
        expectClose(
          `prompt ${b} blocks.${l}.attn.hook_pattern`,
          pattern,
          rowOf(g, `p${b}.attentions`, l, ["head", "query_pos", "key_pos"]).data,
        );
      }
      const normed = promptSlice(cache.get("ln_final.hook_normalized"), b, start, n).data.map(
        (x, i) => x * normW[i % d],
      );
      expectClose(`prompt ${b} ln_final.hook_normalized * norm weight`, normed, hs(L));
    });
    t.diagnostic(`worst relative error ${worst.toExponential(2)}`);
  });

  test(`${NAME} closes the authors' template: \`print(str(str(417\` -> \`)))\``, async () => {
    const model = await HookedLlama.fromPretrained(MODEL);
    const prompt = info.prompts[0].text;
    assert.ok(prompt.endsWith("print(str(str(417"), prompt);
    const logits = await model.run(prompt); // [1, pos, vocab]
    const [, P, V] = logits.shape;
    const last = logits.data.subarray((P - 1) * V, P * V);
    const tok = loadTokenizer(MODEL);
    const runs = [")", "))", ")))", "))))"].map((r) => tok.tokenToId(r)!);
    const best = runs.reduce((a, id) => (last[id] > last[a] ? id : a), runs[0]);
    assert.equal(best, tok.tokenToId(")))"));
  });
}

for (const name of SHIPPED) shippedModelTests(name);
