/**
 * ActivationCache: hook values of one run (after interventions, as TransformerLens) with
 * TransformerLens-style helpers: accumulated residual stream, residual decomposition, per-head
 * results, and the final RMSNorm applied to a stack of residual directions.
 */
import { InputError } from "../core/errors";
import { Tensor } from "../core/tensor";
import { lastTokenIndex, TokenBatch } from "../core/token-batch";

export interface CacheModelInfo {
  numLayers: number;
  numHeads: number;
  hiddenSize: number;
  /** final RMSNorm weight [d_model] (applyLn multiplies by it) */
  finalNormWeight: Float32Array;
  /** per-head output projection [head, d_head, d_model]: lets stackHeadResults work from hook_z */
  W_O?: (layer: number) => Tensor;
}

/** A position: an index along pos (negative = from the end) or "last" (each prompt's last token). */
export type CachePos = number | "last";

export interface StackResult {
  stack: Tensor; // [component, batch, d_model]
  labels: string[];
}

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

  /** A cached hook value; throws naming what is cached when absent. */
  get(name: string): Tensor {
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

  /** [batch, ...rest] value at one position of each prompt → [batch, ...rest] without pos. */
  atPos(name: string, pos: CachePos = "last"): Tensor {
    const t = this.get(name);
    const d = t.dims.indexOf("pos");
    if (d !== 1 || t.dims[0] !== "batch")
      throw new InputError(`${name} has dims [${t.dims.join(", ")}], expected [batch, pos, ...]`, { field: name });
    const [B, P] = t.shape;
    const inner = t.strides[1];
    const out = new Float32Array(B * inner);
    for (let b = 0; b < B; b++) {
      const p = pos === "last" ? lastTokenIndex(this.batch, b) : pos < 0 ? pos + P : pos;
      if (!Number.isInteger(p) || p < 0 || p >= P)
        throw new InputError(`Position ${pos} out of range for ${P} positions`, { field: "pos" });
      out.set(t.data.subarray(b * t.strides[0] + p * inner, b * t.strides[0] + (p + 1) * inner), b * inner);
    }
    return new Tensor(out, [B, ...t.shape.slice(2)], ["batch", ...t.dims.slice(2)]);
  }

  /**
   * Residual stream before each layer and after the last, as TL accumulated_resid: labels
   * "0_pre", ("0_mid",) "1_pre", ..., "final_post". `layer` (default numLayers) includes
   * resid_pre of that layer itself; layer = numLayers ends with "final_post" (last resid_post).
   */
  accumulatedResid(opts: { layer?: number; pos?: CachePos; applyLn?: boolean; inclMid?: boolean } = {}): StackResult {
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

  /** Residual stream as a sum of components: "embed", "{l}_attn_out", "{l}_mlp_out" (TL decompose_resid). */
  decomposeResid(opts: { layer?: number; pos?: CachePos; applyLn?: boolean } = {}): StackResult {
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
   */
  stackHeadResults(opts: { layer?: number; pos?: CachePos; applyLn?: boolean } = {}): StackResult {
    const L = opts.layer ?? this.model.numLayers;
    const parts: Tensor[] = [];
    const labels: string[] = [];
    for (let l = 0; l < L; l++) {
      const r = this.headResultAtPos(l, opts.pos); // [batch, head, d_model]
      for (let h = 0; h < r.shape[1]; h++) {
        parts.push(r.select(1, h));
        labels.push(`L${l}H${h}`);
      }
    }
    return this.finish(parts, labels, opts);
  }

  /** Layer l's per-head outputs at one position: [batch, head, d_model]. */
  headResultAtPos(layer: number, pos: CachePos = "last"): Tensor {
    const resultName = `blocks.${layer}.attn.hook_result`;
    const zName = `blocks.${layer}.attn.hook_z`;
    if (this.has(resultName) || !this.has(zName) || !this.model.W_O) return this.atPos(resultName, pos);
    const z = this.atPos(zName, pos); // [batch, head, d_head]
    const WO = this.model.W_O(layer); // [head, d_head, d_model]
    const [B, H, dh] = z.shape;
    const D = WO.shape[2];
    const out = new Float32Array(B * H * D);
    for (let b = 0; b < B; b++) {
      for (let h = 0; h < H; h++) {
        const o = (b * H + h) * D;
        for (let k = 0; k < dh; k++) {
          const zv = z.data[(b * H + h) * dh + k];
          const w = (h * dh + k) * D;
          for (let d = 0; d < D; d++) out[o + d] += zv * WO.data[w + d];
        }
      }
    }
    return new Tensor(out, [B, H, D], ["batch", "head", "d_model"]);
  }

  /**
   * Final RMSNorm applied to a stack [component, batch, d_model]: divide by the cached
   * ln_final.hook_scale at `pos` and multiply by the final norm weight, so stack @ W_U gives
   * each component's direct logit contribution.
   */
  applyLnToStack(stack: Tensor, opts: { pos?: CachePos } = {}): Tensor {
    const [C, B, D] = stack.shape;
    if (stack.shape.length !== 3 || D !== this.model.hiddenSize || B !== this.batch.ids.length) {
      throw new InputError(
        `applyLnToStack: stack has shape [${stack.shape.join(", ")}], expected [component, ${this.batch.ids.length}, ${this.model.hiddenSize}]`,
        { field: "stack" },
      );
    }
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
