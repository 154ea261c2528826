/**
 * HeldWeights: a model's weights in memory, each in its checkpoint's dtype. A BF16 / F16
 * checkpoint stays as its 2-byte values (half the bytes of a float32 copy: 12.6 GiB instead of
 * 25.1 GiB for CodeLlama-7b); the session planner converts one segment's weights to float32 just
 * before that segment runs, into buffers it reuses (ConversionPool), so no float32 copy of the
 * whole model exists at any point. Compute stays float32: bf16 → float32 is a 16-bit shift and
 * f16 → float32 a table lookup, both exact, so the results equal those of a float32 copy.
 * An edited weight (setWeight) is held as the float32 values given, never rounded back.
 */
import type { StoredTensor, WeightSource } from "../checkpoint/weights";
import { bf16ToFloat32Into, f16ToFloat32Into, firstNonFiniteHalf } from "../checkpoint/safetensors";

/** How weights are held: "stored" keeps BF16 / F16 as 2-byte values, "float32" converts all at load. */
export type WeightDtype = "stored" | "float32";

/** A weight held as 2-byte values. */
export interface HalfWeight {
  dtype: "BF16" | "F16";
  bits: Uint16Array; // [numel] raw 16-bit values, row-major
}

/** float32 values of 2-byte weight bits, into `dst` (exact). */
export function halfToFloat32Into(w: HalfWeight, dst: Float32Array): Float32Array {
  return w.dtype === "BF16" ? bf16ToFloat32Into(w.bits, dst) : f16ToFloat32Into(w.bits, dst);
}

export class HeldWeights {
  private readonly held = new Map<string, StoredTensor>();
  private halfCount = 0;

  /**
   * Read every weight of `shapes` from `source` once, one at a time, in its stored dtype (or as
   * float32 with keep "float32"). `check(name, index)` is called with the flat index of the first
   * non-finite value of a 2-byte weight (the caller raises the error); float32 weights are passed
   * to `checkFloat32`.
   */
  static load(
    source: WeightSource,
    shapes: Map<string, number[]>,
    keep: WeightDtype,
    checks: { float32: (name: string, data: Float32Array) => void; half: (name: string, w: HalfWeight) => void },
  ): HeldWeights {
    const out = new HeldWeights();
    for (const name of shapes.keys()) {
      const stored: StoredTensor =
        keep === "stored" && source.getStored
          ? source.getStored(name)
          : { dtype: "F32", data: source.getFloat32(name) };
      if (stored.dtype === "F32") checks.float32(name, stored.data);
      else checks.half(name, stored);
      out.put(name, stored);
    }
    return out;
  }

  private put(name: string, t: StoredTensor): void {
    const before = this.held.get(name);
    if (before && before.dtype !== "F32") this.halfCount--;
    if (t.dtype !== "F32") this.halfCount++;
    this.held.set(name, t);
  }

  names(): string[] {
    return [...this.held.keys()];
  }

  has(name: string): boolean {
    return this.held.has(name);
  }

  /** True while any weight is held as 2-byte values (runs then convert per segment). */
  anyHalf(): boolean {
    return this.halfCount > 0;
  }

  /** The array of a weight held as float32 (read only, not a copy), else undefined. */
  float32Held(name: string): Float32Array | undefined {
    const t = this.held.get(name);
    return t?.dtype === "F32" ? t.data : undefined;
  }

  /** A weight held as 2-byte values, else undefined. */
  half(name: string): HalfWeight | undefined {
    const t = this.held.get(name);
    return t && t.dtype !== "F32" ? t : undefined;
  }

  /** float32 values of a weight: the held array itself (read only) or a fresh conversion; undefined when unknown. */
  float32(name: string): Float32Array | undefined {
    const t = this.held.get(name);
    if (!t) return undefined;
    return t.dtype === "F32" ? t.data : halfToFloat32Into(t, new Float32Array(t.bits.length));
  }

  /** A fresh float32 copy of a weight (editable). */
  float32Copy(name: string): Float32Array | undefined {
    const t = this.held.get(name);
    if (!t) return undefined;
    return t.dtype === "F32" ? t.data.slice() : this.float32(name);
  }

  /** Replace a weight by float32 values (kept as given: an edit is never rounded to the stored dtype). */
  set(name: string, data: Float32Array): void {
    this.put(name, { dtype: "F32", data });
  }

  /** Bytes held (float32: 4 a value, 2-byte weights: 2). */
  bytes(): number {
    let n = 0;
    for (const t of this.held.values()) n += t.dtype === "F32" ? t.data.byteLength : t.bits.byteLength;
    return n;
  }
}

/** Index of the first non-finite value of a 2-byte weight, or -1. */
export function firstNonFiniteHalfWeight(w: HalfWeight): number {
  return firstNonFiniteHalf(w.bits, w.dtype);
}

/**
 * float32 buffers for converted weights, reused across segments and runs (by length): a
 * segment takes one per 2-byte weight it reads and gives them back after it ran, so the
 * converted float32 never exceeds the largest segment's weights (one layer, or the embedding).
 */
export class ConversionPool {
  private readonly free = new Map<number, Float32Array[]>();

  take(length: number): Float32Array {
    return this.free.get(length)?.pop() ?? new Float32Array(length);
  }

  give(buffer: Float32Array): void {
    const list = this.free.get(buffer.length) ?? [];
    list.push(buffer);
    this.free.set(buffer.length, list);
  }
}
