/**
 * Which token ids are closing-paren runs (`)`, `))`, ...) and which tokens contain `(` or `)`,
 * looked up through the model's own tokenizer, so nothing depends on CodeLlama's ids.
 */
import { DatasetError } from "../core/errors";
import type { Tokenizer } from "../core/tokenizer";

/**
 * The part of a tokenizer the study modules use. `Tokenizer` from tokenizer.ts satisfies it;
 * tests may pass a hand-written one.
 */

export interface ParenRunTokens {
  /** ids[n - 1] is the token of a run of n `)`. */
  ids: number[];
  /** runs[n - 1] = ")".repeat(n). */
  runs: string[];
  maxN: number;
}

/** The closing-paren run string of n parens. */
export function parenRun(n: number): string {
  return ")".repeat(n);
}

/** Why a paren run is not one token of a tokenizer. */
export interface MissingParenRun {
  n: number;
  run: string;
  reason: string;
}

/** What a tokenizer's vocabulary holds of the runs `)` … `)`×maxN. */
export interface ParenRunSearch {
  /** n → the id of the single token decoding to exactly n `)`. */
  found: Map<number, number>;
  /** the runs that are not one token, each with the reason */
  missing: MissingParenRun[];
  /** 1..k: the counts the closing-paren task can study (every run up to k is one token) */
  studiable: number[];
}

/**
 * The id of the token that is exactly `run`: the vocabulary entry of that spelling, else any
 * vocabulary entry decoding to it (SentencePiece / byte-level spellings), else the last token of
 * the run in context. Undefined when the run is never one token.
 */
function runTokenId(tokenizer: Tokenizer, run: string, byDecoding: Map<string, number>): number | undefined {
  const direct = tokenizer.tokenToId(run);
  if (direct !== undefined && tokenizer.decode([direct]) === run) return direct;
  const scanned = byDecoding.get(run);
  if (scanned !== undefined) return scanned;
  const probe = tokenizer.encode(`f(x${run}`, { addBos: false });
  const last = probe[probe.length - 1];
  return last !== undefined && tokenizer.decode([last]) === run ? last : undefined;
}

/** Each vocabulary id with its raw token string, skipping ids the tokenizer has no entry for. */
function* vocabularyEntries(tokenizer: Tokenizer): Generator<[number, string]> {
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    let raw: string;
    try {
      raw = tokenizer.idToToken(id);
    } catch {
      continue; // ids past the tokenizer's own vocabulary (padded embedding rows)
    }
    if (typeof raw === "string") yield [id, raw];
  }
}

/** Every vocabulary id whose text is only `)`s, by its decoded text (lowest id first). */
function closingRunsInVocabulary(tokenizer: Tokenizer): Map<string, number> {
  const out = new Map<string, number>();
  for (const [id, raw] of vocabularyEntries(tokenizer)) {
    if (!raw.includes(")")) continue;
    const text = tokenizer.decode([id]);
    if (/^\)+$/.test(text) && !out.has(text)) out.set(text, id);
  }
  return out;
}

/**
 * Search a tokenizer's vocabulary for the runs `)` … `)`×maxN (never throws for a missing run).
 *
 * @example
 * const search = findParenRunTokens(tok, 4);
 * search.studiable; // [1, 2, 3] when "))))" is two tokens
 * search.missing; // [{ n: 4, run: "))))", reason: "no single token of this tokenizer decodes to \"))))\"" }]
 */
export function findParenRunTokens(tokenizer: Tokenizer, maxN = 4): ParenRunSearch {
  if (!Number.isInteger(maxN) || maxN < 1) {
    throw new DatasetError(`parenRunTokens: maxN must be a positive integer, got ${maxN}`, { field: "maxN" });
  }
  const byDecoding = closingRunsInVocabulary(tokenizer);
  const found = new Map<number, number>();
  const missing: MissingParenRun[] = [];
  for (let n = 1; n <= maxN; n++) {
    const run = parenRun(n);
    const id = runTokenId(tokenizer, run, byDecoding);
    if (id === undefined) {
      const pieces = tokenizer.encode(`f(x${run}`, { addBos: false }).map((t) => tokenizer.decode([t]));
      missing.push({
        n,
        run,
        reason: `no single token of this tokenizer decodes to "${run}" (in code it splits as ${JSON.stringify(pieces.slice(-n))})`,
      });
    } else found.set(n, id);
  }
  let k = 0;
  while (found.has(k + 1)) k++;
  return { found, missing, studiable: Array.from({ length: k }, (_, i) => i + 1) };
}

/** The studiable counts and the missing runs in one sentence, for errors and reports. */
export function describeParenRuns(search: ParenRunSearch): string {
  const ok = search.studiable.length ? `counts ${search.studiable.join(", ")} are single tokens` : "no count is";
  const miss = search.missing.map((m) => `n = ${m.n}: ${m.reason}`).join("; ");
  return miss ? `${ok}; ${miss}` : ok;
}

/**
 * Token ids of the runs `)` … `)`×maxN, found from the tokenizer's vocabulary (findParenRunTokens).
 * A run that is not a single token throws a DatasetError saying which counts this tokenizer can
 * study (the task is a single next-token choice only when every run is one token); ask for
 * `findParenRunTokens(tok).studiable.length` runs instead to study those.
 *
 * @example
 * const parens = parenRunTokens(model.tokenizer!); // parens.ids[n - 1]: the token of n ")"
 */
export function parenRunTokens(tokenizer: Tokenizer, maxN = 4): ParenRunTokens {
  const search = findParenRunTokens(tokenizer, maxN);
  if (search.missing.length) {
    const first = search.missing[0];
    throw new DatasetError(
      `The paren run "${first.run}" (${first.n} closing parens) is not a single token of this tokenizer; ` +
        `the closing-paren task needs every run up to ${maxN} to be one token (${describeParenRuns(search)})`,
      { field: `parenRun[${first.n}]` },
    );
  }
  const ids = Array.from({ length: maxN }, (_, i) => search.found.get(i + 1)!);
  return { ids, runs: ids.map((_, i) => parenRun(i + 1)), maxN };
}

export interface ParenTokenSets {
  /** token id → number of `(` in its text, for every token containing at least one. */
  open: Map<number, number>;
  /** token id → number of `)` in its text, for every token containing at least one. */
  close: Map<number, number>;
}

/** The text of a vocabulary entry: byte-fallback tokens `<0xNN>` become their byte. */
function tokenText(raw: string): string {
  const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(raw);
  return m ? String.fromCharCode(parseInt(m[1], 16)) : raw;
}

/**
 * Every vocabulary entry containing `(` or `)`, with how many of each it contains.
 *
 * @example
 * const sets = parenTokenSets(tok);
 * prompt.promptIds.filter((id) => sets.close.has(id)).length; // tokens holding a ")"
 */
export function parenTokenSets(tokenizer: Tokenizer): ParenTokenSets {
  const open = new Map<number, number>();
  const close = new Map<number, number>();
  for (const [id, raw] of vocabularyEntries(tokenizer)) {
    const text = tokenText(raw);
    let o = 0;
    let c = 0;
    for (const ch of text) {
      if (ch === "(") o++;
      else if (ch === ")") c++;
    }
    if (o > 0) open.set(id, o);
    if (c > 0) close.set(id, c);
  }
  return { open, close };
}
