/**
 * The graph pieces the adapters compose: the norms (RMSNorm, RMSNorm with 1 + weight, LayerNorm),
 * the activations (SiLU, GELU erf / tanh), the gated and the plain MLP, the embedding lookup.
 * Each writes TransformerLens' hooks with TL's meaning.
 */
import type { Activation } from "../../../checkpoint/families";
import type { AdapterContext } from "./adapter";

/**
 * Embedding lookup [batch, pos, d_model], times sqrt(d_model) rounded to float32 when the config
 * says embedScale (Gemma: HF multiplies by the scale cast to the weights' dtype, float32 here).
 */
export function embedLookup(ctx: AdapterContext, ids: string): string {
  const { b, w, config } = ctx;
  const e = b.op("Gather", [w("model.embed_tokens.weight"), ids], { axis: 0 }); // [batch, pos, d_model]
  return config.embedScale ? b.op("Mul", [e, b.scalar(Math.fround(Math.sqrt(config.hiddenSize)))]) : e;
}

/**
 * RMSNorm as TL splits it: scale = sqrt(mean(x²)+eps) [batch, pos, 1], normalized = x / scale,
 * then times the weight, or times (1 + weight) when `onePlus` (Gemma, computed as x·(1+w) in float32 as HF).
 */
export function rmsNorm(ctx: AdapterContext, prefix: string, x: string, module: string, onePlus = false): string {
  const { b, config } = ctx;
  const ms = b.op("ReduceMean", [b.op("Mul", [x, x]), b.ints([-1])], { keepdims: 1 }); // [batch, pos, 1]
  const scale = b.hook(`${prefix}.hook_scale`, b.op("Sqrt", [b.op("Add", [ms, b.scalar(config.rmsNormEps)])]));
  const normalized = b.hook(`${prefix}.hook_normalized`, b.op("Div", [x, scale])); // [batch, pos, d_model]
  const weight = ctx.w(`${module}.weight`);
  return b.op("Mul", [normalized, onePlus ? b.op("Add", [weight, b.scalar(1)]) : weight]);
}

/**
 * LayerNorm as TL splits it: centred = x - mean(x), scale = sqrt(mean(centred²)+eps) [batch, pos, 1],
 * normalized = centred / scale (before weight and bias), output = normalized · w + b.
 */
export function layerNorm(ctx: AdapterContext, prefix: string, x: string, module: string): string {
  const { b, config } = ctx;
  const mean = b.op("ReduceMean", [x, b.ints([-1])], { keepdims: 1 }); // [batch, pos, 1]
  const centred = b.op("Sub", [x, mean]); // [batch, pos, d_model]
  const v = b.op("ReduceMean", [b.op("Mul", [centred, centred]), b.ints([-1])], { keepdims: 1 });
  const scale = b.hook(`${prefix}.hook_scale`, b.op("Sqrt", [b.op("Add", [v, b.scalar(config.rmsNormEps)])]));
  const normalized = b.hook(`${prefix}.hook_normalized`, b.op("Div", [centred, scale])); // [batch, pos, d_model]
  return b.op("Add", [b.op("Mul", [normalized, ctx.w(`${module}.weight`)]), ctx.w(`${module}.bias`)]);
}

/** silu(x) = x·sigmoid(x); gelu = x/2·(1 + erf(x/√2)); gelu_tanh = x/2·(1 + tanh(√(2/π)·(x + 0.044715x³))). */
export function activation(ctx: AdapterContext, act: Activation, x: string): string {
  const { b } = ctx;
  if (act === "silu") return b.op("Mul", [x, b.op("Sigmoid", [x])]);
  const half = b.op("Mul", [x, b.scalar(0.5)]);
  let inner: string;
  if (act === "gelu") {
    inner = b.op("Erf", [b.op("Mul", [x, b.scalar(Math.SQRT1_2)])]);
  } else {
    const cube = b.op("Mul", [b.op("Mul", [x, x]), x]);
    const arg = b.op("Add", [x, b.op("Mul", [cube, b.scalar(0.044715)])]);
    inner = b.op("Tanh", [b.op("Mul", [arg, b.scalar(Math.sqrt(2 / Math.PI))])]);
  }
  return b.op("Mul", [half, b.op("Add", [inner, b.scalar(1)])]);
}

/** The bias input of a projection when the config has one, else undefined. */
function maybeBias(ctx: AdapterContext, module: string, on: boolean): string | undefined {
  return on ? ctx.w(`${module}.bias`) : undefined;
}

/** TL gated MLP: hook_pre = gate projection (before the activation), hook_pre_linear = up, hook_post = act(pre) · up. */
export function gatedMlp(ctx: AdapterContext, l: number, x: string): string {
  const { b, config, linear } = ctx;
  const D = config.hiddenSize;
  const dMlp = config.intermediateSize;
  const p = `model.layers.${l}.mlp`;
  const h = `blocks.${l}.mlp`;
  const bias = (m: string) => maybeBias(ctx, `${p}.${m}`, config.mlpBias);
  const pre = b.hook(`${h}.hook_pre`, linear(x, ctx.w(`${p}.gate_proj.weight`), D, [dMlp], bias("gate_proj"))); // [batch, pos, d_mlp]
  const preLinear = b.hook(`${h}.hook_pre_linear`, linear(x, ctx.w(`${p}.up_proj.weight`), D, [dMlp], bias("up_proj")));
  const post = b.hook(`${h}.hook_post`, b.op("Mul", [activation(ctx, config.activation, pre), preLinear]));
  return b.hook(`blocks.${l}.hook_mlp_out`, linear(post, ctx.w(`${p}.down_proj.weight`), dMlp, [D], bias("down_proj"))); // [batch, pos, d_model]
}

/** TL non-gated MLP: hook_pre = c_fc output (bias included), hook_post = act(pre); no hook_pre_linear. */
export function plainMlp(ctx: AdapterContext, l: number, x: string): string {
  const { b, config, linear } = ctx;
  const D = config.hiddenSize;
  const dMlp = config.intermediateSize;
  const p = `model.layers.${l}.mlp`;
  const h = `blocks.${l}.mlp`;
  const pre = b.hook(
    `${h}.hook_pre`,
    linear(x, ctx.w(`${p}.c_fc.weight`), D, [dMlp], maybeBias(ctx, `${p}.c_fc`, config.mlpBias)),
  ); // [batch, pos, d_mlp]
  const post = b.hook(`${h}.hook_post`, activation(ctx, config.activation, pre));
  return b.hook(
    `blocks.${l}.hook_mlp_out`,
    linear(post, ctx.w(`${p}.c_proj.weight`), dMlp, [D], maybeBias(ctx, `${p}.c_proj`, config.mlpBias)),
  ); // [batch, pos, d_model]
}
