/**
 * One sweep loop, in the spirit of TransformerLens' `generic_activation_patch`: for every batch of
 * prompts and every site, the forward pass with the site's edit, and a metric per prompt. The
 * sub-layer and per-head analyses are short specialisations: sites are (layer, sub-layer, method)
 * or (layer, head, method), edits are `zeroAt` / `meanAt` / `patchFrom`, metrics a logit difference.
 *
 * Work is reused: with a model that has `runSites` (HookedLlama), the sites of a batch that feed
 * the same ids and edit the same hooks share one run of the layers below their first edited hook;
 * the layers after it run per site, several sites as one batch (`sitesPerBatch`; the same logits
 * as one run per site, up to matmul rounding).
 *
 * Work survives an interruption: with a journal folder set (setSweepJournal,
 * $PARENLENS_SWEEP_JOURNAL in the notebooks), each finished batch's metric values are appended to
 * a file there and a later run of the same sweep reuses them (sweep-journal.ts).
 */
import type { HookValueSource, Intervention } from "../hooks/interventions";
import type { Tensor } from "../core/tensor";
import type { TokenBatch } from "../core/token-batch";
import { InputError } from "../core/errors";
import { OnProgress, creditForwards, defaultProgress } from "./forward-progress";
import { SweepJournal, journalAgrees, sweepJournalDir } from "./sweep-journal";
import { JournalError } from "../core/errors";

/** What the sweep needs of a model (HookedLlama fits): a run with interventions, logits at the last position. */
export interface SweepModel {
  /** The model's config (HookedLlama.config): part of a journal's identity when present. */
  readonly config?: unknown;
  runWithHooks(
    input: number[][] | TokenBatch,
    interventions: Intervention[],
    opts: { logitsAt: "last" },
  ): Promise<Tensor>;
  /** Many sites on one input, upstream layers shared (HookedLlama.runSites); used when present. */
  runSites?(
    input: number[][] | TokenBatch,
    sites: Intervention[][],
    opts: { logitsAt: "last"; sitesPerBatch?: number | "auto" },
  ): Promise<Tensor[]>;
}

/** A batch of the sweep: indices into the swept prompts (a batch of `lengthBatches` fits). */
export interface SweepBatch {
  indices: number[];
}

/** What one site runs on one batch: the token ids fed and the edits applied. */
export interface SiteRun {
  /**
   * Token ids per prompt of the batch (e.g. the clean or the corrupted prompts), or a padded
   * TokenBatch (right-aligned pairs: both sides left-padded to one width, see pairInputs).
   */
  input: number[][] | TokenBatch;
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
  /**
   * Progress
   *
   * Called with the site runs done of `batches.length × sites.length`, at the start and after
   * each group of sites.
   *
   * @default the reporter set by setDefaultProgress (none outside notebooks)
   */
  onProgress?: OnProgress;
  /**
   * Name in progress reports
   *
   * @default "sweep"
   */
  label?: string;
  /**
   * Sites per shared run
   *
   * How many sites of a batch share one upstream run (each keeps its own activations of the
   * layers after the edited hook while they run: lower it for long batches of a large model).
   * 1 runs one forward pass per site, as before.
   *
   * @default 32
   */
  sitesPerRun?: number;
  /**
   * Sites per batch
   *
   * Within a shared run, how many sites run the layers after their edit as one batch
   * (HookedLlama.runSites' `sitesPerBatch`; at most `sitesPerRun`).
   *
   * @default the model's default ("auto")
   */
  sitesPerBatch?: number | "auto";
  /**
   * Journal identity
   *
   * What else the metric values depend on, as data: the analysis' settings, its reference means,
   * the counterfactual ids. Hashed into the journal file's name with the label, the model's
   * config, the batches and the sites, so sweeps with the same sites but other settings keep
   * separate journals. Used only while a journal folder is set (setSweepJournal).
   *
   * @default null
   */
  journalKey?: unknown;
  /**
   * Journal
   *
   * false: never journal this sweep, even with a journal folder set.
   *
   * @default true
   */
  journal?: boolean;
}

/** The journal of this sweep when a journal folder is set (and the spec does not opt out), else null. */
function openJournal<S, B extends SweepBatch, C>(
  model: SweepModel,
  spec: SweepSpec<S, B, C>,
  label: string,
): SweepJournal | null {
  const dir = sweepJournalDir();
  if (dir === null || spec.journal === false) return null;
  const identity = {
    label,
    journalKey: spec.journalKey ?? null,
    config: model.config ?? null,
    promptCount: spec.promptCount,
    batches: spec.batches,
    sites: spec.sites,
  };
  return SweepJournal.open(dir, label, identity, { sites: spec.sites.length, batches: spec.batches.length });
}

/**
 * A journaled batch is reused only if its first site, run again now, gives the journaled values
 * (see journalAgrees): else the journal belongs to another model or other analysis code.
 */
async function checkJournaled<S, B extends SweepBatch, C>(
  model: SweepModel,
  journal: SweepJournal,
  spec: SweepSpec<S, B, C>,
  at: { index: number; batch: B; ctx: C; run: SiteRun },
  journaled: Float64Array,
): Promise<void> {
  const { index, batch, ctx, run } = at;
  const logits = await model.runWithHooks(run.input, run.interventions, { logitsAt: "last" }); // [batch, vocab]
  const now = spec.metric(logits, spec.sites[0], batch, ctx);
  for (let k = 0; k < batch.indices.length; k++) {
    if (!journalAgrees(journaled[k], now[k])) {
      const site = JSON.stringify(spec.sites[0]) ?? String(spec.sites[0]);
      throw new JournalError(
        `${journal.file}: batch ${index}, site 0 (${site.slice(0, 120)}): the journal holds ${journaled[k]} for prompt ${batch.indices[k]}, ` +
          `the same run gives ${now[k]} now: the model, the inputs or the analysis code changed since the journal was written; ` +
          `delete ${journal.file} to recompute`,
        { file: journal.file },
      );
    }
  }
}

/** The sites of one batch in groups that can share an upstream run: same input ids, at most `size` each. */
function siteGroups(runs: SiteRun[], size: number): number[][] {
  const byInput = new Map<string, number[]>();
  runs.forEach((r, i) => {
    const key = JSON.stringify(r.input);
    byInput.set(key, [...(byInput.get(key) ?? []), i]);
  });
  const groups: number[][] = [];
  for (const members of byInput.values())
    for (let k = 0; k < members.length; k += size) groups.push(members.slice(k, k + size));
  return groups;
}

/** Last-position logits of each site run of one batch ([batch, vocab] each), upstream shared where possible. */
async function runBatchSites(
  model: SweepModel,
  runs: SiteRun[],
  size: number,
  sitesPerBatch: number | "auto" | undefined,
  step: (n: number) => void,
): Promise<Tensor[]> {
  const logits: Tensor[] = new Array(runs.length);
  for (const group of siteGroups(runs, size)) {
    if (model.runSites && group.length > 1) {
      const out = await model.runSites(
        runs[group[0]].input,
        group.map((i) => runs[i].interventions),
        sitesPerBatch === undefined ? { logitsAt: "last" } : { logitsAt: "last", sitesPerBatch },
      );
      group.forEach((i, k) => (logits[i] = out[k]));
    } else {
      for (const i of group)
        logits[i] = await model.runWithHooks(runs[i].input, runs[i].interventions, { logitsAt: "last" });
    }
    step(group.length);
  }
  return logits;
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
  const size = spec.sitesPerRun ?? 32;
  if (!Number.isInteger(size) || size < 1)
    throw new InputError(`sweep: sitesPerRun must be a positive integer, got ${JSON.stringify(size)}`, {
      field: "sitesPerRun",
    });
  const out = spec.sites.map(() => new Float64Array(spec.promptCount).fill(NaN));
  const report = spec.onProgress ?? defaultProgress();
  const label = spec.label ?? "sweep";
  const total = spec.batches.length * spec.sites.length;
  let done = 0;
  report?.({ label, done, total });
  const journal = openJournal(model, spec, label);
  for (const [index, batch] of spec.batches.entries()) {
    const ctx = await spec.prepare(batch); // also for a journaled batch: analyses fill their baselines here
    const runs = spec.sites.map((site) => spec.edit(site, batch, ctx));
    const journaled = journal?.get(index, batch.indices) ?? null;
    if (journal && journaled) {
      if (runs.length > 0)
        await checkJournaled(model, journal, spec, { index, batch, ctx, run: runs[0] }, journaled[0]);
      creditForwards(runs.length - 1); // the check ran one of the batch's site runs
      report?.({ label, done: (done += runs.length), total });
      journaled.forEach((values, s) => batch.indices.forEach((pi, b) => (out[s][pi] = values[b])));
      continue;
    }
    const logits = await runBatchSites(model, runs, size, spec.sitesPerBatch, (n) =>
      report?.({ label, done: (done += n), total }),
    );
    const batchValues: ArrayLike<number>[] = [];
    for (let s = 0; s < spec.sites.length; s++) {
      const values = spec.metric(logits[s], spec.sites[s], batch, ctx); // logits [batch, vocab]
      if (values.length !== batch.indices.length) {
        throw new InputError(`sweep: the metric gave ${values.length} values for a batch of ${batch.indices.length}`, {
          field: "metric",
        });
      }
      batch.indices.forEach((pi, b) => (out[s][pi] = values[b]));
      batchValues.push(values);
    }
    journal?.record(index, batch.indices, batchValues);
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

/**
 * Activation patching: the hook's value taken from another run's cache, at the same padded index
 * (same token count, or both runs left-padded to one width: right-aligned, see pairInputs).
 */
export const patchFrom = (hook: string, source: HookValueSource | Tensor, where: EditWhere = {}): Intervention => ({
  hook,
  kind: "patch",
  source,
  ...where,
});
