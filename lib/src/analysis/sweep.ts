/**
 * One sweep loop, in the spirit of TransformerLens' `generic_activation_patch`: for every batch of
 * prompts and every site, one forward pass with the site's edit, and a metric per prompt. The
 * sub-layer and per-head analyses are short specialisations: sites are (layer, sub-layer, method)
 * or (layer, head, method), edits are `zeroAt` / `meanAt` / `patchFrom`, metrics a logit difference.
 */
import type { HookValueSource, Intervention } from "../hooks/interventions";
import type { Tensor } from "../core/tensor";
import { InputError } from "../core/errors";

/** What the sweep needs of a model (HookedLlama fits): a run with interventions, logits at the last position. */
export interface SweepModel {
  runWithHooks(input: number[][], interventions: Intervention[], opts: { logitsAt: "last" }): Promise<Tensor>;
}

/** A batch of the sweep: indices into the swept prompts (a batch of `lengthBatches` fits). */
export interface SweepBatch {
  indices: number[];
}

/** What one site runs on one batch: the token ids fed and the edits applied. */
export interface SiteRun {
  /** Token ids per prompt of the batch (e.g. the clean or the corrupted prompts). */
  input: number[][];
  interventions: Intervention[];
}

export interface SweepSpec<S, B extends SweepBatch, C> {
  /** How many prompts the batches index; every result array has this length (NaN where no batch covers a prompt). */
  promptCount: number;
  /** Batches of prompt indices, run in this order. */
  batches: B[];
  /** The sites, one forward pass each per batch. */
  sites: S[];
  /** Runs once per batch before its sites (clean / corrupted runs, counterfactuals); its result is passed on. */
  prepare: (batch: B) => Promise<C>;
  /** The run of `site` on `batch`: input ids and interventions. */
  edit: (site: S, batch: B, ctx: C) => SiteRun;
  /** One number per prompt of the batch from the edited run's last-position logits [batch, vocab]. */
  metric: (logits: Tensor, site: S, batch: B, ctx: C) => ArrayLike<number>;
}

/**
 * Run every site's edit on every batch and collect a metric per prompt: result[site][prompt], in
 * the order of `sites` and of the prompt indices.
 *
 * @example
 * // zero-ablate each layer's MLP output; metric: the drop of the clean logit difference
 * const sites = [0, 1, 2].map((l) => `blocks.${l}.hook_mlp_out`);
 * const batches = lengthBatches(prompts, (p) => p.promptIds.length, 32);
 * const effects = await sweep(model, {
 *   promptCount: prompts.length, batches, sites,
 *   prepare: async ({ indices }) => ({
 *     ids: indices.map((i) => prompts[i].promptIds),
 *     base: logitDiffFor(await model.run(indices.map((i) => prompts[i].promptIds), { logitsAt: "last" }), correct, cf),
 *   }),
 *   edit: (hook, _b, ctx) => ({ input: ctx.ids, interventions: [zeroAt(hook)] }),
 *   metric: (logits, _s, _b, ctx) => logitDiffFor(logits, correct, cf).map((x, b) => ctx.base[b] - x),
 * }); // effects[l][prompt]
 */
export async function sweep<S, B extends SweepBatch, C>(
  model: SweepModel,
  spec: SweepSpec<S, B, C>,
): Promise<Float64Array[]> {
  const out = spec.sites.map(() => new Float64Array(spec.promptCount).fill(NaN));
  for (const batch of spec.batches) {
    const ctx = await spec.prepare(batch);
    for (let s = 0; s < spec.sites.length; s++) {
      const { input, interventions } = spec.edit(spec.sites[s], batch, ctx);
      const logits = await model.runWithHooks(input, interventions, { logitsAt: "last" }); // [batch, vocab]
      const values = spec.metric(logits, spec.sites[s], batch, ctx);
      if (values.length !== batch.indices.length) {
        throw new InputError(`sweep: the metric gave ${values.length} values for a batch of ${batch.indices.length}`, {
          field: "metric",
        });
      }
      batch.indices.forEach((pi, b) => (out[s][pi] = values[b]));
    }
  }
  return out;
}

/** Where an edit applies: every position (default), or only these (negative = from the end). */
export interface EditWhere {
  heads?: number[];
  positions?: number[];
}

/** Zero ablation of a hook (optionally some heads / positions only). */
export const zeroAt = (hook: string, where: EditWhere = {}): Intervention => ({ hook, kind: "zero", ...where });

/** Mean ablation: the hook's value replaced by `mean` (broadcast over batch and the dims it lacks). */
export const meanAt = (hook: string, mean: Tensor, where: EditWhere = {}): Intervention => ({
  hook,
  kind: "mean",
  mean,
  ...where,
});

/** Activation patching: the hook's value taken from another run's cache (same token count). */
export const patchFrom = (hook: string, source: HookValueSource | Tensor, where: EditWhere = {}): Intervention => ({
  hook,
  kind: "patch",
  source,
  ...where,
});
