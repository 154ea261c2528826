/**
 * The decoder forward pass (HF LlamaForCausalLM and the families built like it, eager attention)
 * as a graph with every TransformerLens hook point. Weights are graph inputs named by their HF
 * tensor names. What differs per architecture (embedding, norms, MLP) comes from its adapter
 * (adapters/*.ts); rotary (every rope type of rope.ts), GQA, biases and the sliding window are
 * read from the config here.
 */
import { LlamaConfig } from "../../checkpoint/config";
import { expectedLlamaWeights } from "../../checkpoint/weights";
import { Graph, GraphBuilder } from "./ir";
import { adapterFor, AdapterContext, ArchitectureAdapter } from "./adapters";
import { rotaryTables } from "./rotary";

export { ropeInvFreq } from "./rotary";

export interface LlamaGraphOptions {
  /** emit blocks.{l}.attn.hook_result [batch, pos, head, d_model]; attn_out = its sum over heads */
  withHeadResult?: boolean;
  /** "last": logits only at the last position, [batch, 1, vocab] (right for left-padded batches) */
  logitsAt?: "all" | "last";
  /** every projection (Gemm) in float16: inputs cast to float16, the product cast back to float32 */
  float16Matmul?: boolean;
}

/** float32 lowest: masked scores use it (as HF), never -inf, so fully masked rows stay finite. */
export const FLOAT32_LOWEST = -3.4028234663852886e38;

const ONNX_FLOAT = 1;
const ONNX_FLOAT16 = 10;

/** x cast to float16 or float32 (a Cast node). */
export function castTo(b: GraphBuilder, x: string, to: "float16" | "float32"): string {
  return b.op("Cast", [x], { to: to === "float16" ? ONNX_FLOAT16 : ONNX_FLOAT }, to);
}
const ONNX_BOOL = 9;

/** What the per-layer components share: the builder, sizes, weights and the shared subgraphs. */
interface LlamaParts {
  b: GraphBuilder;
  config: LlamaConfig;
  D: number; // d_model
  H: number; // head
  KV: number; // kv_head
  dh: number; // d_head
  nRep: number; // query heads per kv head (GQA)
  /** A weight input by HF name. */
  w: (name: string) => string;
  /** x [batch, pos, in] @ weight[out, in]^T (+ bias) → [batch, pos, ...outShape] */
  linear: (x: string, weight: string, inDim: number, outShape: number[], bias?: string, shape3?: string) => string;
  /** the architecture's norm with TL hooks `${prefix}.hook_scale` / `.hook_normalized` */
  norm: (prefix: string, x: string, module: string) => string;
  adapter: ArchitectureAdapter;
  ctx: AdapterContext;
  /** HF apply_rotary_pos_emb on [batch, pos, heads, d_head]. */
  rotary: (x: string) => string;
  allowed: string; // [batch, 1, query_pos, key_pos] bool: causal and not a pad key
  lowest: string; // float32 lowest, written into masked scores
  invSqrt: string; // 1 / sqrt(d_head)
  repeatKv: string; // Expand shape for HF repeat_kv
}

/**
 * The graph of HF LlamaForCausalLM with every TL hook point. Node order (and so every generated
 * tensor name) is fixed: shared subgraphs, then embed, then per layer attention(l) and mlp(l) as
 * TL's components/, then the final norm and unembedding.
 */
export function buildLlamaGraph(config: LlamaConfig, opts: LlamaGraphOptions = {}): Graph {
  const b = new GraphBuilder();
  const ids = b.input("input_ids", "int64", ["batch", "pos"]);
  const mask = b.input("attention_mask", "int64", ["batch", "pos"]);
  const positions = b.input("position_ids", "int64", ["batch", "pos"]);
  const W = new Map<string, string>();
  for (const [name, shape] of expectedLlamaWeights(config)) W.set(name, b.input(name, "float32", shape));
  const parts = sharedParts(b, config, (name) => W.get(name)!, ids, mask, positions, !!opts.float16Matmul);
  const { w, D } = parts;

  let resid = b.hook("hook_embed", parts.adapter.embed(parts.ctx, ids)); // [batch, pos, d_model]
  for (let l = 0; l < config.numLayers; l++) {
    const h = `blocks.${l}`;
    const residPre = b.hook(`${h}.hook_resid_pre`, resid);
    const attnOut = attention(parts, l, residPre, !!opts.withHeadResult); // [batch, pos, d_model]
    const residMid = b.hook(`${h}.hook_resid_mid`, b.op("Add", [residPre, attnOut]));
    const x2 = parts.norm(`${h}.ln2`, residMid, `model.layers.${l}.post_attention_layernorm`);
    const mlpOut = parts.adapter.mlp(parts.ctx, l, x2); // [batch, pos, d_model]
    resid = b.hook(`${h}.hook_resid_post`, b.op("Add", [residMid, mlpOut])); // [batch, pos, d_model]
  }
  let final = parts.norm("ln_final", resid, "model.norm"); // [batch, pos, d_model]
  let logitsShape: string | undefined;
  if (opts.logitsAt === "last") {
    final = b.op("Slice", [final, b.ints([-1]), b.ints([2147483647]), b.ints([1])]); // [batch, 1, d_model]
    logitsShape = b.op("Concat", [b.op("Shape", [final], { end: 2 }, "int64"), b.ints([config.vocabSize])], {
      axis: 0,
    });
  }
  const unembed = config.tieWordEmbeddings ? w("model.embed_tokens.weight") : w("lm_head.weight"); // [vocab, d_model]
  b.output("logits", parts.linear(final, unembed, D, [config.vocabSize], undefined, logitsShape)); // [batch, pos | 1, vocab]
  return b.build(["logits"]);
}

/** Helpers and the subgraphs every layer reads: shapes, linear, RMSNorm, rotary tables, the mask. */
function sharedParts(
  b: GraphBuilder,
  config: LlamaConfig,
  w: (name: string) => string,
  ids: string,
  mask: string,
  positions: string,
  float16Matmul: boolean,
): LlamaParts {
  const D = config.hiddenSize;
  const H = config.numHeads;
  const KV = config.numKvHeads;
  const dh = config.headDim;
  const nRep = H / KV;
  // parseLlamaConfig rejects both; asserts for hand-built configs
  if (!Number.isInteger(nRep)) throw new Error(`numHeads ${H} is not a multiple of numKvHeads ${KV}`);
  if (dh % 2 !== 0) throw new Error(`headDim ${dh} must be even for rotary embeddings`);

  const bp = b.op("Shape", [ids]); // [2] = (batch, pos)
  const shapeCache = new Map<string, string>();
  /** (batch, pos, ...tail) as an int64 shape tensor */
  const shapeBP = (tail: number[]): string => {
    const k = tail.join(",");
    if (!shapeCache.has(k)) shapeCache.set(k, b.op("Concat", [bp, b.ints(tail)], { axis: 0 }));
    return shapeCache.get(k)!;
  };
  const linear = (
    x: string,
    weight: string,
    inDim: number,
    outShape: number[],
    bias?: string,
    shape3?: string,
  ): string => {
    const flat = b.op("Reshape", [x, b.ints([-1, inDim])]); // [batch*pos, in]
    const gemm = (a: string, w: string, c?: string) => b.op("Gemm", c ? [a, w, c] : [a, w], { transB: 1 });
    const y = float16Matmul // [batch*pos, out]
      ? castTo(
          b,
          gemm(castTo(b, flat, "float16"), castTo(b, weight, "float16"), bias && castTo(b, bias, "float16")),
          "float32",
        )
      : gemm(flat, weight, bias);
    return b.op("Reshape", [y, shape3 ?? shapeBP(outShape)]);
  };
  const adapter = adapterFor(config);
  const ctx: AdapterContext = { b, config, w, linear };
  const norm = (prefix: string, x: string, module: string) => adapter.norm(ctx, prefix, x, module);
  const rotary = rotaryEmbedding(b, config, positions);
  const allowed = attentionMask(b, bp, mask, config.slidingWindow);
  const lowest = b.scalar(FLOAT32_LOWEST);
  const invSqrt = b.scalar(1 / Math.sqrt(dh));
  const repeatKv = b.ints([1, 1, nRep, 1, 1]);
  return { b, config, D, H, KV, dh, nRep, w, linear, norm, adapter, ctx, rotary, allowed, lowest, invSqrt, repeatKv };
}

/** Rotary tables from position_ids (cos/sin [batch, pos, 1, d_head], rotary.ts) and HF's rotation of q / k. */
function rotaryEmbedding(b: GraphBuilder, config: LlamaConfig, positions: string): (x: string) => string {
  const dh = config.headDim;
  const { cos, sin } = rotaryTables(b, config, positions);
  const half = b.ints([dh / 2, dh / 2]);
  /** HF apply_rotary_pos_emb: x*cos + rotate_half(x)*sin, rotate_half = cat(-x2, x1) */
  return (x: string): string => {
    const [x1, x2] = b.node("Split", [x, half], { axis: -1 }, 2);
    const rotated = b.op("Concat", [b.op("Neg", [x2]), x1], { axis: -1 });
    return b.op("Add", [b.op("Mul", [x, cos]), b.op("Mul", [rotated, sin])]);
  };
}

/**
 * Causal + padding mask: allowed [batch, 1, query_pos, key_pos]. With a sliding window, a key is
 * also hidden once query - key >= window (transformers' sliding_window_overlay: kv > q - window,
 * on padded indices; under left padding the differences are each prompt's own token distances).
 */
function attentionMask(b: GraphBuilder, bp: string, mask: string, window: number | null): string {
  const P = b.op("Gather", [bp, b.constant([1], "int64", [])], { axis: 0 }); // scalar
  const range = b.op("Range", [b.constant([0], "int64", []), P, b.constant([1], "int64", [])]); // [pos]
  const keys = b.op("Unsqueeze", [range, b.ints([0])]); // [1, key_pos]
  const queries = b.op("Unsqueeze", [range, b.ints([1])]); // [query_pos, 1]
  let causal = b.op("LessOrEqual", [keys, queries], {}, "bool"); // [query_pos, key_pos]
  if (window !== null) {
    const inWindow = b.op("Greater", [keys, b.op("Sub", [queries, b.constant([window], "int64", [])])], {}, "bool");
    causal = b.op("And", [causal, inWindow]);
  }
  const keyOk = b.op("Unsqueeze", [b.op("Cast", [mask], { to: ONNX_BOOL }, "bool"), b.ints([1, 2])]); // [batch, 1, 1, key_pos]
  return b.op("And", [causal, keyOk]); // [batch, 1, query_pos, key_pos]
}

/** Layer l's attention (TL components/attention): ln1 → q, k, v → rotary → pattern → z → attn_out. */
function attention(parts: LlamaParts, l: number, residPre: string, withHeadResult: boolean): string {
  const { b, D, H, KV, dh, w, linear } = parts;
  const p = `model.layers.${l}`;
  const h = `blocks.${l}`;
  const x1 = parts.norm(`${h}.ln1`, residPre, `${p}.input_layernorm`);
  const qkvBias = (m: string) => (parts.config.qkvBias ? w(`${p}.self_attn.${m}.bias`) : undefined);
  const q = b.hook(`${h}.attn.hook_q`, linear(x1, w(`${p}.self_attn.q_proj.weight`), D, [H, dh], qkvBias("q_proj"))); // [batch, pos, head, d_head]
  const k = b.hook(`${h}.attn.hook_k`, linear(x1, w(`${p}.self_attn.k_proj.weight`), D, [KV, dh], qkvBias("k_proj"))); // [batch, pos, kv_head, d_head]
  const v = b.hook(`${h}.attn.hook_v`, linear(x1, w(`${p}.self_attn.v_proj.weight`), D, [KV, dh], qkvBias("v_proj")));
  const rq = b.hook(`${h}.attn.hook_rot_q`, parts.rotary(q));
  const rk = b.hook(`${h}.attn.hook_rot_k`, parts.rotary(k));

  const qT = b.op("Transpose", [rq], { perm: [0, 2, 1, 3] }); // [batch, head, pos, d_head]
  let kT = b.op("Transpose", [rk], { perm: [0, 2, 3, 1] }); // [batch, kv_head, d_head, pos]
  let vT = b.op("Transpose", [v], { perm: [0, 2, 1, 3] }); // [batch, kv_head, pos, d_head]
  if (parts.nRep > 1) {
    // GQA: each kv head serves nRep consecutive query heads (HF repeat_kv)
    const rep = parts.repeatKv;
    kT = b.op("Reshape", [b.op("Expand", [b.op("Unsqueeze", [kT, b.ints([2])]), rep]), b.ints([0, H, dh, -1])]);
    vT = b.op("Reshape", [b.op("Expand", [b.op("Unsqueeze", [vT, b.ints([2])]), rep]), b.ints([0, H, -1, dh])]);
  }
  const raw = b.op("Mul", [b.op("MatMul", [qT, kT]), parts.invSqrt]); // [batch, head, query_pos, key_pos]
  const scores = b.hook(`${h}.attn.hook_attn_scores`, b.op("Where", [parts.allowed, raw, parts.lowest], {}, "float32"));
  const pattern = b.hook(`${h}.attn.hook_pattern`, b.op("Softmax", [scores], { axis: -1 }));
  const zT = b.op("MatMul", [pattern, vT]); // [batch, head, pos, d_head]
  const z = b.hook(`${h}.attn.hook_z`, b.op("Transpose", [zT], { perm: [0, 2, 1, 3] })); // [batch, pos, head, d_head]
  const oW = w(`${p}.self_attn.o_proj.weight`); // [d_model, head*d_head]
  const oB = parts.config.outputBias ? w(`${p}.self_attn.o_proj.bias`) : undefined; // [d_model]
  let attnOut: string;
  if (withHeadResult) {
    // TL: hook_result holds each head's output without b_O; attn_out = sum over heads + b_O
    const WO = b.op("Transpose", [b.op("Reshape", [oW, b.ints([D, H, dh])])], { perm: [1, 2, 0] }); // [head, d_head, d_model]
    const result = b.hook(`${h}.attn.hook_result`, b.op("Einsum", [z, WO], { equation: "bphd,hdm->bphm" })); // [batch, pos, head, d_model]
    attnOut = b.op("ReduceSum", [result, b.ints([2])], { keepdims: 0 });
    if (oB) attnOut = b.op("Add", [attnOut, oB]);
  } else {
    attnOut = linear(b.op("Reshape", [z, b.ints([0, 0, H * dh])]), oW, H * dh, [D], oB);
  }
  return b.hook(`${h}.hook_attn_out`, attnOut); // [batch, pos, d_model]
}
