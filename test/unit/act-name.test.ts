/**
 * TL shorthands (utils.get_act_name) → hook names: the pairs a TransformerLens user types.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { actName, resolveActName, HookNameError, hookNames, ACT_SHORTHANDS } from "../../lib/src";

test("actName turns TL shorthands into hook names, as get_act_name", () => {
  const pairs: [Parameters<typeof actName>, string][] = [
    [["resid_pre", 3], "blocks.3.hook_resid_pre"],
    [["resid_mid", 3], "blocks.3.hook_resid_mid"],
    [["resid_post", 3], "blocks.3.hook_resid_post"],
    [["attn_out", 0], "blocks.0.hook_attn_out"],
    [["mlp_out", 0], "blocks.0.hook_mlp_out"],
    [["z", 2], "blocks.2.attn.hook_z"],
    [["q", 2], "blocks.2.attn.hook_q"],
    [["k", 2], "blocks.2.attn.hook_k"],
    [["v", 2], "blocks.2.attn.hook_v"],
    [["pattern", 4], "blocks.4.attn.hook_pattern"],
    [["attn", 4], "blocks.4.attn.hook_pattern"],
    [["attn_scores", 4], "blocks.4.attn.hook_attn_scores"],
    [["result", 1], "blocks.1.attn.hook_result"],
    [["pre", 1], "blocks.1.mlp.hook_pre"],
    [["post", 1], "blocks.1.mlp.hook_post"],
    [["mlp_post", 1], "blocks.1.mlp.hook_post"],
    [["scale", 2, "ln1"], "blocks.2.ln1.hook_scale"],
    [["normalized", 2, "ln2"], "blocks.2.ln2.hook_normalized"],
    [["scale"], "ln_final.hook_scale"],
    [["embed"], "hook_embed"],
    [["pattern3"], "blocks.3.attn.hook_pattern"],
    [["resid_pre5"], "blocks.5.hook_resid_pre"],
    [["blocks.0.hook_resid_pre"], "blocks.0.hook_resid_pre"],
  ];
  for (const [args, full] of pairs) assert.equal(actName(...args), full, JSON.stringify(args));
});

test("every shorthand with a layer names a real hook of a 6-layer model (scale/normalized with ln1)", () => {
  const config = { numLayers: 6 };
  const all = new Set(hookNames(config));
  for (const s of ACT_SHORTHANDS) {
    const full =
      s === "embed"
        ? resolveActName(s, config)
        : resolveActName(s, config, 5, s === "scale" || s === "normalized" ? "ln1" : undefined);
    assert.ok(all.has(full), `${s} → ${full}`);
  }
});

test("an unknown shorthand names what it became and suggests shorthands and hook names", () => {
  assert.throws(
    () => resolveActName("patern", { numLayers: 6 }, 3),
    (e: unknown) =>
      e instanceof HookNameError &&
      e.message.includes('"blocks.3.hook_patern" (from "patern", layer 3;') &&
      e.suggestions[0] === "pattern",
  );
  // scale needs ln1 / ln2 inside a block
  assert.throws(
    () => resolveActName("scale", { numLayers: 6 }, 2),
    (e: unknown) => e instanceof HookNameError && e.suggestions.includes("blocks.2.ln1.hook_scale"),
  );
});
