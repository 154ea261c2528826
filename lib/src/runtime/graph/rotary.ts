/**
 * Rotary tables of every rope type transformers implements for these families (default, linear,
 * dynamic NTK, YaRN, llama3), computed as transformers computes them with torch in float32:
 * the inverse frequencies step by step with every operation rounded to float32 (float64 differs
 * by an ulp, an error that grows with the position: ~1e-3 rad at 16k tokens for d_head 128), the
 * angles position × inv_freq, cos and sin times the attention factor (YaRN).
 *
 * LongRoPE picks its long or short factors from the same seq_len (long once it exceeds
 * original_max_position_embeddings), statelessly in transformers too.
 *
 * Dynamic NTK depends on the sequence: transformers recomputes the base from
 * seq_len = max(position_ids) + 1 once it exceeds max_position_embeddings. The graph does the
 * same from the batch it is given, so a batch gets what a freshly loaded transformers model
 * computes for it on its first call (transformers keeps a grown table for later, shorter calls
 * above max_position_embeddings; the runtime has no such state).
 */
import type { LlamaConfig } from "../../checkpoint/config";
import { GraphBuilder } from "./ir";

const f = Math.fround;
const ONNX_FLOAT = 1;

/** torch's `1.0 / (base ** (arange(0, d, 2).float() / d))` in float32. */
function defaultInvFreq(base: number, d: number): number[] {
  return Array.from({ length: d / 2 }, (_, i) => f(1 / f(Math.pow(f(base), f((2 * i) / d)))));
}

/** transformers' _compute_yarn_parameters inverse frequencies (float32 tensors, float64 python scalars). */
function yarnInvFreq(config: LlamaConfig, s: Extract<LlamaConfig["ropeScaling"], { type: "yarn" }>): number[] {
  const d = config.headDim;
  const base = config.ropeTheta;
  const correctionDim = (rot: number) =>
    (d * Math.log(s.originalMaxPositionEmbeddings / (rot * 2 * Math.PI))) / (2 * Math.log(base));
  let low = correctionDim(s.betaFast);
  let high = correctionDim(s.betaSlow);
  if (s.truncate) [low, high] = [Math.floor(low), Math.ceil(high)];
  [low, high] = [Math.max(low, 0), Math.min(high, d - 1)];
  if (low === high) high += 0.001;
  return Array.from({ length: d / 2 }, (_, i) => {
    const posFreq = f(Math.pow(f(base), f((2 * i) / d)));
    const extrapolation = f(1 / posFreq);
    const interpolation = f(1 / f(f(s.factor) * posFreq));
    const ramp = Math.min(1, Math.max(0, f(f(i - f(low)) / f(high - low))));
    const extraFactor = f(1 - ramp);
    return f(f(interpolation * f(1 - extraFactor)) + f(extrapolation * extraFactor));
  });
}

/** transformers' _compute_llama3_parameters (wavelength bands) in float32. */
function llama3InvFreq(config: LlamaConfig, s: Extract<LlamaConfig["ropeScaling"], { type: "llama3" }>): number[] {
  const old = s.originalMaxPositionEmbeddings;
  const lowWavelen = f(old / s.lowFreqFactor);
  const highWavelen = f(old / s.highFreqFactor);
  return defaultInvFreq(config.ropeTheta, config.headDim).map((inv) => {
    const wavelen = f(f(2 * Math.PI) / inv);
    const scaled = wavelen > lowWavelen ? f(inv / f(s.factor)) : inv;
    const smooth = f(f(f(f(old) / wavelen) - f(s.lowFreqFactor)) / f(s.highFreqFactor - s.lowFreqFactor));
    const smoothed = f(f(f(f(1 - smooth) * scaled) / f(s.factor)) + f(smooth * scaled));
    const medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
    return medium ? smoothed : scaled;
  });
}

/** LongRoPE's `1.0 / (ext_factors * base ** (arange(0, d, 2).float() / d))` in float32. */
function longropeInvFreq(config: LlamaConfig, ext: number[]): number[] {
  const d = config.headDim;
  return ext.map((e, i) => f(1 / f(f(e) * f(Math.pow(f(config.ropeTheta), f((2 * i) / d))))));
}

/**
 * Rotary inverse frequencies [d_head/2] of a config whose table does not depend on the sequence
 * (default, linear, yarn, llama3); for dynamic NTK, the table at or below max_position_embeddings;
 * for longrope, the short table.
 */
export function ropeInvFreq(config: LlamaConfig): number[] {
  const s = config.ropeScaling;
  const inv = defaultInvFreq(config.ropeTheta, config.headDim);
  if (s === null || s.type === "dynamic") return inv;
  if (s.type === "longrope") return longropeInvFreq(config, s.shortFactor);
  if (s.type === "linear") return inv.map((x) => f(x / f(s.factor)));
  if (s.type === "yarn") return yarnInvFreq(config, s);
  return llama3InvFreq(config, s);
}

/** transformers' attention_scaling: cos and sin are multiplied by it (YaRN's attention factor, else 1). */
export function ropeAttentionScaling(config: LlamaConfig): number {
  const s = config.ropeScaling;
  return s?.type === "yarn" || s?.type === "longrope" ? s.attentionFactor : 1;
}

/** seq_len = max(position_ids) + 1 over the batch, an int64 scalar (what transformers' dynamic updates read). */
function batchSeqLen(b: GraphBuilder, positions: string): string {
  const maxPos = b.op("ReduceMax", [b.op("Reshape", [positions, b.ints([-1])])], { keepdims: 0 }); // scalar int64
  return b.op("Add", [maxPos, b.constant([1], "int64", [])]);
}

/** LongRoPE's table for this batch: the long factors once seq_len > original_max_position_embeddings. */
function longropeTable(b: GraphBuilder, config: LlamaConfig, positions: string): string | undefined {
  const s = config.ropeScaling;
  if (s?.type !== "longrope") return undefined;
  const useLong = b.op(
    "Greater",
    [batchSeqLen(b, positions), b.constant([s.originalMaxPositionEmbeddings], "int64", [])],
    {},
    "bool",
  );
  const long = b.constant(longropeInvFreq(config, s.longFactor), "float32");
  return b.op("Where", [useLong, long, b.constant(longropeInvFreq(config, s.shortFactor), "float32")], {}, "float32");
}

/**
 * Dynamic NTK inverse frequencies as a graph tensor [d_head/2] from position_ids:
 * seq = max(max(position_ids) + 1, max_position_embeddings),
 * base' = base · (factor · seq / max_pos - (factor - 1)) ^ (d / (d - 2)), inv = 1 / base' ^ (2i / d).
 */
function dynamicInvFreq(b: GraphBuilder, config: LlamaConfig, positions: string, factor: number): string {
  const d = config.headDim;
  const mpe = config.maxPositionEmbeddings;
  const seq = b.op("Max", [batchSeqLen(b, positions), b.constant([mpe], "int64", [])]);
  const seqF = b.op("Cast", [seq], { to: ONNX_FLOAT }, "float32");
  const ratio = b.op("Sub", [
    b.op("Div", [b.op("Mul", [seqF, b.scalar(factor)]), b.scalar(mpe)]),
    b.scalar(factor - 1),
  ]);
  const base = b.op("Mul", [b.op("Pow", [ratio, b.scalar(d / (d - 2))]), b.scalar(config.ropeTheta)]); // scalar
  const exponents = b.constant(
    Array.from({ length: d / 2 }, (_, i) => f((2 * i) / d)),
    "float32",
  ); // [d_head/2]
  return b.op("Div", [b.scalar(1), b.op("Pow", [base, exponents])]);
}

/** cos and sin [batch, pos, 1, d_head] of position_ids [batch, pos] (int64). */
export function rotaryTables(b: GraphBuilder, config: LlamaConfig, positions: string): { cos: string; sin: string } {
  // Node order as before rope types were added (Unsqueeze, then the table; cos then sin), so a
  // default / linear rope graph keeps every generated tensor name.
  const posF = b.op("Cast", [positions], { to: ONNX_FLOAT }, "float32"); // [batch, pos]
  const s = config.ropeScaling;
  const dynamic =
    s?.type === "dynamic" ? dynamicInvFreq(b, config, positions, s.factor) : longropeTable(b, config, positions);
  const posCol = b.op("Unsqueeze", [posF, b.ints([2])]); // [batch, pos, 1]
  const freqs = b.op("Mul", [posCol, dynamic ?? b.constant(ropeInvFreq(config), "float32")]); // [batch, pos, d_head/2]
  const emb = b.op("Concat", [freqs, freqs], { axis: -1 }); // [batch, pos, d_head]
  const scaling = ropeAttentionScaling(config);
  const table = (op: "Cos" | "Sin") => {
    const t = b.op(op, [emb]);
    return b.op("Unsqueeze", [scaling === 1 ? t : b.op("Mul", [t, b.scalar(scaling)]), b.ints([2])]);
  };
  const cos = table("Cos");
  return { cos, sin: table("Sin") };
}
