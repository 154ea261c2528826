/**
 * Position × layer activation patching, as TransformerLens' `get_act_patch_resid_pre` /
 * `get_act_patch_attn_out` / `get_act_patch_mlp_out` (by position): for every layer, component and
 * position, patch that one [d_model] vector from the clean run into the corrupted run (denoising)
 * or from the corrupted run into the clean run (noising), and report the fraction of the clean −
 * corrupted logit-difference gap restored / destroyed (ratio of sums over the prompts of a length).
 *
 * Positions index the clean prompt's token row. Batches hold pairs of one clean and one corrupted
 * token count (`pairBatches`), so a position is the same token in every prompt of a batch.
 * Same-length pairs are patched index for index at every position. Right-aligned pairs (the
 * corrupted prompt has another token count, `alignment: "right-aligned"`) are patched by distance
 * from the end (`fromEnd`), at every distance both prompts have: a token only the longer prompt
 * has gets no row. Before the inserted token such a position holds different tokens in the two
 * prompts (shifted by one), so read their rows as "same distance from the end", not "same token".
 */
import type { HookedLlama } from "../runtime/hooked-llama";
import { InputError } from "../core/errors";
import type { Tensor } from "../core/tensor";
import { ParenRunTokens } from "../task/paren-tokens";
import { logitDiffFor } from "./metrics";
import {
  PromptPair,
  batchCounterfactuals,
  checkPromptPairs,
  modelParens,
  pairAlignment,
  pairBatches,
  pairInputs,
} from "./study";
import { ProgressOptions, silentProgress, withForwardProgress } from "./forward-progress";
import { patchFrom, sweep } from "./sweep";

/** The residual-stream component patched at one position. */
export type GridComponent = "resid_pre" | "attn_out" | "mlp_out";
export const GRID_COMPONENTS: GridComponent[] = ["resid_pre", "attn_out", "mlp_out"];

export interface PatchingGridOptions extends ProgressOptions {
  /**
   * Components
   *
   * Which hooks to patch: `blocks.L.hook_resid_pre`, `blocks.L.hook_attn_out`, `blocks.L.hook_mlp_out`.
   *
   * @default ["resid_pre", "attn_out", "mlp_out"]
   */
  components?: GridComponent[];
  /**
   * Direction
   *
   * "denoising": corrupted run, one clean vector patched in (fraction of the gap restored);
   * "noising": clean run, one corrupted vector patched in (fraction destroyed).
   *
   * @default "denoising"
   */
  direction?: "denoising" | "noising";
  /**
   * Counterfactual
   *
   * The token the label is compared against: the clean run's strongest wrong run, or the corrupted label.
   *
   * @default "strongest-wrong"
   */
  counterfactual?: "strongest-wrong" | "corrupted-label";
  /**
   * Batch size
   *
   * Pairs per forward pass (a batch holds pairs of one token count).
   *
   * @default 32
   */
  batchSize?: number;
  /**
   * Paren-run tokens
   *
   * @default looked up through the model's tokenizer
   */
  parens?: ParenRunTokens;
}

export interface PatchingGridRow {
  component: GridComponent;
  layer: number;
  /** Token index in the prompt (0 = BOS when the tokenizer adds one). */
  position: number;
  /** position − length: −1 is the last token (the predicting position). */
  fromEnd: number;
  /** Prompt length (tokens) of this group of pairs (the clean prompts). */
  length: number;
  /** Right-aligned groups only: the corrupted prompts' token count (absent where it is `length`). */
  corruptedLength?: number;
  /** The counts n of the clean prompts of this length, e.g. "3". */
  ns: string;
  count: number;
  /** Fraction of the clean − corrupted gap restored (denoising) or destroyed (noising): ratio of sums. */
  fraction: number;
}

export interface PatchingGridResult {
  rows: PatchingGridRow[];
  metadata: {
    direction: "denoising" | "noising";
    components: GridComponent[];
    counterfactual: string;
    /** The alignments of the pairs, e.g. ["same-length"] or ["right-aligned"]. */
    alignments: ("same-length" | "right-aligned")[];
    note: string;
  };
}

interface GridSite {
  component: GridComponent;
  layer: number;
  position: number;
}

/**
 * The position × layer patching grid of `pairs` (clean/corrupted pairs, same-length or right-aligned).
 *
 * @example
 * const grid = await patchingGrid(model, pairs.filter((p) => p.clean.n === 3));
 * grid.rows.filter((r) => r.component === "resid_pre" && r.fromEnd === -1); // the last position, by layer
 */
export async function patchingGrid(
  model: HookedLlama,
  pairs: PromptPair[],
  opts: PatchingGridOptions = {},
): Promise<PatchingGridResult> {
  const { components, direction, counterfactual, parens } = gridSettings(model, pairs, opts);
  const L = model.config.numLayers;
  const hook = (c: GridComponent, l: number) => `blocks.${l}.hook_${c}`;
  const names = components.flatMap((c) => Array.from({ length: L }, (_, l) => hook(c, l)));
  const ldClean = new Float64Array(pairs.length);
  const ldCorrupted = new Float64Array(pairs.length);
  const sums = new Map<
    string,
    { site: GridSite; T: number; Tx: number; pa: number; cl: number; co: number; idx: number[] }
  >();
  const batches = pairBatches(pairs, opts.batchSize ?? 32);
  await withForwardProgress(model, opts, "patchingGrid", gridForwards(L, components, batches), async () => {
    for (const batch of batches) {
      const { length: T, corruptedLength: Tx } = batch;
      const sites = gridSites(components, L, T, Math.min(T, Tx));
      const patched = await sweep(model, {
        onProgress: silentProgress,
        label: "patchingGrid",
        journalKey: { direction, components, counterfactual, parens, pairs },
        promptCount: pairs.length,
        batches: [batch],
        sites,
        prepare: async ({ indices }) => {
          const inp = pairInputs(pairs, indices); // right-aligned: both left-padded to one width
          const clean = await model.runWithCache(inp.clean, { names, logitsAt: "last" });
          const corrupted = await model.runWithCache(inp.corrupted, { names, logitsAt: "last" });
          const correct = indices.map((i) => pairs[i].clean.labelId);
          const cf = batchCounterfactuals(clean.logits, pairs, indices, counterfactual, parens);
          const metric = (logits: Tensor) => logitDiffFor(logits, correct, cf);
          metric(clean.logits).forEach((v, b) => (ldClean[indices[b]] = v));
          metric(corrupted.logits).forEach((v, b) => (ldCorrupted[indices[b]] = v));
          return { inp, clean, corrupted, metric };
        },
        edit: (s, _b, c) => {
          // same length: the token index; right-aligned: the distance from the end, in both prompts
          const where = { positions: [T === Tx ? s.position : s.position - T] };
          return direction === "denoising"
            ? { input: c.inp.corrupted, interventions: [patchFrom(hook(s.component, s.layer), c.clean.cache, where)] }
            : { input: c.inp.clean, interventions: [patchFrom(hook(s.component, s.layer), c.corrupted.cache, where)] };
        },
        metric: (logits, _s, _b, c) => c.metric(logits),
      });
      sites.forEach((site, k) => {
        const key = `${T}|${Tx}|${site.component}|${site.layer}|${site.position}`;
        const acc = sums.get(key) ?? { site, T, Tx, pa: 0, cl: 0, co: 0, idx: [] };
        for (const i of batch.indices) {
          acc.pa += patched[k][i];
          acc.cl += ldClean[i];
          acc.co += ldCorrupted[i];
          acc.idx.push(i);
        }
        sums.set(key, acc);
      });
    }
  });
  const rows = gridRows([...sums.values()], pairs, direction);
  const alignments = [...new Set(pairs.map(pairAlignment))];
  return {
    rows,
    metadata: {
      direction,
      components,
      counterfactual,
      alignments,
      note: alignments.includes("right-aligned")
        ? "positions index the clean token row; batches hold pairs of one clean and one corrupted length; right-aligned pairs are patched by distance from the end (fromEnd), only where both prompts have a token"
        : "positions index the token row; batches hold pairs of one length, so a position is the same token in every prompt of a batch",
    },
  };
}

/** Per batch: the clean and the corrupted cache, then one patched run per site. */
const gridForwards = (L: number, components: GridComponent[], batches: { length: number; corruptedLength: number }[]) =>
  batches.reduce((a, b) => a + 2 + gridSites(components, L, b.length, Math.min(b.length, b.corruptedLength)).length, 0);

/**
 * The forward passes `patchingGrid(model, pairs, opts)` will run (what its progress announces),
 * from the model's config and tokenizer only (scripts/bench/notebook-forwards.ts).
 *
 * @example
 * patchingGridForwards({ config: { ...model.config, numLayers: 32 }, tokenizer: tok }, pairs);
 */
export function patchingGridForwards(
  model: Pick<HookedLlama, "config" | "tokenizer">,
  pairs: PromptPair[],
  opts: PatchingGridOptions = {},
): number {
  const { components } = gridSettings(model as HookedLlama, pairs, opts);
  return gridForwards(model.config.numLayers, components, pairBatches(pairs, opts.batchSize ?? 32));
}

/** The options with their defaults; every pair needs a corrupted prompt (same length or right-aligned). */
function gridSettings(model: HookedLlama, pairs: PromptPair[], opts: PatchingGridOptions) {
  checkPromptPairs(pairs, model.config.vocabSize);
  for (const [i, p] of pairs.entries())
    if (!p.corrupted)
      throw new InputError(`patchingGrid: pair ${i} needs a corrupted prompt`, { field: `pairs[${i}].corrupted` });
  return {
    components: opts.components ?? GRID_COMPONENTS,
    direction: opts.direction ?? "denoising",
    counterfactual: opts.counterfactual ?? "strongest-wrong",
    parens: opts.parens ?? modelParens(model),
  };
}

/** Sums over the pairs of one (clean length, corrupted length) group at one site: patched, clean and corrupted LD. */
interface GridSum {
  site: GridSite;
  T: number;
  Tx: number;
  pa: number;
  cl: number;
  co: number;
  idx: number[];
}

/** One row per site and length group: the fraction of the gap as a ratio of sums. */
function gridRows(sums: GridSum[], pairs: PromptPair[], direction: "denoising" | "noising"): PatchingGridRow[] {
  return sums.map(({ site, T, Tx, pa, cl, co, idx }) => ({
    ...site,
    fromEnd: site.position - T,
    length: T,
    ...(Tx !== T ? { corruptedLength: Tx } : {}),
    ns: [...new Set(idx.map((i) => pairs[i].clean.n))].sort((a, b) => a - b).join(","),
    count: idx.length,
    fraction: direction === "denoising" ? (pa - co) / (cl - co) : (cl - pa) / (cl - co),
  }));
}

/** Every (component, layer, position) of the last `shared` positions of a length-T prompt, in that order. */
function gridSites(components: GridComponent[], L: number, T: number, shared: number): GridSite[] {
  return components.flatMap((component) =>
    Array.from({ length: L }, (_, layer) =>
      Array.from({ length: shared }, (_, k) => ({ component, layer, position: T - shared + k })),
    ).flat(),
  );
}
