/**
 * Corrupted partners for activation patching: the clean prompt with one more `(` (label one paren
 * longer), kept only when clean and corrupted prompts have the same number of tokens, so positions
 * align for patching.
 */
import type { Tokenizer } from "../core/tokenizer";
import { ParenRunTokens, parenRunTokens } from "./paren-tokens";
import { ParenPrompt, RejectionCounts, RejectionReason, buildPrompt, emptyRejections, reject } from "./prompts";

export type CorruptionStrategy = "double-open" | "arg-char-to-open" | "inner-char-to-open";

export interface CorruptedPair {
  id: string;
  clean: ParenPrompt;
  /** One more `(`: n = clean.n + 1, same number of tokens as clean. */
  corrupted: ParenPrompt;
  strategy: CorruptionStrategy;
  /** Token positions where clean and corrupted ids differ. */
  diffPositions: number[];
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
   * Which corruptions to try, in this order.
   *
   * @default ["double-open", "arg-char-to-open", "inner-char-to-open"]
   */
  strategies?: CorruptionStrategy[];
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
 * Corrupted texts for a prompt ending in an open argument `...f(a, ARG` (ARG = the trailing name
 * or number; none → no candidates), each with exactly one more `(`:
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

/**
 * Pair each clean prompt with a corrupted one (one extra `(`, label one paren longer, same token
 * count). Among the candidates that align, the default (`prefer: "own-token"`) takes one where the
 * prompts differ in exactly one token and the corrupted token there is `(` itself (a minimal
 * pair: the extra paren is not hidden inside a merged `((` token); if none does, the first
 * aligned candidate in `strategies` order. `prefer: "order"` always takes the first aligned one.
 * Prompts for which nothing aligns, or whose longer label is not one token (n = 4 with four
 * paren-run tokens), are rejected and counted.
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
  const order = opts.strategies ?? (["double-open", "arg-char-to-open", "inner-char-to-open"] as CorruptionStrategy[]);
  const prefer = opts.prefer ?? "own-token";
  const openId = tokenizer.tokenToId("(");
  const rejected = emptyRejections();
  const pairs: CorruptedPair[] = [];
  for (const clean of prompts) {
    const candidates = corruptionCandidates(clean.prompt)
      .filter((c) => order.includes(c.strategy))
      .sort((a, b) => order.indexOf(a.strategy) - order.indexOf(b.strategy));
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
        fields: { ...clean.fields, corruption: c.strategy },
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
      aligned.push({ id: `${clean.id}-pair`, clean, corrupted: built, strategy: c.strategy, diffPositions });
      if (prefer === "order") break;
    }
    const ownToken = (p: CorruptedPair) =>
      p.diffPositions.length === 1 && p.corrupted.promptIds[p.diffPositions[0]] === openId;
    const pair = (prefer === "own-token" ? aligned.find(ownToken) : undefined) ?? aligned[0];
    if (pair) pairs.push(pair);
    else reject(rejected, lastReason, clean.n, clean.prompt);
  }
  return { pairs, rejected };
}
