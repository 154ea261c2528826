/**
 * The independent reference: a plain float64 TypeScript decoder forward pass for one unpadded
 * prompt, written straight from the Hugging Face maths of every supported architecture
 * (LlamaForCausalLM and its rope types, Qwen2, Mistral's sliding window, Starcoder2's LayerNorm
 * and plain MLP, Gemma's scaled embeddings and 1 + w norms) and sharing no code with the ONNX
 * graph (graph/*). Tests compare the runtime's logits and every hook point to it.
 *
 * Every hook of DESIGN.md is produced with TransformerLens' meaning (hook_q/k before rotary,
 * hook_rot_q/k after, ln*.hook_normalized before the norm weight, mlp.hook_pre = gate
 * pre-activation, hook_pre_linear = up projection, hook_result = per-head output), each with a
 * leading batch dim of 1. Slow by design (naive loops, float64 accumulation): tiny models only.
 */
import type { LlamaConfig } from "../checkpoint/config";
import { CheckpointError, InputError } from "../core/errors";

/** A float64 tensor of the reference: row-major data, shape and dim names (DESIGN.md names). */
export interface RefTensor {
  data: Float64Array;
  shape: number[];
  dims: string[];
}

export interface ReferenceForwardResult {
  logits: RefTensor; // [1, pos, vocab]
  /** Every hook point by TransformerLens name (hook_result included). */
  hooks: Map<string, RefTensor>;
}

export interface ReferenceForwardOptions {
  /**
   * Hooks to keep
   *
   * Only hooks whose name passes this filter are returned; saves memory on bigger models.
   *
   * @default every hook
   */
  keep?: (name: string) => boolean;
  /**
   * Dynamic NTK length
   *
   * The sequence length dynamic NTK rope scales for: transformers uses max(position_ids) + 1 of
   * the whole batch, so a prompt run in a padded batch gets the longest prompt's length.
   *
   * @default the prompt's own length
   */
  ropeLength?: number;
}

/** float32 lowest: what HF (and DESIGN.md's graph) writes into masked attention scores. */
export const MASKED_SCORE = -3.4028234663852886e38;

type WeightGetter = (name: string) => Float32Array;

/** Fetch a weight and check its element count against the config (catches mis-shaped checkpoints). */
function weight(get: WeightGetter, name: string, size: number): Float32Array {
  const w = get(name);
  if (!(w instanceof Float32Array) || w.length !== size) {
    const got = w instanceof Float32Array ? `${w.length} elements` : typeof w;
    throw new CheckpointError(`reference forward: weight "${name}" has ${got}, expected ${size} elements`, {
      field: name,
    });
  }
  return w;
}

/** y[p, o] = bias[o] + sum_i x[p, i] * W[o, i]; W is HF's [out, in] row-major layout. */
function linear(
  x: Float64Array,
  pos: number,
  nIn: number,
  w: Float32Array,
  nOut: number,
  bias?: Float32Array,
): Float64Array {
  const y = new Float64Array(pos * nOut); // [pos, out]
  for (let p = 0; p < pos; p++) {
    const xo = p * nIn;
    for (let o = 0; o < nOut; o++) {
      const wo = o * nIn;
      let s = bias ? bias[o] : 0;
      for (let i = 0; i < nIn; i++) s += x[xo + i] * w[wo + i];
      y[p * nOut + o] = s;
    }
  }
  return y;
}

/** RMSNorm split as TransformerLens does: scale = sqrt(mean(x²)+eps), normalized = x / scale. */
function rmsNorm(
  x: Float64Array,
  pos: number,
  d: number,
  eps: number,
): { scale: Float64Array; normalized: Float64Array } {
  const scale = new Float64Array(pos); // [pos, 1]
  const normalized = new Float64Array(pos * d); // [pos, d_model]
  for (let p = 0; p < pos; p++) {
    let ss = 0;
    for (let i = 0; i < d; i++) ss += x[p * d + i] * x[p * d + i];
    const s = Math.sqrt(ss / d + eps);
    scale[p] = s;
    for (let i = 0; i < d; i++) normalized[p * d + i] = x[p * d + i] / s;
  }
  return { scale, normalized };
}

/** LayerNorm split as TransformerLens does: centred = x - mean, scale = sqrt(mean(centred²)+eps), normalized = centred / scale. */
function layerNorm(
  x: Float64Array,
  pos: number,
  d: number,
  eps: number,
): { scale: Float64Array; normalized: Float64Array } {
  const scale = new Float64Array(pos); // [pos, 1]
  const normalized = new Float64Array(pos * d); // [pos, d_model]
  for (let p = 0; p < pos; p++) {
    let mean = 0;
    for (let i = 0; i < d; i++) mean += x[p * d + i];
    mean /= d;
    let ss = 0;
    for (let i = 0; i < d; i++) ss += (x[p * d + i] - mean) ** 2;
    const s = Math.sqrt(ss / d + eps);
    scale[p] = s;
    for (let i = 0; i < d; i++) normalized[p * d + i] = (x[p * d + i] - mean) / s;
  }
  return { scale, normalized };
}

/**
 * normalized * weight (+ bias), the norm's parameters applied after the hook as in TL; Gemma's
 * RMSNorm multiplies by (1 + weight).
 */
function applyNormWeight(
  normalized: Float64Array,
  pos: number,
  d: number,
  w: Float32Array,
  opts: { onePlus?: boolean; bias?: Float32Array } = {},
): Float64Array {
  const out = new Float64Array(pos * d); // [pos, d_model]
  const add = opts.onePlus ? 1 : 0;
  for (let p = 0; p < pos; p++)
    for (let i = 0; i < d; i++) out[p * d + i] = normalized[p * d + i] * (w[i] + add) + (opts.bias ? opts.bias[i] : 0);
  return out;
}

/**
 * Rotary inverse frequencies [d_head/2] for a prompt of `pos` tokens, in float64 from the formulas
 * of transformers' modeling_rope_utils: default theta^(-2i/d); linear / factor; dynamic NTK with
 * base·(factor·L/max_pos - factor + 1)^(d/(d-2)) once L = pos > max_pos; YaRN's ramp between
 * interpolation and extrapolation; llama3's wavelength bands. Plus the cos/sin factor (YaRN).
 */
function inverseFrequencies(config: LlamaConfig, pos: number): { inv: number[]; mult: number } {
  const d = config.headDim;
  const s = config.ropeScaling;
  let theta = config.ropeTheta;
  if (s?.type === "dynamic") {
    const L = Math.max(pos, config.maxPositionEmbeddings);
    theta *= Math.pow((s.factor * L) / config.maxPositionEmbeddings - (s.factor - 1), d / (d - 2));
  }
  const base = Array.from({ length: d / 2 }, (_, i) => Math.pow(theta, -(2 * i) / d));
  if (s === null || s.type === "dynamic") return { inv: base, mult: 1 };
  if (s.type === "linear") return { inv: base.map((x) => x / s.factor), mult: 1 };
  if (s.type === "longrope") {
    // long factors once the sequence is longer than the pretraining length, else short
    const ext = pos > s.originalMaxPositionEmbeddings ? s.longFactor : s.shortFactor;
    return { inv: base.map((x, i) => x / ext[i]), mult: s.attentionFactor };
  }
  if (s.type === "yarn") {
    const dimOf = (rot: number) =>
      (d * Math.log(s.originalMaxPositionEmbeddings / (rot * 2 * Math.PI))) / (2 * Math.log(theta));
    let lo = dimOf(s.betaFast);
    let hi = dimOf(s.betaSlow);
    if (s.truncate) [lo, hi] = [Math.floor(lo), Math.ceil(hi)];
    lo = Math.max(lo, 0);
    hi = Math.min(hi, d - 1);
    if (lo === hi) hi += 0.001;
    const inv = base.map((x, i) => {
      const extrapolate = 1 - Math.min(1, Math.max(0, (i - lo) / (hi - lo))); // 1 = keep the frequency
      return (x / s.factor) * (1 - extrapolate) + x * extrapolate;
    });
    return { inv, mult: s.attentionFactor };
  }
  const old = s.originalMaxPositionEmbeddings;
  const inv = base.map((x) => {
    const wavelen = (2 * Math.PI) / x;
    if (wavelen < old / s.highFreqFactor) return x; // high frequency: kept
    if (wavelen > old / s.lowFreqFactor) return x / s.factor; // low frequency: scaled
    const smooth = (old / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
    return (1 - smooth) * (x / s.factor) + smooth * x;
  });
  return { inv, mult: 1 };
}

/** HF rotary tables: angle = position * inv_freq, duplicated over both halves (cat(freqs, freqs)). cos/sin [pos, d_head]. */
function rotaryTables(config: LlamaConfig, pos: number, ropeLength: number): { cos: Float64Array; sin: Float64Array } {
  const dh = config.headDim;
  const half = dh / 2;
  const { inv, mult } = inverseFrequencies(config, ropeLength);
  const cos = new Float64Array(pos * dh);
  const sin = new Float64Array(pos * dh);
  for (let p = 0; p < pos; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * inv[i];
      cos[p * dh + i] = cos[p * dh + i + half] = mult * Math.cos(angle);
      sin[p * dh + i] = sin[p * dh + i + half] = mult * Math.sin(angle);
    }
  }
  return { cos, sin };
}

/** x*cos + rotate_half(x)*sin with rotate_half(x) = cat(-x2, x1), per head. x: [pos, heads, d_head]. */
function applyRotary(
  x: Float64Array,
  pos: number,
  heads: number,
  dh: number,
  cos: Float64Array,
  sin: Float64Array,
): Float64Array {
  const half = dh / 2;
  const out = new Float64Array(x.length); // [pos, heads, d_head]
  for (let p = 0; p < pos; p++) {
    for (let h = 0; h < heads; h++) {
      const o = (p * heads + h) * dh;
      for (let j = 0; j < dh; j++) {
        const rot = j < half ? -x[o + j + half] : x[o + j - half];
        out[o + j] = x[o + j] * cos[p * dh + j] + rot * sin[p * dh + j];
      }
    }
  }
  return out;
}

/** Error function (Abramowitz–Stegun 7.1.26 is too coarse; a series/continued fraction to ~1e-15). */
function erf(x: number): number {
  const t = Math.abs(x);
  if (t < 3) {
    // Maclaurin series
    let sum = t;
    let term = t;
    for (let n = 1; n < 80; n++) {
      term *= (-t * t) / n;
      sum += term / (2 * n + 1);
    }
    return Math.sign(x) * ((2 / Math.sqrt(Math.PI)) * sum);
  }
  // continued fraction for erfc
  let f = 0;
  for (let n = 60; n >= 1; n--) f = n / 2 / (t + f);
  const erfc = Math.exp(-t * t) / Math.sqrt(Math.PI) / (t + f);
  return Math.sign(x) * (1 - erfc);
}

/** transformers' ACT2FN: silu, gelu (erf), gelu_pytorch_tanh / gelu_new (tanh approximation). */
function activate(act: LlamaConfig["activation"], v: number): number {
  if (act === "silu") return v / (1 + Math.exp(-v));
  if (act === "gelu") return 0.5 * v * (1 + erf(v / Math.SQRT2));
  return 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
}

/** What every part of one reference forward shares: sizes, the hook sink, rotary tables, weights. */
interface RefRun {
  config: LlamaConfig;
  n: number; // pos
  d: number; // d_model
  H: number; // head
  KV: number; // kv_head
  dh: number; // d_head
  m: number; // d_mlp
  put: (name: string, data: Float64Array, shape: number[], dims: string[]) => void;
  cos: Float64Array; // [pos, d_head]
  sin: Float64Array; // [pos, d_head]
  /** Weight `model.layers.{l}.{suffix}`, its element count checked. */
  w: (l: number, suffix: string, size: number) => Float32Array;
  /** A weight by full name, its element count checked. */
  get: (name: string, size: number) => Float32Array;
}

/** The norm of the config's family, split as TL: hook_scale and hook_normalized (before the parameters). */
function normalize(run: RefRun, x: Float64Array): { scale: Float64Array; normalized: Float64Array } {
  const { n, d, config } = run;
  return config.norm === "layer" ? layerNorm(x, n, d, config.rmsNormEps) : rmsNorm(x, n, d, config.rmsNormEps);
}

/** A norm's output from its normalized value: weight (1 + weight for Gemma), plus the bias of a LayerNorm. */
function normOutput(run: RefRun, normalized: Float64Array, module: string): Float64Array {
  const { n, d, config } = run;
  const w = run.get(`${module}.weight`, d);
  const bias = config.norm === "layer" ? run.get(`${module}.bias`, d) : undefined;
  return applyNormWeight(normalized, n, d, w, { onePlus: config.norm === "rms_one_plus", bias });
}

/**
 * Run the reference forward for one prompt of token ids (no padding, positions 0..n-1).
 * `getWeight` returns an HF tensor by name as float32 (e.g. `name => store.getFloat32(name)`);
 * with tied embeddings `lm_head.weight` is never asked for.
 *
 * @example
 * const store = WeightStore.open(folder);
 * const ref = referenceForward(config, (name) => store.getFloat32(name), [1, 42, 7]);
 * ref.logits; // [1, pos, vocab], float64
 * ref.hooks.get("blocks.0.attn.hook_pattern"); // [1, head, query_pos, key_pos]
 */
export function referenceForward(
  config: LlamaConfig,
  getWeight: WeightGetter,
  tokens: number[],
  options: ReferenceForwardOptions = {},
): ReferenceForwardResult {
  const keep = options.keep ?? (() => true);
  const n = tokens.length;
  checkTokens(config, tokens);
  const d = config.hiddenSize;
  const V = config.vocabSize;
  const hooks = new Map<string, RefTensor>();
  const run: RefRun = {
    config,
    n,
    d,
    H: config.numHeads,
    KV: config.numKvHeads,
    dh: config.headDim,
    m: config.intermediateSize,
    put: (name, data, shape, dims) => {
      if (keep(name)) hooks.set(name, { data, shape: [1, ...shape], dims: ["batch", ...dims] });
    },
    ...rotaryTables(config, n, options.ropeLength ?? n),
    w: (l, suffix, size) => weight(getWeight, `model.layers.${l}.${suffix}`, size),
    get: (name, size) => weight(getWeight, name, size),
  };

  // Embedding lookup (Gemma: times sqrt(d_model)).
  const embed = weight(getWeight, "model.embed_tokens.weight", V * d); // [vocab, d_model]
  const embedScale = config.embedScale ? Math.sqrt(d) : 1;
  let resid = new Float64Array(n * d); // [pos, d_model]
  for (let p = 0; p < n; p++) for (let i = 0; i < d; i++) resid[p * d + i] = embed[tokens[p] * d + i] * embedScale;
  run.put("hook_embed", resid.slice(), [n, d], ["pos", "d_model"]);

  for (let l = 0; l < config.numLayers; l++) {
    run.put(`blocks.${l}.hook_resid_pre`, resid.slice(), [n, d], ["pos", "d_model"]);
    const residMid = attentionBlock(run, l, resid); // [pos, d_model]
    resid = mlpBlock(run, l, residMid); // [pos, d_model]
  }

  // Final norm and unembedding (lm_head, or the embedding matrix when tied).
  const lnf = normalize(run, resid);
  run.put("ln_final.hook_scale", lnf.scale, [n, 1], ["pos", "one"]);
  run.put("ln_final.hook_normalized", lnf.normalized, [n, d], ["pos", "d_model"]);
  const xf = normOutput(run, lnf.normalized, "model.norm"); // [pos, d_model]
  const unembed = config.tieWordEmbeddings ? embed : weight(getWeight, "lm_head.weight", V * d); // [vocab, d_model]
  const logits = linear(xf, n, d, unembed, V); // [pos, vocab]
  return { logits: { data: logits, shape: [1, n, V], dims: ["batch", "pos", "vocab"] }, hooks };
}

function checkTokens(config: LlamaConfig, tokens: number[]): void {
  if (tokens.length === 0) throw new InputError("reference forward: the prompt has no tokens", { field: "tokens" });
  for (const t of tokens) {
    if (!Number.isInteger(t) || t < 0 || t >= config.vocabSize) {
      throw new InputError(`reference forward: token id ${t} is outside the vocabulary [0, ${config.vocabSize})`, {
        field: "tokens",
      });
    }
  }
}

/** ln1, q/k/v, rotary, scores, pattern, z, per-head results, attn_out; returns resid_mid [pos, d_model]. */
function attentionBlock(run: RefRun, l: number, resid: Float64Array): Float64Array {
  const { n, d, H, KV, dh, put } = run;
  const b = `blocks.${l}`;
  const ln1 = normalize(run, resid);
  put(`${b}.ln1.hook_scale`, ln1.scale, [n, 1], ["pos", "one"]);
  put(`${b}.ln1.hook_normalized`, ln1.normalized, [n, d], ["pos", "d_model"]);
  const x1 = normOutput(run, ln1.normalized, `model.layers.${l}.input_layernorm`); // [pos, d_model]

  const qkv = (m: string, rows: number) =>
    linear(
      x1,
      n,
      d,
      run.w(l, `self_attn.${m}.weight`, rows * d),
      rows,
      run.config.qkvBias ? run.w(l, `self_attn.${m}.bias`, rows) : undefined,
    );
  const q = qkv("q_proj", H * dh); // [pos, head, d_head]
  const k = qkv("k_proj", KV * dh); // [pos, kv_head, d_head]
  const v = qkv("v_proj", KV * dh); // [pos, kv_head, d_head]
  put(`${b}.attn.hook_q`, q, [n, H, dh], ["pos", "head", "d_head"]);
  put(`${b}.attn.hook_k`, k, [n, KV, dh], ["pos", "kv_head", "d_head"]);
  put(`${b}.attn.hook_v`, v, [n, KV, dh], ["pos", "kv_head", "d_head"]);
  const rq = applyRotary(q, n, H, dh, run.cos, run.sin); // [pos, head, d_head]
  const rk = applyRotary(k, n, KV, dh, run.cos, run.sin); // [pos, kv_head, d_head]
  put(`${b}.attn.hook_rot_q`, rq, [n, H, dh], ["pos", "head", "d_head"]);
  put(`${b}.attn.hook_rot_k`, rk, [n, KV, dh], ["pos", "kv_head", "d_head"]);

  const { scores, pattern } = attentionPattern(run, rq, rk);
  put(`${b}.attn.hook_attn_scores`, scores, [H, n, n], ["head", "query_pos", "key_pos"]);
  put(`${b}.attn.hook_pattern`, pattern, [H, n, n], ["head", "query_pos", "key_pos"]);
  const z = mixValues(run, pattern, v); // [pos, head, d_head]
  put(`${b}.attn.hook_z`, z, [n, H, dh], ["pos", "head", "d_head"]);

  const oBias = run.config.outputBias ? run.w(l, "self_attn.o_proj.bias", d) : undefined;
  const { result, attnOut } = headOutputs(run, z, run.w(l, "self_attn.o_proj.weight", d * H * dh), oBias);
  put(`${b}.attn.hook_result`, result, [n, H, d], ["pos", "head", "d_model"]);
  put(`${b}.hook_attn_out`, attnOut, [n, d], ["pos", "d_model"]);
  const residMid = new Float64Array(n * d); // [pos, d_model]
  for (let i = 0; i < n * d; i++) residMid[i] = resid[i] + attnOut[i];
  put(`${b}.hook_resid_mid`, residMid, [n, d], ["pos", "d_model"]);
  return residMid;
}

/** Whether query qi sees key ki: causal, and within the sliding window when there is one (qi - ki < window). */
function visible(run: RefRun, qi: number, ki: number): boolean {
  const window = run.config.slidingWindow;
  return ki <= qi && (window === null || qi - ki < window);
}

/** Causal (sliding-window) scores rq·rk/sqrt(d_head) and their softmax, [head, query_pos, key_pos] each. */
function attentionPattern(
  run: RefRun,
  rq: Float64Array,
  rk: Float64Array,
): { scores: Float64Array; pattern: Float64Array } {
  const { n, H, KV, dh } = run;
  const groupSize = H / KV; // HF repeat_kv: query head h reads kv head floor(h / groupSize)
  const invSqrtDh = 1 / Math.sqrt(dh);
  const scores = new Float64Array(H * n * n); // [head, query_pos, key_pos]
  const pattern = new Float64Array(H * n * n); // [head, query_pos, key_pos]
  for (let h = 0; h < H; h++) {
    const kvh = Math.floor(h / groupSize);
    for (let qi = 0; qi < n; qi++) {
      const row = (h * n + qi) * n;
      let max = -Infinity;
      for (let ki = 0; ki < n; ki++) {
        if (!visible(run, qi, ki)) {
          scores[row + ki] = MASKED_SCORE; // causal / sliding-window mask
          continue;
        }
        let s = 0;
        const qo = (qi * H + h) * dh;
        const ko = (ki * KV + kvh) * dh;
        for (let j = 0; j < dh; j++) s += rq[qo + j] * rk[ko + j];
        s *= invSqrtDh;
        scores[row + ki] = s;
        if (s > max) max = s;
      }
      // Softmax over the visible keys only: masked ones contribute exp(lowest - max) = 0.
      let sum = 0;
      for (let ki = 0; ki <= qi; ki++) {
        if (!visible(run, qi, ki)) continue;
        const e = Math.exp(scores[row + ki] - max);
        pattern[row + ki] = e;
        sum += e;
      }
      for (let ki = 0; ki <= qi; ki++) pattern[row + ki] /= sum;
    }
  }
  return { scores, pattern };
}

/** z[p, h, :] = Σ_k pattern[h, p, k] v[k, kv(h), :] → [pos, head, d_head]. */
function mixValues(run: RefRun, pattern: Float64Array, v: Float64Array): Float64Array {
  const { n, H, KV, dh } = run;
  const groupSize = H / KV;
  const z = new Float64Array(n * H * dh); // [pos, head, d_head]
  for (let h = 0; h < H; h++) {
    const kvh = Math.floor(h / groupSize);
    for (let qi = 0; qi < n; qi++) {
      const zo = (qi * H + h) * dh;
      for (let ki = 0; ki <= qi; ki++) {
        const a = pattern[(h * n + qi) * n + ki];
        const vo = (ki * KV + kvh) * dh;
        for (let j = 0; j < dh; j++) z[zo + j] += a * v[vo + j];
      }
    }
  }
  return z;
}

/** Per-head output result[p, h, :] = W_O[:, h*dh:(h+1)*dh] @ z[p, h, :] (no bias, as TL); attn_out = sum over h + b_O. */
function headOutputs(
  run: RefRun,
  z: Float64Array,
  wo: Float32Array, // [d_model, head*d_head]
  bias?: Float32Array, // [d_model]
): { result: Float64Array; attnOut: Float64Array } {
  const { n, d, H, dh } = run;
  const result = new Float64Array(n * H * d); // [pos, head, d_model]
  const attnOut = new Float64Array(n * d); // [pos, d_model]
  if (bias) for (let p = 0; p < n; p++) for (let i = 0; i < d; i++) attnOut[p * d + i] = bias[i];
  for (let p = 0; p < n; p++) {
    for (let h = 0; h < H; h++) {
      const zo = (p * H + h) * dh;
      for (let i = 0; i < d; i++) {
        const wr = i * H * dh + h * dh;
        let s = 0;
        for (let j = 0; j < dh; j++) s += wo[wr + j] * z[zo + j];
        result[(p * H + h) * d + i] = s;
        attnOut[p * d + i] += s;
      }
    }
  }
  return { result, attnOut };
}

/** ln2 and the MLP (gated: act(gate)·up → down; plain: act(c_fc) → c_proj, no hook_pre_linear); returns resid_post [pos, d_model]. */
function mlpBlock(run: RefRun, l: number, residMid: Float64Array): Float64Array {
  const { n, d, m, put, config } = run;
  const b = `blocks.${l}`;
  const ln2 = normalize(run, residMid);
  put(`${b}.ln2.hook_scale`, ln2.scale, [n, 1], ["pos", "one"]);
  put(`${b}.ln2.hook_normalized`, ln2.normalized, [n, d], ["pos", "d_model"]);
  const x2 = normOutput(run, ln2.normalized, `model.layers.${l}.post_attention_layernorm`); // [pos, d_model]
  const proj = (x: Float64Array, name: string, nIn: number, nOut: number) =>
    linear(
      x,
      n,
      nIn,
      run.w(l, `mlp.${name}.weight`, nOut * nIn),
      nOut,
      config.mlpBias ? run.w(l, `mlp.${name}.bias`, nOut) : undefined,
    );
  const gated = config.mlp === "gated";
  const pre = proj(x2, gated ? "gate_proj" : "c_fc", d, m); // [pos, d_mlp]
  const post = new Float64Array(n * m); // [pos, d_mlp]
  put(`${b}.mlp.hook_pre`, pre, [n, m], ["pos", "d_mlp"]);
  if (gated) {
    const preLinear = proj(x2, "up_proj", d, m); // [pos, d_mlp]
    for (let i = 0; i < n * m; i++) post[i] = activate(config.activation, pre[i]) * preLinear[i];
    put(`${b}.mlp.hook_pre_linear`, preLinear, [n, m], ["pos", "d_mlp"]);
  } else {
    for (let i = 0; i < n * m; i++) post[i] = activate(config.activation, pre[i]);
  }
  put(`${b}.mlp.hook_post`, post, [n, m], ["pos", "d_mlp"]);
  const mlpOut = proj(post, gated ? "down_proj" : "c_proj", m, d); // [pos, d_model]
  put(`${b}.hook_mlp_out`, mlpOut, [n, d], ["pos", "d_model"]);
  const residPost = new Float64Array(n * d); // [pos, d_model]
  for (let i = 0; i < n * d; i++) residPost[i] = residMid[i] + mlpOut[i];
  put(`${b}.hook_resid_post`, residPost, [n, d], ["pos", "d_model"]);
  return residPost;
}

/** Anything with row-major data, a shape and dim names (a `Tensor` or a `RefTensor`). */
export interface NamedArray {
  data: ArrayLike<number>;
  shape: number[];
  dims: string[];
}

/**
 * One prompt of a padded batch, laid out as the reference lays it out: batch index `b` kept (as a
 * batch dim of 1), every position dim (`pos`, `query_pos`, `key_pos`) restricted to
 * [start, start + length), other dims whole. For a left-padded prompt of n tokens in a batch of
 * width P, start = P - n. Returns float64 so comparisons never round.
 */
export function promptSlice(t: NamedArray, b: number, start: number, length: number): RefTensor {
  const isPos = (dim: string) => dim === "pos" || dim === "query_pos" || dim === "key_pos";
  const outShape = t.shape.map((s, i) => (t.dims[i] === "batch" ? 1 : isPos(t.dims[i]) ? length : s));
  t.dims.forEach((dim, i) => {
    const lo = dim === "batch" ? b : isPos(dim) ? start : 0;
    const hi = dim === "batch" ? b + 1 : isPos(dim) ? start + length : t.shape[i];
    if (lo < 0 || hi > t.shape[i]) {
      throw new InputError(`promptSlice: range [${lo}, ${hi}) out of bounds for dim "${dim}" of size ${t.shape[i]}`, {
        field: dim,
      });
    }
  });
  const strides = t.shape.map((_, i) => t.shape.slice(i + 1).reduce((a, s) => a * s, 1));
  const out = new Float64Array(outShape.reduce((a, s) => a * s, 1));
  const idx = new Array(outShape.length).fill(0);
  for (let o = 0; o < out.length; o++) {
    let src = 0;
    for (let i = 0; i < idx.length; i++) {
      const base = t.dims[i] === "batch" ? b : isPos(t.dims[i]) ? start : 0;
      src += (base + idx[i]) * strides[i];
    }
    out[o] = t.data[src];
    for (let i = idx.length - 1; i >= 0; i--) {
      if (++idx[i] < outShape[i]) break;
      idx[i] = 0;
    }
  }
  return { data: out, shape: outShape, dims: t.dims.slice() };
}

/**
 * The relative error used by every parity and golden test: max_i |a_i - b_i| / max(1e-6, max_i |b_i|)
 * over one tensor, `expected` being the reference. Entries where `skip(i)` is true are left out
 * (e.g. masked attention scores, which hold float32 lowest). NaN anywhere gives Infinity.
 */
export function relativeError(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  skip?: (i: number) => boolean,
): number {
  if (actual.length !== expected.length) {
    throw new InputError(`relativeError: ${actual.length} actual values vs ${expected.length} expected`);
  }
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < expected.length; i++) {
    if (skip?.(i)) continue;
    const diff = Math.abs(actual[i] - expected[i]);
    if (!(diff <= maxDiff)) maxDiff = Number.isNaN(diff) ? Infinity : diff;
    const ref = Math.abs(expected[i]);
    if (ref > maxRef) maxRef = ref;
  }
  return maxDiff / Math.max(1e-6, maxRef);
}
