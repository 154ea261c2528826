/**
 * Pairs that change the number of parens already closed at a fixed count n (for finding 3): the
 * partner makes one closed argument one call deeper, `str(123)` → `str(str(1))`, and drops two
 * digits of its number so the token count stays the same (the `)` run of the argument becomes one
 * paren longer inside one token). n, the label and the length are unchanged; nClosed grows by one.
 * Positions align index for index (`alignment: "same-length"`); pairs whose lengths differ are
 * rejected and counted.
 */
import type { Tokenizer } from "../core/tokenizer";
import { ParenRunTokens, parenRunTokens } from "./paren-tokens";
import { ParenPrompt, RejectionCounts, buildPrompt, emptyRejections, reject } from "./prompts";

export interface ClosedCountPair {
  id: string;
  clean: ParenPrompt;
  /** The same n and length, one more `)` already closed: nClosed = clean.nClosed + 1. */
  corrupted: ParenPrompt;
  strategy: "deeper-closed-arg";
  /** Token positions where the two prompts' ids differ. */
  diffPositions: number[];
  alignment: "same-length";
}

/**
 * The partner text: the first closed argument `str(…str(DDD)…)` of depth d ≤ 3 wrapped in one more
 * `str(` with its number cut to its first digit; null when the prompt has no such argument.
 *
 * @example
 * deeperClosedArgument("print(str(123), str(45"); // "print(str(str(1)), str(45"
 */
export function deeperClosedArgument(prompt: string): string | null {
  const m = /((?:str\()+)(\d{3})(\)+)/.exec(prompt);
  if (!m) return null;
  const depth = m[1].length / 4;
  if (depth > 3 || m[3].length < depth) return null;
  const arg = `${"str(".repeat(depth + 1)}${m[2][0]}${")".repeat(depth + 1)}`;
  return prompt.slice(0, m.index) + arg + prompt.slice(m.index + m[1].length + 3 + depth);
}

/**
 * Pair each prompt having a closed `str(…)` argument (the partly-closed template) with its
 * one-more-closed partner of the same n and token count; the others are rejected and counted.
 *
 * @example
 * const { pairs } = makeClosedCountPairs(tok, partial.splits.analysis);
 * pairs[0].corrupted.nClosed === pairs[0].clean.nClosed + 1; // true, same n and length
 */
export function makeClosedCountPairs(
  tokenizer: Tokenizer,
  prompts: ParenPrompt[],
  opts: { parens?: ParenRunTokens } = {},
): { pairs: ClosedCountPair[]; rejected: RejectionCounts } {
  const parens = opts.parens ?? parenRunTokens(tokenizer, 4);
  const rejected = emptyRejections();
  const pairs: ClosedCountPair[] = [];
  for (const clean of prompts) {
    const text = deeperClosedArgument(clean.prompt);
    if (text === null) {
      reject(rejected, "no-corruption-site", clean.n, clean.prompt);
      continue;
    }
    const built = buildPrompt(tokenizer, parens, text, clean.n, {
      id: `${clean.id}-closed`,
      template: clean.template,
      split: clean.split,
      fields: { ...clean.fields, corruption: "deeper-closed-arg" },
    });
    if (typeof built === "string") {
      reject(rejected, built, clean.n, clean.prompt);
      continue;
    }
    if (built.length !== clean.length) {
      reject(rejected, "corrupted-length-mismatch", clean.n, clean.prompt);
      continue;
    }
    const diffPositions: number[] = [];
    for (let i = 0; i < clean.length; i++) if (clean.promptIds[i] !== built.promptIds[i]) diffPositions.push(i);
    pairs.push({
      id: `${clean.id}-closed-pair`,
      clean,
      corrupted: built,
      strategy: "deeper-closed-arg",
      diffPositions,
      alignment: "same-length",
    });
  }
  return { pairs, rejected };
}
