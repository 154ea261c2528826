/**
 * Corrupted partners for activation patching: the clean prompt with one more `(` (label one paren
 * longer). Every pair says how its positions line up (`alignment`).
 *
 * The default corruption is the authors' (`get_corrupt_prompts` in Dakingrai/parentheses): one
 * extra `(` inserted at a call boundary, right after the c-th call still open at the end of the
 * prompt (c = 0: after `print(`; c = 1: after the first `str(` …), c drawn per prompt from a seeded
 * stream, so the corruption site varies over prompts. Where the insertion keeps the token count (a
 * tokenizer that writes `((` as one token) the pair is "same-length" (index for index). Where it
 * adds a token (a tokenizer that keeps `((` apart) the pair is "right-aligned": the analyses
 * left-pad both prompts to one width and patch by distance from the end, never a position that
 * only the longer prompt has (`lengthMismatch: "reject"` instead falls back to the digit
 * replacement, the issue-9 behaviour before right alignment). The digit replacement (a character
 * of the final argument replaced by `(`, the default before issue 9) only ever makes same-length
 * pairs. `strategies: DIGIT_REPLACEMENT` or `CALL_BOUNDARY` picks one kind only; every pair names
 * its `strategy`.
 */
import { InputError } from "../core/errors";
import { seededRandom, streamSeed } from "../core/random";
import type { Tokenizer } from "../core/tokenizer";
import { ParenRunTokens, parenRunTokens } from "./paren-tokens";
import { ParenPrompt, RejectionCounts, RejectionReason, buildPrompt, emptyRejections, reject } from "./prompts";

/** How clean and corrupted positions line up: index for index, or from the right (see PairAlignment in analysis/study). */
export type CorruptedPairAlignment = "same-length" | "right-aligned";

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

/** The default: the authors' corruption, and the digit replacement where it cannot be made (no open call, or its label is not one token). */
export const AUTHORS_THEN_DIGIT: CorruptionStrategy[] = [...CALL_BOUNDARY, ...DIGIT_REPLACEMENT];

export interface CorruptedPair {
  id: string;
  clean: ParenPrompt;
  /** One more `(`: n = clean.n + 1; the same number of tokens as clean unless `alignment` is "right-aligned". */
  corrupted: ParenPrompt;
  strategy: CorruptionStrategy;
  /**
   * Token positions of the clean prompt whose partner differs: the same index ("same-length"), or
   * the token at the same distance from the end ("right-aligned").
   */
  diffPositions: number[];
  /**
   * How positions of clean and corrupted align for patching: "same-length" (equal token counts,
   * index for index) or "right-aligned" (the call-boundary insertion added a token: aligned from
   * the end, the corrupted prompt's first token has no partner and is never patched).
   */
  alignment: CorruptedPairAlignment;
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
  /**
   * Length mismatch
   *
   * What to do with an authors' (call-boundary) corruption that changes the token count:
   * "right-align" keeps it as a right-aligned pair; "reject" drops that candidate (the prompt then
   * gets a digit-replacement pair when `strategies` allows one). Digit replacements of another
   * token count are always dropped.
   *
   * @default "right-align"
   */
  lengthMismatch?: "right-align" | "reject";
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

/** One pair: the clean prompt's positions whose partner differs, aligned index for index or from the right. */
function pairOf(clean: ParenPrompt, built: ParenPrompt, c: Candidate): CorruptedPair {
  const shift = built.length - clean.length; // > 0: the corrupted prompt has extra leading tokens
  const diffPositions: number[] = [];
  for (let i = 0; i < clean.length; i++) {
    const j = i + shift;
    if (j < 0 || clean.promptIds[i] !== built.promptIds[j]) diffPositions.push(i);
  }
  return {
    id: `${clean.id}-pair`,
    clean,
    corrupted: built,
    strategy: c.strategy,
    diffPositions,
    alignment: shift === 0 ? "same-length" : "right-aligned",
    ...(c.site !== undefined ? { site: c.site } : {}),
  };
}

/**
 * Pair each clean prompt with a corrupted one (one extra `(`, label one paren longer). The default
 * corruption is the authors' (after the c-th still-open call, c seeded per prompt): "same-length"
 * where it keeps the token count, "right-aligned" where it adds a token (`lengthMismatch`); the
 * digit replacement only where the authors' cannot be made (`AUTHORS_THEN_DIGIT`);
 * `strategies: DIGIT_REPLACEMENT` gives the pre-issue-9 one (same-length only). Among the
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
  if (opts.lengthMismatch !== undefined && opts.lengthMismatch !== "right-align" && opts.lengthMismatch !== "reject")
    throw new InputError(
      `lengthMismatch is ${JSON.stringify(opts.lengthMismatch)}, expected "right-align" or "reject"`,
      {
        field: "lengthMismatch",
      },
    );
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
      const rightAlign = c.strategy === "call-boundary" && (opts.lengthMismatch ?? "right-align") === "right-align";
      if (built.length !== clean.length && !rightAlign) {
        lastReason = "corrupted-length-mismatch";
        continue;
      }
      aligned.push(pairOf(clean, built, c));
      if (prefer === "order" || c.strategy === "call-boundary") break; // the authors' site, as it tokenizes
    }
    const ownToken = (p: CorruptedPair) =>
      p.alignment === "same-length" &&
      p.diffPositions.length === 1 &&
      p.corrupted.promptIds[p.diffPositions[0]] === openId;
    const pair = (prefer === "own-token" ? aligned.find(ownToken) : undefined) ?? aligned[0];
    if (pair) pairs.push(pair);
    else reject(rejected, lastReason, clean.n, clean.prompt);
  }
  return { pairs, rejected };
}
