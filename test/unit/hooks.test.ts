/**
 * Hook names: the TransformerLens list for a config, shapes and dims, layer parsing, name
 * filters, and HookNameError with "did you mean" suggestions.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { TINY_CONFIG } from "../../lib/src/testing/random-checkpoint";
import { editDistance } from "../../lib/src/hooks/hook-points";
import {
  HookNameError,
  hookNames,
  hookShape,
  parseHookName,
  resolveNameFilter,
  suggestHookNames,
  validateHookName,
} from "../../lib/src";

const config = {
  ...TINY_CONFIG,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 8,
  hiddenSize: 32,
  intermediateSize: 64,
  vocabSize: 64,
};

test("hook names follow TransformerLens, in forward order", () => {
  const names = hookNames(config);
  assert.equal(names[0], "hook_embed");
  assert.deepEqual(names.slice(-2), ["ln_final.hook_scale", "ln_final.hook_normalized"]);
  assert.equal(names.length, 1 + 2 * 21 + 2);
  for (const n of [
    "blocks.0.hook_resid_pre",
    "blocks.1.attn.hook_rot_q",
    "blocks.1.mlp.hook_pre_linear",
    "blocks.0.attn.hook_result",
  ]) {
    assert.ok(names.includes(n), n);
  }
  // q before rot_q, pattern before z, resid_post last in a block
  assert.ok(names.indexOf("blocks.0.attn.hook_q") < names.indexOf("blocks.0.attn.hook_rot_q"));
  assert.ok(names.indexOf("blocks.0.attn.hook_pattern") < names.indexOf("blocks.0.attn.hook_z"));
  assert.equal(names.indexOf("blocks.0.hook_resid_post") + 1, names.indexOf("blocks.1.hook_resid_pre"));
  assert.ok(!hookNames(config, { withHeadResult: false }).includes("blocks.0.attn.hook_result"));
});

test("shapes and dims of hooks for a batch × pos input (GQA: k/v have kv_head)", () => {
  assert.deepEqual(hookShape("blocks.1.attn.hook_q", config, 3, 7), {
    shape: [3, 7, 4, 8],
    dims: ["batch", "pos", "head", "d_head"],
  });
  assert.deepEqual(hookShape("blocks.1.attn.hook_k", config, 3, 7), {
    shape: [3, 7, 2, 8],
    dims: ["batch", "pos", "kv_head", "d_head"],
  });
  assert.deepEqual(hookShape("blocks.0.attn.hook_pattern", config, 3, 7).shape, [3, 4, 7, 7]);
  assert.deepEqual(hookShape("blocks.0.attn.hook_result", config, 3, 7).shape, [3, 7, 4, 32]);
  assert.deepEqual(hookShape("blocks.0.ln2.hook_scale", config, 3, 7), {
    shape: [3, 7, 1],
    dims: ["batch", "pos", "one"],
  });
  assert.deepEqual(hookShape("blocks.0.mlp.hook_post", config, 3, 7).shape, [3, 7, 64]);
  assert.deepEqual(hookShape("hook_embed", config, 1, 2).shape, [1, 2, 32]);
});

test("parseHookName gives the layer", () => {
  assert.deepEqual(parseHookName("blocks.12.attn.hook_z"), { layer: 12, local: "attn.hook_z" });
  assert.deepEqual(parseHookName("ln_final.hook_scale"), { layer: null, local: "ln_final.hook_scale" });
});

test("a typo gets HookNameError with the closest valid names", () => {
  assert.equal(editDistance("kitten", "sitting"), 3);
  let err: unknown;
  try {
    validateHookName("blocks.0.attn.hook_patern", config);
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof HookNameError);
  assert.equal((err as HookNameError).suggestions[0], "blocks.0.attn.hook_pattern");
  assert.match((err as Error).message, /Did you mean: blocks\.0\.attn\.hook_pattern/);
  // a layer that does not exist
  assert.throws(
    () => validateHookName("blocks.2.hook_resid_pre", config),
    (e: unknown) =>
      e instanceof HookNameError &&
      e.message.includes("layer 2 out of range 0..1") &&
      e.suggestions.includes("blocks.1.hook_resid_pre"),
  );
  // a layer written with a leading zero is not a TL name (it would be accepted, then dropped)
  assert.throws(
    () => validateHookName("blocks.01.hook_resid_pre", config),
    (e: unknown) => e instanceof HookNameError && e.suggestions.includes("blocks.1.hook_resid_pre"),
  );
  assert.throws(() => validateHookName(7 as unknown as string, config), HookNameError);
  assert.deepEqual(suggestHookNames("completely different", hookNames(config)), []);
});

test("name filters: list, predicate, prefix", () => {
  assert.deepEqual(resolveNameFilter(["blocks.1.hook_resid_post", "hook_embed"], config), [
    "hook_embed",
    "blocks.1.hook_resid_post",
  ]);
  assert.deepEqual(
    resolveNameFilter((n) => n.endsWith("hook_pattern"), config),
    ["blocks.0.attn.hook_pattern", "blocks.1.attn.hook_pattern"],
  );
  const attn1 = resolveNameFilter({ prefix: "blocks.1.attn." }, config);
  assert.equal(attn1.length, 8); // q k v rot_q rot_k scores pattern z (no result unless asked)
  assert.equal(resolveNameFilter({ prefix: "blocks.1.attn." }, config, { withHeadResult: true }).length, 9);
  assert.throws(() => resolveNameFilter(["blocks.0.hook_resid_pree"], config), HookNameError);
  assert.throws(() => resolveNameFilter({ prefix: "block.0" }, config), HookNameError);
});
