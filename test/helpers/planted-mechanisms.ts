/**
 * Shared by the analysis tests: a tiny random Llama with the test tokenizer, and weight edits
 * that plant a known mechanism so each analysis can be checked to find it.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { writeRandomCheckpoint } from "../../lib/src/testing/random-checkpoint";
import { HookedLlama, loadTokenizer, Tokenizer, LlamaConfig } from "../../lib/src";

export const TOKENIZER_DIR = path.join(__dirname, "..", "fixtures/tokenizer");

/** A seeded tiny checkpoint (d_model 32, 4 heads of 8, d_mlp 64) with the 498-token test tokenizer. */
export async function tinyStudyModel(
  config: Partial<LlamaConfig> = {},
  seed = 3,
): Promise<{ model: HookedLlama; tok: Tokenizer; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-study-"));
  writeRandomCheckpoint(dir, {
    config: { numLayers: 3, vocabSize: 498, ...config },
    seed,
    tokenizerFrom: TOKENIZER_DIR,
  });
  const model = await HookedLlama.fromPretrained(dir, { threads: 1 });
  return { model, tok: loadTokenizer(dir), dir };
}

/** Unit vector of the unembedding column of `tokenId` ([d_model]). */
export function unembedDirection(model: HookedLlama, tokenId: number): Float32Array {
  const W_U = model.W_U; // [d_model, vocab]; a copy per access, so read it once
  const [D, V] = W_U.shape;
  const u = new Float32Array(D);
  let norm = 0;
  for (let d = 0; d < D; d++) {
    u[d] = W_U.data[d * V + tokenId];
    norm += u[d] * u[d];
  }
  norm = Math.sqrt(norm);
  for (let d = 0; d < D; d++) u[d] /= norm;
  return u;
}

/**
 * Make layer `layer`'s MLP add the constant `strength × direction` to the residual stream at every
 * position. Hidden units d and D + d get gate = up = +x_d and −x_d (x = the normalised input, norm
 * weight set to 1); silu(z)·z + silu(−z)·(−z) = z², and Σ_d x_d² = D, so the MLP outputs
 * (strength / D) · direction · D whatever the input. Needs d_mlp ≥ 2 d_model.
 */
export function plantConstantMlp(model: HookedLlama, layer: number, direction: Float32Array, strength: number): void {
  const D = model.config.hiddenSize;
  const M = model.config.intermediateSize;
  if (M < 2 * D) throw new Error("plantConstantMlp needs d_mlp >= 2 d_model");
  const p = `model.layers.${layer}`;
  model.setWeight(`${p}.post_attention_layernorm.weight`, new Float32Array(D).fill(1));
  const gate = new Float32Array(M * D); // [d_mlp, d_model]
  for (let d = 0; d < D; d++) {
    gate[d * D + d] = 1;
    gate[(D + d) * D + d] = -1;
  }
  model.setWeight(`${p}.mlp.gate_proj.weight`, gate);
  model.setWeight(`${p}.mlp.up_proj.weight`, gate.slice());
  const down = new Float32Array(D * M); // [d_model, d_mlp]
  for (let d = 0; d < D; d++) for (let k = 0; k < 2 * D; k++) down[d * M + k] = (strength / D) * direction[d];
  model.setWeight(`${p}.mlp.down_proj.weight`, down);
}

/**
 * Plant a head that attends from every position to the tokens containing `)` (and to BOS, as a
 * sink) and writes `strength × direction` to the residual stream:
 * - the embedding gets a marker feature A on residual dim 0 for `)` tokens and BOS, and a constant
 *   B on dim 1 for every token;
 * - head `head` of layer 0 keeps one query/key dimension: query reads dim 1 (constant), key reads
 *   dim 0 (marker), in the lowest-frequency rotary pair (d_head/2 − 1), where rotation over a
 *   few dozen positions is negligible; its value reads the marker, its W_O writes `direction`.
 * So the last position attends ≈ uniformly over BOS and the `)` tokens: with m of them the mass
 * on `)` is m / (m + 1), and the output is ≈ constant × direction.
 * `closeKeyScale` scales a `)` token's marker (e.g. by its number of parens, so `))` draws more
 * attention than `)`: a head that counts parens, not `)` tokens).
 * With `bosCarriesValue: false` the value reads a feature (dim 2) that only the `)` tokens carry,
 * so BOS is a sink that writes nothing: knocking out the `)` keys then silences the head.
 */
export function plantParenHead(
  model: HookedLlama,
  head: number,
  closeIds: number[],
  bosId: number,
  direction: Float32Array,
  strength: number,
  opts: { bosCarriesValue?: boolean; closeKeyScale?: Map<number, number> } = {},
): void {
  const { hiddenSize: D, numHeads: H, headDim: dh, vocabSize: V } = model.config;
  if (model.config.numKvHeads !== H) throw new Error("plantParenHead assumes no GQA");
  const A = 20;
  const B = 5;
  const E = model.getWeight("model.embed_tokens.weight").data; // [vocab, d_model]
  for (let v = 0; v < V; v++) {
    E[v * D + 0] = 0;
    E[v * D + 1] = B;
  }
  for (const id of [...closeIds, bosId]) E[id * D + 0] = A * (opts.closeKeyScale?.get(id) ?? 1);
  const valueDim = opts.bosCarriesValue === false ? 2 : 0;
  if (valueDim === 2) for (let v = 0; v < V; v++) E[v * D + 2] = closeIds.includes(v) ? B : 0; // small: keeps the rms, so the keys

  model.setWeight("model.embed_tokens.weight", E);

  const j = dh / 2 - 1; // lowest rotary frequency
  const q = model.getWeight("model.layers.0.self_attn.q_proj.weight").data; // [head*d_head, d_model]
  const k = model.getWeight("model.layers.0.self_attn.k_proj.weight").data;
  const vproj = model.getWeight("model.layers.0.self_attn.v_proj.weight").data;
  for (let e = 0; e < dh; e++) {
    const r = (head * dh + e) * D;
    q.fill(0, r, r + D);
    k.fill(0, r, r + D);
    vproj.fill(0, r, r + D);
  }
  q[(head * dh + j) * D + 1] = 1.5;
  k[(head * dh + j) * D + 0] = 1.5;
  vproj[(head * dh + 0) * D + valueDim] = valueDim === 2 ? A / B : 1; // the same value size either way
  model.setWeight("model.layers.0.self_attn.q_proj.weight", q);
  model.setWeight("model.layers.0.self_attn.k_proj.weight", k);
  model.setWeight("model.layers.0.self_attn.v_proj.weight", vproj);

  const o = model.getWeight("model.layers.0.self_attn.o_proj.weight").data; // [d_model, head*d_head]
  for (let d = 0; d < D; d++) {
    for (let e = 0; e < dh; e++) o[d * H * dh + head * dh + e] = 0;
    o[d * H * dh + head * dh + 0] = (strength / 5) * direction[d]; // the value is ≈ 5 (marker / rms)
  }
  model.setWeight("model.layers.0.self_attn.o_proj.weight", o);
}
