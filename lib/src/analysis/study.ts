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

/** A clean prompt and, for patching, its corrupted partner (same token count). A CorruptedPair fits. */
export interface PromptPair {
  clean: StudyPrompt;
  corrupted?: StudyPrompt;
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
 * Checks the clean prompts, and when every pair has a corrupted prompt, those too and that each
 * has its clean partner's token count (patching aligns positions). Returns whether every pair
 * has a corrupted prompt.
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
  pairs.forEach((p, i) => {
    if (p.corrupted!.promptIds.length !== p.clean.promptIds.length) {
      throw new InputError(
        `pair ${i}: corrupted prompt has ${p.corrupted!.promptIds.length} tokens, clean ${p.clean.promptIds.length}; patching needs equal lengths`,
        { field: `pairs[${i}].corrupted` },
      );
    }
  });
  return true;
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
