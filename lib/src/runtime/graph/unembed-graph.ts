/**
 * The analysis math as small ONNX graphs over the model's own weight tensors (graph inputs fed
 * from the same Float32Arrays as the forward, never copied): residual directions through the final
 * RMSNorm and onto the unembedding, for the whole vocabulary or only some columns (token ids), or
 * only the rank of one token per row over the whole vocabulary.
 *
 * Inputs: `x` float32 [row, d_model]; `scale` float32 [row, 1] when the norm divides by given
 * scales; `ids` int64 [column] when only those columns are decoded; `target` int64 [row, 1] when
 * ranks are asked for; `final_norm_weight` float32 [d_model] when a norm is applied: the weight the
 * normalised residual is multiplied by, fed by HookedLlama (`finalNormWeight`, where each family's
 * form of it is defined once: Gemma's 1 + w); the unembedding by HF name (`lm_head.weight` or,
 * tied, `model.embed_tokens.weight`, HF layout [vocab, d_model]). Output: `out` float32 [row,
 * vocab] or [row, column], or with ranks [row]: 1 + the number of tokens whose logit is larger
 * than the target's (1 = top).
 */
import { LlamaConfig } from "../../checkpoint/config";
import { ConfigError } from "../../core/errors";
import { Graph, GraphBuilder } from "./ir";

/** ONNX TensorProto element type of float32 (Cast's `to`). */
const ONNX_FLOAT = 1;

/**
 * How rows are normalised before the unembedding:
 * "none" (x @ W_U as is), "own-rms" (the final RMSNorm of each row: x / sqrt(mean(x²) + eps) × w),
 * "scale" (x / the given scale × w: TransformerLens' apply_ln_to_stack with a cached scale).
 */
export type UnembedNorm = "none" | "own-rms" | "scale";

/** What one unembedding graph computes. */
export interface UnembedGraphOptions {
  norm: UnembedNorm;
  /** decode only the columns named by the `ids` input (else the whole vocabulary) */
  columns: boolean;
  /** return, per row, the rank of the `target` token over the whole vocabulary (not the logits) */
  rank?: boolean;
}

/** HF name of the unembedding weight [vocab, d_model] (the embedding when tied). */
export function unembedWeightName(config: LlamaConfig): string {
  return config.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight";
}

/** Name of the graph input the final norm's weight is fed to (HookedLlama's finalNormWeight). */
export const FINAL_NORM_WEIGHT_INPUT = "final_norm_weight";

/** A cache key for one graph of this family. */
export function unembedGraphKey(opts: UnembedGraphOptions): string {
  return `unembed|${opts.norm}|${opts.rank ? "rank" : opts.columns ? "columns" : "vocab"}`;
}

/** The graph of `opts` for a model: out = norm(x) @ W_U (or its `ids` columns, or the target's rank). */
export function buildUnembedGraph(config: LlamaConfig, opts: UnembedGraphOptions): Graph {
  const b = new GraphBuilder();
  const D = config.hiddenSize;
  const x = b.input("x", "float32", ["row", D]); // [row, d_model]
  const W = b.input(unembedWeightName(config), "float32", [config.vocabSize, D]); // [vocab, d_model]
  let xn = x;
  if (opts.norm !== "none") {
    if (config.norm === "layer")
      throw new ConfigError(
        `unembed: ${config.architecture}'s final norm is a LayerNorm (centred, with a bias), not an RMSNorm; ` +
          `decode with norm: "none" on values you normalised yourself`,
        { field: "norm" },
      );
    const w = b.input(FINAL_NORM_WEIGHT_INPUT, "float32", [D]); // [d_model]
    let scale: string; // [row, 1]
    if (opts.norm === "scale") scale = b.input("scale", "float32", ["row", 1]);
    else {
      const ms = b.op("ReduceMean", [b.op("Mul", [x, x]), b.ints([-1])], { keepdims: 1 }); // [row, 1]
      scale = b.op("Sqrt", [b.op("Add", [ms, b.scalar(config.rmsNormEps)])]);
    }
    xn = b.op("Mul", [b.op("Div", [x, scale]), w]); // [row, d_model]
  }
  let cols = W;
  if (opts.columns && !opts.rank) {
    const ids = b.input("ids", "int64", ["column"]);
    cols = b.op("Gather", [W, ids], { axis: 0 }); // [column, d_model]
  }
  let out = b.op("Gemm", [xn, cols], { transB: 1 }); // [row, vocab | column]
  if (opts.rank) {
    const target = b.input("target", "int64", ["row", 1]);
    const own = b.op("GatherElements", [out, target], { axis: 1 }); // [row, 1] the target's logit
    const above = b.op("Cast", [b.op("Greater", [out, own], {}, "bool")], { to: ONNX_FLOAT }, "float32"); // [row, vocab]
    out = b.op("Add", [b.op("ReduceSum", [above, b.ints([1])], { keepdims: 0 }), b.scalar(1)]); // [row]
  }
  b.output("out", out);
  return b.build(["out"]);
}
