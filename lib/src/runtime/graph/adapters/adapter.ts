/**
 * One adapter per architecture (as TransformerLens keeps one weight converter per family): the
 * pieces of the decoder graph that differ between families. llama-graph.ts builds the shared
 * skeleton (embed → blocks of attention + MLP → final norm → unembed) and asks the adapter for
 * the embedding, the norms and the MLP; everything else (rotary, GQA, masks, biases named in the
 * config) is shared.
 */
import type { LlamaConfig } from "../../../checkpoint/config";
import type { GraphBuilder } from "../ir";

/** What an adapter may use from the graph under construction. */
export interface AdapterContext {
  b: GraphBuilder;
  config: LlamaConfig;
  /** A weight input by HF name. */
  w: (name: string) => string;
  /** x [batch, pos, in] @ weight[out, in]^T (+ bias) → [batch, pos, ...outShape] */
  linear: (x: string, weight: string, inDim: number, outShape: number[], bias?: string) => string;
}

export interface ArchitectureAdapter {
  architecture: string;
  /** the structural features this adapter builds; adapterFor refuses a config that says otherwise */
  features: Pick<LlamaConfig, "norm" | "mlp" | "embedScale">;
  /** hook_embed's value from input_ids [batch, pos] → [batch, pos, d_model] */
  embed(ctx: AdapterContext, ids: string): string;
  /**
   * The norm `module` (HF name without .weight, e.g. model.layers.0.input_layernorm) with the TL
   * hooks `${prefix}.hook_scale` and `.hook_normalized` (before weight and bias, as TL); returns the
   * norm's output [batch, pos, d_model].
   */
  norm(ctx: AdapterContext, prefix: string, x: string, module: string): string;
  /** Layer l's MLP from ln2's output [batch, pos, d_model]: TL's mlp hooks; returns the MLP's output. */
  mlp(ctx: AdapterContext, l: number, x: string): string;
}
