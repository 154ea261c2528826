/**
 * Interventions as plain data (zero, mean, constant, scale, patch) plus a user function, each on
 * one hook point, optionally restricted to heads (the head / kv_head dim) and positions (the pos
 * dim; query_pos for attention scores and patterns). Positions are each prompt's own token indices
 * (0 = its first token, BOS included; -1 = its last), mapped to padded indices row by row, so
 * `positions: [2]` hits each prompt's third token under left or right padding.
 */
import { LlamaConfig } from "../checkpoint/config";
import { InterventionError } from "../core/errors";
import { assertFinite } from "../core/finite";
import { hookDims, parseHookName } from "./hook-points";
import { Tensor } from "../core/tensor";
import { paddedIndex, TokenBatch } from "../core/token-batch";

/** Anything holding hook values by name (an ActivationCache). */
export interface HookValueSource {
  has(name: string): boolean;
  get(name: string): Tensor;
}

/** What a "function" intervention is told about where it runs. */
export interface InterventionContext {
  hook: string;
  layer: number | null; // null for hook_embed and ln_final.*
  /**
   * The run's batch (lengths and padding side), to map positions to padded indices; without it
   * (a direct applyIntervention call) positions index the value's pos dim as one unpadded prompt.
   */
  batch?: Pick<TokenBatch, "lengths" | "padding">;
}

/** Where an intervention applies: one hook, optionally some heads and positions. */
interface Restriction {
  /** Hook name (TL names, e.g. "blocks.2.attn.hook_z"). */
  hook: string;
  /**
   * Heads
   *
   * Indices along the hook's head (or kv_head) dimension; only for hooks that have one.
   *
   * @default every head
   */
  heads?: number[];
  /**
   * Positions
   *
   * Each prompt's own token indices (0 = its first token, BOS included; negative from its last
   * token, -1 = last), along pos (query_pos for attention scores and patterns); mapped to the padded
   * index of each prompt, so prompts of different lengths are hit at the same token of their own,
   * under left and right padding. Every prompt must have the token (-shortest..shortest-1).
   *
   * @default every position
   */
  positions?: number[];
}

/**
 * An edit of one hook's value during a run, as plain data (TL hooks as functions, here data).
 * - zero: set to 0 (zero ablation)
 * - mean: replace by `mean`, broadcast from the hook's trailing dims (mean ablation)
 * - constant: set to a number, or a Tensor broadcast like `mean`
 * - scale: multiply by `factor`
 * - patch: copy the value of the same hook from `source` (an ActivationCache of a run on a batch
 *   of the same size and padded length, or a Tensor of the hook's shape) (activation patching);
 *   values are copied index for index, so with `positions` the source prompts should have the
 *   same lengths and padding as the patched ones (as clean / corrupted pairs do)
 * - function: `fn(value, ctx)` returns the new value, or edits `value` in place and returns nothing
 *
 * @example
 * const ivs: Intervention[] = [
 *   { hook: "blocks.2.attn.hook_z", kind: "zero", heads: [5] },
 *   { hook: "blocks.3.hook_mlp_out", kind: "scale", factor: 0.5, positions: [-1] },
 *   { hook: "blocks.1.hook_resid_post", kind: "patch", source: cleanCache },
 * ];
 * const logits = await model.runWithHooks(corrupted, ivs, { logitsAt: "last" });
 */
export type Intervention = Restriction &
  (
    | { kind: "zero" }
    | { kind: "mean"; mean: Tensor }
    | { kind: "constant"; value: number | Tensor }
    | { kind: "scale"; factor: number }
    | { kind: "patch"; source: HookValueSource | Tensor }
    | { kind: "function"; fn: (value: Tensor, ctx: InterventionContext) => Tensor | void }
  );

/** What validateIntervention checks beyond the config. */
export interface ValidateInterventionOptions {
  /**
   * Padded length
   *
   * The batch's padded length; positions must lie in -paddedLength..paddedLength-1.
   *
   * @default unchecked (positions are then checked against the value when applied)
   */
  paddedLength?: number;
  /**
   * Prompt lengths
   *
   * Each prompt's unpadded length; positions must lie inside the shortest prompt.
   *
   * @default unchecked
   */
  lengths?: number[];
  /**
   * Allow non-finite values
   *
   * Let a NaN / ±Infinity `constant` or `mean` value through (NonFiniteError otherwise).
   *
   * @default false
   */
  allowNonFinite?: boolean;
}

/** How interventions are applied. */
export interface ApplyInterventionOptions {
  /**
   * Allow non-finite values
   *
   * Let NaN / ±Infinity in a `function` result or a `patch` source through (NonFiniteError naming
   * the hook otherwise).
   *
   * @default false
   */
  allowNonFinite?: boolean;
}

const NON_FINITE_HINT = "pass allowNonFinite: true to the run to let NaN / Infinity through on purpose";

/** NonFiniteError naming the hook unless every value is finite (or allowed). */
function checkFinite(iv: { hook: string }, data: ArrayLike<number>, what: string, allow: boolean | undefined): void {
  if (!allow) assertFinite(data, `Intervention on ${iv.hook}: ${what}`, { field: iv.hook, hint: NON_FINITE_HINT });
}

const KINDS = ["zero", "mean", "constant", "scale", "patch", "function"];

function fail(iv: { hook: string }, message: string, field = iv.hook): never {
  throw new InterventionError(`Intervention on ${iv.hook}: ${message}`, { field });
}

/**
 * Every check that can run before a forward pass, in one place: the intervention is an object
 * with a hook name (validated once, HookNameError with suggestions), a known kind and its fields,
 * heads in range for the hook's head dimension, positions integers inside the padded length.
 * Shapes of mean / constant / patch values are checked against the value when applied.
 *
 * @example
 * validateIntervention({ hook: "blocks.0.attn.hook_z", kind: "zero", heads: [9] }, model.config);
 * // InterventionError: Intervention on blocks.0.attn.hook_z: head 9 out of range: head indices are 0..7
 */
export function validateIntervention(
  iv: Intervention,
  config: LlamaConfig,
  opts: ValidateInterventionOptions = {},
): void {
  if (!iv || typeof iv !== "object" || typeof iv.hook !== "string")
    throw new InterventionError(`Each intervention needs a "hook" name, got ${JSON.stringify(iv)}`);
  const dims = hookDims(iv.hook, config); // validates the name
  if (!KINDS.includes(iv.kind))
    fail(iv, `unknown kind "${(iv as { kind: unknown }).kind}", expected one of ${KINDS.join(", ")}`);
  if (iv.heads !== undefined) validateHeads(iv, dims, config);
  if (iv.positions !== undefined) validatePositions(iv, dims, opts.paddedLength, opts.lengths);
  validateKindFields(iv);
  if (iv.kind === "constant")
    checkFinite(iv, typeof iv.value === "number" ? [iv.value] : iv.value.data, "constant value", opts.allowNonFinite);
  if (iv.kind === "mean") checkFinite(iv, iv.mean.data, "mean", opts.allowNonFinite);
}

function validateHeads(iv: Intervention, dims: string[], config: LlamaConfig): void {
  const d = dims.find((x) => x === "head" || x === "kv_head");
  if (!d) fail(iv, `"heads" given but this hook has no head dimension (dims [${dims.join(", ")}])`);
  const n = d === "head" ? config.numHeads : config.numKvHeads;
  if (!Array.isArray(iv.heads) || iv.heads.length === 0)
    fail(iv, `"heads" must be a non-empty array of ${d} indices in [0, ${n})`);
  for (const h of iv.heads)
    if (!Number.isInteger(h) || h < 0 || h >= n) fail(iv, `head ${h} out of range: ${d} indices are 0..${n - 1}`);
}

function validatePositions(iv: Intervention, dims: string[], P: number | undefined, lengths?: number[]): void {
  if (!dims.includes("pos") && !dims.includes("query_pos"))
    fail(iv, `"positions" given but this hook has no position dimension`);
  if (!Array.isArray(iv.positions) || iv.positions.length === 0)
    fail(iv, `"positions" must be a non-empty array of integers`);
  for (const p of iv.positions) if (!Number.isInteger(p)) fail(iv, `position ${p} is not an integer`);
  if (lengths && lengths.length > 0) {
    const n = Math.min(...lengths);
    const b = lengths.indexOf(n);
    for (const p of iv.positions)
      if (p < -n || p >= n)
        fail(
          iv,
          `position ${p} is outside prompt ${b} (${n} tokens): positions are each prompt's own token indices (use -${n}..${n - 1})`,
        );
  }
  if (P === undefined) return;
  for (const p of iv.positions)
    if (p < -P || p >= P)
      fail(iv, `position ${p} out of range for a batch of padded length ${P} (use -${P}..${P - 1})`);
}

function validateKindFields(iv: Intervention): void {
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

/** Which elements an intervention touches: masks per dim (null = all) and a per-prompt pos mask. */
interface Selection {
  masks: (Uint8Array | null)[]; // [dim] → mask over that dim's indices
  posDim: number; // the pos / query_pos dim restricted by `positions`, or -1
  posMask: Uint8Array | null; // [batch × padded pos] (or [padded pos] without a batch dim)
}

function selection(iv: Intervention, value: Tensor, ctx: InterventionContext): Selection {
  let posDim = -1;
  let posMask: Uint8Array | null = null;
  const masks = value.dims.map((d, k) => {
    const n = value.shape[k];
    if ((d === "pos" || d === "query_pos") && iv.positions) {
      posDim = k;
      posMask = positionMask(iv, value, n, ctx);
      return null;
    }
    if (!((d === "head" || d === "kv_head") && iv.heads)) return null;
    const m = new Uint8Array(n);
    for (const i of iv.heads) {
      if (i >= n) fail(iv, `index ${i} out of range for ${d} of size ${n}`);
      m[i] = 1;
    }
    return m;
  });
  return { masks, posDim, posMask };
}

/** [batch × P] mask of the padded indices of each prompt's `positions` (P = padded length). */
function positionMask(iv: Intervention, value: Tensor, P: number, ctx: InterventionContext): Uint8Array {
  const B = value.dims[0] === "batch" ? value.shape[0] : 1;
  const m = new Uint8Array(B * P);
  for (let b = 0; b < B; b++) {
    const length = ctx.batch?.lengths[b] ?? P;
    const padding = ctx.batch?.padding ?? "left";
    for (const p of iv.positions!) {
      const q = paddedIndex(p, length, P, padding);
      if (q === null)
        fail(iv, `position ${p} is outside prompt ${b} (${length} tokens; use -${length}..${length - 1})`);
      m[b * P + q] = 1;
    }
  }
  return m;
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

/** The replacement value at each element (flat index, coordinates), before the restriction. */
type Replacement = (flat: number, coords: number[]) => number;

/**
 * Apply one intervention to a hook value, returning a new Tensor (the input is not changed).
 * Heads and positions are checked against the value's dims (validateIntervention checks them
 * before a run; this guards direct calls). Positions map to padded indices through `ctx.batch`
 * (each prompt's own token index); without it they index the value's pos dim directly.
 *
 * @example
 * const z = cache.get("blocks.2.attn.hook_z"); // [batch, pos, head, d_head]
 * const ablated = applyIntervention(z, { hook: "blocks.2.attn.hook_z", kind: "zero", heads: [1] });
 */
export function applyIntervention(
  value: Tensor,
  iv: Intervention,
  ctx: InterventionContext = { hook: iv.hook, layer: parseHookName(iv.hook).layer },
  opts: ApplyInterventionOptions = {},
): Tensor {
  const { masks, posDim, posMask } = selection(iv, value, ctx);
  const restricted = posMask !== null || masks.some((m) => m !== null);
  const replacement = replacementOf(iv, value, ctx, restricted, opts.allowNonFinite ?? false);
  if (replacement instanceof Tensor) return replacement;
  const out = value.clone();
  const dst = out.data;
  const shape = value.shape;
  const r = shape.length;
  const rowOf = value.dims[0] === "batch" ? 0 : -1; // coords index of the prompt, if any
  const coords = new Array(r).fill(0);
  for (let i = 0; i < dst.length; i++) {
    let selected = true;
    if (restricted) {
      for (let k = 0; k < r; k++)
        if (masks[k] && !masks[k]![coords[k]]) {
          selected = false;
          break;
        }
      if (selected && posMask)
        selected = posMask[(rowOf < 0 ? 0 : coords[rowOf]) * shape[posDim] + coords[posDim]] === 1;
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

/** One kind's replacement, or the whole new value (an unrestricted "function" result). */
function replacementOf(
  iv: Intervention,
  value: Tensor,
  ctx: InterventionContext,
  restricted: boolean,
  allowNonFinite: boolean,
): Replacement | Tensor {
  const src = value.data;
  switch (iv.kind) {
    case "zero":
      return () => 0;
    case "scale": {
      const f = iv.factor;
      return (i) => src[i] * f;
    }
    case "constant": {
      const v = iv.value;
      if (typeof v === "number") return () => v;
      const at = broadcastIndexer(iv, v, value, "constant value");
      return (i, c) => v.data[at(i, c)];
    }
    case "mean": {
      const m = iv.mean;
      const at = broadcastIndexer(iv, m, value, "mean");
      return (i, c) => m.data[at(i, c)];
    }
    case "patch": {
      const t = iv.source instanceof Tensor ? iv.source : iv.source.get(iv.hook);
      if (t.shape.length !== value.shape.length || t.shape.some((d, k) => d !== value.shape[k])) {
        fail(
          iv,
          `patch source has shape [${t.shape.join(", ")}], expected the hook's shape [${value.shape.join(", ")}] (${value.dims.join(", ")}); run the source on a batch of the same size and padded length`,
        );
      }
      checkFinite(iv, t.data, "patch source", allowNonFinite);
      return (i) => t.data[i];
    }
    case "function":
      return functionResult(iv, value, ctx, restricted, allowNonFinite);
  }
}

function functionResult(
  iv: Intervention & { kind: "function" },
  value: Tensor,
  ctx: InterventionContext,
  restricted: boolean,
  allowNonFinite: boolean,
): Replacement | Tensor {
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
  checkFinite(iv, result.data, "function result", allowNonFinite);
  if (!restricted) return new Tensor(result.data, value.shape, value.dims);
  return (i) => result.data[i];
}

/** Apply several interventions on the same hook, in order. */
export function applyInterventions(
  value: Tensor,
  ivs: Intervention[],
  ctx: InterventionContext,
  opts: ApplyInterventionOptions = {},
): Tensor {
  let v = value;
  for (const iv of ivs) v = applyIntervention(v, iv, ctx, opts);
  return v;
}
