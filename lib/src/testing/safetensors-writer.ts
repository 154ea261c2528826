/**
 * Writing safetensors files (F32, F16, BF16) for tests and scripts. Tensors are written one at a
 * time: a tensor's data may be a function, called only when that tensor is written, so a large
 * random checkpoint never exists in memory all at once.
 */
import * as fs from "fs";
import { SafetensorsDtype, DTYPE_BYTES } from "../checkpoint/safetensors";
import { SafetensorsError } from "../core/errors";

export interface TensorToWrite {
  name: string;
  shape: number[];
  /** Row-major float values; converted to `dtype` with round-to-nearest-even. */
  data: Float32Array | number[] | (() => Float32Array | number[]);
  /** Overrides the file's default dtype for this tensor. */
  dtype?: SafetensorsDtype;
}

/** How a safetensors file is written. */
export interface WriteSafetensorsOptions {
  /**
   * Default dtype
   *
   * The stored dtype of tensors that do not set their own.
   *
   * @default "F32"
   */
  dtype?: SafetensorsDtype;
  /**
   * Metadata
   *
   * The header's __metadata__ (strings only).
   *
   * @default none
   */
  metadata?: Record<string, string>;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → bfloat16 bits, round to nearest even; NaN stays a (quiet) NaN. */
export function float32ToBf16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) & 0x8000) | 0x7fc0;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 → IEEE half bits, round to nearest even; overflow → ±Infinity. */
export function float32ToF16Bits(x: number): number {
  f32[0] = x;
  const u = u32[0];
  const sign = (u >>> 16) & 0x8000;
  const a = u & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00; // NaN
  if (a >= 0x47800000) return sign | 0x7c00; // >= 65536 (and Inf) → Inf
  if (a < 0x38800000) {
    // |x| < 2^-14: half subnormal k·2^-24, k rounded half-to-even (k = 1024 is the smallest normal).
    const v = Math.abs(f32[0]) * 2 ** 24;
    let k = Math.floor(v);
    const r = v - k;
    if (r > 0.5 || (r === 0.5 && k % 2 === 1)) k += 1;
    return sign | k;
  }
  const exp = (a >>> 23) - 127 + 15;
  const mant = a & 0x7fffff;
  let h = (exp << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h += 1; // carry into the exponent is correct (65504 → Inf)
  return sign | h;
}

function encode(values: Float32Array | number[], dtype: SafetensorsDtype, name: string, numel: number): Uint8Array {
  if (values.length !== numel) {
    throw new SafetensorsError(`tensor "${name}": ${values.length} values given but its shape needs ${numel}`, {
      field: name,
    });
  }
  if (dtype === "F32") {
    const out = values instanceof Float32Array ? values : Float32Array.from(values);
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  }
  const out = new Uint16Array(numel);
  const conv = dtype === "BF16" ? float32ToBf16Bits : float32ToF16Bits;
  for (let i = 0; i < numel; i++) out[i] = conv(values[i]);
  return new Uint8Array(out.buffer);
}

/** The header JSON (padded with spaces to a multiple of 8 bytes, as the Python writer does). */
function buildHeader(tensors: TensorToWrite[], opts: WriteSafetensorsOptions): { header: Buffer; sizes: number[] } {
  const header: Record<string, unknown> = {};
  if (opts.metadata) header.__metadata__ = opts.metadata;
  const sizes: number[] = [];
  const seen = new Set<string>();
  let offset = 0;
  for (const t of tensors) {
    if (seen.has(t.name)) throw new SafetensorsError(`tensor "${t.name}" is listed twice`, { field: t.name });
    seen.add(t.name);
    const dtype = t.dtype ?? opts.dtype ?? "F32";
    if (!(dtype in DTYPE_BYTES))
      throw new SafetensorsError(`tensor "${t.name}": unsupported dtype "${dtype}"`, { field: t.name });
    const size = t.shape.reduce((a, d) => a * d, 1) * DTYPE_BYTES[dtype];
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    sizes.push(size);
    offset += size;
  }
  let json = JSON.stringify(header);
  const pad = (8 - (Buffer.byteLength(json) % 8)) % 8;
  json += " ".repeat(pad);
  const body = Buffer.from(json, "utf8");
  const out = Buffer.alloc(8 + body.length);
  out.writeBigUInt64LE(BigInt(body.length), 0);
  body.copy(out, 8);
  return { header: out, sizes };
}

/**
 * Write `tensors` to `file` in order, one tensor in memory at a time.
 *
 * @example
 * writeSafetensors("/tmp/w.safetensors", [{ name: "w", shape: [2, 3], data: [1, 2, 3, 4, 5, 6] }], { dtype: "BF16" });
 */
export function writeSafetensors(file: string, tensors: TensorToWrite[], opts: WriteSafetensorsOptions = {}): void {
  const { header } = buildHeader(tensors, opts);
  const fd = fs.openSync(file, "w");
  try {
    fs.writeSync(fd, header);
    for (const t of tensors) {
      const values = typeof t.data === "function" ? t.data() : t.data;
      const numel = t.shape.reduce((a, d) => a * d, 1);
      const bytes = encode(values, t.dtype ?? opts.dtype ?? "F32", t.name, numel);
      let done = 0;
      while (done < bytes.length) done += fs.writeSync(fd, bytes, done, Math.min(1 << 30, bytes.length - done));
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** The whole file as one buffer (small tensors only; tests use it to craft bad files). */
export function encodeSafetensors(tensors: TensorToWrite[], opts: WriteSafetensorsOptions = {}): Buffer {
  const { header } = buildHeader(tensors, opts);
  const parts: Uint8Array[] = [header];
  for (const t of tensors) {
    const values = typeof t.data === "function" ? t.data() : t.data;
    parts.push(
      encode(
        values,
        t.dtype ?? opts.dtype ?? "F32",
        t.name,
        t.shape.reduce((a, d) => a * d, 1),
      ),
    );
  }
  return Buffer.concat(parts);
}
