/**
 * Hook points with TransformerLens names: the list for a config (in forward order), their
 * dimension names and shapes, validation with "did you mean" suggestions, and name filters.
 */
import { LlamaConfig } from "../checkpoint/config";
import { HookNameError } from "../core/errors";

/** Hook names inside a block, in forward order, with their dimension names. */
const BLOCK_HOOKS: [string, string[]][] = [
  ["hook_resid_pre", ["batch", "pos", "d_model"]],
  ["ln1.hook_scale", ["batch", "pos", "one"]],
  ["ln1.hook_normalized", ["batch", "pos", "d_model"]],
  ["attn.hook_q", ["batch", "pos", "head", "d_head"]],
  ["attn.hook_k", ["batch", "pos", "kv_head", "d_head"]],
  ["attn.hook_v", ["batch", "pos", "kv_head", "d_head"]],
  ["attn.hook_rot_q", ["batch", "pos", "head", "d_head"]],
  ["attn.hook_rot_k", ["batch", "pos", "kv_head", "d_head"]],
  ["attn.hook_attn_scores", ["batch", "head", "query_pos", "key_pos"]],
  ["attn.hook_pattern", ["batch", "head", "query_pos", "key_pos"]],
  ["attn.hook_z", ["batch", "pos", "head", "d_head"]],
  ["attn.hook_result", ["batch", "pos", "head", "d_model"]],
  ["hook_attn_out", ["batch", "pos", "d_model"]],
  ["hook_resid_mid", ["batch", "pos", "d_model"]],
  ["ln2.hook_scale", ["batch", "pos", "one"]],
  ["ln2.hook_normalized", ["batch", "pos", "d_model"]],
  ["mlp.hook_pre", ["batch", "pos", "d_mlp"]],
  ["mlp.hook_pre_linear", ["batch", "pos", "d_mlp"]],
  ["mlp.hook_post", ["batch", "pos", "d_mlp"]],
  ["hook_mlp_out", ["batch", "pos", "d_model"]],
  ["hook_resid_post", ["batch", "pos", "d_model"]],
];

const TOP_HOOKS: Record<string, string[]> = {
  hook_embed: ["batch", "pos", "d_model"],
  "ln_final.hook_scale": ["batch", "pos", "one"],
  "ln_final.hook_normalized": ["batch", "pos", "d_model"],
};

const BLOCK_DIMS = new Map(BLOCK_HOOKS);

/**
 * What the hook vocabulary depends on: the layer count and, when given, the MLP's shape (a
 * non-gated MLP has no mlp.hook_pre_linear, as TL's MLP) and the architecture (for messages).
 */
export type HookConfig = Pick<LlamaConfig, "numLayers"> & Partial<Pick<LlamaConfig, "mlp" | "architecture">>;

/** Why a block hook of TL's vocabulary does not exist in this model, or undefined when it does. */
function missingHookReason(local: string, config: HookConfig): string | undefined {
  if (local === "mlp.hook_pre_linear" && config.mlp === "plain")
    return (
      `${config.architecture ?? "this model"} has a non-gated MLP (c_fc → activation → c_proj, TL's MLP), ` +
      `so there is no up projection: mlp.hook_pre_linear exists only for gated MLPs; ` +
      `use mlp.hook_pre (c_fc output, before the activation) or mlp.hook_post`
    );
  return undefined;
}

/** Hook names whose value exists only in graphs built with per-head results. */
export function isHeadResultHook(name: string): boolean {
  return name.endsWith("attn.hook_result");
}

/**
 * All hook names of a model, in forward order. `withHeadResult` (default true) includes attn.hook_result.
 *
 * @example
 * hookNames(model.config).filter((n) => n.endsWith("hook_resid_post")); // ["blocks.0.hook_resid_post", ...]
 */
export function hookNames(config: HookConfig, opts: { withHeadResult?: boolean } = {}): string[] {
  const withResult = opts.withHeadResult ?? true;
  const names = ["hook_embed"];
  const blockHooks = BLOCK_HOOKS.filter(([h]) => missingHookReason(h, config) === undefined);
  for (let l = 0; l < config.numLayers; l++) {
    for (const [h] of blockHooks) {
      if (!withResult && h === "attn.hook_result") continue;
      names.push(`blocks.${l}.${h}`);
    }
  }
  names.push("ln_final.hook_scale", "ln_final.hook_normalized");
  return names;
}

/** `blocks.{l}.rest` → { layer: l, local: rest }; top-level hooks have layer null. */
export function parseHookName(name: string): { layer: number | null; local: string } {
  // a layer is written as TL writes it: "0", "12", never "01" (that name would not exist in the graph)
  const m = /^blocks\.(0|[1-9]\d{0,8})\.(.+)$/.exec(name);
  if (m) return { layer: Number(m[1]), local: m[2] };
  return { layer: null, local: name };
}

/** Levenshtein distance (small strings). */
export function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[b.length];
}

/** The closest valid names (at most `n`), nearest first. */
export function suggestHookNames(name: string, valid: string[], n = 3): string[] {
  const limit = Math.max(3, Math.floor(name.length / 3));
  return valid
    .map((v) => ({ v, d: editDistance(name, v) }))
    .filter((x) => x.d <= limit)
    .sort((a, b) => a.d - b.d || a.v.localeCompare(b.v))
    .slice(0, n)
    .map((x) => x.v);
}

/** Throws HookNameError (with suggestions) unless `name` is a hook of this model. */
export function validateHookName(name: string, config: HookConfig): void {
  if (typeof name !== "string")
    throw new HookNameError(String(name), [], `a hook name must be a string, got ${typeof name}`);
  const { layer, local } = parseHookName(name);
  if (layer !== null && layer >= config.numLayers && BLOCK_DIMS.has(local)) {
    const hint = hookNames(config).filter((n) => n.endsWith(`.${local}`));
    throw new HookNameError(name, [hint[hint.length - 1]], `layer ${layer} out of range 0..${config.numLayers - 1}`);
  }
  const missing = layer !== null ? missingHookReason(local, config) : undefined;
  if (missing)
    throw new HookNameError(name, [`blocks.${layer}.mlp.hook_pre`, `blocks.${layer}.mlp.hook_post`], missing);
  const ok = layer === null ? local in TOP_HOOKS : layer < config.numLayers && BLOCK_DIMS.has(local);
  if (!ok) throw new HookNameError(name, suggestHookNames(name, hookNames(config)));
}

/** Dimension names of a hook (validated). */
export function hookDims(name: string, config: HookConfig): string[] {
  validateHookName(name, config);
  const { layer, local } = parseHookName(name);
  return (layer === null ? TOP_HOOKS[local] : BLOCK_DIMS.get(local)!).slice();
}

/** Size of each named dimension for a config and a batch × pos input. */
export function dimSizes(config: LlamaConfig, batch: number, pos: number): Record<string, number> {
  return {
    batch,
    pos,
    query_pos: pos,
    key_pos: pos,
    d_model: config.hiddenSize,
    head: config.numHeads,
    kv_head: config.numKvHeads,
    d_head: config.headDim,
    d_mlp: config.intermediateSize,
    vocab: config.vocabSize,
    one: 1,
  };
}

/**
 * Shape and dims of a hook for a batch × pos input.
 *
 * @example
 * hookShape("blocks.0.attn.hook_pattern", config, 2, 10); // { shape: [2, H, 10, 10], dims: ["batch", "head", "query_pos", "key_pos"] }
 */
export function hookShape(
  name: string,
  config: LlamaConfig,
  batch: number,
  pos: number,
): { shape: number[]; dims: string[] } {
  const dims = hookDims(name, config);
  const sizes = dimSizes(config, batch, pos);
  return { shape: dims.map((d) => sizes[d]), dims };
}

/** Which hooks to cache: a list, a predicate, or a prefix. */
export type NameFilter = string[] | ((name: string) => boolean) | { prefix: string };

/**
 * Resolve a filter to hook names in forward order. Listed names are validated (HookNameError).
 * Predicates and prefixes see attn.hook_result only when `withHeadResult` is true (as
 * TransformerLens' use_attn_result); a prefix matching nothing is an error.
 */
export function resolveNameFilter(
  filter: NameFilter,
  config: HookConfig,
  opts: { withHeadResult?: boolean } = {},
): string[] {
  if (Array.isArray(filter)) {
    for (const n of filter) validateHookName(n, config);
    const wanted = new Set(filter);
    return hookNames(config).filter((n) => wanted.has(n));
  }
  const all = hookNames(config, { withHeadResult: opts.withHeadResult ?? false });
  if (typeof filter === "function") return all.filter((n) => filter(n));
  if (filter && typeof filter === "object" && typeof filter.prefix === "string") {
    const out = all.filter((n) => n.startsWith(filter.prefix));
    if (out.length === 0)
      throw new HookNameError(
        `${filter.prefix}*`,
        suggestHookNames(filter.prefix, [...new Set(all.map((n) => n.slice(0, filter.prefix.length)))]),
      );
    return out;
  }
  if (typeof filter === "string")
    throw new HookNameError(filter, [], `names must be a list, a predicate or { prefix }: write ["${filter}"]`);
  throw new HookNameError(String(filter), []);
}

/** TL get_act_name's aliases: activation names, and layer types. */
const ACT_ALIASES: Record<string, string> = {
  attn: "pattern",
  attn_logits: "attn_scores",
  key: "k",
  query: "q",
  value: "v",
  mlp_pre: "pre",
  mlp_post: "post",
};
const LAYER_TYPE_ALIASES: Record<string, string> = {
  a: "attn",
  m: "mlp",
  b: "",
  block: "",
  blocks: "",
  attention: "attn",
};
const ATTN_ACTS = ["q", "k", "v", "z", "rot_q", "rot_k", "result", "pattern", "attn_scores"];
const MLP_ACTS = ["pre", "post", "pre_linear"];
const NORM_ACTS = ["scale", "normalized"];

/** The shorthands actName knows (before any alias), for error messages and docs. */
export const ACT_SHORTHANDS = [
  "embed",
  "resid_pre",
  "resid_mid",
  "resid_post",
  "attn_out",
  "mlp_out",
  ...ATTN_ACTS,
  ...MLP_ACTS,
  ...NORM_ACTS,
  ...Object.keys(ACT_ALIASES),
];

/**
 * Full hook name of a shorthand, as TL's utils.get_act_name: `actName("pattern", 3)` →
 * "blocks.3.attn.hook_pattern"; "resid_pre", "attn_out", "z", "q", "pre", "post", ... with a layer;
 * "scale" / "normalized" take layerType "ln1" / "ln2" with a layer, ln_final without one; "pattern3"
 * and "resid_pre5" carry the layer in the name; a full name (with a dot or "hook_") comes back as is.
 * The result is not validated here (resolveActName does that).
 *
 * @example
 * actName("resid_pre", 0); // "blocks.0.hook_resid_pre"
 * actName("scale", 2, "ln1"); // "blocks.2.ln1.hook_scale"
 * actName("normalized"); // "ln_final.hook_normalized"
 */
export function actName(name: string, layer?: number, layerType?: string): string {
  if ((name.includes(".") || name.startsWith("hook_")) && layer === undefined && layerType === undefined) return name;
  let act = name;
  let type = layerType;
  let l = layer;
  const m = /^([a-z_]+?)(\d+)([a-z]*)$/.exec(name);
  if (m && l === undefined) [act, l, type] = [m[1], Number(m[2]), m[3] || type];
  act = ACT_ALIASES[act] ?? act;
  if (ATTN_ACTS.includes(act)) type = "attn";
  else if (MLP_ACTS.includes(act)) type = "mlp";
  else if (type !== undefined && type in LAYER_TYPE_ALIASES) type = LAYER_TYPE_ALIASES[type];
  let full = l !== undefined ? `blocks.${l}.` : "";
  if (type) full += `${type}.`;
  full += `hook_${act}`;
  if (NORM_ACTS.includes(act) && l === undefined) full = `ln_final.${full}`;
  return full;
}

/**
 * actName, validated: HookNameError naming the shorthand, what it became and the nearest names.
 *
 * @example
 * resolveActName("pattern", config, 3); // "blocks.3.attn.hook_pattern"
 * resolveActName("patern", config, 3); // HookNameError: Unknown hook point "blocks.3.hook_patern" (from "patern", layer 3; ...). Did you mean: pattern, ...
 */
export function resolveActName(name: string, config: HookConfig, layer?: number, layerType?: string): string {
  const full = actName(name, layer, layerType);
  try {
    validateHookName(full, config);
  } catch (e) {
    if (full === name || !(e instanceof HookNameError)) throw e;
    const from = `from "${name}"${layer === undefined ? "" : `, layer ${layer}`}${layerType ? `, ${layerType}` : ""}`;
    const note = `${from}; shorthands are ${ACT_SHORTHANDS.join(", ")}`;
    throw new HookNameError(full, [...suggestHookNames(name, ACT_SHORTHANDS), ...e.suggestions], undefined, note);
  }
  return full;
}
