/**
 * Finding 2, MHA vs FF: for every layer, the effect of its attention sub-layer (hook_attn_out)
 * and MLP sub-layer (hook_mlp_out) on the logit difference, by
 * - "zero-ablation" / "mean-ablation": LD(clean) − LD(clean with the sub-layer's output zeroed /
 *   replaced by its mean over the reference prompts: by default one mean over every reference
 *   position, or per position over the reference prompts of the same length, see `meanOver`) [logits];
 * - "denoising": the corrupted prompt run with the clean sub-layer output patched in,
 *   (LD(patched) − LD(corrupted)) / (LD(clean) − LD(corrupted)) [fraction of the gap restored];
 * - "noising": the clean prompt run with the corrupted sub-layer output patched in,
 *   (LD(clean) − LD(patched)) / (LD(clean) − LD(corrupted)) [fraction of the gap destroyed];
 * - "dla": direct logit attribution of the sub-layer's output at the last position, through the
 *   run's cached final-norm scale, onto W_U[:, correct] − W_U[:, counterfactual] [logits].
 * Positive always means "this sub-layer carries the correct answer". LD = logit[label] −
 * logit[counterfactual] with the counterfactual fixed per prompt (from the clean run), so the
 * metric is linear in the logits and the same token pair is compared in every run.
 */
import type { HookedLlama } from "../runtime/hooked-llama";
import type { ActivationCache } from "../hooks/activation-cache";
import { InputError } from "../core/errors";
import { Tensor } from "../core/tensor";
import { BootstrapOptions, bootstrapGapFraction, bootstrapMean } from "./bootstrap";
import { dot, logitDiffFor, modelUnembedColumns } from "./metrics";
import { ParenRunTokens } from "../task/paren-tokens";
import {
  GroupedEffect,
  PairAlignment,
  PromptGroup,
  PromptPair,
  StudyPrompt,
  batchCounterfactuals,
  checkPromptPairs,
  checkStudyPrompts,
  groupsOf,
  lengthBatches,
  modelParens,
  pairAlignment,
  pairBatches,
  pairInputs,
  patchWhere,
} from "./study";
import { meanAt, patchFrom, sweep, zeroAt } from "./sweep";
import { ProgressOptions, silentProgress, withForwardProgress } from "./forward-progress";

/** Forward passes of sublayerEffects: the reference caches, then per batch the clean (and corrupted) cache and one run per site. */
function sublayerForwards(
  L: number,
  pairs: PromptPair[],
  cfg: { methods: SublayerMethod[]; batchSize: number; allCorrupted: boolean },
  reference: StudyPrompt[] | SublayerReference | undefined,
): number {
  const batches = pairBatches(pairs, cfg.batchSize).length;
  // a SublayerReference was summed by an earlier call: no reference caches here
  const means =
    cfg.methods.includes("mean-ablation") && Array.isArray(reference)
      ? lengthBatches(reference, (p) => p.promptIds.length, cfg.batchSize).length
      : 0;
  return means + batches * (1 + (cfg.allCorrupted ? 1 : 0) + 2 * L * sweptMethods(cfg.methods).length);
}

/**
 * The forward passes `sublayerEffects(model, pairs, opts)` will run (what its progress announces),
 * from the model's config and tokenizer only: scripts/bench/notebook-forwards.ts counts a notebook
 * on CodeLlama-7b's layout with it.
 *
 * @example
 * sublayerEffectsForwards({ config: { ...model.config, numLayers: 32 }, tokenizer: tok }, pairs, { reference });
 */
export function sublayerEffectsForwards(
  model: Pick<HookedLlama, "config" | "tokenizer">,
  pairs: PromptPair[],
  opts: SublayerEffectsOptions = {},
): number {
  return sublayerForwards(
    model.config.numLayers,
    pairs,
    sublayerSettings(model as HookedLlama, pairs, opts),
    opts.reference,
  );
}

/**
 * Which mean replaces a sub-layer output in mean ablation:
 * - "all-positions": one [d_model] vector per hook, the mean over every position of every
 *   reference prompt;
 * - "per-position-same-length": a [pos, d_model] mean per hook over the reference prompts with the
 *   clean prompt's token count (a length no reference prompt has falls back to "all-positions");
 *   on a template where length fixes n, this mean keeps the count;
 * - "right-aligned-all-lengths": a [pos, d_model] mean per hook over the reference prompts of
 *   every length, aligned from the right (the last position averages every prompt's last
 *   position, and so on): position-specific, but pooled over every n, so it does not carry the
 *   count. Positions further from the end than the longest reference fall back to "all-positions".
 */
export type MeanAblationBasis = "all-positions" | "per-position-same-length" | "right-aligned-all-lengths";
export const MEAN_ABLATION_BASES: MeanAblationBasis[] = [
  "all-positions",
  "per-position-same-length",
  "right-aligned-all-lengths",
];

export type SublayerMethod = "zero-ablation" | "mean-ablation" | "denoising" | "noising" | "dla";
export const SUBLAYER_METHODS: SublayerMethod[] = ["zero-ablation", "mean-ablation", "denoising", "noising", "dla"];

export interface SublayerEffectsOptions extends ProgressOptions {
  /**
   * Methods
   *
   * Which effects to compute, each in its own rows.
   *
   * @default every method the inputs allow: denoising and noising need a corrupted prompt in every pair, mean ablation `reference`
   */
  methods?: SublayerMethod[];
  /**
   * Reference prompts
   *
   * Prompts whose activations give the means for mean ablation (a held-out split), or their
   * activations already summed: an earlier result's `reference` or `sublayerReference(model,
   * prompts)`, so calls on the same reference run its caches once (every `meanOver` is computed
   * from the same sums, so the means are the same numbers).
   *
   * @default none (no mean ablation)
   * @example
   * const main = await sublayerEffects(model, pairs, { reference: data.splits.reference });
   * const sameLength = await sublayerEffects(model, pairs, { reference: main.reference!, meanOver: "per-position-same-length" });
   */
  reference?: StudyPrompt[] | SublayerReference;
  /**
   * Mean over
   *
   * Which mean replaces the sub-layer output in mean ablation. On templated prompts the token count
   * fixes n (the authors' template does), so a per-position mean over same-length prompts is a
   * mean over prompts with the same count: it keeps the count, and ablating to it cannot show
   * whether a sub-layer carries it.
   *
   * @default "all-positions"
   */
  meanOver?: MeanAblationBasis;
  /**
   * Counterfactual
   *
   * The token the label is compared against in LD, fixed per prompt: the corrupted partner's label,
   * or the strongest wrong paren run of the clean run.
   *
   * @default "corrupted-label" when every pair has a corrupted prompt, else "strongest-wrong"
   */
  counterfactual?: "corrupted-label" | "strongest-wrong";
  /**
   * Positions
   *
   * Ablate / patch the sub-layer output at every position or at the last one only.
   *
   * @default "all"
   */
  positions?: "all" | "last";
  /**
   * Batch size
   *
   * Prompts per forward pass (batches hold prompts of one token count).
   *
   * @default 32
   */
  batchSize?: number;
  /**
   * Bootstrap
   *
   * Resamples, seed and level of every interval.
   *
   * @default { samples: 1000, seed: 0, level: 0.95 }
   */
  bootstrap?: BootstrapOptions;
  /**
   * Paren-run tokens
   *
   * Ids of the runs `)` … `))))`.
   *
   * @default looked up through the model's tokenizer
   */
  parens?: ParenRunTokens;
}

export interface SublayerEffectRow extends GroupedEffect {
  layer: number;
  sublayer: "attn" | "mlp";
  hook: string;
  method: SublayerMethod;
}

export interface SublayerPromptValue {
  prompt: number;
  n: number;
  layer: number;
  sublayer: "attn" | "mlp";
  method: SublayerMethod;
  /** Ablation: LD(clean) − LD(ablated); dla: the contribution; patching: LD of the patched run (un-normalised). */
  value: number;
}

export interface SublayerEffectsResult {
  rows: SublayerEffectRow[];
  /** The reference activations mean ablation used (null without it): pass as `reference` to the next call on them. */
  reference: SublayerReference | null;
  perPrompt: SublayerPromptValue[];
  /** Each pair's clean and corrupted LD (indexed like `pairs`): with `perPrompt`, enough to recompute any effect on a subset. */
  promptBaseline: { prompt: number; n: number; clean: number; corrupted: number }[];
  /** Mean LD of the clean and (when given) corrupted runs per n and pooled. */
  baseline: { group: string; n: number | null; count: number; cleanLogitDiff: number; corruptedLogitDiff: number }[];
  metadata: {
    methods: SublayerMethod[];
    counterfactual: "corrupted-label" | "strongest-wrong";
    positions: "all" | "last";
    /**
     * How clean and corrupted positions line up in patching: ["same-length"] (index for index), with
     * "right-aligned" when some pair's prompts have different token counts (both left-padded to one
     * width; "all" then patches every position both prompts have, counted from the end, never the
     * longer prompt's unpaired first tokens); [] without corrupted prompts.
     */
    alignments: PairAlignment[];
    /** The mean used by mean ablation. */
    meanOver: MeanAblationBasis;
    /** Mean DLA of the embedding (pooled): with the sub-layers' DLA it sums to the clean LD. */
    dlaEmbed: number;
    /** "per-position-same-length" only: lengths no reference prompt had; their means fell back to the mean over all reference positions. */
    meanFallbackLengths: number[];
    methodNotes: Record<SublayerMethod, string>;
  };
}

const MEAN_NOTES: Record<MeanAblationBasis, string> = {
  "right-aligned-all-lengths":
    "LD(clean) − LD(clean, sub-layer output set to its mean at the same distance from the end over the reference prompts of every length) [logits]",
  "all-positions":
    "LD(clean) − LD(clean, sub-layer output set to its mean over every position of every reference prompt) [logits]",
  "per-position-same-length":
    "LD(clean) − LD(clean, sub-layer output set to its per-position mean over the reference prompts of the same length) [logits]",
};

const METHOD_NOTES: Record<SublayerMethod, string> = {
  "zero-ablation": "LD(clean) − LD(clean, sub-layer output set to 0) [logits]",
  "mean-ablation": "LD(clean) − LD(clean, sub-layer output set to its mean over the reference prompts) [logits]",
  denoising:
    "(LD(corrupted, clean output patched in) − LD(corrupted)) / (LD(clean) − LD(corrupted)) [fraction restored]",
  noising: "(LD(clean) − LD(clean, corrupted output patched in)) / (LD(clean) − LD(corrupted)) [fraction destroyed]",
  dla: "sub-layer output at the last position / cached final-norm scale × final norm weight · (W_U[:, label] − W_U[:, counterfactual]) [logits]",
};

export const sublayerHook = (layer: number, sublayer: "attn" | "mlp"): string => `blocks.${layer}.hook_${sublayer}_out`;

/**
 * The reference prompts' sub-layer outputs summed for mean ablation: per length [pos · d_model]
 * and over every position [d_model], in float64, for every sub-layer hook. Made by
 * `sublayerReference` (or returned by sublayerEffects as `reference`); every `meanOver` is
 * computed from these sums, so one object serves every call on the same reference prompts.
 */
export interface SublayerReference {
  readonly kind: "sublayer-reference";
  /** the reference prompts summed */
  readonly prompts: readonly StudyPrompt[];
  /** prompts per forward pass of the reference caches (same-length batches) */
  readonly batchSize: number;
  /** the hooks summed (every layer's attn_out and mlp_out) */
  readonly hooks: readonly string[];
  /** d_model of the model the sums come from */
  readonly dModel: number;
  readonly sums: Map<number, Map<string, Float64Array>>; // length → hook → [pos * d_model]
  readonly counts: Map<number, number>; // length → prompts
  readonly overall: Map<string, Float64Array>; // hook → [d_model]
  readonly overallCount: number; // positions summed in `overall`
}

/** Every layer's attention and MLP output hook, in sweep order. */
function sublayerHooks(L: number): string[] {
  return Array.from({ length: L }, (_, l) => SUBLAYERS.map((s) => sublayerHook(l, s))).flat();
}

/**
 * Sum the reference prompts' sub-layer outputs once (one cache per same-length batch), for
 * mean ablation in any number of sublayerEffects calls (`{ reference: sums }`).
 *
 * @example
 * const ref = await sublayerReference(model, data.splits.reference);
 * const a = await sublayerEffects(model, pairs, { reference: ref });
 * const b = await sublayerEffects(model, pairs, { reference: ref, meanOver: "per-position-same-length" });
 */
export async function sublayerReference(
  model: HookedLlama,
  reference: StudyPrompt[],
  opts: { batchSize?: number } = {},
): Promise<SublayerReference> {
  const batchSize = opts.batchSize ?? 32;
  if (!Array.isArray(reference) || reference.length === 0)
    throw new InputError("mean ablation needs at least one reference prompt", { field: "reference" });
  checkStudyPrompts(reference, model.config.vocabSize, "reference");
  const hooks = sublayerHooks(model.config.numLayers);
  const D = model.config.hiddenSize;
  const sums = new Map<number, Map<string, Float64Array>>(); // length → hook → [pos * d_model]
  const counts = new Map<number, number>();
  const overall = new Map<string, Float64Array>(hooks.map((h) => [h, new Float64Array(D)]));
  let overallCount = 0;
  for (const { length: T, indices } of lengthBatches(reference, (p) => p.promptIds.length, batchSize)) {
    const { cache } = await model.runWithCache(
      indices.map((i) => reference[i].promptIds),
      { names: hooks, logitsAt: "last" },
    );
    if (!sums.has(T)) sums.set(T, new Map(hooks.map((h) => [h, new Float64Array(T * D)])));
    counts.set(T, (counts.get(T) ?? 0) + indices.length);
    overallCount += indices.length * T;
    for (const h of hooks) {
      const v = cache.get(h).data; // [batch, pos, d_model]
      const s = sums.get(T)!.get(h)!;
      const o = overall.get(h)!;
      for (let i = 0; i < v.length; i++) {
        s[i % (T * D)] += v[i];
        o[i % D] += v[i];
      }
    }
  }
  return {
    kind: "sublayer-reference",
    prompts: reference,
    batchSize,
    hooks,
    dModel: D,
    sums,
    counts,
    overall,
    overallCount,
  };
}

/** Whether a `reference` option is already-summed activations. */
function isSublayerReference(x: unknown): x is SublayerReference {
  return typeof x === "object" && x !== null && (x as SublayerReference).kind === "sublayer-reference";
}

/**
 * Means of some hooks over the reference prompts, for each wanted length (length → hook → mean):
 * "all-positions" gives the same [d_model] mean over every reference position for every length;
 * "per-position-same-length" gives [pos, d_model] means over the reference prompts of that length,
 * and for a length no reference prompt has, the [d_model] all-positions mean (listed in fallbackLengths).
 */
export async function referenceMeans(
  model: HookedLlama,
  reference: StudyPrompt[] | SublayerReference,
  lengths: number[],
  opts: { meanOver?: MeanAblationBasis; batchSize?: number } = {},
): Promise<{ means: Map<number, Map<string, Tensor>>; fallbackLengths: number[]; reference: SublayerReference }> {
  const meanOver = opts.meanOver ?? "all-positions";
  if (!MEAN_ABLATION_BASES.includes(meanOver)) {
    throw new InputError(`unknown meanOver "${meanOver}"; expected ${MEAN_ABLATION_BASES.join(", ")}`, {
      field: "meanOver",
    });
  }
  const summed = isSublayerReference(reference)
    ? checkReference(model, reference)
    : await sublayerReference(model, reference, { batchSize: opts.batchSize });
  const { sums, counts, overall, overallCount, hooks } = summed;
  const D = model.config.hiddenSize;
  // [d_model] per hook: each reference position weighs the same
  const overallMeans = new Map(
    hooks.map((h) => [
      h,
      new Tensor(
        Float32Array.from(overall.get(h)!, (x) => x / overallCount),
        [D],
        ["d_model"],
      ),
    ]),
  );
  const means = new Map<number, Map<string, Tensor>>();
  const fallbackLengths: number[] = [];
  for (const T of lengths) {
    const s = sums.get(T);
    if (meanOver === "all-positions") means.set(T, overallMeans);
    else if (meanOver === "right-aligned-all-lengths") {
      const m = new Map(hooks.map((h) => [h, rightAlignedMean(sums, counts, h, T, overallMeans.get(h)!.data)]));
      if ([...sums.keys()].every((T2) => T2 < T)) fallbackLengths.push(T);
      means.set(T, m);
    } else if (!s) {
      means.set(T, overallMeans);
      fallbackLengths.push(T);
    } else {
      const c = counts.get(T)!;
      means.set(
        T,
        new Map(
          hooks.map((h) => [
            h,
            new Tensor(
              Float32Array.from(s.get(h)!, (x) => x / c),
              [T, D],
              ["pos", "d_model"],
            ),
          ]),
        ),
      ); // [pos, d_model]
    }
  }
  return { means, fallbackLengths, reference: summed };
}

/** A SublayerReference from another model (other layers or width) is refused, not used. */
function checkReference(model: HookedLlama, ref: SublayerReference): SublayerReference {
  const hooks = sublayerHooks(model.config.numLayers);
  if (
    ref.dModel !== model.config.hiddenSize ||
    ref.hooks.length !== hooks.length ||
    !hooks.every((h, i) => ref.hooks[i] === h)
  )
    throw new InputError(
      `reference: these summed activations are of a model with d_model ${ref.dModel} and ${ref.hooks.length / 2} layers, not this one (d_model ${model.config.hiddenSize}, ${model.config.numLayers} layers); sum them on this model with sublayerReference`,
      { field: "reference" },
    );
  return ref;
}

/**
 * [T, d_model] mean of one hook aligned from the right over the reference sums of every length:
 * position p of a length-T prompt averages position T2 − (T − p) of every reference of length T2
 * that has it; positions no reference reaches take the all-positions mean `fallback` [d_model].
 */
function rightAlignedMean(
  sums: Map<number, Map<string, Float64Array>>,
  counts: Map<number, number>,
  hook: string,
  T: number,
  fallback: Float32Array,
): Tensor {
  const D = fallback.length;
  const out = new Float32Array(T * D); // [pos, d_model]
  for (let p = 0; p < T; p++) {
    const fromEnd = T - p; // 1 = the last position
    const acc = new Float64Array(D);
    let c = 0;
    for (const [T2, byHook] of sums) {
      if (T2 < fromEnd) continue;
      const v = byHook.get(hook)!; // [T2 * d_model]
      const off = (T2 - fromEnd) * D;
      for (let d = 0; d < D; d++) acc[d] += v[off + d];
      c += counts.get(T2)!;
    }
    for (let d = 0; d < D; d++) out[p * D + d] = c ? acc[d] / c : fallback[d];
  }
  return new Tensor(out, [T, D], ["pos", "d_model"]);
}

/** The options with their defaults, checked against the inputs. */
function sublayerSettings(model: HookedLlama, pairs: PromptPair[], opts: SublayerEffectsOptions) {
  const allCorrupted = checkPromptPairs(pairs, model.config.vocabSize);
  const methods =
    opts.methods ??
    SUBLAYER_METHODS.filter((m) => (m !== "denoising" && m !== "noising") || allCorrupted).filter(
      (m) => m !== "mean-ablation" || opts.reference,
    );
  for (const m of methods)
    if (!SUBLAYER_METHODS.includes(m))
      throw new InputError(`unknown method "${m}"; expected ${SUBLAYER_METHODS.join(", ")}`, { field: "methods" });
  if ((methods.includes("denoising") || methods.includes("noising")) && !allCorrupted)
    throw new InputError("denoising/noising need a corrupted prompt in every pair", { field: "pairs.corrupted" });
  if (methods.includes("mean-ablation") && !opts.reference)
    throw new InputError("mean-ablation needs { reference } prompts", { field: "reference" });
  const meanOver = opts.meanOver ?? "all-positions";
  if (!MEAN_ABLATION_BASES.includes(meanOver)) {
    throw new InputError(`unknown meanOver "${meanOver}"; expected ${MEAN_ABLATION_BASES.join(", ")}`, {
      field: "meanOver",
    });
  }
  const counterfactual = opts.counterfactual ?? (allCorrupted ? "corrupted-label" : "strongest-wrong");
  if (counterfactual === "corrupted-label" && !allCorrupted)
    throw new InputError('counterfactual "corrupted-label" needs a corrupted prompt in every pair', {
      field: "counterfactual",
    });
  const positions = opts.positions ?? "all";
  const parens = modelParens(model, opts.parens);
  return { allCorrupted, methods, meanOver, counterfactual, positions, parens, batchSize: opts.batchSize ?? 32 };
}

const SUBLAYERS: ("attn" | "mlp")[] = ["attn", "mlp"];
type SweptMethod = Exclude<SublayerMethod, "dla">;

/** The methods that run one edited forward per site, in sweep order. */
const sweptMethods = (methods: SublayerMethod[]): SweptMethod[] =>
  (["zero-ablation", "mean-ablation", "denoising", "noising"] as SweptMethod[]).filter((m) => methods.includes(m));
interface SublayerSite {
  /** 2 × layer + (0 attn, 1 mlp) */
  k: number;
  hook: string;
  method: SweptMethod;
}

/**
 * Effects of every layer's attention and MLP sub-layer on the logit difference (see the file
 * comment for each method), per n and pooled, with bootstrap intervals.
 *
 * @example
 * const { pairs } = makeCorruptedPairs(tok, data.splits.analysis);
 * const res = await sublayerEffects(model, pairs, { reference: data.splits.reference, counterfactual: "strongest-wrong" });
 * res.rows.filter((r) => r.method === "denoising" && r.n === null); // fraction of the gap restored per sub-layer
 */
export async function sublayerEffects(
  model: HookedLlama,
  pairs: PromptPair[],
  opts: SublayerEffectsOptions = {},
): Promise<SublayerEffectsResult> {
  const cfg = sublayerSettings(model, pairs, opts);
  const { methods, positions, batchSize } = cfg;
  const L = model.config.numLayers;
  const hooks = sublayerHooks(L);
  const batches = pairBatches(pairs, batchSize);
  const meaning = methods.includes("mean-ablation");
  const P = pairs.length;
  const ldClean = new Float64Array(P);
  const ldCorrupted = new Float64Array(P).fill(NaN);
  const dla = Array.from({ length: 2 * L + 1 }, () => new Float64Array(P)); // [embed, 0 attn, 0 mlp, …][prompt]
  const forwards = sublayerForwards(L, pairs, cfg, opts.reference);
  const { means, sites, effects } = await withForwardProgress(model, opts, "sublayerEffects", forwards, async () => {
    const means = meaning
      ? await referenceMeans(model, opts.reference!, [...new Set(batches.map((b) => b.length))], {
          meanOver: cfg.meanOver,
          batchSize,
        })
      : { means: new Map<number, Map<string, Tensor>>(), fallbackLengths: [], reference: null };
    return {
      means,
      ...(await sublayerSweep(
        model,
        pairs,
        cfg,
        hooks,
        batches,
        means.means,
        { ldClean, ldCorrupted, dla },
        opts.reference,
      )),
    };
  });
  // values[method][layer*2 + s][prompt]
  const values = new Map<SublayerMethod, Float64Array[]>(methods.map((m) => [m, new Array<Float64Array>(2 * L)]));
  sites.forEach((s, i) => (values.get(s.method)![s.k] = effects[i]));
  if (methods.includes("dla")) values.set("dla", dla.slice(1));

  const ns = pairs.map((p) => p.clean.n);
  const groups = groupsOf(ns);
  const { rows, perPrompt } = sublayerRows(values, methods, groups, ns, { ldClean, ldCorrupted }, opts.bootstrap ?? {});
  const mean = (xs: Float64Array, idx: number[]) => idx.reduce((a, i) => a + xs[i], 0) / idx.length;
  return {
    rows,
    reference: means.reference,
    perPrompt,
    promptBaseline: ns.map((n, i) => ({ prompt: i, n, clean: ldClean[i], corrupted: ldCorrupted[i] })),
    baseline: groups.map((g) => ({
      group: g.group,
      n: g.n,
      count: g.idx.length,
      cleanLogitDiff: mean(ldClean, g.idx),
      corruptedLogitDiff: mean(ldCorrupted, g.idx),
    })),
    metadata: {
      methods,
      counterfactual: cfg.counterfactual,
      positions,
      alignments: cfg.allCorrupted ? [...new Set(pairs.map(pairAlignment))] : [],
      meanOver: cfg.meanOver,
      dlaEmbed: mean(
        dla[0],
        pairs.map((_, i) => i),
      ),
      meanFallbackLengths: means.fallbackLengths,
      methodNotes: { ...METHOD_NOTES, "mean-ablation": MEAN_NOTES[cfg.meanOver] },
    },
  };
}

/** Per-prompt LDs the sweep fills in: clean, corrupted, and the DLA of each residual component. */
interface SublayerBaselines {
  ldClean: Float64Array;
  ldCorrupted: Float64Array;
  /** [embed, 0 attn, 0 mlp, …][prompt] */
  dla: Float64Array[];
}

/** The ablation and patching runs of every sub-layer, through `sweep`; fills `acc` from each batch's clean run. */
async function sublayerSweep(
  model: HookedLlama,
  pairs: PromptPair[],
  cfg: ReturnType<typeof sublayerSettings>,
  hooks: string[],
  batches: { length: number; indices: number[] }[],
  means: Map<number, Map<string, Tensor>>,
  acc: SublayerBaselines,
  reference: SublayerEffectsOptions["reference"],
): Promise<{ sites: SublayerSite[]; effects: Float64Array[] }> {
  const { ldClean, ldCorrupted, dla } = acc;
  const where = cfg.positions === "last" ? { positions: [-1] } : {};
  const sites: SublayerSite[] = hooks.flatMap((hook, k) =>
    sweptMethods(cfg.methods).map((method) => ({ k, hook, method })),
  );
  const effects = await sweep(model, {
    onProgress: silentProgress,
    label: "sublayerEffects",
    // inputs only: the means are model outputs, which round differently on another CPU (the
    // journal's check of each reused batch catches another model)
    journalKey: {
      settings: cfg,
      pairs,
      reference: reference === undefined ? null : Array.isArray(reference) ? reference : reference.prompts,
    },
    promptCount: pairs.length,
    batches,
    sites,
    prepare: async ({ length: T, indices }) => {
      // right-aligned pairs: clean and corrupted left-padded to one width, every clean run on that width
      const inp = pairInputs(pairs, indices);
      const cleanIds = inp.clean;
      const clean = await model.runWithCache(cleanIds, {
        names: ["hook_embed", ...hooks, "ln_final.hook_scale"],
        logitsAt: "last",
      });
      const correct = indices.map((i) => pairs[i].clean.labelId);
      const cf = batchCounterfactuals(clean.logits, pairs, indices, cfg.counterfactual, cfg.parens);
      const ld = (logits: Tensor) => logitDiffFor(logits, correct, cf);
      const base = ld(clean.logits);
      indices.forEach((pi, b) => (ldClean[pi] = base[b]));
      let corrupted: { logits: Tensor; cache: ActivationCache } | null = null;
      const corruptedIds = cfg.allCorrupted ? inp.corrupted : [];
      if (cfg.allCorrupted) {
        corrupted = await model.runWithCache(corruptedIds, { names: hooks, logitsAt: "last" });
        const c = ld(corrupted.logits);
        indices.forEach((pi, b) => (ldCorrupted[pi] = c[b]));
      }
      directLogitAttribution(model, clean.cache, indices, correct, cf, dla);
      const width = Array.isArray(cleanIds) ? T : cleanIds.ids[0].length;
      const meanOf = (hook: string) => leftPadRows(means.get(T)!.get(hook)!, width);
      return { cleanIds, corruptedIds, clean, corrupted, ld, base, meanOf, patchAt: patchWhere(cfg.positions, inp) };
    },
    edit: ({ hook, method }, _batch, c) => {
      if (method === "zero-ablation") return { input: c.cleanIds, interventions: [zeroAt(hook, where)] };
      if (method === "mean-ablation")
        return { input: c.cleanIds, interventions: [meanAt(hook, c.meanOf(hook), where)] };
      if (method === "denoising")
        return { input: c.corruptedIds, interventions: [patchFrom(hook, c.clean.cache, c.patchAt)] };
      return { input: c.cleanIds, interventions: [patchFrom(hook, c.corrupted!.cache, c.patchAt)] };
    },
    metric: (logits, { method }, _batch, c) => {
      const out = c.ld(logits);
      return method === "zero-ablation" || method === "mean-ablation" ? out.map((x, b) => c.base[b] - x) : out;
    },
  });
  return { sites, effects };
}

/**
 * A [pos, d_model] mean as the rows of a batch left-padded to `width` (zeros on the pad rows,
 * which no token attends to); a [d_model] mean, or one already `width` long, as it is.
 */
function leftPadRows(mean: Tensor, width: number): Tensor {
  if (mean.shape.length !== 2 || mean.shape[0] === width) return mean;
  const [T, D] = mean.shape;
  const out = new Float32Array(width * D); // [width, d_model]
  out.set(mean.data, (width - T) * D);
  return new Tensor(out, [width, D], ["pos", "d_model"]);
}

/**
 * Direct logit attribution at the last position of one batch: each component of the residual
 * (embedding, then every sub-layer output) through the cached final norm onto
 * W_U[:, correct] − W_U[:, counterfactual]; out[component][prompt] (component 0 = embed, 1 + 2l + s).
 */
function directLogitAttribution(
  model: HookedLlama,
  cache: ActivationCache,
  indices: number[],
  correct: number[],
  cf: number[],
  out: Float64Array[],
): void {
  const D = model.config.hiddenSize;
  const { stack, labels } = cache.decomposeResid({ pos: "last", applyLn: true }); // [component, batch, d_model]
  const B = indices.length;
  const dir = new Float64Array(D); // [d_model]
  indices.forEach((pi, b) => {
    const [c, x] = modelUnembedColumns(model, [correct[b], cf[b]]); // W_U[:, correct], W_U[:, cf]
    for (let d = 0; d < D; d++) dir[d] = c[d] - x[d];
    labels.forEach((label, c) => {
      const x = stack.data.subarray((c * B + b) * D, (c * B + b + 1) * D);
      out[c][pi] = dot(x, dir);
    });
  });
}

/** Per-prompt values and grouped rows (ratio-of-means intervals for patching, means for the rest). */
function sublayerRows(
  values: Map<SublayerMethod, Float64Array[]>,
  methods: SublayerMethod[],
  groups: PromptGroup[],
  ns: number[],
  ld: { ldClean: Float64Array; ldCorrupted: Float64Array },
  boot: BootstrapOptions,
): { rows: SublayerEffectRow[]; perPrompt: SublayerPromptValue[] } {
  const rows: SublayerEffectRow[] = [];
  const perPrompt: SublayerPromptValue[] = [];
  const L = values.get(methods[0])?.length ?? 0;
  for (let k = 0; k < L; k++) {
    const layer = k >> 1;
    const sublayer = SUBLAYERS[k & 1];
    for (const method of methods) {
      const v = values.get(method)![k];
      for (let i = 0; i < ns.length; i++) perPrompt.push({ prompt: i, n: ns[i], layer, sublayer, method, value: v[i] });
      const patching = method === "denoising" || method === "noising";
      for (const g of groups) {
        const ci = patching
          ? bootstrapGapFraction(
              ld.ldClean,
              ld.ldCorrupted,
              v,
              g.idx,
              method === "denoising" ? "restored" : "destroyed",
              boot,
            )
          : bootstrapMean(
              g.idx.map((i) => v[i]),
              boot,
            );
        rows.push({
          layer,
          sublayer,
          hook: sublayerHook(layer, sublayer),
          method,
          group: g.group,
          n: g.n,
          count: g.idx.length,
          effect: ci.estimate,
          lo: ci.lo,
          hi: ci.hi,
          unit: patching ? "fraction" : "logit",
        });
      }
    }
  }
  return { rows, perPrompt };
}
