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
import { BootstrapOptions, bootstrapIndices, bootstrapMean } from "./bootstrap";
import { dot, GroupedEffect, logitDiffFor, scoreRow } from "./metrics";
import { StudyPrompt, lengthBatches } from "../task/prompts";
import { checkStudyPrompts, modelParens } from "./logit-lens";
import { ParenRunTokens } from "../task/paren-tokens";

/**
 * Which mean replaces a sub-layer output in mean ablation:
 * - "all-positions": one [d_model] vector per hook, the mean over every position of every
 *   reference prompt;
 * - "per-position-same-length": a [pos, d_model] mean per hook over the reference prompts with the
 *   clean prompt's token count (a length no reference prompt has falls back to "all-positions").
 */
export type MeanAblationBasis = "all-positions" | "per-position-same-length";
export const MEAN_ABLATION_BASES: MeanAblationBasis[] = ["all-positions", "per-position-same-length"];

export type SublayerMethod = "zero-ablation" | "mean-ablation" | "denoising" | "noising" | "dla";
export const SUBLAYER_METHODS: SublayerMethod[] = ["zero-ablation", "mean-ablation", "denoising", "noising", "dla"];

/** A clean prompt and, for patching, its corrupted partner (same token count). A CorruptedPair fits. */
export interface PromptPair {
  clean: StudyPrompt;
  corrupted?: StudyPrompt;
}

export interface SublayerEffectsOptions {
  /** Default: every method the inputs allow (patching needs corrupted prompts, mean ablation a reference set). */
  methods?: SublayerMethod[];
  /** Prompts whose activations give the means for mean ablation (a held-out split). */
  reference?: StudyPrompt[];
  /**
   * Default "all-positions". On templated prompts the token count fixes n (the authors' template
   * does), so a per-position mean over same-length prompts is a mean over prompts with the same
   * count: it keeps the count, and ablating to it cannot show whether a sub-layer carries it.
   */
  meanOver?: MeanAblationBasis;
  /** Default "corrupted-label" when every pair has a corrupted prompt, else "strongest-wrong" (taken from the clean run). */
  counterfactual?: "corrupted-label" | "strongest-wrong";
  /** Ablate / patch the sub-layer output at every position (default) or at the last one only. */
  positions?: "all" | "last";
  batchSize?: number;
  bootstrap?: BootstrapOptions;
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
  perPrompt: SublayerPromptValue[];
  /** Mean LD of the clean and (when given) corrupted runs per n and pooled. */
  baseline: { group: string; n: number | null; count: number; cleanLogitDiff: number; corruptedLogitDiff: number }[];
  metadata: {
    methods: SublayerMethod[];
    counterfactual: "corrupted-label" | "strongest-wrong";
    positions: "all" | "last";
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
 * Means of some hooks over the reference prompts, for each wanted length (length → hook → mean):
 * "all-positions" gives the same [d_model] mean over every reference position for every length;
 * "per-position-same-length" gives [pos, d_model] means over the reference prompts of that length,
 * and for a length no reference prompt has, the [d_model] all-positions mean (listed in fallbackLengths).
 */
export async function referenceMeans(
  model: HookedLlama,
  reference: StudyPrompt[],
  hooks: string[],
  lengths: number[],
  opts: { meanOver?: MeanAblationBasis; batchSize?: number } = {},
): Promise<{ means: Map<number, Map<string, Tensor>>; fallbackLengths: number[] }> {
  const meanOver = opts.meanOver ?? "all-positions";
  const batchSize = opts.batchSize ?? 32;
  if (!MEAN_ABLATION_BASES.includes(meanOver)) {
    throw new InputError(`unknown meanOver "${meanOver}"; expected ${MEAN_ABLATION_BASES.join(", ")}`, {
      field: "meanOver",
    });
  }
  if (!Array.isArray(reference) || reference.length === 0)
    throw new InputError("mean ablation needs at least one reference prompt", { field: "reference" });
  checkStudyPrompts(reference, model.config.vocabSize, "reference");
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
    else if (!s) {
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
  return { means, fallbackLengths };
}

function groupsOf(ns: number[]): { group: string; n: number | null; idx: number[] }[] {
  const distinct = [...new Set(ns)].sort((a, b) => a - b);
  const out = distinct.map((n) => ({
    group: `n=${n}`,
    n: n as number | null,
    idx: ns.flatMap((m, i) => (m === n ? [i] : [])),
  }));
  out.push({ group: "all", n: null, idx: ns.map((_, i) => i) });
  return out;
}

/** Effects of every layer's attention and MLP sub-layer on the logit difference. */
export async function sublayerEffects(
  model: HookedLlama,
  pairs: PromptPair[],
  opts: SublayerEffectsOptions = {},
): Promise<SublayerEffectsResult> {
  const cfg = model.config;
  const L = cfg.numLayers;
  const D = cfg.hiddenSize;
  if (!Array.isArray(pairs) || pairs.length === 0)
    throw new InputError("sublayerEffects: give at least one prompt pair", { field: "pairs" });
  checkStudyPrompts(
    pairs.map((p) => p.clean),
    cfg.vocabSize,
    "pairs.clean",
  );
  const allCorrupted = pairs.every((p) => p.corrupted);
  const methods =
    opts.methods ??
    SUBLAYER_METHODS.filter((m) => (m !== "denoising" && m !== "noising") || allCorrupted).filter(
      (m) => m !== "mean-ablation" || opts.reference,
    );
  for (const m of methods)
    if (!SUBLAYER_METHODS.includes(m))
      throw new InputError(`unknown method "${m}"; expected ${SUBLAYER_METHODS.join(", ")}`, { field: "methods" });
  const patching = methods.includes("denoising") || methods.includes("noising");
  if (patching && !allCorrupted)
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
  if (allCorrupted) {
    checkStudyPrompts(
      pairs.map((p) => p.corrupted!),
      cfg.vocabSize,
      "pairs.corrupted",
    );
    pairs.forEach((p, i) => {
      if (p.corrupted!.promptIds.length !== p.clean.promptIds.length) {
        throw new InputError(
          `pair ${i}: corrupted prompt has ${p.corrupted!.promptIds.length} tokens, clean ${p.clean.promptIds.length}; patching needs equal lengths`,
          { field: `pairs[${i}].corrupted` },
        );
      }
    });
  }
  const positions = opts.positions ?? "all";
  const where = positions === "last" ? { positions: [-1] } : {};
  const parens = modelParens(model, opts.parens);
  const batchSize = opts.batchSize ?? 32;
  const sublayers: ("attn" | "mlp")[] = ["attn", "mlp"];
  const hooks = Array.from({ length: L }, (_, l) => sublayers.map((s) => sublayerHook(l, s))).flat();

  const batches = lengthBatches(pairs, (p) => p.clean.promptIds.length, batchSize);
  const means = methods.includes("mean-ablation")
    ? await referenceMeans(model, opts.reference!, hooks, [...new Set(batches.map((b) => b.length))], {
        meanOver,
        batchSize,
      })
    : { means: new Map<number, Map<string, Tensor>>(), fallbackLengths: [] };

  const P = pairs.length;
  const ldClean = new Float64Array(P);
  const ldCorrupted = new Float64Array(P).fill(NaN);
  const dlaEmbed = new Float64Array(P);
  // values[method][layer*2 + s][prompt]
  const values = new Map<SublayerMethod, Float64Array[]>(
    methods.map((m) => [m, Array.from({ length: 2 * L }, () => new Float64Array(P))]),
  );

  const W_U = model.W_U;
  const [, V] = W_U.shape;
  for (const { length: T, indices } of batches) {
    const cleanIds = indices.map((i) => pairs[i].clean.promptIds);
    const clean = await model.runWithCache(cleanIds, {
      names: ["hook_embed", ...hooks, "ln_final.hook_scale"],
      logitsAt: "last",
    });
    const correct = indices.map((i) => pairs[i].clean.labelId);
    const cf = indices.map((i, b) => {
      if (counterfactual === "corrupted-label") return pairs[i].corrupted!.labelId;
      const row = clean.logits.data.subarray(b * V, (b + 1) * V);
      return scoreRow(row, b, pairs[i].clean.n, pairs[i].clean.labelId, parens, { kind: "strongest-wrong" })
        .counterfactualId;
    });
    const ld = (logits: Tensor) => logitDiffFor(logits, correct, cf);
    const base = ld(clean.logits);
    indices.forEach((pi, b) => (ldClean[pi] = base[b]));

    let corrupted: { logits: Tensor; cache: ActivationCache } | null = null;
    if (allCorrupted) {
      corrupted = await model.runWithCache(
        indices.map((i) => pairs[i].corrupted!.promptIds),
        { names: hooks, logitsAt: "last" },
      );
      const c = ld(corrupted.logits);
      indices.forEach((pi, b) => (ldCorrupted[pi] = c[b]));
    }

    for (let l = 0; l < L; l++) {
      for (let s = 0; s < 2; s++) {
        const hook = sublayerHook(l, sublayers[s]);
        const k = 2 * l + s;
        const record = (m: SublayerMethod, v: number[]) => indices.forEach((pi, b) => (values.get(m)![k][pi] = v[b]));
        if (methods.includes("zero-ablation")) {
          const out = ld(await model.runWithHooks(cleanIds, [{ hook, kind: "zero", ...where }], { logitsAt: "last" }));
          record(
            "zero-ablation",
            out.map((x, b) => base[b] - x),
          );
        }
        if (methods.includes("mean-ablation")) {
          const mean = means.means.get(T)!.get(hook)!;
          const out = ld(
            await model.runWithHooks(cleanIds, [{ hook, kind: "mean", mean, ...where }], { logitsAt: "last" }),
          );
          record(
            "mean-ablation",
            out.map((x, b) => base[b] - x),
          );
        }
        if (methods.includes("denoising")) {
          const out = ld(
            await model.runWithHooks(
              indices.map((i) => pairs[i].corrupted!.promptIds),
              [{ hook, kind: "patch", source: clean.cache, ...where }],
              { logitsAt: "last" },
            ),
          );
          record("denoising", out);
        }
        if (methods.includes("noising")) {
          const out = ld(
            await model.runWithHooks(cleanIds, [{ hook, kind: "patch", source: corrupted!.cache, ...where }], {
              logitsAt: "last",
            }),
          );
          record("noising", out);
        }
      }
    }

    {
      const { stack, labels } = clean.cache.decomposeResid({ pos: "last", applyLn: true }); // [component, batch, d_model]
      const B = indices.length;
      const dir = new Float64Array(D);
      indices.forEach((pi, b) => {
        for (let d = 0; d < D; d++) dir[d] = W_U.data[d * V + correct[b]] - W_U.data[d * V + cf[b]];
        labels.forEach((label, c) => {
          const x = stack.data.subarray((c * B + b) * D, (c * B + b + 1) * D);
          const v = dot(x, dir);
          if (label === "embed") dlaEmbed[pi] = v;
          else if (methods.includes("dla")) {
            const m = /^(\d+)_(attn|mlp)_out$/.exec(label)!;
            values.get("dla")![2 * Number(m[1]) + (m[2] === "attn" ? 0 : 1)][pi] = v;
          }
        });
      });
    }
  }

  const ns = pairs.map((p) => p.clean.n);
  const groups = groupsOf(ns);
  const boot = opts.bootstrap ?? {};
  const rows: SublayerEffectRow[] = [];
  const perPrompt: SublayerPromptValue[] = [];
  for (let l = 0; l < L; l++) {
    for (let s = 0; s < 2; s++) {
      const k = 2 * l + s;
      for (const m of methods) {
        const v = values.get(m)![k];
        for (let i = 0; i < P; i++)
          perPrompt.push({ prompt: i, n: ns[i], layer: l, sublayer: sublayers[s], method: m, value: v[i] });
        for (const g of groups) {
          let ci;
          if (m === "denoising" || m === "noising") {
            // ratio of means over the resampled prompts: stable where single prompts have a tiny gap
            ci = bootstrapIndices(
              g.idx.length,
              (idx) => {
                let cl = 0,
                  co = 0,
                  pa = 0;
                for (const j of idx) {
                  const i = g.idx[j];
                  cl += ldClean[i];
                  co += ldCorrupted[i];
                  pa += v[i];
                }
                return m === "denoising" ? (pa - co) / (cl - co) : (cl - pa) / (cl - co);
              },
              boot,
            );
          } else
            ci = bootstrapMean(
              g.idx.map((i) => v[i]),
              boot,
            );
          rows.push({
            layer: l,
            sublayer: sublayers[s],
            hook: sublayerHook(l, sublayers[s]),
            method: m,
            group: g.group,
            n: g.n,
            count: g.idx.length,
            effect: ci.estimate,
            lo: ci.lo,
            hi: ci.hi,
            unit: m === "denoising" || m === "noising" ? "fraction" : "logit",
          });
        }
      }
    }
  }
  const mean = (xs: Float64Array, idx: number[]) => idx.reduce((a, i) => a + xs[i], 0) / idx.length;
  return {
    rows,
    perPrompt,
    baseline: groups.map((g) => ({
      group: g.group,
      n: g.n,
      count: g.idx.length,
      cleanLogitDiff: mean(ldClean, g.idx),
      corruptedLogitDiff: mean(ldCorrupted, g.idx),
    })),
    metadata: {
      methods,
      counterfactual,
      positions,
      meanOver,
      dlaEmbed: mean(
        dlaEmbed,
        pairs.map((_, i) => i),
      ),
      meanFallbackLengths: means.fallbackLengths,
      methodNotes: { ...METHOD_NOTES, "mean-ablation": MEAN_NOTES[meanOver] },
    },
  };
}
