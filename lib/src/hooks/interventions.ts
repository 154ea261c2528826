/**
 * Interventions as plain data (zero, mean, constant, scale, patch) plus a user function, each on
 * one hook point, optionally restricted to heads (the head / kv_head dim) and positions (the pos
 * dim; query_pos for attention scores and patterns; negative = from the end).
 */
import { LlamaConfig } from "../checkpoint/config";
import { InterventionError } from "../core/errors";
import { hookDims, parseHookName } from "./hook-points";
import { Tensor } from "../core/tensor";

/** Anything holding hook values by name (an ActivationCache). */
export interface HookValueSource {
  has(name: string): boolean;
  get(name: string): Tensor;
}

export interface InterventionContext {
  hook: string;
  layer: number | null;
}

interface Restriction {
  hook: string;
  heads?: number[];
  positions?: number[];
}

export type Intervention = Restriction &
  (
    | { kind: "zero" }
    | { kind: "mean"; mean: Tensor }
    | { kind: "constant"; value: number | Tensor }
    | { kind: "scale"; factor: number }
    | { kind: "patch"; source: HookValueSource | Tensor }
    | { kind: "function"; fn: (value: Tensor, ctx: InterventionContext) => Tensor | void }
  );

const KINDS = ["zero", "mean", "constant", "scale", "patch", "function"];

function fail(iv: { hook: string }, message: string, field = iv.hook): never {
  throw new InterventionError(`Intervention on ${iv.hook}: ${message}`, { field });
}

/**
 * Check what can be checked before running (kind, fields, head indices). Shapes and positions are
 * checked against the actual value when applied. Hook names are validated by the caller.
 */
export function validateIntervention(iv: Intervention, config: LlamaConfig): void {
  if (!iv || typeof iv !== "object") throw new InterventionError(`Intervention must be an object, got ${String(iv)}`);
  if (!KINDS.includes(iv.kind))
    fail(iv, `unknown kind "${(iv as { kind: unknown }).kind}", expected one of ${KINDS.join(", ")}`);
  const dims = hookDims(iv.hook, config);
  if (iv.heads !== undefined) {
    const d = dims.find((x) => x === "head" || x === "kv_head");
    if (!d) fail(iv, `"heads" given but this hook has no head dimension (dims [${dims.join(", ")}])`);
    const n = d === "head" ? config.numHeads : config.numKvHeads;
    if (!Array.isArray(iv.heads) || iv.heads.length === 0)
      fail(iv, `"heads" must be a non-empty array of ${d} indices in [0, ${n})`);
    for (const h of iv.heads)
      if (!Number.isInteger(h) || h < 0 || h >= n) fail(iv, `head ${h} out of range: ${d} indices are 0..${n - 1}`);
  }
  if (iv.positions !== undefined) {
    if (!dims.includes("pos") && !dims.includes("query_pos"))
      fail(iv, `"positions" given but this hook has no position dimension`);
    if (!Array.isArray(iv.positions) || iv.positions.length === 0)
      fail(iv, `"positions" must be a non-empty array of integers`);
    for (const p of iv.positions) if (!Number.isInteger(p)) fail(iv, `position ${p} is not an integer`);
  }
  switch (iv.kind) {
    case "scale":
      if (typeof iv.factor !== "number" || !Number.isFinite(iv.factor)) fail(iv, `"factor" must be a finite number`);
      break;
    case "constant":
      if (!(typeof iv.value === "number" || iv.value instanceof Tensor))
        fail(iv, `"value" must be a number or a Tensor`);
      break;
    case "mean":
      if (!(iv.mean instanceof Tensor))
        fail(iv, `"mean" must be a Tensor broadcastable to the hook without its batch dim`);
      break;
    case "patch":
      if (
        !(iv.source instanceof Tensor) &&
        !(iv.source && typeof iv.source.get === "function" && typeof iv.source.has === "function")
      ) {
        fail(iv, `"source" must be an ActivationCache or a Tensor`);
      }
      if (!(iv.source instanceof Tensor) && !iv.source.has(iv.hook))
        fail(iv, `the patch source cache does not hold ${iv.hook} (cache it in the source run)`);
      break;
    case "function":
      if (typeof iv.fn !== "function") fail(iv, `"fn" must be a function (value, ctx) => Tensor | void`);
      break;
  }
}

/** Per-dimension selection masks: null = all indices. */
function selection(iv: Intervention, value: Tensor): (Uint8Array | null)[] {
  return value.dims.map((d, k) => {
    const n = value.shape[k];
    let idx: number[] | undefined;
    if ((d === "head" || d === "kv_head") && iv.heads) idx = iv.heads;
    if ((d === "pos" || d === "query_pos") && iv.positions) {
      idx = iv.positions.map((p) => {
        const q = p < 0 ? p + n : p;
        if (q < 0 || q >= n) fail(iv, `position ${p} out of range for ${d} of size ${n} (use -${n}..${n - 1})`);
        return q;
      });
    }
    if (!idx) return null;
    const m = new Uint8Array(n);
    for (const i of idx) {
      if (i >= n) fail(iv, `index ${i} out of range for ${d} of size ${n}`);
      m[i] = 1;
    }
    return m;
  });
}

/** Flat index into `small` (broadcast against `value`'s trailing dims) for each flat index of `value`. */
function broadcastIndexer(
  iv: Intervention,
  small: Tensor,
  value: Tensor,
  what: string,
): (flat: number, coords: number[]) => number {
  const r = value.shape.length;
  const s = small.shape.length;
  if (s > r)
    fail(
      iv,
      `${what} has shape [${small.shape.join(", ")}], expected at most ${r} dims broadcastable to [${value.shape.join(", ")}] (${value.dims.join(", ")})`,
    );
  for (let k = 0; k < s; k++) {
    const a = small.shape[s - 1 - k];
    const b = value.shape[r - 1 - k];
    if (a !== 1 && a !== b) {
      fail(
        iv,
        `${what} has shape [${small.shape.join(", ")}], not broadcastable to the hook's [${value.shape.join(", ")}] (${value.dims.join(", ")}); expected e.g. [${value.shape.slice(1).join(", ")}]`,
      );
    }
  }
  return (_flat, coords) => {
    let off = 0;
    for (let k = 0; k < s; k++) {
      const c = small.shape[k] === 1 ? 0 : coords[r - s + k];
      off += c * small.strides[k];
    }
    return off;
  };
}

/**
 * Apply one intervention to a hook value, returning a new Tensor (the input is not changed).
 */
export function applyIntervention(
  value: Tensor,
  iv: Intervention,
  ctx: InterventionContext = { hook: iv.hook, layer: parseHookName(iv.hook).layer },
): Tensor {
  const sel = selection(iv, value);
  const restricted = sel.some((m) => m !== null);
  const out = value.clone();
  const src = value.data;
  const dst = out.data;

  // The replacement value at each element (before restriction).
  let replacement: (flat: number, coords: number[]) => number;
  switch (iv.kind) {
    case "zero":
      replacement = () => 0;
      break;
    case "scale": {
      const f = iv.factor;
      replacement = (i) => src[i] * f;
      break;
    }
    case "constant": {
      const v = iv.value;
      if (typeof v === "number") replacement = () => v;
      else {
        const at = broadcastIndexer(iv, v, value, "constant value");
        replacement = (i, c) => v.data[at(i, c)];
      }
      break;
    }
    case "mean": {
      const m = iv.mean;
      const at = broadcastIndexer(iv, m, value, "mean");
      replacement = (i, c) => m.data[at(i, c)];
      break;
    }
    case "patch": {
      const t = iv.source instanceof Tensor ? iv.source : iv.source.get(iv.hook);
      if (t.shape.length !== value.shape.length || t.shape.some((d, k) => d !== value.shape[k])) {
        fail(
          iv,
          `patch source has shape [${t.shape.join(", ")}], expected the hook's shape [${value.shape.join(", ")}] (${value.dims.join(", ")}); run the source on a batch of the same size and padded length`,
        );
      }
      replacement = (i) => t.data[i];
      break;
    }
    case "function": {
      const input = value.clone();
      const r = iv.fn(input, ctx);
      const result = r === undefined ? input : r;
      if (!(result instanceof Tensor))
        fail(iv, `function returned ${typeof result}, expected a Tensor or nothing (to keep in-place edits)`);
      if (result.shape.length !== value.shape.length || result.shape.some((d, k) => d !== value.shape[k])) {
        fail(
          iv,
          `function returned shape [${result.shape.join(", ")}], expected [${value.shape.join(", ")}] (${value.dims.join(", ")})`,
        );
      }
      if (!restricted) return new Tensor(result.data, value.shape, value.dims);
      replacement = (i) => result.data[i];
      break;
    }
  }

  const shape = value.shape;
  const r = shape.length;
  const coords = new Array(r).fill(0);
  for (let i = 0; i < dst.length; i++) {
    let selected = true;
    if (restricted)
      for (let k = 0; k < r; k++)
        if (sel[k] && !sel[k]![coords[k]]) {
          selected = false;
          break;
        }
    if (selected) dst[i] = replacement(i, coords);
    // advance coords (row-major)
    for (let k = r - 1; k >= 0; k--) {
      if (++coords[k] < shape[k]) break;
      coords[k] = 0;
    }
  }
  return out;
}

/** Apply several interventions on the same hook, in order. */
export function applyInterventions(value: Tensor, ivs: Intervention[], ctx: InterventionContext): Tensor {
  let v = value;
  for (const iv of ivs) v = applyIntervention(v, iv, ctx);
  return v;
}
