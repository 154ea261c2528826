/**
 * The tensor names and shapes each architecture's checkpoint must hold, from its config
 * (HF layouts: [out, in] for projections). The one list the weight check, the graph's inputs and
 * the random-checkpoint writer read.
 */
import type { LlamaConfig } from "./config";

/** Every tensor name of a checkpoint with its expected shape, in HF's module order. */
export function architectureWeights(config: LlamaConfig): Map<string, number[]> {
  const d = config.hiddenSize;
  const m = config.intermediateSize;
  const qDim = config.numHeads * config.headDim;
  const kvDim = config.numKvHeads * config.headDim;
  const out = new Map<string, number[]>();
  const norm = (name: string) => {
    out.set(`${name}.weight`, [d]);
    if (config.norm === "layer") out.set(`${name}.bias`, [d]);
  };
  const linear = (name: string, outDim: number, inDim: number, bias: boolean) => {
    out.set(`${name}.weight`, [outDim, inDim]);
    if (bias) out.set(`${name}.bias`, [outDim]);
  };
  out.set("model.embed_tokens.weight", [config.vocabSize, d]);
  for (let l = 0; l < config.numLayers; l++) {
    const p = `model.layers.${l}`;
    norm(`${p}.input_layernorm`);
    linear(`${p}.self_attn.q_proj`, qDim, d, config.qkvBias);
    linear(`${p}.self_attn.k_proj`, kvDim, d, config.qkvBias);
    linear(`${p}.self_attn.v_proj`, kvDim, d, config.qkvBias);
    linear(`${p}.self_attn.o_proj`, d, qDim, config.outputBias);
    norm(`${p}.post_attention_layernorm`);
    if (config.mlp === "gated") {
      linear(`${p}.mlp.gate_proj`, m, d, config.mlpBias);
      linear(`${p}.mlp.up_proj`, m, d, config.mlpBias);
      linear(`${p}.mlp.down_proj`, d, m, config.mlpBias);
    } else {
      linear(`${p}.mlp.c_fc`, m, d, config.mlpBias);
      linear(`${p}.mlp.c_proj`, d, m, config.mlpBias);
    }
  }
  norm("model.norm");
  if (!config.tieWordEmbeddings) out.set("lm_head.weight", [config.vocabSize, d]);
  return out;
}
