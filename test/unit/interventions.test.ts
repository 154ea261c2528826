/**
 * Interventions on a hook value in JS: every kind, restricted to heads and positions (negative =
 * from the end; query_pos for patterns), and the InterventionError for each kind of bad input.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { TINY_CONFIG } from "../../lib/src/testing/random-checkpoint";
import { applyIntervention, applyInterventions } from "../../lib/src/hooks/interventions";
import { InterventionError, HookNameError, Intervention, validateIntervention, Tensor, padTokens } from "../../lib/src";

const config = { ...TINY_CONFIG, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 3 };

/** z-like value [batch 2, pos 3, head 4, d_head 3] with value = 1000b + 100p + 10h + d + 1. */
function zValue(): Tensor {
  const t = Tensor.zeros([2, 3, 4, 3], ["batch", "pos", "head", "d_head"]);
  for (let b = 0; b < 2; b++)
    for (let p = 0; p < 3; p++)
      for (let h = 0; h < 4; h++) for (let d = 0; d < 3; d++) t.set([b, p, h, d], 1000 * b + 100 * p + 10 * h + d + 1);
  return t;
}
const hook = "blocks.1.attn.hook_z";

test("zero restricted to a head and a negative position touches only those entries", () => {
  const v = zValue();
  const out = applyIntervention(v, { hook, kind: "zero", heads: [2], positions: [-1] });
  for (let b = 0; b < 2; b++)
    for (let p = 0; p < 3; p++)
      for (let h = 0; h < 4; h++)
        for (let d = 0; d < 3; d++) {
          const expected = h === 2 && p === 2 ? 0 : v.get(b, p, h, d);
          assert.equal(out.get(b, p, h, d), expected, `[${b},${p},${h},${d}]`);
        }
  assert.equal(v.get(0, 2, 2, 0), 221, "input unchanged");
});

test("scale, constant (number and broadcast tensor) and mean ([head, d_head] broadcast over batch and pos)", () => {
  const v = zValue();
  const scaled = applyIntervention(v, { hook, kind: "scale", factor: -2, heads: [0, 3] });
  assert.equal(scaled.get(1, 1, 3, 2), -2 * v.get(1, 1, 3, 2));
  assert.equal(scaled.get(1, 1, 1, 2), v.get(1, 1, 1, 2));

  const c = applyIntervention(v, { hook, kind: "constant", value: 7, positions: [0] });
  assert.equal(c.get(1, 0, 3, 1), 7);
  assert.equal(c.get(1, 1, 3, 1), v.get(1, 1, 3, 1));

  const mean = new Tensor(
    Float32Array.from({ length: 12 }, (_, i) => -i),
    [4, 3],
    ["head", "d_head"],
  );
  const m = applyIntervention(v, { hook, kind: "mean", mean, heads: [1] });
  assert.equal(m.get(0, 2, 1, 2), -(1 * 3 + 2));
  assert.equal(m.get(1, 0, 1, 0), -3);
  assert.equal(m.get(1, 0, 2, 0), v.get(1, 0, 2, 0));

  const perPos = new Tensor(Float32Array.from([5, 6, 7]), [3, 1, 1], ["pos", "head", "d_head"]);
  const cp = applyIntervention(v, { hook, kind: "constant", value: perPos });
  assert.equal(cp.get(1, 2, 3, 1), 7);
  assert.equal(cp.get(0, 0, 0, 0), 5);
});

test("patch takes the source's values at the selected entries; function sees ctx and may edit in place", () => {
  const v = zValue();
  const src = new Tensor(new Float32Array(v.size).fill(-1), v.shape, v.dims);
  const cache = { has: (n: string) => n === hook, get: () => src };
  const p = applyIntervention(v, { hook, kind: "patch", source: cache, positions: [1] });
  assert.equal(p.get(0, 1, 0, 0), -1);
  assert.equal(p.get(0, 0, 0, 0), v.get(0, 0, 0, 0));
  const pt = applyIntervention(v, { hook, kind: "patch", source: src });
  assert.ok(pt.data.every((x) => x === -1));

  let seen: unknown;
  const f = applyIntervention(v, {
    hook,
    kind: "function",
    heads: [1],
    fn: (value, ctx) => {
      seen = ctx;
      value.data.fill(42); // in place; only head 1 is kept from the function's result
    },
  });
  assert.deepEqual(seen, { hook, layer: 1 });
  assert.equal(f.get(1, 2, 1, 0), 42);
  assert.equal(f.get(1, 2, 0, 0), v.get(1, 2, 0, 0));
});

test("pattern positions restrict query_pos; several interventions apply in order", () => {
  const pat = new Tensor(
    new Float32Array(1 * 2 * 3 * 3).fill(1),
    [1, 2, 3, 3],
    ["batch", "head", "query_pos", "key_pos"],
  );
  const out = applyIntervention(pat, { hook: "blocks.0.attn.hook_pattern", kind: "zero", positions: [-1], heads: [1] });
  assert.equal(out.get(0, 1, 2, 0), 0);
  assert.equal(out.get(0, 1, 1, 2), 1); // key_pos 2 of another query is untouched
  assert.equal(out.get(0, 0, 2, 0), 1);
  const two = applyInterventions(
    pat,
    [
      { hook: "blocks.0.attn.hook_pattern", kind: "scale", factor: 3 },
      { hook: "blocks.0.attn.hook_pattern", kind: "constant", value: 0.5, heads: [0] },
    ],
    { hook: "blocks.0.attn.hook_pattern", layer: 0 },
  );
  assert.equal(two.get(0, 0, 0, 0), 0.5);
  assert.equal(two.get(0, 1, 0, 0), 3);
});

test("positions are each prompt's own token index: position 1 of a 3- and a 2-token prompt, left and right padding", () => {
  const batch = (padding: "left" | "right") =>
    padTokens(
      [
        [1, 5, 9],
        [1, 7],
      ],
      { padding },
    ); // P = 3
  const resid = () => new Tensor(new Float32Array(2 * 3).fill(1), [2, 3, 1], ["batch", "pos", "d_model"]);
  const zeroAt = (positions: number[], padding: "left" | "right") =>
    applyIntervention(
      resid(),
      { hook: "blocks.0.hook_resid_pre", kind: "zero", positions },
      { hook: "blocks.0.hook_resid_pre", layer: 0, batch: batch(padding) },
    );
  // rows are padded: left [[1, 5, 9], [pad, 1, 7]], right [[1, 5, 9], [1, 7, pad]]
  assert.deepEqual(Array.from(zeroAt([1], "left").data), [1, 0, 1, 1, 1, 0]); // tokens 5 and 7
  assert.deepEqual(Array.from(zeroAt([1], "right").data), [1, 0, 1, 1, 0, 1]); // tokens 5 and 7
  assert.deepEqual(Array.from(zeroAt([0], "left").data), [0, 1, 1, 1, 0, 1]); // both BOS
  assert.deepEqual(Array.from(zeroAt([-1], "right").data), [1, 1, 0, 1, 0, 1]); // tokens 9 and 7
  assert.throws(() => zeroAt([2], "left"), /position 2 is outside prompt 1 \(2 tokens/);
  assert.throws(
    () =>
      validateIntervention({ hook: "blocks.0.hook_resid_pre", kind: "zero", positions: [2] }, config, {
        lengths: [3, 2],
      }),
    (e: unknown) => e instanceof InterventionError && /outside prompt 1 \(2 tokens\)/.test(e.message),
  );
});

test("bad interventions get an InterventionError naming the hook and what was expected", () => {
  const v = zValue();
  const bad = (iv: Intervention, pattern: RegExp) => {
    assert.throws(
      () => {
        validateIntervention(iv, config);
        applyIntervention(v, iv);
      },
      (e: unknown) => e instanceof InterventionError && pattern.test(e.message) && e.message.includes(iv.hook),
      pattern.source,
    );
  };
  bad({ hook, kind: "zero", heads: [4] }, /head 4 out of range: head indices are 0\.\.3/);
  bad({ hook: "blocks.1.attn.hook_k", kind: "zero", heads: [2] }, /kv_head indices are 0\.\.1/);
  bad({ hook: "blocks.0.hook_resid_post", kind: "zero", heads: [0] }, /no head dimension/);
  bad({ hook, kind: "zero", positions: [3] }, /position 3 is outside prompt 0 \(3 tokens; use -3\.\.2\)/);
  bad({ hook, kind: "zero", positions: [-4] }, /position -4 is outside prompt 0/);
  bad({ hook, kind: "scale", factor: NaN }, /factor/);
  bad({ hook, kind: "mean", mean: new Tensor(new Float32Array(5), [5], ["d_head"]) }, /not broadcastable/);
  bad({ hook, kind: "patch", source: new Tensor(new Float32Array(3), [3], ["x"]) }, /patch source has shape \[3\]/);
  bad({ hook, kind: "patch", source: { has: () => false, get: () => v } }, /does not hold blocks\.1\.attn\.hook_z/);
  bad({ hook, kind: "function", fn: () => Tensor.zeros([1], ["x"]) }, /function returned shape \[1\]/);
  bad({ hook, kind: "nonsense" } as unknown as Intervention, /unknown kind "nonsense"/);
  assert.throws(() => validateIntervention({ hook: "blocks.1.attn.hook_zz", kind: "zero" }, config), HookNameError);
});

test("validateIntervention checks everything before a run, positions against the padded length", () => {
  const ok: Intervention = { hook, kind: "zero", heads: [1], positions: [-3, 2] };
  validateIntervention(ok, config, { paddedLength: 3 });
  assert.throws(
    () => validateIntervention({ hook, kind: "zero", positions: [3] }, config, { paddedLength: 3 }),
    /Intervention on blocks\.1\.attn\.hook_z: position 3 out of range for a batch of padded length 3 \(use -3\.\.2\)/,
  );
  assert.throws(
    () => validateIntervention({ hook, kind: "zero", positions: [-4] }, config, { paddedLength: 3 }),
    InterventionError,
  );
  // the hook name is validated here too (once: no separate validateHookName before it)
  assert.throws(
    () => validateIntervention({ hook: "blocks.1.attn.hook_zz", kind: "zero" }, config, { paddedLength: 3 }),
    (e: unknown) => e instanceof HookNameError && e.suggestions.includes("blocks.1.attn.hook_z"),
  );
  assert.throws(
    () => validateIntervention({ kind: "zero" } as unknown as Intervention, config),
    /Each intervention needs a "hook" name/,
  );
  assert.throws(() => validateIntervention(null as unknown as Intervention, config), InterventionError);
  assert.throws(
    () => validateIntervention({ hook, kind: "zero", positions: [0.5] }, config, { paddedLength: 3 }),
    /position 0\.5 is not an integer/,
  );
});
