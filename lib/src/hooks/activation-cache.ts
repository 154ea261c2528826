/**
 * ActivationCache: hook values of one run (after interventions, as TransformerLens) with
 * TransformerLens-style helpers: accumulated residual stream, residual decomposition, per-head
 * results, and the final RMSNorm applied to a stack of residual directions.
 */
import { InputError } from "../core/errors";
import { Tensor } from "../core/tensor";
import { lastTokenIndex, TokenBatch, tokenIndex } from "../core/token-batch";
import { resolveActName } from "./hook-points";

/** What the cache needs to know of its model (the cache does not hold the model itself). */
export interface CacheModelInfo {
  numLayers: number;
  numHeads: number;
  hiddenSize: number;
  /** final RMSNorm weight [d_model] (applyLn multiplies by it; Gemma: 1 + w) */
  finalNormWeight: Float32Array;
  /** "layer": the final norm is a LayerNorm (Starcoder2) and applyLnToStack refuses; default "rms" */
  finalNorm?: "rms" | "layer";
  /** per-head output projection [head, d_head, d_model]: lets stackHeadResults work from hook_z */
  W_O?: (layer: number) => Tensor;
}

/**
 * A position of each prompt: its own token index (0 = its first token, BOS included; negative from
 * its last token), mapped to the padded index row by row, or "last" (the same as -1).
 */
export type CachePos = number | "last";

/**
 * The one head label format, "L{layer}H{head}" (TL's stack_head_results labels).
 *
 * @example
 * headLabel(4, 2); // "L4H2"
 */
export function headLabel(layer: number, head: number): string {
  return `L${layer}H${head}`;
}

/** Options of the stacking helpers (decomposeResid, stackHeadResults). */
export interface StackOptions {
  /**
   * Layer
   *
   * Stack the components of layers 0..layer-1 only.
   *
   * @default numLayers (every layer)
   */
  layer?: number;
  /**
   * Position
   *
   * Which position of each prompt to stack (its own token index, negative from its end, or "last").
   *
   * @default "last"
   */
  pos?: CachePos;
  /**
   * Apply the final norm
   *
   * Divide by the cached ln_final.hook_scale and multiply by the final norm weight (applyLnToStack),
   * so that stack @ W_U gives each component's direct logit contribution.
   *
   * @default false
   */
  applyLn?: boolean;
}

/** Options of accumulatedResid. */
export interface AccumulatedResidOptions extends StackOptions {
  /**
   * Layer
   *
   * Residual streams up to resid_pre of this layer; numLayers (or -1) ends with "final_post".
   *
   * @default numLayers
   */
  layer?: number;
  /**
   * Include resid_mid
   *
   * Add each layer's resid_mid ("{l}_mid") between its resid_pre and the next.
   *
   * @default false
   */
  inclMid?: boolean;
}

/** A stack of residual-stream components and their labels (one label per component). */
export interface StackResult {
  stack: Tensor; // [component, batch, d_model]
  labels: string[]; // [component]
}

/**
 * Hook values of one run by name, with TL's helpers.
 *
 * @example
 * const { cache } = await model.runWithCache(prompts, { names: () => true });
 * cache.get("blocks.0.attn.hook_pattern"); // [batch, head, query_pos, key_pos]
 * cache.atPos("blocks.5.hook_resid_post"); // [batch, d_model] at each prompt's last token
 */
export class ActivationCache {
  private readonly values: Map<string, Tensor>;
  readonly batch: TokenBatch;
  readonly model: CacheModelInfo;

  constructor(values: Map<string, Tensor>, batch: TokenBatch, model: CacheModelInfo) {
    this.values = values;
    this.batch = batch;
    this.model = model;
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  /**
   * A cached hook value by full name, or by TL shorthand and layer as TL's `cache["pattern", 3]`
   * (actName: resid_pre, resid_mid, resid_post, attn_out, mlp_out, q, k, v, z, pattern,
   * attn_scores, result, pre, post, scale / normalized with "ln1" / "ln2", embed). An unknown
   * shorthand is a HookNameError; a valid hook that was not cached throws naming what is cached.
   *
   * @example
   * const z = cache.get("blocks.2.attn.hook_z"); // [batch, pos, head, d_head]
   * const pattern = cache.get("pattern", 3); // blocks.3.attn.hook_pattern [batch, head, query_pos, key_pos]
   * const scale = cache.get("scale", 0, "ln1"); // blocks.0.ln1.hook_scale [batch, pos, one]
   */
  get(nameOrShorthand: string, layer?: number, layerType?: string): Tensor {
    const name =
      layer === undefined && layerType === undefined && this.values.has(nameOrShorthand)
        ? nameOrShorthand
        : resolveActName(nameOrShorthand, this.model, layer, layerType);
    const v = this.values.get(name);
    if (!v) {
      const held = this.names();
      const shown = held.length
        ? held.slice(0, 8).join(", ") + (held.length > 8 ? `, ... (${held.length})` : "")
        : "nothing";
      throw new InputError(`The cache does not hold "${name}" (it holds ${shown}); add it to runWithCache's names`, {
        field: name,
      });
    }
    return v;
  }

  names(): string[] {
    return [...this.values.keys()];
  }

  get size(): number {
    return this.values.size;
  }

  /**
   * A [batch, pos, ...rest] value at one position of each prompt → [batch, ...rest]. `pos` is each
   * prompt's own token index (0 = its first token, BOS included; -1 = its last, like "last"),
   * whatever the padding: prompts of different lengths give the same token of their own.
   *
   * @example
   * cache.atPos("blocks.3.hook_resid_mid", "last"); // [batch, d_model]
   * cache.atPos("hook_embed", 0); // [batch, d_model]: every prompt's BOS
   */
  atPos(name: string, pos: CachePos = "last"): Tensor {
    const t = this.get(name);
    const d = t.dims.indexOf("pos");
    if (d !== 1 || t.dims[0] !== "batch")
      throw new InputError(`${name} has dims [${t.dims.join(", ")}], expected [batch, pos, ...]`, { field: name });
    const [B, P] = t.shape;
    const inner = t.strides[1];
    const out = new Float32Array(B * inner);
    if (pos !== "last" && !Number.isInteger(pos))
      throw new InputError(`Position ${pos} must be an integer or "last"`, { field: "pos" });
    for (let b = 0; b < B; b++) {
      const p = pos === "last" ? lastTokenIndex(this.batch, b) : tokenIndex(this.batch, b, pos);
      if (p >= P) throw new InputError(`Position ${pos} out of range for ${P} positions`, { field: "pos" });
      out.set(t.data.subarray(b * t.strides[0] + p * inner, b * t.strides[0] + (p + 1) * inner), b * inner);
    }
    return new Tensor(out, [B, ...t.shape.slice(2)], ["batch", ...t.dims.slice(2)]);
  }

  /**
   * Residual stream before each layer and after the last, as TL accumulated_resid: labels
   * "0_pre", ("0_mid",) "1_pre", ..., "final_post". `layer` (default numLayers) includes
   * resid_pre of that layer itself; layer = numLayers ends with "final_post" (last resid_post).
   *
   * @example
   * const { stack, labels } = cache.accumulatedResid({ pos: "last", applyLn: true }); // stack [component, batch, d_model]
   * // labels: ["0_pre", "1_pre", ..., "final_post"]; stack @ W_U is the logit lens
   */
  accumulatedResid(opts: AccumulatedResidOptions = {}): StackResult {
    const L = this.model.numLayers;
    const layer = opts.layer === undefined || opts.layer === -1 ? L : opts.layer;
    if (!Number.isInteger(layer) || layer < 0 || layer > L)
      throw new InputError(`layer ${layer} out of range 0..${L}`, { field: "layer" });
    const parts: Tensor[] = [];
    const labels: string[] = [];
    for (let l = 0; l <= layer; l++) {
      if (l === L) {
        parts.push(this.atPos(`blocks.${L - 1}.hook_resid_post`, opts.pos));
        labels.push("final_post");
        continue;
      }
      parts.push(this.atPos(`blocks.${l}.hook_resid_pre`, opts.pos));
      labels.push(`${l}_pre`);
      if (opts.inclMid && l < layer) {
        parts.push(this.atPos(`blocks.${l}.hook_resid_mid`, opts.pos));
        labels.push(`${l}_mid`);
      }
    }
    return this.finish(parts, labels, opts);
  }

  /**
   * Residual stream as a sum of components: "embed", "{l}_attn_out", "{l}_mlp_out" (TL decompose_resid).
   *
   * @example
   * const { stack, labels } = cache.decomposeResid({ pos: "last", applyLn: true }); // [component, batch, d_model]
   * // summed over components: the final resid_post at that position
   */
  decomposeResid(opts: StackOptions = {}): StackResult {
    const L = opts.layer ?? this.model.numLayers;
    const parts = [this.atPos("hook_embed", opts.pos)];
    const labels = ["embed"];
    for (let l = 0; l < L; l++) {
      parts.push(this.atPos(`blocks.${l}.hook_attn_out`, opts.pos), this.atPos(`blocks.${l}.hook_mlp_out`, opts.pos));
      labels.push(`${l}_attn_out`, `${l}_mlp_out`);
    }
    return this.finish(parts, labels, opts);
  }

  /**
   * Every head's output [layer*head, batch, d_model], labels "L{l}H{h}": from attn.hook_result,
   * or (as TL) computed from attn.hook_z and W_O when only z was cached.
   *
   * @example
   * const { stack, labels } = cache.stackHeadResults({ pos: "last", applyLn: true }); // [layer*head, batch, d_model]
   * labels[0]; // "L0H0"
   */
  stackHeadResults(opts: StackOptions = {}): StackResult {
    const L = opts.layer ?? this.model.numLayers;
    const parts: Tensor[] = [];
    const labels: string[] = [];
    for (let l = 0; l < L; l++) {
      const r = this.headResultAtPos(l, opts.pos); // [batch, head, d_model]
      for (let h = 0; h < r.shape[1]; h++) {
        parts.push(r.select(1, h));
        labels.push(headLabel(l, h));
      }
    }
    return this.finish(parts, labels, opts);
  }

  /**
   * Layer l's per-head outputs at one position: [batch, head, d_model].
   *
   * @example
   * cache.headResultAtPos(4, -1).select(1, 2); // head 2 of layer 4: [batch, d_model]
   */
  headResultAtPos(layer: number, pos: CachePos = "last"): Tensor {
    const resultName = `blocks.${layer}.attn.hook_result`;
    const zName = `blocks.${layer}.attn.hook_z`;
    if (this.has(resultName) || !this.has(zName) || !this.model.W_O) return this.atPos(resultName, pos);
    const z = this.atPos(zName, pos); // [batch, head, d_head]
    const WO = this.model.W_O(layer); // [head, d_head, d_model]
    const [B, H] = z.shape;
    const D = WO.shape[2];
    const out = new Float32Array(B * H * D); // [batch, head, d_model]
    for (let h = 0; h < H; h++) for (let b = 0; b < B; b++) addHeadResult(out, z.data, WO.data, b, h, H, D);
    return new Tensor(out, [B, H, D], ["batch", "head", "d_model"]);
  }

  /**
   * Final RMSNorm applied to a stack [component, batch, d_model]: divide by the cached
   * ln_final.hook_scale at `pos` and multiply by the final norm weight, so stack @ W_U gives
   * each component's direct logit contribution.
   *
   * @example
   * const { stack } = cache.decomposeResid({ pos: "last" }); // [component, batch, d_model]
   * const normed = cache.applyLnToStack(stack, { pos: "last" }); // same shape
   */
  applyLnToStack(stack: Tensor, opts: { pos?: CachePos } = {}): Tensor {
    const [C, B, D] = stack.shape;
    if (stack.shape.length !== 3 || D !== this.model.hiddenSize || B !== this.batch.ids.length) {
      throw new InputError(
        `applyLnToStack: stack has shape [${stack.shape.join(", ")}], expected [component, ${this.batch.ids.length}, ${this.model.hiddenSize}]`,
        { field: "stack" },
      );
    }
    if (this.model.finalNorm === "layer")
      throw new InputError(
        "applyLnToStack: this model's final norm is a LayerNorm (centred, with a bias): dividing by ln_final.hook_scale and multiplying by the weight would not reproduce it",
        { field: "stack" },
      );
    const scale = this.atPos("ln_final.hook_scale", opts.pos); // [batch, one]
    const w = this.model.finalNormWeight;
    const out = new Float32Array(stack.size);
    for (let c = 0; c < C; c++) {
      for (let b = 0; b < B; b++) {
        const s = scale.data[b];
        const off = (c * B + b) * D;
        for (let d = 0; d < D; d++) out[off + d] = (stack.data[off + d] / s) * w[d];
      }
    }
    return new Tensor(out, stack.shape, stack.dims);
  }

  private finish(parts: Tensor[], labels: string[], opts: { pos?: CachePos; applyLn?: boolean }): StackResult {
    const B = this.batch.ids.length;
    const D = this.model.hiddenSize;
    const data = new Float32Array(parts.length * B * D);
    parts.forEach((p, i) => data.set(p.data, i * B * D));
    let stack = new Tensor(data, [parts.length, B, D], ["component", "batch", "d_model"]);
    if (opts.applyLn) stack = this.applyLnToStack(stack, { pos: opts.pos });
    return { stack, labels };
  }
}

const f32 = Math.fround;

/**
 * out[b, h] += z[b, h, k] · W_O[h, k] for k = 0..d_head-1, rounded to float32 after every k, in
 * k order (what `out[d] += z·w` one k at a time stores; each float32 product is exact in a double),
 * four k per pass over the row: the same floats, in ~half the time of one k per pass (fewer loads and
 * stores of `out`).
 */
function addHeadResult(
  out: Float32Array, // [batch, head, d_model]
  z: Float32Array, // [batch, head, d_head]
  WO: Float32Array, // [head, d_head, d_model]
  b: number,
  h: number,
  H: number,
  D: number,
): void {
  const dh = z.length / (out.length / D);
  const o = (b * H + h) * D;
  const zo = (b * H + h) * dh;
  let k = 0;
  for (; k + 4 <= dh; k += 4) {
    const [z0, z1, z2, z3] = [z[zo + k], z[zo + k + 1], z[zo + k + 2], z[zo + k + 3]];
    const w0 = (h * dh + k) * D;
    const [w1, w2, w3] = [w0 + D, w0 + 2 * D, w0 + 3 * D];
    for (let d = 0; d < D; d++) {
      let t = f32(out[o + d] + z0 * WO[w0 + d]);
      t = f32(t + z1 * WO[w1 + d]);
      t = f32(t + z2 * WO[w2 + d]);
      out[o + d] = t + z3 * WO[w3 + d];
    }
  }
  for (; k < dh; k++) {
    const zv = z[zo + k];
    const w = (h * dh + k) * D;
    for (let d = 0; d < D; d++) out[o + d] += zv * WO[w + d];
  }
}
