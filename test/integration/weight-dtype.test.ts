/**
 * Weights in their checkpoint's dtype: a BF16 / F16 checkpoint held as 2-byte values
 * (weightDtype "stored", the default) computes what the float32 copy computes — logits, every
 * cached hook, interventions, sites — and holds half the bytes. getWeight / W_U / W_O are float32
 * views, and a weight edited with setWeight is what the next run uses.
 */
import { test, before } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { writeRandomCheckpoint } from "../../lib/src/testing/random-checkpoint";
import { HookedLlama, Intervention, Tensor } from "../../lib/src";

const FIXTURES = path.join(__dirname, "..", "fixtures", "checkpoints");
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-dtype-"));
process.on("exit", () => fs.rmSync(tmp, { recursive: true, force: true }));
const f16 = writeRandomCheckpoint(path.join(tmp, "f16-gqa"), {
  config: { numLayers: 3, numHeads: 4, numKvHeads: 2 },
  dtype: "F16",
  seed: 11,
});

/** The 2-byte checkpoints compared: two committed bf16 fixtures and a random f16 one. */
const CHECKPOINTS: [string, string][] = [
  ["tiny-bf16", path.join(FIXTURES, "tiny-bf16")],
  ["codellama-shrunk (bf16)", path.join(FIXTURES, "codellama-shrunk")],
  ["random f16, GQA", f16.folder],
];

const models = new Map<string, { stored: HookedLlama; f32: HookedLlama }>();
before(async () => {
  for (const [label, folder] of CHECKPOINTS) {
    const stored = await HookedLlama.fromPretrained(folder, { tokenizer: false });
    const f32 = await HookedLlama.fromPretrained(folder, { tokenizer: false, weightDtype: "float32" });
    models.set(label, { stored, f32 });
  }
});

/** max |a - b| / max |b|: the relative error the issue bounds by 1e-6. */
function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return m === 0 ? d : d / m;
}

const ids = [
  [1, 5, 9, 13, 17, 21, 8],
  [1, 30, 2, 7, 7, 40, 3],
];

for (const [label] of CHECKPOINTS) {
  test(`${label}: 2-byte weights hold half the bytes of the float32 copy`, () => {
    const { stored, f32 } = models.get(label)!;
    assert.equal(stored.weightBytes * 2, f32.weightBytes);
  });

  test(`${label}: logits and every cached hook equal the float32 path (≤ 1e-6 relative)`, async () => {
    const { stored, f32 } = models.get(label)!;
    assert.ok(relErr((await stored.run(ids)).data, (await f32.run(ids)).data) <= 1e-6);
    const a = await stored.runWithCache(ids, { withHeadResult: true });
    const b = await f32.runWithCache(ids, { withHeadResult: true });
    assert.ok(relErr(a.logits.data, b.logits.data) <= 1e-6);
    assert.deepEqual(a.cache.names(), b.cache.names());
    for (const name of b.cache.names()) {
      const e = relErr(a.cache.get(name).data, b.cache.get(name).data);
      assert.ok(e <= 1e-6, `${name}: relative error ${e}`);
    }
  });

  test(`${label}: an intervention and runSites equal the float32 path`, async () => {
    const { stored, f32 } = models.get(label)!;
    const zero: Intervention[] = [{ hook: "blocks.1.attn.hook_z", kind: "zero", heads: [1] }];
    const a = await stored.runWithHooks(ids, zero, { logitsAt: "last" });
    const b = await f32.runWithHooks(ids, zero, { logitsAt: "last" });
    assert.ok(relErr(a.data, b.data) <= 1e-6);
    const [site] = await stored.runSites(ids, [zero], { logitsAt: "last" });
    assert.deepEqual(site.data, a.data);
  });

  test(`${label}: getWeight, W_U, unembedColumns and W_O are the float32 values of the stored weights`, () => {
    const { stored, f32 } = models.get(label)!;
    const name = "model.layers.0.mlp.down_proj.weight";
    assert.deepEqual(stored.getWeight(name).data, f32.getWeight(name).data);
    assert.deepEqual(stored.W_U.data, f32.W_U.data);
    assert.deepEqual(stored.unembedColumns([0, 3, 2]).data, f32.unembedColumns([0, 3, 2]).data);
    assert.deepEqual(stored.W_O(1).data, f32.W_O(1).data);
  });
}

test("setWeight on a 2-byte model: the edited float32 values are used by the next run, unrounded", async () => {
  const folder = path.join(FIXTURES, "tiny-bf16");
  const stored = await HookedLlama.fromPretrained(folder, { tokenizer: false });
  const f32 = await HookedLlama.fromPretrained(folder, { tokenizer: false, weightDtype: "float32" });
  const name = "model.layers.1.self_attn.o_proj.weight";
  const w = stored.getWeight(name);
  for (let i = 0; i < w.data.length; i += 3) w.data[i] = w.data[i] * 1.0001 + 1e-7; // not bf16-representable
  const before = await stored.run(ids, { logitsAt: "last" });
  stored.setWeight(name, w);
  f32.setWeight(name, w);
  const after = await stored.run(ids, { logitsAt: "last" });
  assert.notDeepEqual(after.data, before.data);
  assert.ok(relErr(after.data, (await f32.run(ids, { logitsAt: "last" })).data) <= 1e-6);
  assert.deepEqual(stored.getWeight(name).data, w.data); // held as given, not rounded to bf16
});

test("runSites: sites at different hooks in one call equal one runWithHooks each", async () => {
  const { stored } = models.get("random f16, GQA")!;
  const sites: Intervention[][] = [
    ...[0, 1, 2, 3].map((h): Intervention[] => [{ hook: "blocks.1.attn.hook_z", kind: "zero", heads: [h] }]),
    [{ hook: "blocks.2.hook_mlp_out", kind: "zero" }],
    [],
  ];
  const together = await stored.runSites(ids, sites, { logitsAt: "last" });
  for (let i = 0; i < sites.length; i++) {
    const alone: Tensor = await stored.runWithHooks(ids, sites[i], { logitsAt: "last" });
    assert.deepEqual(together[i].data, alone.data, `site ${i}`);
    assert.deepEqual(together[i].shape, [2, stored.config.vocabSize]);
  }
});
