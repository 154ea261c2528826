/**
 * Seeded closing-paren prompts, tokenized with the model's own tokenizer.
 *
 * A prompt is built as the authors did: the full string (code + the run of n `)`) is tokenized,
 * the last token is the label and every token before it is the prompt. A draw is rejected, and
 * counted by reason, when the label is not exactly one token that decodes to the n parens; it is
 * never silently kept. Corrupted pairs: corrupted-pairs.ts; JSONL files: prompts-jsonl.ts.
 */
import { DatasetError } from "../core/errors";
import { seededRandom, streamSeed } from "../core/random";
import {
  describeParenRuns,
  findParenRunTokens,
  MissingParenRun,
  ParenRunTokens,
  parenRun,
  parenRunTokens,
} from "./paren-tokens";
import type { Tokenizer } from "../core/tokenizer";
import { PROMPT_TEMPLATES, PromptTemplate, TemplateName } from "./prompt-templates";

export interface ParenPrompt {
  /** Unique within a dataset, e.g. "authors-analysis-n2-7". */
  id: string;
  template: string;
  split: string;
  /** Code text before the label. */
  prompt: string;
  /** The label text: n closing parens. */
  label: string;
  /** Number of missing closing parens = label length (1..4 for the four paren-run tokens). */
  n: number;
  /** `(` characters written in the prompt. */
  nOpen: number;
  /** `)` characters already written in the prompt; nOpen − nClosed = n. */
  nClosed: number;
  /** Token ids of the prompt (the tokenization of prompt + label without its last token; BOS included when the tokenizer adds one). */
  promptIds: number[];
  /** Token id of the label. */
  labelId: number;
  /** promptIds.length. */
  length: number;
  /** Template parameters that produced this prompt. */
  fields: Record<string, string | number>;
}

export type RejectionReason =
  /** The last token of prompt + label is not the n-paren run (the run split or merged with code). */
  | "label-not-single-token"
  /** The last token decodes to the run but is not the run's vocabulary id. */
  | "label-id-mismatch"
  /** The prompt text was already drawn (in this split or an earlier one). */
  | "duplicate"
  /** The prompt's `(`/`)` counts do not leave exactly n open (a template bug; never expected). */
  | "paren-count-mismatch"
  /** No corruption kept the clean prompt's token count. */
  | "corrupted-length-mismatch"
  /** The corrupted label (n + 1 parens) is not a single token. */
  | "corrupted-label-not-single-token"
  /** The prompt does not end in a name or number to put a `(` before. */
  | "no-corruption-site"
  /** This n's run is not one token of the tokenizer at all: no prompt with this n can be studied (none drawn). */
  | "paren-run-not-one-token";

export interface RejectionCounts {
  total: number;
  byReason: Partial<Record<RejectionReason, number>>;
  /** Rejections per n (the n of the clean prompt). */
  byN: Record<string, number>;
  /** The first few rejected texts, to see what went wrong. */
  examples: { text: string; n: number; reason: RejectionReason }[];
}

export function emptyRejections(): RejectionCounts {
  return { total: 0, byReason: {}, byN: {}, examples: [] };
}

/** Count one rejected draw (and keep the first few texts as examples). */
export function reject(r: RejectionCounts, reason: RejectionReason, n: number, text: string): void {
  r.total++;
  r.byReason[reason] = (r.byReason[reason] ?? 0) + 1;
  r.byN[String(n)] = (r.byN[String(n)] ?? 0) + 1;
  if (r.examples.length < 10) r.examples.push({ text, n, reason });
}

function countChar(text: string, ch: string): number {
  let c = 0;
  for (const x of text) if (x === ch) c++;
  return c;
}

/**
 * Tokenize `prompt + ")"×n` and split off the label. Returns the prompt, or the reason it is
 * rejected. `parens` (the run ids) is used when n ≤ parens.maxN; longer runs are checked by
 * decoding alone.
 *
 * @example
 * const p = buildPrompt(tok, parenRunTokens(tok), "print(len(x", 2, { id: "demo", template: "hand", split: "demo" });
 * typeof p === "string" ? p : p.labelId; // the reason it was rejected, or the id of "))"
 */
export function buildPrompt(
  tokenizer: Tokenizer,
  parens: ParenRunTokens,
  promptText: string,
  n: number,
  meta: { id: string; template: string; split: string; fields?: Record<string, string | number> },
): ParenPrompt | RejectionReason {
  const label = parenRun(n);
  const nOpen = countChar(promptText, "(");
  const nClosed = countChar(promptText, ")");
  if (nOpen - nClosed !== n) return "paren-count-mismatch";
  const ids = tokenizer.encode(promptText + label);
  const labelId = ids[ids.length - 1];
  if (ids.length < 2 || tokenizer.decode([labelId]) !== label) return "label-not-single-token";
  if (n <= parens.maxN && labelId !== parens.ids[n - 1]) return "label-id-mismatch";
  const promptIds = ids.slice(0, -1);
  return {
    id: meta.id,
    template: meta.template,
    split: meta.split,
    prompt: promptText,
    label,
    n,
    nOpen,
    nClosed,
    promptIds,
    labelId,
    length: promptIds.length,
    fields: meta.fields ?? {},
  };
}

export interface GeneratePromptsOptions {
  /** The template: "authors", "partial", "complex" (PROMPT_TEMPLATES) or your own. */
  template: TemplateName | PromptTemplate;
  /**
   * Split
   *
   * Split name stored on each prompt and mixed into the seed.
   *
   * @default "analysis"
   */
  split?: string;
  /** Prompts wanted per n. */
  perN: number;
  /**
   * Counts
   *
   * Label lengths to generate.
   *
   * @default [1, 2, 3, 4]
   */
  ns?: number[];
  /** PRNG seed: same seed, same tokenizer → same prompts. */
  seed: number;
  /**
   * Excluded texts
   *
   * Prompt texts not to reuse (e.g. other splits); texts drawn here are added to it.
   *
   * @default an empty set
   */
  exclude?: Set<string>;
  /**
   * Draw budget
   *
   * Give up on an n after perN × this many draws (the shortfall is reported).
   *
   * @default 50
   */
  maxDrawsFactor?: number;
  /**
   * Paren-run tokens
   *
   * Ids of the runs `)` … `))))`.
   *
   * @default looked up through the tokenizer
   */
  parens?: ParenRunTokens;
}

export interface GeneratedPrompts {
  prompts: ParenPrompt[];
  rejected: RejectionCounts;
  /** Per n, how many prompts short of perN the generator stayed after its draw budget (0 = none). */
  shortfall: Record<string, number>;
  draws: number;
  /** The asked counts whose run is not one token of this tokenizer (no prompts for them), with the reason. */
  unstudiable: MissingParenRun[];
}

/**
 * The run tokens of the studiable counts among `ns`, and the counts that are not (their run is
 * not one token). Throws a DatasetError when none of `ns` can be studied.
 */
function studiableParens(
  tokenizer: Tokenizer,
  ns: number[],
): { parens: ParenRunTokens; unstudiable: MissingParenRun[] } {
  const search = findParenRunTokens(tokenizer, Math.max(...ns));
  const k = search.studiable.length;
  if (!ns.some((n) => n <= k))
    throw new DatasetError(
      `None of the counts ${ns.join(", ")} can be studied with this tokenizer: ${describeParenRuns(search)}`,
      {
        field: "ns",
      },
    );
  return { parens: parenRunTokens(tokenizer, k), unstudiable: search.missing.filter((m) => ns.includes(m.n)) };
}

function resolveTemplate(t: TemplateName | PromptTemplate): PromptTemplate {
  if (typeof t !== "string") return t;
  const tpl = PROMPT_TEMPLATES[t];
  if (!tpl) {
    throw new DatasetError(
      `Unknown prompt template "${t}"; expected one of ${Object.keys(PROMPT_TEMPLATES).join(", ")}`,
      {
        field: "template",
      },
    );
  }
  return tpl;
}

function checkNs(ns: number[]): void {
  for (const n of ns) {
    if (!Number.isInteger(n) || n < 1)
      throw new DatasetError(`ns must hold positive integers, got ${n}`, { field: "ns" });
  }
}

/**
 * Draw `perN` valid prompts for each n from one template, deterministically for a seed.
 *
 * @example
 * const { prompts, rejected } = generatePrompts(tok, { template: "authors", perN: 50, seed: 2502 });
 * prompts[0]; // { id: "authors-analysis-n1-0", prompt: "...", label: ")", n: 1, promptIds: [...], labelId, ... }
 */
export function generatePrompts(tokenizer: Tokenizer, opts: GeneratePromptsOptions): GeneratedPrompts {
  const template = resolveTemplate(opts.template);
  const split = opts.split ?? "analysis";
  const ns = opts.ns ?? [1, 2, 3, 4];
  checkNs(ns);
  if (!Number.isInteger(opts.perN) || opts.perN < 0) {
    throw new DatasetError(`perN must be a non-negative integer, got ${opts.perN}`, { field: "perN" });
  }
  const found = opts.parens ? { parens: opts.parens, unstudiable: [] } : studiableParens(tokenizer, ns);
  const parens = found.parens;
  const unstudiable = found.unstudiable;
  const exclude = opts.exclude ?? new Set<string>();
  const factor = opts.maxDrawsFactor ?? 50;
  const rejected = emptyRejections();
  const shortfall: Record<string, number> = {};
  const prompts: ParenPrompt[] = [];
  let draws = 0;
  for (const n of ns) {
    if (unstudiable.some((m) => m.n === n)) {
      // the run is not one token anywhere: record it once instead of drawing prompts bound to fail
      if (opts.perN > 0) reject(rejected, "paren-run-not-one-token", n, parenRun(n));
      shortfall[String(n)] = opts.perN;
      continue;
    }
    const rand = seededRandom(streamSeed(`${opts.seed}|${template.name}|${split}|${n}`));
    let kept = 0;
    for (let d = 0; d < opts.perN * factor && kept < opts.perN; d++) {
      draws++;
      const { prompt, fields } = template.draw(rand, n);
      if (exclude.has(prompt)) {
        reject(rejected, "duplicate", n, prompt);
        continue;
      }
      const built = buildPrompt(tokenizer, parens, prompt, n, {
        id: `${template.name}-${split}-n${n}-${kept}`,
        template: template.name,
        split,
        fields,
      });
      exclude.add(prompt); // a rejected text is not drawn again either
      if (typeof built === "string") {
        reject(rejected, built, n, prompt + parenRun(n));
        continue;
      }
      prompts.push(built);
      kept++;
    }
    shortfall[String(n)] = opts.perN - kept;
  }
  return { prompts, rejected, shortfall, draws, unstudiable };
}

export interface PromptDataset {
  template: string;
  seed: number;
  ns: number[];
  /** Split name → prompts (disjoint texts across splits). */
  splits: Record<string, ParenPrompt[]>;
  rejected: Record<string, RejectionCounts>;
  shortfall: Record<string, Record<string, number>>;
  /** The asked counts this tokenizer cannot study (their run is not one token), with the reason. */
  unstudiable: MissingParenRun[];
}

/**
 * Disjoint held-out splits of one template, e.g. `{ analysis: 50, reference: 50 }` (prompts per n).
 * Splits are drawn in the order given; a text drawn for one split never appears in another.
 *
 * @example
 * const data = generateDataset(tok, { template: "partial", perN: { analysis: 100, reference: 50 }, seed: 2502 });
 * data.splits.analysis.length; // 400 (100 per n = 1..4), unless a shortfall is reported
 */
export function generateDataset(
  tokenizer: Tokenizer,
  opts: {
    template: TemplateName | PromptTemplate;
    perN: Record<string, number>;
    ns?: number[];
    seed: number;
    maxDrawsFactor?: number;
  },
): PromptDataset {
  const template = resolveTemplate(opts.template);
  const ns = opts.ns ?? [1, 2, 3, 4];
  checkNs(ns);
  const { parens, unstudiable } = studiableParens(tokenizer, ns);
  const exclude = new Set<string>();
  const out: PromptDataset = {
    template: template.name,
    seed: opts.seed,
    ns,
    splits: {},
    rejected: {},
    shortfall: {},
    unstudiable,
  };
  for (const [split, perN] of Object.entries(opts.perN)) {
    const g = generatePrompts(tokenizer, {
      template,
      split,
      perN,
      ns: ns.filter((n) => !unstudiable.some((m) => m.n === n)),
      seed: opts.seed,
      exclude,
      parens,
      maxDrawsFactor: opts.maxDrawsFactor,
    });
    for (const m of unstudiable) {
      if (perN > 0) reject(g.rejected, "paren-run-not-one-token", m.n, m.run); // no prompt of this n can exist
      g.shortfall[String(m.n)] = perN;
    }
    out.splits[split] = g.prompts;
    out.rejected[split] = g.rejected;
    out.shortfall[split] = g.shortfall;
  }
  return out;
}
