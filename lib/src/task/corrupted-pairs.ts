/**
 * Corrupted partners for activation patching: the clean prompt with one more `(` (label one paren
 * longer), kept only when clean and corrupted prompts have the same number of tokens, so positions
 * align index for index for patching (`alignment: "same-length"`; a pair whose lengths differ is
 * rejected as "corrupted-length-mismatch" and counted, never aligned by guesswork).
 *
 * The default corruption is the authors' (`get_corrupt_prompts` in Dakingrai/parentheses): one
 * extra `(` inserted at a call boundary, right after the c-th call still open at the end of the
 * prompt (c = 0: after `print(`; c = 1: after the first `str(` …), c drawn per prompt from a seeded
 * stream, so the corruption site varies over prompts. Where the insertion changes the token count
 * (a tokenizer that keeps `((` apart), the pair falls back to the replacement of a character of the
 * final argument by `(` (before issue 9 the default), so positions still align; every pair names
 * its `strategy`. `strategies: DIGIT_REPLACEMENT` or `CALL_BOUNDARY` picks one kind only.
 */
import { seededRandom, streamSeed } from "../core/random";
import type { Tokenizer } from "../core/tokenizer";
import { ParenRunTokens, parenRunTokens } from "./paren-tokens";
import { ParenPrompt, RejectionCounts, RejectionReason, buildPrompt, emptyRejections, reject } from "./prompts";

export type CorruptionStrategy = "call-boundary" | "double-open" | "arg-char-to-open" | "inner-char-to-open";

/** The authors' corruption only: one extra `(` after the c-th still-open call. */
export const CALL_BOUNDARY: CorruptionStrategy[] = ["call-boundary"];

/**
 * The corruption before issue 9, as a named option: an extra `(` before the final argument, or a
 * character (a digit of N on the authors' template) of the final argument replaced by `(`; it sits
 * in the last 2–3 tokens.
 *
 * @example
 * makeCorruptedPairs(tok, prompts, { strategies: DIGIT_REPLACEMENT });
 */
export const DIGIT_REPLACEMENT: CorruptionStrategy[] = ["double-open", "arg-char-to-open", "inner-char-to-open"];

/** The default: the authors' corruption, and the digit replacement where it does not keep the token count. */
export const AUTHORS_THEN_DIGIT: CorruptionStrategy[] = [...CALL_BOUNDARY, ...DIGIT_REPLACEMENT];

export interface CorruptedPair {
  id: string;
  clean: ParenPrompt;
  /** One more `(`: n = clean.n + 1, same number of tokens as clean. */
  corrupted: ParenPrompt;
  strategy: CorruptionStrategy;
  /** Token positions where clean and corrupted ids differ. */
  diffPositions: number[];
  /**
   * How positions of clean and corrupted align for patching: "same-length" (index for index; the
   * only kind kept, pairs of different lengths are rejected).
   */
  alignment: "same-length";
  /** "call-boundary": the character index in the clean prompt where the extra `(` was inserted. */
  site?: number;
}

export interface CorruptedPairsOptions {
  /**
   * Paren-run tokens
   *
   * Ids of the runs `)` … `))))`.
   *
   * @default looked up through the tokenizer
   */
  parens?: ParenRunTokens;
  /**
   * Strategies
   *
   * Which corruptions to try, in this order (`DIGIT_REPLACEMENT` for the pre-issue-9 corruption,
   * `CALL_BOUNDARY` for the authors' only). A call-boundary candidate that aligns is taken at once.
   *
   * @default AUTHORS_THEN_DIGIT: ["call-boundary", "double-open", "arg-char-to-open", "inner-char-to-open"]
   */
  strategies?: CorruptionStrategy[];
  /**
   * Seed
   *
   * Seed of the per-prompt stream that picks the call boundary c (mixed with the prompt's id).
   *
   * @default 0
   */
  seed?: number;
  /**
   * Preference
   *
   * "own-token": among aligned candidates, one whose only differing token is `(` itself; "order":
   * the first aligned candidate.
   *
   * @default "own-token"
   */
  prefer?: "own-token" | "order";
}

/**
 * The digit-replacement candidates (`DIGIT_REPLACEMENT`) for a prompt ending in an open argument
 * `...f(a, ARG` (ARG = the trailing name or number; none → no candidates), each with exactly one more `(`:
 * - "double-open" `...f(a, (ARG`;
 * - "arg-char-to-open" `...f(a, (RG` (the first character of ARG becomes `(`);
 * - "inner-char-to-open" `...f(a, A(G` (the second character of ARG becomes `(`, ARG ≥ 3 characters),
 *   which keeps the new `(` apart from the one before it, so tokenizers that merge `((` still see
 *   it as a token of its own.
 *
 * @example
 * corruptionCandidates("f(a, xyz").map((c) => c.text); // ["f(a, (xyz", "f(a, (yz", "f(a, x(z"]
 */
export function corruptionCandidates(prompt: string): { text: string; strategy: CorruptionStrategy }[] {
  const m = /[A-Za-z0-9_.]+$/.exec(prompt);
  if (!m) return [];
  const head = prompt.slice(0, m.index);
  const arg = m[0];
  const out: { text: string; strategy: CorruptionStrategy }[] = [{ text: `${head}(${arg}`, strategy: "double-open" }];
  if (arg.length >= 2) out.push({ text: `${head}(${arg.slice(1)}`, strategy: "arg-char-to-open" });
  if (arg.length >= 3) out.push({ text: `${head}${arg[0]}(${arg.slice(2)}`, strategy: "inner-char-to-open" });
  return out;
}

/** Character indices just after each `(` still open at the end of `prompt`, outermost call first. */
export function openCallSites(prompt: string): number[] {
  const stack: number[] = [];
  for (let i = 0; i < prompt.length; i++) {
    if (prompt[i] === "(") stack.push(i + 1);
    else if (prompt[i] === ")") stack.pop();
  }
  return stack;
}

/**
 * The authors' corruption of one prompt: `(` inserted right after the c-th call still open at its
 * end (c = 0 the outermost, e.g. `print(`), c drawn uniformly from the seeded stream of `key` (the
 * prompt's id); null when no call is open.
 *
 * @example
 * callBoundaryCorruption("print(str(12", "p0"); // { text: "print((str(12", site: 6, c: 0 } or c = 1: "print(str((12"
 */
export function callBoundaryCorruption(
  prompt: string,
  key: string,
  seed = 0,
): { text: string; site: number; c: number } | null {
  const sites = openCallSites(prompt);
  if (sites.length === 0) return null;
  const c = Math.floor(seededRandom(streamSeed(key, seed))() * sites.length);
  return { text: prompt.slice(0, sites[c]) + "(" + prompt.slice(sites[c]), site: sites[c], c };
}

interface Candidate {
  text: string;
  strategy: CorruptionStrategy;
  site?: number;
  c?: number;
}

/** The candidates of one clean prompt, in `order`. */
function candidatesFor(clean: ParenPrompt, order: CorruptionStrategy[], seed: number): Candidate[] {
  const digit = corruptionCandidates(clean.prompt);
  return order.flatMap((strategy): Candidate[] => {
    if (strategy !== "call-boundary") return digit.filter((c) => c.strategy === strategy);
    const cb = callBoundaryCorruption(clean.prompt, clean.id, seed);
    return cb ? [{ text: cb.text, strategy, site: cb.site, c: cb.c }] : [];
  });
}

/**
 * Pair each clean prompt with a corrupted one (one extra `(`, label one paren longer, same token
 * count). The default corruption is the authors' (after the c-th still-open call, c seeded per
 * prompt), taken whenever it keeps the token count; otherwise the digit replacement
 * (`AUTHORS_THEN_DIGIT`); `strategies: DIGIT_REPLACEMENT` gives the pre-issue-9 one. Among the
 * digit-replacement candidates that align, the default (`prefer: "own-token"`) takes one where the prompts differ in
 * exactly one token and the corrupted token there is `(` itself; if none does, the first aligned
 * candidate in `strategies` order. `prefer: "order"` always takes the first aligned one. Prompts
 * for which nothing aligns, or whose longer label is not one token (n = 4 with four paren-run
 * tokens), are rejected and counted.
 *
 * @example
 * const { pairs, rejected } = makeCorruptedPairs(tok, data.splits.analysis);
 * pairs[0].corrupted.n === pairs[0].clean.n + 1; // true, with the same token count
 */
export function makeCorruptedPairs(
  tokenizer: Tokenizer,
  prompts: ParenPrompt[],
  opts: CorruptedPairsOptions = {},
): { pairs: CorruptedPair[]; rejected: RejectionCounts } {
  const parens = opts.parens ?? parenRunTokens(tokenizer, 4);
  const order = opts.strategies ?? AUTHORS_THEN_DIGIT;
  const prefer = opts.prefer ?? "own-token";
  const openId = tokenizer.tokenToId("(");
  const rejected = emptyRejections();
  const pairs: CorruptedPair[] = [];
  for (const clean of prompts) {
    const candidates = candidatesFor(clean, order, opts.seed ?? 0);
    if (candidates.length === 0) {
      reject(rejected, "no-corruption-site", clean.n, clean.prompt);
      continue;
    }
    let lastReason: RejectionReason = "corrupted-length-mismatch";
    const aligned: CorruptedPair[] = [];
    for (const c of candidates) {
      const built = buildPrompt(tokenizer, parens, c.text, clean.n + 1, {
        id: `${clean.id}-corrupted`,
        template: clean.template,
        split: clean.split,
        fields: { ...clean.fields, corruption: c.strategy, ...(c.c !== undefined ? { corruptionCall: c.c } : {}) },
      });
      if (typeof built === "string") {
        lastReason =
          built === "label-not-single-token" || built === "label-id-mismatch"
            ? "corrupted-label-not-single-token"
            : built;
        continue;
      }
      if (built.length !== clean.length) {
        lastReason = "corrupted-length-mismatch";
        continue;
      }
      const diffPositions: number[] = [];
      for (let i = 0; i < clean.length; i++) if (clean.promptIds[i] !== built.promptIds[i]) diffPositions.push(i);
      const site = c.site !== undefined ? { site: c.site } : {};
      aligned.push({
        id: `${clean.id}-pair`,
        clean,
        corrupted: built,
        strategy: c.strategy,
        diffPositions,
        alignment: "same-length",
        ...site,
      });
      if (prefer === "order" || c.strategy === "call-boundary") break; // the authors' site, as it tokenizes
    }
    const ownToken = (p: CorruptedPair) =>
      p.diffPositions.length === 1 && p.corrupted.promptIds[p.diffPositions[0]] === openId;
    const pair = (prefer === "own-token" ? aligned.find(ownToken) : undefined) ?? aligned[0];
    if (pair) pairs.push(pair);
    else reject(rejected, lastReason, clean.n, clean.prompt);
  }
  return { pairs, rejected };
}
