/**
 * What a TransformerLens user writes, on a seeded random checkpoint: positions that mean each
 * prompt's own token under left and right padding, runWithCache without names caching every hook,
 * runWithHooks always returning logits, cache shorthands, and toIds.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { writeRandomCheckpoint } from "../../lib/src/testing/random-checkpoint";
import { HookedLlama, HookNameError, InputError, Intervention, Tensor } from "../../lib/src";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-tl-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
const ck = writeRandomCheckpoint(path.join(tmp, "tiny"), {
  config: { numLayers: 2, vocabSize: 498 },
  seed: 11,
  tokenizerFrom: path.join(__dirname, "..", "fixtures/tokenizer"),
});
let model: HookedLlama;
before(async () => {
  model = await HookedLlama.fromPretrained(ck.folder);
});

const long = [1, 14, 15, 9, 26, 5]; // 6 tokens
const short = [1, 7, 18, 28]; // 4 tokens
const lastLogits = (t: Tensor, b: number) => Array.from(t.data.subarray(b * t.shape[1], (b + 1) * t.shape[1]));
const close = (a: number[], b: number[]) => a.every((x, i) => Math.abs(x - b[i]) < 1e-4);

for (const padding of ["left", "right"] as const) {
  test(`patching position 2 of two prompts of different length hits token 2 of each (${padding} padding)`, async () => {
    // the user's example: zero the residual stream at each prompt's third token
    const zero2: Intervention[] = [{ hook: "blocks.0.hook_resid_pre", kind: "zero", positions: [2] }];
    const { cache } = await model.runWithCache([long, short], {
      interventions: zero2,
      names: ["blocks.0.hook_resid_pre"],
      padding,
    });
    const at2 = cache.atPos("blocks.0.hook_resid_pre", 2); // [batch, d_model]
    assert.ok(
      at2.data.every((x) => x === 0),
      "token 2 of both prompts is zeroed",
    );
    for (const p of [0, 1, 3, -1])
      assert.ok(
        cache.atPos("blocks.0.hook_resid_pre", p).data.some((x) => x !== 0),
        `token ${p} is not`,
      );
    // the batched run gives each prompt what a run on that prompt alone gives
    const batched = await model.runWithHooks([long, short], zero2, { logitsAt: "last", padding });
    for (const [b, prompt] of [long, short].entries()) {
      const alone = await model.runWithHooks([prompt], zero2, { logitsAt: "last" });
      assert.ok(close(lastLogits(batched, b), lastLogits(alone, 0)), `prompt ${b} matches its own run`);
    }
  });
}

test("positions past the shortest prompt are an error naming the prompt", async () => {
  await assert.rejects(
    model.runWithHooks([long, short], [{ hook: "blocks.1.hook_mlp_out", kind: "zero", positions: [4] }]),
    /position 4 is outside prompt 1 \(4 tokens\)/,
  );
});

test("runWithCache(input) caches every hook point, as run_with_cache", async () => {
  const { logits, cache } = await model.runWithCache([long, short]);
  assert.deepEqual(logits.shape, [2, 6, ck.config.vocabSize]);
  const expected = model.hookNames().filter((n) => !n.endsWith("attn.hook_result")); // per-head results on request
  assert.deepEqual(cache.names(), expected);
  const withResult = await model.runWithCache([long], { withHeadResult: true });
  assert.deepEqual(withResult.cache.names(), model.hookNames());
});

test("runWithHooks always returns logits; the cached variant is runWithCache with interventions", async () => {
  const ivs: Intervention[] = [{ hook: "blocks.0.attn.hook_z", kind: "zero", heads: [0] }];
  const logits = await model.runWithHooks([long], ivs);
  assert.ok(logits instanceof Tensor);
  const { logits: same, cache } = await model.runWithCache([long], {
    interventions: ivs,
    names: ["blocks.0.attn.hook_z"],
  });
  assert.deepEqual(same.data, logits.data);
  const z = cache.get("z", 0); // blocks.0.attn.hook_z [batch, pos, head, d_head], after the edit
  const dh = ck.config.headDim;
  for (let p = 0; p < long.length; p++) {
    const at = (p * ck.config.numHeads + 0) * dh; // head 0
    assert.ok(
      z.data.subarray(at, at + dh).every((x) => x === 0),
      `head 0 zeroed at ${p}`,
    );
  }
  assert.ok(
    z.data.some((x) => x !== 0),
    "other heads kept",
  );
  await assert.rejects(
    model.runWithHooks([long], ivs, { names: ["blocks.0.attn.hook_z"] } as never),
    (e: unknown) => e instanceof InputError && /runWithCache\(input, \{ interventions, names \}\)/.test(e.message),
  );
});

test('cache.get("pattern", 1) is cache["pattern", 1] in TL; a typo is a HookNameError with suggestions', async () => {
  const { cache } = await model.runWithCache([long]);
  assert.equal(cache.get("pattern", 1), cache.get("blocks.1.attn.hook_pattern"));
  assert.equal(cache.get("resid_post", 0), cache.get("blocks.0.hook_resid_post"));
  assert.equal(cache.get("normalized", 1, "ln2"), cache.get("blocks.1.ln2.hook_normalized"));
  assert.throws(
    () => cache.get("patten", 1),
    (e: unknown) => e instanceof HookNameError && e.suggestions[0] === "pattern",
  );
});

test("toIds: one text → its ids in one call; texts → padded id rows; toTokens keeps the whole batch", () => {
  const batch = model.toTokens(["print(x)", "f("]); // ids, attentionMask, positions, lengths, padding
  const one = model.toIds("print(x)"); // number[]
  assert.deepEqual(one, batch.ids[0]);
  assert.equal(one[0], model.tokenizer!.bosId, "BOS first, as toTokens");
  assert.deepEqual(model.toIds(["print(x)", "f("]), batch.ids); // number[][], left-padded
  assert.deepEqual(model.toIds("f(", { addBos: false }), batch.ids[1].slice(-batch.lengths[1] + 1));
});
