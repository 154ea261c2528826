/**
 * The shared floor of the analyses: what a study prompt is, how prompts are batched and grouped by
 * count, clean/corrupted pairs and their checks, the paren tokens looked up through the model's
 * tokenizer, the per-batch counterfactual, and the row shape every grouped effect shares.
 * logit-lens.ts, sublayer-effects.ts and counting-heads.ts stand side by side on this file.
 */
import type { HookedLlama } from "../runtime/hooked-llama";
import type { Tensor } from "../core/tensor";
import type { Tokenizer } from "../core/tokenizer";
import { DatasetError, InputError } from "../core/errors";
import { TokenBatch, padTokens } from "../core/token-batch";
import {
  findParenRunTokens,
  ParenRunTokens,
  ParenTokenSets,
  parenRunTokens,
  parenTokenSets,
} from "../task/paren-tokens";
import { scoreRow } from "./metrics";

/** What the analyses need of a prompt (a ParenPrompt fits). */
export interface StudyPrompt {
  id?: string;
  promptIds: number[];
  /** Missing parens = label length. */
  n: number;
  labelId: number;
  /** `)` already in the prompt (counting heads). */
  nClosed?: number;
  nOpen?: number;
}

/**
 * How the positions of a clean prompt and its corrupted partner line up for patching:
 * - "same-length": equal token counts, position i patched into position i;
 * - "right-aligned": the counts differ (e.g. an inserted `(` that is a token of its own); both
 *   prompts are left-padded to one width so that padded indices align from the right (the last
 *   token with the last token, and so on). Only positions both prompts have are patched; the
 *   leading tokens of the longer prompt that have no partner are never patched.
 */
export type PairAlignment = "same-length" | "right-aligned";
export const PAIR_ALIGNMENTS: PairAlignment[] = ["same-length", "right-aligned"];

/**
 * A clean prompt and, for patching, its corrupted partner. A CorruptedPair fits. Without
 * `alignment` (or with "same-length") both prompts must have the same token count; a pair of
 * different counts must say `alignment: "right-aligned"`.
 */
export interface PromptPair {
  clean: StudyPrompt;
  corrupted?: StudyPrompt;
  alignment?: PairAlignment;
  /** Named in errors. */
  id?: string;
}

/** One effect estimate of an analysis, per count n or pooled, with its bootstrap interval. */
export interface GroupedEffect {
  /** "n=2" … or "all"; n is null for the pooled row. */
  group: string;
  n: number | null;
  count: number;
  effect: number;
  lo: number;
  hi: number;
  /** "logit": a change of logit difference; "fraction": of the clean − corrupted gap. */
  unit: "logit" | "fraction";
}

/** The prompts of one count n ("n=2"), or of all counts ("all", n null): indices into the prompt list. */
export interface PromptGroup {
  group: string;
  n: number | null;
  idx: number[];
}

/** Group items by prompt length (the runtime batches prompts of equal length without padding). */
export function groupByLength<T>(items: T[], length: (item: T) => number): Map<number, T[]> {
  const groups = new Map<number, T[]>();
  for (const it of items) {
    const L = length(it);
    const g = groups.get(L);
    if (g) g.push(it);
    else groups.set(L, [it]);
  }
  return new Map([...groups.entries()].sort((a, b) => a[0] - b[0]));
}

/**
 * Indices of `items` in batches of equal token length (ascending length), at most `batchSize`
 * each, so that no batch needs padding and clean/corrupted pairs line up position by position.
 *
 * @example
 * for (const { length, indices } of lengthBatches(prompts, (p) => p.promptIds.length, 32)) {
 *   const logits = await model.run(indices.map((i) => prompts[i].promptIds), { logitsAt: "last" }); // [batch, vocab]
 * }
 */
export function lengthBatches<T>(
  items: T[],
  length: (item: T) => number,
  batchSize: number,
): { length: number; indices: number[] }[] {
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new DatasetError(`batchSize must be a positive integer, got ${batchSize}`, { field: "batchSize" });
  }
  const out: { length: number; indices: number[] }[] = [];
  const groups = groupByLength(
    items.map((it, i) => ({ it, i })),
    (x) => length(x.it),
  );
  for (const [L, g] of groups) {
    for (let s = 0; s < g.length; s += batchSize)
      out.push({ length: L, indices: g.slice(s, s + batchSize).map((x) => x.i) });
  }
  return out;
}

/** One group per distinct n (ascending), then the pooled "all" group. */
export function groupsOf(ns: number[]): PromptGroup[] {
  const distinct = [...new Set(ns)].sort((a, b) => a - b);
  const out: PromptGroup[] = distinct.map((n) => ({
    group: `n=${n}`,
    n,
    idx: ns.flatMap((m, i) => (m === n ? [i] : [])),
  }));
  out.push({ group: "all", n: null, idx: ns.map((_, i) => i) });
  return out;
}

/**
 * Indices of the first `k` items of each count, in input order (one pass).
 *
 * @example
 * firstPerN([1, 2, 1, 1, 2], 2, (n) => n); // [0, 1, 2, 4]
 */
export function firstPerN<T>(items: T[], k: number, nOf: (item: T) => number): number[] {
  const seen = new Map<number, number>();
  const out: number[] = [];
  items.forEach((it, i) => {
    const n = nOf(it);
    const c = seen.get(n) ?? 0;
    seen.set(n, c + 1);
    if (c < k) out.push(i);
  });
  return out;
}

/** Prompts as pairs: a PromptPair stays as it is, a bare prompt becomes `{ clean }`. */
export function asPairs(items: (StudyPrompt | PromptPair)[]): PromptPair[] {
  return items.map((x) => ("clean" in x && x.clean ? x : { clean: x as StudyPrompt }));
}

/** Each prompt has non-empty ids, a positive count n and a label inside the vocabulary. */
export function checkStudyPrompts(prompts: StudyPrompt[], vocab: number, field = "prompts"): void {
  if (!Array.isArray(prompts) || prompts.length === 0)
    throw new InputError(`${field}: give at least one prompt`, { field });
  prompts.forEach((p, i) => {
    if (!p || !Array.isArray(p.promptIds) || p.promptIds.length === 0)
      throw new InputError(`${field}[${i}]: promptIds must be a non-empty array`, {
        field: `${field}[${i}].promptIds`,
      });
    if (!Number.isInteger(p.n) || p.n < 1)
      throw new InputError(`${field}[${i}]: n must be a positive integer`, { field: `${field}[${i}].n` });
    if (!(Number.isInteger(p.labelId) && p.labelId >= 0 && p.labelId < vocab)) {
      throw new InputError(`${field}[${i}]: labelId ${p.labelId} outside the vocabulary of ${vocab}`, {
        field: `${field}[${i}].labelId`,
      });
    }
  });
}

/**
 * Checks the clean prompts, and when every pair has a corrupted prompt, those too and that their
 * positions line up: equal token counts, or a pair marked `alignment: "right-aligned"` (an
 * InputError names the pair and what was expected). Returns whether every pair has a corrupted prompt.
 *
 * @example
 * checkPromptPairs([{ clean, corrupted }], vocab); // throws when corrupted has another token count
 * checkPromptPairs([{ clean, corrupted, alignment: "right-aligned" }], vocab); // true
 */
export function checkPromptPairs(pairs: PromptPair[], vocab: number): boolean {
  if (!Array.isArray(pairs) || pairs.length === 0)
    throw new InputError("pairs: give at least one prompt or prompt pair", { field: "pairs" });
  checkStudyPrompts(
    pairs.map((p) => p.clean),
    vocab,
    "pairs.clean",
  );
  const allCorrupted = pairs.every((p) => p.corrupted);
  if (!allCorrupted) return false;
  checkStudyPrompts(
    pairs.map((p) => p.corrupted!),
    vocab,
    "pairs.corrupted",
  );
  pairs.forEach((p, i) => checkPairAlignment(p, i));
  return true;
}

/** One pair's alignment: a known kind, and equal token counts unless it is "right-aligned". */
function checkPairAlignment(p: PromptPair, i: number): void {
  const name = `pair ${i}${(p.id ?? p.clean.id) ? ` (${p.id ?? p.clean.id})` : ""}`;
  if (p.alignment !== undefined && !PAIR_ALIGNMENTS.includes(p.alignment)) {
    throw new InputError(
      `${name}: alignment ${JSON.stringify(p.alignment)}, expected ${PAIR_ALIGNMENTS.join(" or ")}`,
      {
        field: `pairs[${i}].alignment`,
      },
    );
  }
  const [lc, lx] = [p.clean.promptIds.length, p.corrupted!.promptIds.length];
  if (lc !== lx && p.alignment !== "right-aligned") {
    throw new InputError(
      `${name}: corrupted prompt has ${lx} tokens, clean ${lc}; patching index for index ` +
        `(alignment ${JSON.stringify(p.alignment ?? "same-length")}) needs equal token counts; mark the pair ` +
        `alignment: "right-aligned" to align positions from the right`,
      { field: `pairs[${i}].corrupted` },
    );
  }
}

/** "right-aligned" when the two prompts of a checked pair have different token counts, else "same-length". */
export function pairAlignment(p: PromptPair): PairAlignment {
  return p.corrupted && p.corrupted.promptIds.length !== p.clean.promptIds.length ? "right-aligned" : "same-length";
}

/**
 * Batches of pairs whose clean prompts have one token count and whose corrupted prompts have one
 * (ascending clean, then corrupted count; a pair without a corrupted prompt counts as clean's).
 * With same-length pairs only these are the batches of `lengthBatches` on the clean prompts.
 *
 * @example
 * for (const { length, corruptedLength, indices } of pairBatches(pairs, 32)) { ... }
 */
export function pairBatches(
  pairs: PromptPair[],
  batchSize: number,
): { length: number; corruptedLength: number; indices: number[] }[] {
  const lx = (p: PromptPair) => (p.corrupted ?? p.clean).promptIds.length;
  return lengthBatches(
    pairs.map((p, i) => i),
    (i) => pairs[i].clean.promptIds.length,
    Number.MAX_SAFE_INTEGER,
  ).flatMap(({ length, indices }) =>
    lengthBatches(indices, (i) => lx(pairs[i]), batchSize).map((b) => ({
      length,
      corruptedLength: b.length,
      indices: b.indices.map((k) => indices[k]),
    })),
  );
}

/** The inputs of one batch of pairs for patching between its clean and corrupted runs. */
export interface PairInputs {
  /** Clean prompts as fed: token ids, or (right-aligned) a TokenBatch left-padded to the common width. */
  clean: number[][] | TokenBatch;
  corrupted: number[][] | TokenBatch;
  alignment: PairAlignment;
  /** Token positions from the end that both prompts of every pair have: -shared..-1. */
  shared: number;
}

/**
 * Clean and corrupted inputs of the pairs `indices`: the ids as they are when every pair has
 * equal token counts; otherwise both sides left-padded to one width (the longest prompt of
 * either side), so a padded index is the same distance from the end in both runs.
 *
 * @example
 * const inp = pairInputs(pairs, [0, 1]);
 * const clean = await model.runWithCache(inp.clean, { names: ["blocks.0.hook_resid_pre"], logitsAt: "last" });
 * await model.runWithHooks(inp.corrupted, [patchFrom("blocks.0.hook_resid_pre", clean.cache, patchWhere("all", inp))]);
 */
export function pairInputs(pairs: PromptPair[], indices: number[]): PairInputs {
  const clean = indices.map((i) => pairs[i].clean.promptIds);
  const corrupted = indices.map((i) => (pairs[i].corrupted ?? pairs[i].clean).promptIds);
  const shared = Math.min(...clean.map((c, b) => Math.min(c.length, corrupted[b].length)));
  if (clean.every((c, b) => c.length === corrupted[b].length))
    return { clean, corrupted, alignment: "same-length", shared };
  const all = padTokens([...clean, ...corrupted], { padding: "left" }); // [2 × batch, width]
  const half = (from: number): TokenBatch => ({
    ids: all.ids.slice(from, from + clean.length),
    attentionMask: all.attentionMask.slice(from, from + clean.length),
    positions: all.positions.slice(from, from + clean.length),
    lengths: all.lengths.slice(from, from + clean.length),
    padding: "left",
  });
  return { clean: half(0), corrupted: half(clean.length), alignment: "right-aligned", shared };
}

/**
 * Where a patch between the runs of `inputs` applies: "last" → the last position; "all" → every
 * position when the pairs are same-length, else every position both prompts have, counted from
 * the end (-shared..-1): a position only the longer prompt has is never patched.
 */
export function patchWhere(positions: "all" | "last", inputs: Pick<PairInputs, "alignment" | "shared">) {
  if (positions === "last") return { positions: [-1] };
  if (inputs.alignment === "same-length") return {};
  return { positions: Array.from({ length: inputs.shared }, (_, k) => k - inputs.shared) };
}

/** Stub tokenizers (encode/decode only) are allowed on a model; the paren lookups need a vocabulary. */
function hasVocabulary(tok: Partial<Tokenizer> | null): tok is Tokenizer {
  return !!tok && typeof tok.tokenToId === "function" && typeof tok.idToToken === "function";
}

/**
 * The model's tokenizer when it has a vocabulary to look tokens up in (not only encode/decode);
 * else an InputError asking for `field` to be passed (`how` shows the call that gives it).
 */
function vocabularyOf(model: Pick<HookedLlama, "tokenizer">, field: string, how: string): Tokenizer {
  const tok: Partial<Tokenizer> | null = model.tokenizer;
  if (hasVocabulary(tok)) return tok;
  throw new InputError(`This model has no full tokenizer to look up the paren tokens; pass { ${field}: ${how} }`, {
    field,
  });
}

/**
 * The paren-run ids given, or looked up through the model's tokenizer: the runs `)` … `))))` that
 * are single tokens of it (fewer than four when a longer run is not one token: those counts are
 * not studied, and the dataset has no prompts for them; see findParenRunTokens).
 */
export function modelParens(model: Pick<HookedLlama, "tokenizer">, parens?: ParenRunTokens): ParenRunTokens {
  if (parens) return parens;
  const tok = vocabularyOf(model, "parens", "parenRunTokens(tokenizer)");
  const k = findParenRunTokens(tok, 4).studiable.length;
  return parenRunTokens(tok, Math.max(k, 1)); // k = 0: parenRunTokens says why ")" is not one token
}

/** The `(` / `)` token sets given, or looked up through the model's tokenizer. */
export function modelParenSets(model: Pick<HookedLlama, "tokenizer">, given?: ParenTokenSets): ParenTokenSets {
  return given ?? parenTokenSets(vocabularyOf(model, "parenSets", "parenTokenSets(tokenizer)"));
}

/**
 * The counterfactual token of each prompt of a batch: the corrupted partner's label
 * ("corrupted-label"), or the strongest wrong paren run in the clean logits ("strongest-wrong").
 */
export function batchCounterfactuals(
  cleanLogits: Tensor, // [batch, vocab] at the last position
  pairs: PromptPair[],
  indices: number[],
  counterfactual: "strongest-wrong" | "corrupted-label",
  parens: ParenRunTokens,
): number[] {
  const V = cleanLogits.shape[cleanLogits.shape.length - 1];
  return indices.map((i, b) => {
    if (counterfactual === "corrupted-label") return pairs[i].corrupted!.labelId;
    const row = cleanLogits.data.subarray(b * V, (b + 1) * V);
    return scoreRow(row, b, pairs[i].clean.n, pairs[i].clean.labelId, parens, { kind: "strongest-wrong" })
      .counterfactualId;
  });
}
