/**
 * The analysis math as small ONNX graphs over the model's own weight tensors (graph inputs fed
 * from the same Float32Arrays as the forward, never copied): residual directions through the final
 * RMSNorm and onto the unembedding, for the whole vocabulary or only some columns (token ids).
 *
 * Inputs: `x` float32 [row, d_model]; `scale` float32 [row, 1] when the norm divides by given
 * scales; `ids` int64 [column] when only those columns are decoded; the weights by HF name
 * (`lm_head.weight` or, tied, `model.embed_tokens.weight`, HF layout [vocab, d_model], and
 * `model.norm.weight` [d_model]). Output: `out` float32 [row, vocab] or [row, column].
 */
import { LlamaConfig } from "../../checkpoint/config";
import { ConfigError } from "../../core/errors";
import { Graph, GraphBuilder } from "./ir";

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
}

/** HF name of the unembedding weight [vocab, d_model] (the embedding when tied). */
export function unembedWeightName(config: LlamaConfig): string {
  return config.tieWordEmbeddings ? "model.embed_tokens.weight" : "lm_head.weight";
}

/** A cache key for one graph of this family. */
export function unembedGraphKey(opts: UnembedGraphOptions): string {
  return `unembed|${opts.norm}|${opts.columns ? "columns" : "vocab"}`;
}

/** The graph of `opts` for a model: out = norm(x) @ W_U (or its `ids` columns). */
export function buildUnembedGraph(config: LlamaConfig, opts: UnembedGraphOptions): Graph {
  const b = new GraphBuilder();
  const D = config.hiddenSize;
  const x = b.input("x", "float32", ["row", D]); // [row, d_model]
  const wName = unembedWeightName(config);
  const W = b.input(wName, "float32", [config.vocabSize, D]); // [vocab, d_model]
  let xn = x;
  if (opts.norm !== "none") {
    if (config.norm === "layer")
      throw new ConfigError(
        `unembed: ${config.architecture}'s final norm is a LayerNorm (centred, with a bias), not an RMSNorm; ` +
          `decode with norm: "none" on values you normalised yourself`,
        { field: "norm" },
      );
    let w = b.input("model.norm.weight", "float32", [D]); // [d_model]
    if (config.norm === "rms_one_plus") w = b.op("Add", [w, b.scalar(1)]); // Gemma: x̂ × (1 + w), in float32 as transformers
    let scale: string; // [row, 1]
    if (opts.norm === "scale") scale = b.input("scale", "float32", ["row", 1]);
    else {
      const ms = b.op("ReduceMean", [b.op("Mul", [x, x]), b.ints([-1])], { keepdims: 1 }); // [row, 1]
      scale = b.op("Sqrt", [b.op("Add", [ms, b.scalar(config.rmsNormEps)])]);
    }
    xn = b.op("Mul", [b.op("Div", [x, scale]), w]); // [row, d_model]
  }
  let cols = W;
  if (opts.columns) {
    const ids = b.input("ids", "int64", ["column"]);
    cols = b.op("Gather", [W, ids], { axis: 0 }); // [column, d_model]
  }
  const out = b.op("Gemm", [xn, cols], { transB: 1 }); // [row, vocab | column]
  b.output("out", out);
  return b.build(["out"]);
}
