/**
 * float16 compute is an explicit CUDA option: refused on the CPU with a message that says why;
 * the graph it builds multiplies float16 copies in every projection and stays float32 elsewhere.
 * (Its error against float32 can only be measured on a GPU: scripts/bench/gpu-check.sh.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as path from "path";
import { buildLlamaGraph } from "../../lib/src/runtime/graph/llama-graph";
import { TINY_CONFIG } from "../../lib/src/testing/random-checkpoint";
import { HookedLlama, InputError } from "../../lib/src";

const FOLDER = path.join(__dirname, "..", "fixtures", "checkpoints", "tiny-bf16");

test('computeDtype "float16" without CUDA is an InputError naming the option', async () => {
  await assert.rejects(
    HookedLlama.fromPretrained(FOLDER, { tokenizer: false, computeDtype: "float16" }),
    (e: unknown) =>
      e instanceof InputError &&
      e.field === "computeDtype" &&
      /computeDtype "float16" needs executionProvider "cuda" \(got "cpu"\)/.test(e.message),
  );
  await assert.rejects(
    // @ts-expect-error: not a compute dtype
    HookedLlama.fromPretrained(FOLDER, { tokenizer: false, computeDtype: "bfloat16" }),
    /computeDtype must be "float32" or "float16", got "bfloat16"/,
  );
  const model = await HookedLlama.fromPretrained(FOLDER, { tokenizer: false, computeDtype: "float32" });
  assert.equal((await model.run([[1, 2, 3]])).shape[2], model.config.vocabSize);
});

test("the float16 graph: every Gemm reads float16 casts and is cast back; nothing else changes", () => {
  const g16 = buildLlamaGraph(TINY_CONFIG, { float16Matmul: true });
  const g32 = buildLlamaGraph(TINY_CONFIG);
  const gemms = g16.nodes.filter((n) => n.op === "Gemm");
  assert.equal(gemms.length, TINY_CONFIG.numLayers * 7 + 1); // q, k, v, o, gate, up, down per layer + unembedding
  for (const n of gemms) {
    assert.ok(n.inputs.every((i) => g16.elemTypes.get(i) === "float16"));
    assert.equal(g16.elemTypes.get(n.outputs[0]), "float16");
  }
  assert.equal(g16.nodes.length - g32.nodes.length, 3 * gemms.length); // two casts in, one out
  assert.ok([...g16.hooks.keys()].every((h) => g16.elemTypes.get(h) !== "float16")); // hooks stay float32
});
