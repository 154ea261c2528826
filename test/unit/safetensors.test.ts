import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { bf16ToFloat32, f16ToFloat32 } from "../../lib/src/checkpoint/safetensors";
import {
  writeSafetensors,
  encodeSafetensors,
  float32ToBf16Bits,
  float32ToF16Bits,
} from "../../lib/src/testing/safetensors-writer";
import { SafetensorsFile, SafetensorsError } from "../../lib/src";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "st-"));
process.on("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
let counter = 0;
const tmp = () => path.join(dir, `f${counter++}.safetensors`);

/** A file with a hand-written header followed by `dataBytes` zero bytes. */
function craft(header: unknown, dataBytes: number, lengthOverride?: bigint): string {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(lengthOverride ?? BigInt(json.length));
  const file = tmp();
  fs.writeFileSync(file, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
  return file;
}

function throwsSt(fn: () => unknown, field: string | undefined, ...words: string[]) {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SafetensorsError, `expected SafetensorsError, got ${e}`);
    assert.equal(e.field, field);
    for (const w of words) assert.ok(e.message.includes(w), `message "${e.message}" should mention "${w}"`);
    return true;
  });
}

test("F32 round trip with metadata; header padded to 8 bytes; odd offsets still read exactly", () => {
  const file = tmp();
  const a = new Float32Array([1.5, -2, 3.25, 0, 1e-30, -7]); // [2, 3]
  // An F16 tensor of odd length first puts the F32 tensor at a byte offset (6) not divisible by 4.
  const h = [0.5, 0.25, -1]; // [3] F16 → 6 bytes
  writeSafetensors(
    file,
    [
      { name: "h", shape: [3], data: h, dtype: "F16" },
      { name: "a", shape: [2, 3], data: a },
    ],
    { metadata: { format: "pt" } },
  );
  const f = SafetensorsFile.open(file);
  assert.deepEqual(f.metadata, { format: "pt" });
  assert.equal((f.dataStart - 8) % 8, 0);
  assert.deepEqual(f.names(), ["h", "a"]);
  assert.equal(f.entry("a").begin - f.dataStart, 6);
  assert.deepEqual(f.entry("a").shape, [2, 3]);
  assert.deepEqual(Array.from(f.readFloat32("a")), Array.from(a));
  assert.deepEqual(Array.from(f.readFloat32("h")), h);
  assert.equal(f.readRaw("a").length, 24);
  throwsSt(() => f.readFloat32("nope"), "nope", "no tensor");
});

test("BF16 conversion is exact on known values and rounds to nearest even", () => {
  // bit patterns from the bfloat16 definition (top 16 bits of the float32)
  const known: [number, number][] = [
    [1, 0x3f80],
    [-2.5, 0xc020],
    [0, 0x0000],
    [-0, 0x8000],
    [Infinity, 0x7f80],
    [3.140625, 0x4049],
    [1 / 256, 0x3b80],
  ];
  for (const [v, bits] of known) {
    assert.equal(float32ToBf16Bits(v), bits, `bf16(${v})`);
    assert.equal(bf16ToFloat32(new Uint16Array([bits]))[0], v);
  }
  assert.equal(float32ToBf16Bits(1 + 2 ** -8), 0x3f80); // tie → even (down)
  assert.equal(float32ToBf16Bits(1 + 3 * 2 ** -8), 0x3f82); // tie → even (up)
  assert.equal(float32ToBf16Bits(1 + 2 ** -8 + 2 ** -20), 0x3f81); // above the tie → up
  assert.ok(Number.isNaN(bf16ToFloat32(new Uint16Array([float32ToBf16Bits(NaN)]))[0]));
  const file = tmp();
  writeSafetensors(file, [{ name: "w", shape: [2, 2], data: [1, -2.5, 3.140625, 1 + 2 ** -8] }], { dtype: "BF16" });
  const f = SafetensorsFile.open(file);
  assert.equal(f.entry("w").dtype, "BF16");
  assert.deepEqual(Array.from(f.readFloat32("w")), [1, -2.5, 3.140625, 1]);
});

test("F16 conversion is exact on known values: normals, subnormals, overflow, ties", () => {
  const known: [number, number][] = [
    [1, 0x3c00],
    [-2, 0xc000],
    [65504, 0x7bff],
    [2 ** -14, 0x0400],
    [2 ** -24, 0x0001],
    [1023 * 2 ** -24, 0x03ff],
    [0.5, 0x3800],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [0, 0],
    [1 + 2 ** -10, 0x3c01],
  ];
  for (const [v, bits] of known) {
    assert.equal(float32ToF16Bits(v), bits, `f16(${v})`);
    assert.equal(f16ToFloat32(new Uint16Array([bits]))[0], v);
  }
  assert.equal(float32ToF16Bits(0.1), 0x2e66);
  assert.equal(float32ToF16Bits(1 / 3), 0x3555);
  assert.equal(float32ToF16Bits(65520), 0x7c00); // tie above max → even → Inf
  assert.equal(float32ToF16Bits(65519), 0x7bff);
  assert.equal(float32ToF16Bits(1 + 2 ** -11), 0x3c00); // tie → even (down)
  assert.equal(float32ToF16Bits(1 + 3 * 2 ** -11), 0x3c02); // tie → even (up)
  assert.equal(float32ToF16Bits(2 ** -25), 0x0000); // subnormal tie → even 0
  assert.equal(float32ToF16Bits(3 * 2 ** -25), 0x0002); // 1.5 → 2
  assert.equal(float32ToF16Bits(-(2 ** -24)), 0x8001);
  const file = tmp();
  writeSafetensors(file, [{ name: "w", shape: [4], data: [0.1, 65504, -(2 ** -24), 1 / 3] }], { dtype: "F16" });
  assert.deepEqual(
    Array.from(SafetensorsFile.open(file).readFloat32("w")),
    [0x2e66, 0x7bff, 0x8001, 0x3555].map((b) => f16ToFloat32(new Uint16Array([b]))[0]),
  );
});

test("encodeSafetensors equals writeSafetensors byte for byte", () => {
  const tensors = [
    { name: "x", shape: [3], data: [1, 2, 3] },
    { name: "y", shape: [1, 2], data: [4, 5], dtype: "BF16" as const },
  ];
  const file = tmp();
  writeSafetensors(file, tensors);
  assert.deepEqual(fs.readFileSync(file), encodeSafetensors(tensors));
});

test("header length that is not sane", () => {
  throwsSt(() => SafetensorsFile.open(craft({}, 0, 10_000n)), undefined, "header length 10000");
  throwsSt(() => SafetensorsFile.open(craft({}, 0, 2n ** 60n)), undefined, "header length");
  const short = tmp();
  fs.writeFileSync(short, Buffer.from([1, 2, 3]));
  throwsSt(() => SafetensorsFile.open(short), undefined, "too short");
  throwsSt(() => SafetensorsFile.open(path.join(dir, "missing.safetensors")), undefined, "cannot be opened");
});

test("header that is not JSON or not an object", () => {
  const file = tmp();
  const body = Buffer.from("{not json}");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(body.length));
  fs.writeFileSync(file, Buffer.concat([len, body]));
  throwsSt(() => SafetensorsFile.open(file), undefined, file, "not valid JSON");
  throwsSt(() => SafetensorsFile.open(craft([1, 2], 0)), undefined, "JSON object");
});

test("offsets past the end of the file", () => {
  const file = craft({ w: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, 8);
  throwsSt(() => SafetensorsFile.open(file), "w", file, '"w"', "past the end");
});

test("overlapping tensors", () => {
  const file = craft(
    {
      a: { dtype: "F32", shape: [4], data_offsets: [0, 16] },
      b: { dtype: "F32", shape: [2], data_offsets: [8, 16] },
    },
    16,
  );
  throwsSt(() => SafetensorsFile.open(file), "b", "overlaps", '"a"');
});

test("byte range that does not match shape × dtype size", () => {
  throwsSt(
    () => SafetensorsFile.open(craft({ w: { dtype: "BF16", shape: [2, 3], data_offsets: [0, 24] } }, 24)),
    "w",
    "24 bytes",
    "needs 12",
  );
  throwsSt(
    () => SafetensorsFile.open(craft({ w: { dtype: "F32", shape: [1], data_offsets: [8, 4] } }, 8)),
    "w",
    "end before begin",
  );
  throwsSt(
    () => SafetensorsFile.open(craft({ w: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, 4)),
    "w",
    "shape",
  );
  throwsSt(() => SafetensorsFile.open(craft({ w: { dtype: "F32", shape: [1] } }, 4)), "w", "data_offsets");
});

test("unknown and unsupported dtypes name the tensor and the dtype", () => {
  throwsSt(
    () => SafetensorsFile.open(craft({ q: { dtype: "Q4_K", shape: [2], data_offsets: [0, 2] } }, 2)),
    "q",
    '"q"',
    'unknown dtype "Q4_K"',
  );
  throwsSt(
    () => SafetensorsFile.open(craft({ ids: { dtype: "I64", shape: [1], data_offsets: [0, 8] } }, 8)),
    "ids",
    'unsupported dtype "I64"',
  );
  throwsSt(() => SafetensorsFile.open(craft({ __metadata__: { a: 1 } }, 0)), "__metadata__", "strings");
});

test("a file truncated after its header was read", () => {
  const file = tmp();
  writeSafetensors(file, [{ name: "w", shape: [4], data: [1, 2, 3, 4] }]);
  const f = SafetensorsFile.open(file);
  fs.truncateSync(file, fs.statSync(file).size - 4);
  throwsSt(() => f.readFloat32("w"), "w", "changed size");
});

test("writer refuses data that does not fit the shape and duplicate names", () => {
  throwsSt(() => writeSafetensors(tmp(), [{ name: "w", shape: [2, 2], data: [1, 2, 3] }]), "w", "3 values", "needs 4");
  throwsSt(
    () =>
      encodeSafetensors([
        { name: "w", shape: [1], data: [1] },
        { name: "w", shape: [1], data: [1] },
      ]),
    "w",
    "twice",
  );
});
