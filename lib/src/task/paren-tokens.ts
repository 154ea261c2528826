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

/**
 * Token ids of the runs `)` … `)`×maxN. Each run is looked up in the vocabulary and must decode
 * back to exactly itself; a run that is not a single token throws a DatasetError (the task is a
 * single next-token choice only when every run is one token).
 *
 * @example
 * const parens = parenRunTokens(model.tokenizer!); // parens.ids[n - 1]: the token of n ")"
 */
export function parenRunTokens(tokenizer: Tokenizer, maxN = 4): ParenRunTokens {
  if (!Number.isInteger(maxN) || maxN < 1) {
    throw new DatasetError(`parenRunTokens: maxN must be a positive integer, got ${maxN}`, { field: "maxN" });
  }
  const ids: number[] = [];
  const runs: string[] = [];
  for (let n = 1; n <= maxN; n++) {
    const run = parenRun(n);
    let id = tokenizer.tokenToId(run);
    if (id === undefined || tokenizer.decode([id]) !== run) {
      // Some vocabularies store the run under another surface form: find it in context.
      const probe = tokenizer.encode(`f(x${run}`, { addBos: false });
      const last = probe[probe.length - 1];
      id = last !== undefined && tokenizer.decode([last]) === run ? last : undefined;
    }
    if (id === undefined) {
      throw new DatasetError(
        `The paren run "${run}" (${n} closing parens) is not a single token of this tokenizer; ` +
          `the closing-paren task needs every run up to ${maxN} to be one token`,
        { field: `parenRun[${n}]` },
      );
    }
    ids.push(id);
    runs.push(run);
  }
  return { ids, runs, maxN };
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
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    let raw: string;
    try {
      raw = tokenizer.idToToken(id);
    } catch {
      continue; // ids past the tokenizer's own vocabulary (padded embedding rows)
    }
    if (typeof raw !== "string") continue;
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
