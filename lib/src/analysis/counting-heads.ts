/**
 * Finding 3, counting heads. For every attention head (layer, head):
 * (a) attention from the last position summed over the `(` tokens and over the `)` tokens of the
 *     prompt, and its Pearson correlation over prompts with the number of `)` already written
 *     (nClosed) and with the number still missing (n), with bootstrap intervals;
 * (b) the head's output at the last position (z · W_O, i.e. its hook_result) through the run's
 *     cached final-norm scale × final norm weight and W_U, restricted to the paren-run tokens:
 *     the head promotes the right count on a prompt when the correct run ranks first among them
 *     (the authors' rank-among-four rule); the fraction of prompts where it does;
 * (c) its causal effect: LD(clean) − LD(clean with the head's hook_z zeroed / mean-ablated at the
 *     last position) ("helps" when positive), and activation patching of its hook_z from the clean
 *     run into the corrupted one, (LD(patched) − LD(corrupted)) / (LD(clean) − LD(corrupted)).
 * Heads are ranked by |r| of the counting criterion; counting heads (|r| ≥ threshold) are split
 * into those that promote the right count and those that mislead.
 */
import type { HookedLlama } from "../runtime/hooked-llama";
import { InputError } from "../core/errors";
import { Tensor } from "../core/tensor";
import { headLabel } from "../hooks/activation-cache";
import {
  BootstrapOptions,
  Interval,
  bootstrapIndices,
  bootstrapMean,
  bootstrapPearson,
  bootstrapProportion,
} from "./bootstrap";
import { dot, GroupedEffect, logitDiffFor, scoreRow, unembedColumns } from "./metrics";
import { ParenRunTokens, ParenTokenSets, parenTokenSets } from "../task/paren-tokens";
import type { Tokenizer } from "../core/tokenizer";
import { StudyPrompt, lengthBatches } from "../task/prompts";
import { checkStudyPrompts, modelParens } from "./logit-lens";
import type { PromptPair } from "./sublayer-effects";

export type AttentionSignal = "attn_close" | "attn_open";
export type CountTarget = "nClosed" | "nMissing";
export type HeadCausalMethod = "zero" | "mean" | "patch";

export interface CountingCriterion {
  signal: AttentionSignal;
  target: CountTarget;
}

export interface CountingHeadsOptions {
  /** Which correlation decides "counting head" (default attention on `)` vs nClosed: tracks how many are already closed). */
  criterion?: CountingCriterion;
  /** |r| at or above this → counting head (default 0.5). */
  countingThreshold?: number;
  /** A counting head promotes when its promotion rate is at least this (default 0.5; chance among four runs is 0.25). */
  promoteThreshold?: number;
  /** Causal methods (default: "zero", plus "mean" with a reference set, plus "patch" when every item has a corrupted prompt). */
  methods?: HeadCausalMethod[];
  /** Prompts whose last-position hook_z gives the means for mean ablation. */
  reference?: StudyPrompt[];
  /** Counterfactual of the logit difference (default "strongest-wrong"; "corrupted-label" needs pairs). */
  counterfactual?: "strongest-wrong" | "corrupted-label";
  /**
   * Causal runs cost one forward pass per head and method: run them on the first `causalPerN`
   * prompts of each n only (default: all). Attention and promotion always use every prompt.
   */
  causalPerN?: number;
  /** |causal effect| below this is "neutral" even when its interval excludes 0 (default 0, in the method's unit). */
  causalThreshold?: number;
  /** Patch the head's hook_z at every position (default) or at the last one only. */
  patchPositions?: "all" | "last";
  batchSize?: number;
  bootstrap?: BootstrapOptions;
  parens?: ParenRunTokens;
  /** Which tokens contain `(` / `)`; looked up from the model's tokenizer when absent. */
  parenSets?: ParenTokenSets;
}

export interface HeadAttentionRow {
  prompt: number;
  id: string | null;
  n: number;
  nClosed: number;
  layer: number;
  head: number;
  label: string;
  /** Attention from the last position summed over the prompt's tokens containing `(`. */
  attnOpen: number;
  /** … over the tokens containing `)`. */
  attnClose: number;
  /** Count (1..4) whose paren run ranks first in the head's own output. */
  promotedCount: number;
  /** The head's direct contribution to LD (its output through the final norm onto W_U[:, label] − W_U[:, counterfactual]). */
  headLogitDiff: number;
}

export interface HeadCorrelationRow {
  layer: number;
  head: number;
  label: string;
  signal: AttentionSignal;
  target: CountTarget;
  count: number;
  /** Pearson r; NaN when either variable is constant over the prompts. */
  r: number;
  lo: number;
  hi: number;
}

export interface HeadPromotionRow {
  layer: number;
  head: number;
  label: string;
  group: string;
  n: number | null;
  count: number;
  /** Fraction of prompts where the correct run ranks first among the paren runs in the head's output. */
  promoteRate: number;
  lo: number;
  hi: number;
  /** Fraction of prompts promoting each count: promotedShare[c - 1]. */
  promotedShare: number[];
  /** Mean direct contribution to LD. */
  headLogitDiff: number;
}

export interface HeadCausalRow extends GroupedEffect {
  layer: number;
  head: number;
  label: string;
  method: HeadCausalMethod;
}

export interface HeadSummary {
  layer: number;
  head: number;
  label: string;
  countingR: number;
  countingLo: number;
  countingHi: number;
  isCounting: boolean;
  /** 1 = highest |r| of the criterion (NaN r ranks last). */
  countingRank: number;
  promoteRate: number;
  /** For counting heads: "promotes" (rate ≥ promoteThreshold) or "misleads"; null otherwise. */
  role: "promotes" | "misleads" | null;
  causalMethod: HeadCausalMethod;
  causalEffect: number;
  causalLo: number;
  causalHi: number;
  /** "helps" when the interval of the causal effect is above 0, "hurts" when below (and |effect| ≥ causalThreshold), else "neutral". */
  causal: "helps" | "hurts" | "neutral";
  /** 1 = largest |causal effect|. */
  causalRank: number;
  headLogitDiff: number;
}

export interface CountingHeadsResult {
  attention: HeadAttentionRow[];
  correlations: HeadCorrelationRow[];
  promotion: HeadPromotionRow[];
  causal: HeadCausalRow[];
  /** One per head, sorted by countingRank. */
  heads: HeadSummary[];
  classification: {
    criterion: CountingCriterion;
    countingThreshold: number;
    promoteThreshold: number;
    causalMethod: HeadCausalMethod;
    causalThreshold: number;
    countingHeads: string[];
    promoting: string[];
    misleading: string[];
    helps: string[];
    hurts: string[];
  };
  metadata: {
    methods: HeadCausalMethod[];
    counterfactual: "strongest-wrong" | "corrupted-label";
    patchPositions: "all" | "last";
    promptCount: number;
    /** Prompts the causal rows are computed on. */
    causalPromptCount: number;
    notes: Record<string, string>;
  };
}

function modelParenSets(model: HookedLlama, given?: ParenTokenSets): ParenTokenSets {
  if (given) return given;
  const tok = model.tokenizer as unknown as Partial<Tokenizer> | null;
  if (!tok || typeof tok.idToToken !== "function") {
    throw new InputError(
      "This model has no full tokenizer to find the paren tokens; pass { parenSets: parenTokenSets(tokenizer) }",
      { field: "parenSets" },
    );
  }
  return parenTokenSets(tok as Tokenizer);
}

function asPairs(items: (StudyPrompt | PromptPair)[]): PromptPair[] {
  return items.map((x) => ("clean" in x && x.clean ? (x as PromptPair) : { clean: x as StudyPrompt }));
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

/** Mean of each layer's hook_z at the last position over reference prompts: [head, d_head] per layer. */
async function lastPositionZMeans(model: HookedLlama, reference: StudyPrompt[], batchSize: number): Promise<Tensor[]> {
  checkStudyPrompts(reference, model.config.vocabSize, "reference");
  const { numLayers: L, numHeads: H, headDim: dh } = model.config;
  const names = Array.from({ length: L }, (_, l) => `blocks.${l}.attn.hook_z`);
  const sums = names.map(() => new Float64Array(H * dh));
  for (const { indices } of lengthBatches(reference, (p) => p.promptIds.length, batchSize)) {
    const { cache } = await model.runWithCache(
      indices.map((i) => reference[i].promptIds),
      { names, logitsAt: "last" },
    );
    names.forEach((name, l) => {
      const z = cache.atPos(name, "last").data; // [batch, head, d_head]
      for (let i = 0; i < z.length; i++) sums[l][i % (H * dh)] += z[i];
    });
  }
  return sums.map(
    (s) =>
      new Tensor(
        Float32Array.from(s, (x) => x / reference.length),
        [H, dh],
        ["head", "d_head"],
      ),
  );
}

/** Run the three counting-head analyses over prompts (or clean/corrupted pairs). */
export async function countingHeads(
  model: HookedLlama,
  items: (StudyPrompt | PromptPair)[],
  opts: CountingHeadsOptions = {},
): Promise<CountingHeadsResult> {
  const cfg = model.config;
  const { numLayers: L, numHeads: H, headDim: dh, hiddenSize: D, vocabSize: V } = cfg;
  if (!Array.isArray(items) || items.length === 0)
    throw new InputError("countingHeads: give at least one prompt", { field: "prompts" });
  const pairs = asPairs(items);
  checkStudyPrompts(
    pairs.map((p) => p.clean),
    V,
  );
  const allCorrupted = pairs.every((p) => p.corrupted);
  const methods =
    opts.methods ??
    (["zero", "mean", "patch"] as HeadCausalMethod[]).filter(
      (m) => (m !== "mean" || opts.reference) && (m !== "patch" || allCorrupted),
    );
  for (const m of methods)
    if (!["zero", "mean", "patch"].includes(m))
      throw new InputError(`unknown causal method "${m}"; expected zero, mean, patch`, { field: "methods" });
  if (methods.includes("mean") && !opts.reference)
    throw new InputError('causal method "mean" needs { reference } prompts', { field: "reference" });
  if (methods.includes("patch") && !allCorrupted)
    throw new InputError('causal method "patch" needs a corrupted prompt for every clean one', {
      field: "pairs.corrupted",
    });
  const counterfactual = opts.counterfactual ?? "strongest-wrong";
  if (counterfactual === "corrupted-label" && !allCorrupted)
    throw new InputError('counterfactual "corrupted-label" needs pairs', { field: "counterfactual" });
  if (allCorrupted) {
    pairs.forEach((p, i) => {
      if (p.corrupted!.promptIds.length !== p.clean.promptIds.length) {
        throw new InputError(
          `pair ${i}: corrupted prompt has ${p.corrupted!.promptIds.length} tokens, clean ${p.clean.promptIds.length}`,
          { field: `pairs[${i}].corrupted` },
        );
      }
    });
  }
  const criterion = opts.criterion ?? { signal: "attn_close", target: "nClosed" };
  const countingThreshold = opts.countingThreshold ?? 0.5;
  const promoteThreshold = opts.promoteThreshold ?? 0.5;
  const patchPositions = opts.patchPositions ?? "all";
  const causalThreshold = opts.causalThreshold ?? 0;
  const causalPerN = opts.causalPerN ?? Infinity;
  if (!(causalPerN >= 1))
    throw new InputError(`causalPerN must be at least 1, got ${causalPerN}`, { field: "causalPerN" });
  const batchSize = opts.batchSize ?? 32;
  const boot = opts.bootstrap ?? {};
  const parens = modelParens(model, opts.parens);
  const sets = modelParenSets(model, opts.parenSets);
  const W_U = model.W_U; // [d_model, vocab]
  const w = model.finalNormWeight.data; // [d_model]
  const parenCols = unembedColumns(W_U, parens.ids); // maxN × [d_model]
  const W_O = Array.from({ length: L }, (_, l) => model.W_O(l)); // [head, d_head, d_model] each
  const zMeans = methods.includes("mean") ? await lastPositionZMeans(model, opts.reference!, batchSize) : [];

  const P = pairs.length;
  const nClosed = pairs.map(
    (p) => p.clean.nClosed ?? p.clean.promptIds.reduce((a, id) => a + (sets.close.get(id) ?? 0), 0),
  );
  const ns = pairs.map((p) => p.clean.n);
  const HL = L * H;
  const attnOpen = Array.from({ length: HL }, () => new Float64Array(P));
  const attnClose = Array.from({ length: HL }, () => new Float64Array(P));
  const promoted = Array.from({ length: HL }, () => new Int32Array(P));
  const headLd = Array.from({ length: HL }, () => new Float64Array(P));
  const causal = new Map<HeadCausalMethod, Float64Array[]>(
    methods.map((m) => [m, Array.from({ length: HL }, () => new Float64Array(P))]),
  );
  const ldClean = new Float64Array(P);
  const cfIds = new Array<number>(P);
  const ldCorrupted = new Float64Array(P).fill(NaN);

  const patternNames = Array.from({ length: L }, (_, l) => `blocks.${l}.attn.hook_pattern`);
  const zNames = Array.from({ length: L }, (_, l) => `blocks.${l}.attn.hook_z`);
  const out = new Float64Array(D); // [d_model] one head's output at the last position
  for (const { length: T, indices } of lengthBatches(pairs, (p) => p.clean.promptIds.length, batchSize)) {
    const ids = indices.map((i) => pairs[i].clean.promptIds);
    const clean = await model.runWithCache(ids, {
      names: [...patternNames, ...zNames, "ln_final.hook_scale"],
      logitsAt: "last",
    });
    const correct = indices.map((i) => pairs[i].clean.labelId);
    const cf = indices.map((i, b) =>
      counterfactual === "corrupted-label"
        ? pairs[i].corrupted!.labelId
        : scoreRow(clean.logits.data.subarray(b * V, (b + 1) * V), b, ns[i], correct[b], parens, {
            kind: "strongest-wrong",
          }).counterfactualId,
    );
    const ld = (logits: Tensor) => logitDiffFor(logits, correct, cf);
    const base = ld(clean.logits);
    indices.forEach((pi, b) => (ldClean[pi] = base[b]));
    const scale = clean.cache.atPos("ln_final.hook_scale", "last").data; // [batch, one]
    const ldCols = indices.map((_, b) => {
      const [c, x] = unembedColumns(W_U, [correct[b], cf[b]]);
      return c.map((v, d) => v - x[d]);
    });

    for (let l = 0; l < L; l++) {
      const pattern = clean.cache.get(patternNames[l]); // [batch, head, query_pos, key_pos]
      const z = clean.cache.atPos(zNames[l], "last"); // [batch, head, d_head]
      const Wo = W_O[l].data; // [head, d_head, d_model]
      for (let h = 0; h < H; h++) {
        const k = l * H + h;
        indices.forEach((pi, b) => {
          // (a) attention from the last query position over the prompt's paren tokens
          const rowOff = ((b * H + h) * T + (T - 1)) * T;
          let o = 0,
            c = 0;
          for (let key = 0; key < T; key++) {
            const id = ids[b][key];
            const a = pattern.data[rowOff + key];
            if (sets.open.has(id)) o += a;
            if (sets.close.has(id)) c += a;
          }
          attnOpen[k][pi] = o;
          attnClose[k][pi] = c;
          // (b) the head's output z · W_O, through the cached final norm scale and weight
          out.fill(0);
          for (let e = 0; e < dh; e++) {
            const ze = z.data[(b * H + h) * dh + e];
            const wOff = (h * dh + e) * D;
            for (let d = 0; d < D; d++) out[d] += ze * Wo[wOff + d];
          }
          for (let d = 0; d < D; d++) out[d] = (out[d] / scale[b]) * w[d];
          let best = 0,
            bestV = -Infinity;
          parenCols.forEach((col, j) => {
            const v = dot(out, col);
            if (v > bestV) {
              bestV = v;
              best = j;
            }
          });
          promoted[k][pi] = best + 1;
          headLd[k][pi] = dot(out, ldCols[b]);
        });
      }
    }

    indices.forEach((pi, b) => (cfIds[pi] = cf[b]));
  }

  // (c) causal: one run per head and method, on the causal subset (the first causalPerN prompts of each n)
  const seenPerN = new Map<number, number>();
  const causalIdx = pairs
    .map((_, i) => i)
    .filter((i) => {
      const c = seenPerN.get(ns[i]) ?? 0;
      seenPerN.set(ns[i], c + 1);
      return c < causalPerN;
    });
  const inCausal = new Uint8Array(P);
  for (const i of causalIdx) inCausal[i] = 1;
  if (methods.length > 0) {
    // Prompts of different lengths share a (left-padded) batch here: every intervention is at the
    // last position or patches whole rows of a pair with equal lengths, so padding never mixes in.
    const byLength = [...causalIdx].sort((a, b) => pairs[a].clean.promptIds.length - pairs[b].clean.promptIds.length);
    for (let s0 = 0; s0 < byLength.length; s0 += batchSize) {
      const indices = byLength.slice(s0, s0 + batchSize);
      const ids = indices.map((i) => pairs[i].clean.promptIds);
      const correct = indices.map((i) => pairs[i].clean.labelId);
      const cf = indices.map((i) => cfIds[i]);
      const ld = (logits: Tensor) => logitDiffFor(logits, correct, cf);
      const base = indices.map((i) => ldClean[i]);
      const clean = methods.includes("patch")
        ? await model.runWithCache(ids, { names: zNames, logitsAt: "last" })
        : null;
      if (methods.includes("patch")) {
        const cor = await model.run(
          indices.map((i) => pairs[i].corrupted!.promptIds),
          { logitsAt: "last" },
        );
        const c = ld(cor);
        indices.forEach((pi, b) => (ldCorrupted[pi] = c[b]));
      }
      for (let l = 0; l < L; l++) {
        const hook = zNames[l];
        for (let h = 0; h < H; h++) {
          const k = l * H + h;
          const record = (m: HeadCausalMethod, v: number[]) =>
            indices.forEach((pi, b) => (causal.get(m)![k][pi] = v[b]));
          if (methods.includes("zero")) {
            const r = ld(
              await model.runWithHooks(ids, [{ hook, kind: "zero", heads: [h], positions: [-1] }], {
                logitsAt: "last",
              }),
            );
            record(
              "zero",
              r.map((x, b) => base[b] - x),
            );
          }
          if (methods.includes("mean")) {
            const r = ld(
              await model.runWithHooks(ids, [{ hook, kind: "mean", mean: zMeans[l], heads: [h], positions: [-1] }], {
                logitsAt: "last",
              }),
            );
            record(
              "mean",
              r.map((x, b) => base[b] - x),
            );
          }
          if (methods.includes("patch")) {
            const where = patchPositions === "last" ? { positions: [-1] } : {};
            const r = ld(
              await model.runWithHooks(
                indices.map((i) => pairs[i].corrupted!.promptIds),
                [{ hook, kind: "patch", source: clean!.cache, heads: [h], ...where }],
                { logitsAt: "last" },
              ),
            );
            record("patch", r);
          }
        }
      }
    }
  }

  // ---- tidy rows
  const groups = groupsOf(ns);
  const attention: HeadAttentionRow[] = [];
  const correlations: HeadCorrelationRow[] = [];
  const promotion: HeadPromotionRow[] = [];
  const causalRows: HeadCausalRow[] = [];
  const criterionCi: Interval[] = [];
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const k = l * H + h;
      const label = headLabel(l, h);
      for (let i = 0; i < P; i++) {
        attention.push({
          prompt: i,
          id: pairs[i].clean.id ?? null,
          n: ns[i],
          nClosed: nClosed[i],
          layer: l,
          head: h,
          label,
          attnOpen: attnOpen[k][i],
          attnClose: attnClose[k][i],
          promotedCount: promoted[k][i],
          headLogitDiff: headLd[k][i],
        });
      }
      for (const signal of ["attn_close", "attn_open"] as AttentionSignal[]) {
        for (const target of ["nClosed", "nMissing"] as CountTarget[]) {
          const ci = bootstrapPearson(
            signal === "attn_close" ? attnClose[k] : attnOpen[k],
            target === "nClosed" ? nClosed : ns,
            boot,
          );
          correlations.push({
            layer: l,
            head: h,
            label,
            signal,
            target,
            count: P,
            r: ci.estimate,
            lo: ci.lo,
            hi: ci.hi,
          });
          if (signal === criterion.signal && target === criterion.target) criterionCi[k] = ci;
        }
      }
      for (const g of groups) {
        const ci = bootstrapProportion(
          g.idx.map((i) => promoted[k][i] === ns[i]),
          boot,
        );
        const share = parens.ids.map((_, j) => g.idx.filter((i) => promoted[k][i] === j + 1).length / g.idx.length);
        promotion.push({
          layer: l,
          head: h,
          label,
          group: g.group,
          n: g.n,
          count: g.idx.length,
          promoteRate: ci.estimate,
          lo: ci.lo,
          hi: ci.hi,
          promotedShare: share,
          headLogitDiff: g.idx.reduce((a, i) => a + headLd[k][i], 0) / g.idx.length,
        });
        const cidx = g.idx.filter((i) => inCausal[i]);
        for (const m of methods) {
          const v = causal.get(m)![k];
          const c =
            m === "patch"
              ? bootstrapIndices(
                  cidx.length,
                  (idx) => {
                    let cl = 0,
                      co = 0,
                      pa = 0;
                    for (const j of idx) {
                      const i = cidx[j];
                      cl += ldClean[i];
                      co += ldCorrupted[i];
                      pa += v[i];
                    }
                    return (pa - co) / (cl - co);
                  },
                  boot,
                )
              : bootstrapMean(
                  cidx.map((i) => v[i]),
                  boot,
                );
          causalRows.push({
            layer: l,
            head: h,
            label,
            method: m,
            group: g.group,
            n: g.n,
            count: cidx.length,
            effect: c.estimate,
            lo: c.lo,
            hi: c.hi,
            unit: m === "patch" ? "fraction" : "logit",
          });
        }
      }
    }
  }

  // ---- classification
  const causalMethod: HeadCausalMethod = methods.includes("zero") ? "zero" : (methods[0] ?? "zero");
  const heads: HeadSummary[] = [];
  for (let l = 0; l < L; l++) {
    for (let h = 0; h < H; h++) {
      const k = l * H + h;
      const label = headLabel(l, h);
      const r = criterionCi[k];
      const pr = promotion.find((x) => x.label === label && x.group === "all")!;
      const cr = causalRows.find((x) => x.label === label && x.group === "all" && x.method === causalMethod);
      const isCounting = Number.isFinite(r.estimate) && Math.abs(r.estimate) >= countingThreshold;
      heads.push({
        layer: l,
        head: h,
        label,
        countingR: r.estimate,
        countingLo: r.lo,
        countingHi: r.hi,
        isCounting,
        countingRank: 0,
        promoteRate: pr.promoteRate,
        role: isCounting ? (pr.promoteRate >= promoteThreshold ? "promotes" : "misleads") : null,
        causalMethod,
        causalEffect: cr ? cr.effect : NaN,
        causalLo: cr ? cr.lo : NaN,
        causalHi: cr ? cr.hi : NaN,
        causal:
          !cr || Math.abs(cr.effect) < causalThreshold
            ? "neutral"
            : cr.lo > 0
              ? "helps"
              : cr.hi < 0
                ? "hurts"
                : "neutral",
        causalRank: 0,
        headLogitDiff: pr.headLogitDiff,
      });
    }
  }
  const absOrNeg = (x: number) => (Number.isFinite(x) ? Math.abs(x) : -1);
  [...heads].sort((a, b) => absOrNeg(b.countingR) - absOrNeg(a.countingR)).forEach((x, i) => (x.countingRank = i + 1));
  [...heads]
    .sort((a, b) => absOrNeg(b.causalEffect) - absOrNeg(a.causalEffect))
    .forEach((x, i) => (x.causalRank = i + 1));
  heads.sort((a, b) => a.countingRank - b.countingRank);

  return {
    attention,
    correlations,
    promotion,
    causal: causalRows,
    heads,
    classification: {
      criterion,
      countingThreshold,
      promoteThreshold,
      causalMethod,
      causalThreshold,
      countingHeads: heads.filter((x) => x.isCounting).map((x) => x.label),
      promoting: heads.filter((x) => x.role === "promotes").map((x) => x.label),
      misleading: heads.filter((x) => x.role === "misleads").map((x) => x.label),
      helps: heads.filter((x) => x.causal === "helps").map((x) => x.label),
      hurts: heads.filter((x) => x.causal === "hurts").map((x) => x.label),
    },
    metadata: {
      methods,
      counterfactual,
      patchPositions,
      promptCount: P,
      causalPromptCount: causalIdx.length,
      notes: {
        attention:
          "attention weight from the last position summed over the prompt tokens containing ( (attnOpen) or ) (attnClose)",
        promotion:
          "head output z·W_O at the last position / cached ln_final scale × final norm weight, projected on the paren-run columns of W_U; promotes when the correct run ranks first",
        zero: "LD(clean) − LD(clean with this head's hook_z zeroed at the last position) [logits]; > 0: the head helps",
        mean: "LD(clean) − LD(clean with this head's hook_z at the last position replaced by its mean over the reference prompts) [logits]",
        patch:
          "(LD(corrupted with the clean hook_z of this head patched in) − LD(corrupted)) / (LD(clean) − LD(corrupted)) [fraction restored]",
      },
    },
  };
}
