import { InputError } from "./errors";

/**
 * A dense row-major float32 tensor with named dimensions, e.g.
 * `new Tensor(data, [2, 5, 64], ["batch", "pos", "d_model"])`.
 */
export class Tensor {
  readonly data: Float32Array;
  readonly shape: number[];
  readonly dims: string[];
  readonly strides: number[];

  constructor(data: Float32Array, shape: number[], dims: string[]) {
    if (Object.prototype.toString.call(data) !== "[object Float32Array]")
      // realm-safe instanceof
      throw new InputError(
        `Tensor data must be a Float32Array, got ${data === null ? "null" : Array.isArray(data) ? "an array (wrap it: new Float32Array(values))" : typeof data}`,
      );
    if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0))
      throw new InputError(`Tensor shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    if (!Array.isArray(dims) || !dims.every((d) => typeof d === "string"))
      throw new InputError(`Tensor dims must be an array of dimension names, got ${JSON.stringify(dims)}`);
    const size = shape.reduce((a, b) => a * b, 1);
    if (data.length !== size) {
      throw new InputError(`Tensor data has ${data.length} elements but shape [${shape.join(", ")}] needs ${size}`);
    }
    if (dims.length !== shape.length) {
      throw new InputError(
        `Tensor has ${shape.length} dimensions but ${dims.length} dimension names (${dims.join(", ")})`,
      );
    }
    this.data = data;
    this.shape = shape.slice();
    this.dims = dims.slice();
    this.strides = new Array(shape.length);
    let s = 1;
    for (let i = shape.length - 1; i >= 0; i--) {
      this.strides[i] = s;
      s *= shape[i];
    }
  }

  static zeros(shape: number[], dims: string[]): Tensor {
    return new Tensor(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape, dims);
  }

  get size(): number {
    return this.data.length;
  }

  /** Index of a dimension by name; throws if absent. */
  dim(name: string): number {
    const i = this.dims.indexOf(name);
    if (i < 0) throw new InputError(`Tensor with dims [${this.dims.join(", ")}] has no dimension "${name}"`);
    return i;
  }

  /** Flat offset of a full index; negative indices count from the end. Bounds-checked. */
  offset(index: number[]): number {
    if (index.length !== this.shape.length) {
      throw new InputError(
        `Index has ${index.length} entries, tensor has ${this.shape.length} dims [${this.dims.join(", ")}]`,
      );
    }
    let off = 0;
    for (let d = 0; d < index.length; d++) {
      let i = index[d];
      if (i < 0) i += this.shape[d];
      if (!Number.isInteger(i) || i < 0 || i >= this.shape[d]) {
        throw new InputError(`Index ${index[d]} out of range for dim "${this.dims[d]}" of size ${this.shape[d]}`);
      }
      off += i * this.strides[d];
    }
    return off;
  }

  get(...index: number[]): number {
    return this.data[this.offset(index)];
  }

  set(index: number[], value: number): void {
    this.data[this.offset(index)] = value;
  }

  clone(): Tensor {
    return new Tensor(this.data.slice(), this.shape, this.dims);
  }

  /** The sub-tensor at index i of dimension `dim` (copied), that dimension removed. */
  select(dim: number | string, i: number): Tensor {
    const d = typeof dim === "string" ? this.dim(dim) : dim;
    if (i < 0) i += this.shape[d];
    if (i < 0 || i >= this.shape[d]) {
      throw new InputError(`select: index ${i} out of range for dim "${this.dims[d]}" of size ${this.shape[d]}`);
    }
    const outer = this.shape.slice(0, d).reduce((a, b) => a * b, 1);
    const inner = this.strides[d];
    const out = new Float32Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      const src = o * this.shape[d] * inner + i * inner;
      out.set(this.data.subarray(src, src + inner), o * inner);
    }
    return new Tensor(
      out,
      this.shape.filter((_, k) => k !== d),
      this.dims.filter((_, k) => k !== d),
    );
  }

  /** Plain nested arrays (for tables and JSON). */
  toNested(): unknown {
    const rec = (d: number, off: number): unknown =>
      d === this.shape.length
        ? this.data[off]
        : Array.from({ length: this.shape[d] }, (_, i) => rec(d + 1, off + i * this.strides[d]));
    return rec(0, 0);
  }
}
