/**
 * The analysis math on onnxruntime (`model.unembed`: final norm + W_U, whole vocabulary or some
 * columns) against the JavaScript loops it replaced (kept here as the reference: the lens'
 * per-row decode, applyLnToStack, unembedColumns + dot), on the embedded model and on a random
 * checkpoint with a 32k vocabulary. Metric: max|onnxruntime − JS| / max|JS| per result, ≤ 1e-6.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  HookedLlama,
  InputError,
  Tensor,
  logitLens,
  generatePrompts,
  parenRunTokens,
  scoreLogits,
} from "../../lib/src";
import { dot, unembedColumns } from "../../lib/src/analysis/metrics";
import { writeRandomCheckpoint } from "../../lib/src/testing/random-checkpoint";
import { relativeError } from "../../lib/src/testing/reference-forward";

const TOL = 1e-6;
const EMBEDDED = path.join(__dirname, "..", "..", "data", "models", "parenlens-code-6l");
const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** A random 2-layer checkpoint with CodeLlama's 32,016-token vocabulary, in a temp folder. */
async function random32k(prefix: string, seed: number): Promise<HookedLlama> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  dirs.push(dir);
  const { folder } = writeRandomCheckpoint(path.join(dir, "random-32k"), {
    seed,
    config: {
      numLayers: 2,
      hiddenSize: 64,
      numHeads: 4,
      numKvHeads: 2,
      headDim: 16,
      intermediateSize: 128,
      vocabSize: 32016,
    },
  });
  return HookedLlama.fromPretrained(folder, { tokenizer: false });
}

/** The JS reference: each row through the final norm (own RMS, given scale or none), then W_U. */
function jsUnembed(
  model: HookedLlama,
  rows: Float32Array, // [row, d_model]
  norm: "none" | "own-rms" | Float32Array, // scales: one per batch entry, tiled over rows
  columns?: number[],
): Float32Array {
  const { hiddenSize: D, vocabSize: V, rmsNormEps: eps } = model.config;
  const W_U = model.W_U; // [d_model, vocab]
  const w = model.finalNormWeight.data; // [d_model]
  const cols = columns ? unembedColumns(W_U, columns) : [];
  const R = rows.length / D;
  const out = new Float32Array(R * (columns ? columns.length : V));
  const xn = new Float32Array(D);
  for (let r = 0; r < R; r++) {
    const x = rows.subarray(r * D, (r + 1) * D);
    let scale = 1;
    if (norm === "own-rms") scale = Math.sqrt(dot(x, x) / D + eps);
    else if (norm !== "none") scale = norm[r % norm.length];
    for (let d = 0; d < D; d++) xn[d] = norm === "none" ? x[d] : (x[d] / scale) * w[d];
    if (columns) columns.forEach((_, j) => (out[r * columns.length + j] = dot(xn, cols[j])));
    else {
      const o = out.subarray(r * V, (r + 1) * V); // the lens' old decodeFull loop
      for (let d = 0; d < D; d++) for (let v = 0; v < V; v++) o[v] += xn[d] * W_U.data[d * V + v];
    }
  }
  return out;
}

/** Every mode of unembed on a cached run's accumulated residual stack, against the JS reference. */
async function checkAgainstJs(model: HookedLlama, ids: number[][], columns: number[]): Promise<void> {
  const { cache } = await model.runWithCache(ids, { names: () => true });
  const { stack } = cache.accumulatedResid({ pos: "last" }); // [component, batch, d_model]
  const scale = cache.atPos("ln_final.hook_scale"); // [batch, one]
  for (const norm of ["none", "own-rms", scale] as const) {
    const label = norm instanceof Tensor ? "cached scale" : norm;
    const jsNorm = norm instanceof Tensor ? norm.data : norm;
    const full = await model.unembed(stack, { norm });
    assert.deepEqual(full.shape, [...stack.shape.slice(0, 2), model.config.vocabSize]);
    assert.deepEqual(full.dims, ["component", "batch", "vocab"]);
    const err = relativeError(full.data, jsUnembed(model, stack.data, jsNorm));
    assert.ok(err <= TOL, `${label}, full vocabulary: relative error ${err}`);
    const some = await model.unembed(stack, { norm, columns });
    assert.deepEqual(some.dims, ["component", "batch", "column"]);
    const errCols = relativeError(some.data, jsUnembed(model, stack.data, jsNorm, columns));
    assert.ok(errCols <= TOL, `${label}, columns: relative error ${errCols}`);
  }
  // the model's own columns (read from the HF rows) equal the columns of the W_U copy
  const own = model.unembedColumns(columns); // [column, d_model]
  const D = model.config.hiddenSize;
  unembedColumns(model.W_U, columns).forEach((col, j) => assert.deepEqual(own.data.subarray(j * D, (j + 1) * D), col));
  // applyLnToStack then unembed = unembed with the cached scale (TL apply_ln_to_stack @ W_U)
  const viaCache = await model.unembed(cache.applyLnToStack(stack), { columns });
  const direct = await model.unembed(stack, { norm: scale, columns });
  assert.ok(relativeError(viaCache.data, direct.data) <= TOL);
}

test("unembed on onnxruntime equals the JS decode on the embedded model (all norms, full vocabulary and columns)", async () => {
  const model = await HookedLlama.fromPretrained(EMBEDDED);
  const ids = model.toIds(["print(len(str(x", "f(g(", "y = max(min(a, b"]);
  await checkAgainstJs(model, ids, [268, 270, 5, 1000, 3069]);
});

test("unembed on onnxruntime equals the JS decode on a random checkpoint with a 32k vocabulary", async () => {
  const model = await random32k("parenlens-unembed-", 3);
  const ids = [
    [1, 500, 31000, 7, 9],
    [1, 32015, 2, 3, 4],
  ];
  await checkAgainstJs(model, ids, [0, 1, 32015, 12345]);
});

test("the logit lens decodes on onnxruntime: its per-prompt scores equal the JS decode's", async () => {
  const model = await HookedLlama.fromPretrained(EMBEDDED);
  const parens = parenRunTokens(model.tokenizer!);
  const prompts = generatePrompts(model.tokenizer!, { template: "authors", perN: 2, seed: 4 }).prompts;
  const lens = await logitLens(model, prompts, { bootstrap: { samples: 10 } });
  for (const [pi, p] of prompts.entries()) {
    const { cache } = await model.runWithCache([p.promptIds], { names: ["blocks.2.hook_resid_post"] });
    const logits = jsUnembed(model, cache.atPos("blocks.2.hook_resid_post").data, "own-rms"); // [vocab]
    const js = scoreLogits(new Tensor(logits, [1, logits.length], ["batch", "vocab"]), [p], parens)[0];
    const row = lens.perPrompt.find((r) => r.prompt === pi && r.point === "2 post")!;
    const maxAbs = Math.max(...logits.map(Math.abs));
    assert.ok(Math.abs(row.logitDiff - js.logitDiff) <= TOL * maxAbs, `${row.logitDiff} vs ${js.logitDiff}`);
    assert.equal(row.correct, js.correct);
    assert.equal(row.rank, js.rank);
  }
});

/** The JS reference of counting heads' old vocabRank: x · W_U in float64, rank of `id` (1 = top), with the logits. */
function jsVocabRank(W_U: Tensor, x: Float32Array, id: number): { rank: number; logits: Float64Array } {
  const [D, V] = W_U.shape; // [d_model, vocab]
  const logits = new Float64Array(V);
  for (let d = 0; d < D; d++) for (let v = 0; v < V; v++) logits[v] += x[d] * W_U.data[d * V + v];
  let higher = 0;
  for (let v = 0; v < V; v++) if (logits[v] > logits[id]) higher++;
  return { rank: higher + 1, logits };
}

/**
 * unembedRank on every head's normalised output at the last position (what counting heads ranks)
 * against the float64 JS rank: equal, up to tokens whose logit is within 1e-6 × max|logit| of the
 * target's (a float32 tie the two roundings may break differently).
 */
async function checkRanksAgainstJs(
  model: HookedLlama,
  ids: number[][],
  targetOf: (row: number) => number,
): Promise<number> {
  const { cache } = await model.runWithCache(ids, { names: (n) => /hook_z|ln_final.hook_scale/.test(n) });
  const { stack } = cache.stackHeadResults({ pos: "last", applyLn: true }); // [layer*head, batch, d_model]
  const D = model.config.hiddenSize;
  const rows = stack.shape[0] * stack.shape[1];
  const targets = Array.from({ length: rows }, (_, r) => targetOf(r));
  const ranks = await model.unembedRank(stack, targets); // [layer*head, batch]
  assert.deepEqual(ranks.shape, stack.shape.slice(0, 2));
  const W_U = model.W_U;
  let exact = 0;
  for (let r = 0; r < rows; r++) {
    const { rank, logits } = jsVocabRank(W_U, stack.data.subarray(r * D, (r + 1) * D), targets[r]);
    const tol = TOL * Math.max(...logits.map(Math.abs));
    const t = logits[targets[r]];
    const lo = 1 + logits.filter((v) => v > t + tol).length;
    const hi = 1 + logits.filter((v) => v > t - tol).length - 1; // the target itself is not above itself
    assert.ok(ranks.data[r] >= lo && ranks.data[r] <= Math.max(lo, hi), `row ${r}: rank ${ranks.data[r]}, JS ${rank}`);
    if (ranks.data[r] === rank) exact++;
  }
  return exact / rows;
}

test("unembedRank (counting heads' vocabulary rank) equals the float64 JS rank on the embedded model and a 32k vocabulary", async () => {
  const model = await HookedLlama.fromPretrained(EMBEDDED);
  const parens = parenRunTokens(model.tokenizer!).ids;
  const ids = model.toIds(["print(len(str(x", "f(g(h(", "y = max(min(a, b"]);
  const share = await checkRanksAgainstJs(model, ids, (r) => parens[r % parens.length]);
  assert.ok(share >= 0.99, `exactly equal ranks: ${share}`);
  const big = await random32k("parenlens-rank-", 5);
  const bigShare = await checkRanksAgainstJs(
    big,
    [
      [1, 500, 31000, 7, 9],
      [1, 32015, 2, 3, 4],
    ],
    (r) => (r * 7919) % 32016,
  );
  assert.ok(bigShare >= 0.99, `exactly equal ranks: ${bigShare}`);
  await assert.rejects(big.unembedRank(Tensor.zeros([2, 64], ["batch", "d_model"]), [1]), /1 targets for 2 rows/);
  await assert.rejects(big.unembedRank(Tensor.zeros([1, 64], ["batch", "d_model"]), [32016]), /targets entry/);
});

test("unembed names a bad input", async () => {
  const model = await HookedLlama.fromPretrained(EMBEDDED);
  const D = model.config.hiddenSize;
  const x = new Tensor(new Float32Array(2 * D), [2, D], ["batch", "d_model"]);
  await assert.rejects(model.unembed(new Tensor(new Float32Array(6), [2, 3], ["a", "b"])), InputError);
  await assert.rejects(model.unembed(x, { columns: [model.config.vocabSize] }), /column/);
  await assert.rejects(model.unembed(x, { norm: Tensor.zeros([3], ["x"]) }), /3 scales for 2 rows/);
});

test("unembed follows each family's final norm: Gemma's (1 + w) RMSNorm reproduces its logits, a LayerNorm model refuses", async () => {
  const fixtures = path.join(__dirname, "..", "fixtures", "checkpoints");
  const gemma = await HookedLlama.fromPretrained(path.join(fixtures, "hf-gemma"), { tokenizer: false });
  const ids = [[1, 5, 9, 14, 3]];
  const { logits, cache } = await gemma.runWithCache(ids);
  const last = cache.get(`blocks.${gemma.config.numLayers - 1}.hook_resid_post`).data; // [batch, pos, d_model]
  const D = gemma.config.hiddenSize;
  const x = new Tensor(last.slice(last.length - D), [1, D], ["batch", "d_model"]); // last position
  const decoded = await gemma.unembed(x, { norm: "own-rms" }); // [batch, vocab]
  const V = gemma.config.vocabSize;
  const want = logits.data.slice(logits.data.length - V); // the model's own last-position logits
  assert.ok(relativeError(decoded.data, want) <= 1e-5, "Gemma: own-rms unembed equals the forward's logits");

  const starcoder = await HookedLlama.fromPretrained(path.join(fixtures, "hf-starcoder2"), { tokenizer: false });
  const y = new Tensor(
    new Float32Array(starcoder.config.hiddenSize),
    [1, starcoder.config.hiddenSize],
    ["batch", "d_model"],
  );
  await assert.rejects(
    starcoder.unembed(y, { norm: "own-rms" }),
    (e: Error) => e.name === "ConfigError" && /LayerNorm/.test(e.message),
  );
  assert.equal((await starcoder.unembed(y)).shape[1], starcoder.config.vocabSize, "norm: none still decodes");
});
