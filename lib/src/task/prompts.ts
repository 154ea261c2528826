/**
 * Seeded closing-paren prompts, tokenized with the model's own tokenizer.
 *
 * A prompt is built as the authors did: the full string (code + the run of n `)`) is tokenized,
 * the last token is the label and every token before it is the prompt. A draw is rejected, and
 * counted by reason, when the label is not exactly one token that decodes to the n parens; it is
 * never silently kept. Corrupted pairs add one `(` (label one paren longer) and are kept only
 * when clean and corrupted prompts have the same number of tokens, so positions align for patching.
 */
import * as fs from "fs";
import { DatasetError } from "../core/errors";
import { seededRandom, streamSeed } from "../core/random";
import { ParenRunTokens, parenRun, parenRunTokens } from "./paren-tokens";
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
  | "no-corruption-site";

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

function reject(r: RejectionCounts, reason: RejectionReason, n: number, text: string): void {
  r.total++;
  r.byReason[reason] = (r.byReason[reason] ?? 0) + 1;
  r.byN[String(n)] = (r.byN[String(n)] ?? 0) + 1;
  if (r.examples.length < 10) r.examples.push({ text, n, reason });
}

/** Sum of rejection counts (e.g. over splits). */
export function mergeRejections(...parts: RejectionCounts[]): RejectionCounts {
  const out = emptyRejections();
  for (const p of parts) {
    out.total += p.total;
    for (const [k, v] of Object.entries(p.byReason)) {
      out.byReason[k as RejectionReason] = (out.byReason[k as RejectionReason] ?? 0) + (v ?? 0);
    }
    for (const [k, v] of Object.entries(p.byN)) out.byN[k] = (out.byN[k] ?? 0) + v;
    for (const e of p.examples) if (out.examples.length < 10) out.examples.push(e);
  }
  return out;
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
  template: TemplateName | PromptTemplate;
  /** Split name stored on each prompt and mixed into the seed (default "analysis"). */
  split?: string;
  /** Prompts wanted per n. */
  perN: number;
  /** Label lengths to generate (default [1, 2, 3, 4]). */
  ns?: number[];
  seed: number;
  /** Prompt texts not to reuse (e.g. other splits); texts drawn here are added to it. */
  exclude?: Set<string>;
  /** Give up on an n after perN × this many draws (default 50). */
  maxDrawsFactor?: number;
  /** Paren-run ids; looked up from the tokenizer when absent. */
  parens?: ParenRunTokens;
}

export interface GeneratedPrompts {
  prompts: ParenPrompt[];
  rejected: RejectionCounts;
  /** Per n, how many prompts short of perN the generator stayed after its draw budget (0 = none). */
  shortfall: Record<string, number>;
  draws: number;
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

/** Draw `perN` valid prompts for each n from one template, deterministically for a seed. */
export function generatePrompts(tokenizer: Tokenizer, opts: GeneratePromptsOptions): GeneratedPrompts {
  const template = resolveTemplate(opts.template);
  const split = opts.split ?? "analysis";
  const ns = opts.ns ?? [1, 2, 3, 4];
  checkNs(ns);
  if (!Number.isInteger(opts.perN) || opts.perN < 0) {
    throw new DatasetError(`perN must be a non-negative integer, got ${opts.perN}`, { field: "perN" });
  }
  const parens = opts.parens ?? parenRunTokens(tokenizer, Math.max(...ns));
  const exclude = opts.exclude ?? new Set<string>();
  const factor = opts.maxDrawsFactor ?? 50;
  const rejected = emptyRejections();
  const shortfall: Record<string, number> = {};
  const prompts: ParenPrompt[] = [];
  let draws = 0;
  for (const n of ns) {
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
  return { prompts, rejected, shortfall, draws };
}

export interface PromptDataset {
  template: string;
  seed: number;
  ns: number[];
  /** Split name → prompts (disjoint texts across splits). */
  splits: Record<string, ParenPrompt[]>;
  rejected: Record<string, RejectionCounts>;
  shortfall: Record<string, Record<string, number>>;
}

/**
 * Disjoint held-out splits of one template, e.g. `{ analysis: 50, reference: 50 }` (prompts per n).
 * Splits are drawn in the order given; a text drawn for one split never appears in another.
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
  const parens = parenRunTokens(tokenizer, Math.max(...ns));
  const exclude = new Set<string>();
  const out: PromptDataset = { template: template.name, seed: opts.seed, ns, splits: {}, rejected: {}, shortfall: {} };
  for (const [split, perN] of Object.entries(opts.perN)) {
    const g = generatePrompts(tokenizer, {
      template,
      split,
      perN,
      ns,
      seed: opts.seed,
      exclude,
      parens,
      maxDrawsFactor: opts.maxDrawsFactor,
    });
    out.splits[split] = g.prompts;
    out.rejected[split] = g.rejected;
    out.shortfall[split] = g.shortfall;
  }
  return out;
}

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

/**
 * Corrupted texts for a prompt ending in an open argument `...f(a, ARG` (ARG = the trailing name
 * or number; none → no candidates), each with exactly one more `(`:
 * - "double-open" `...f(a, (ARG`;
 * - "arg-char-to-open" `...f(a, (RG` (the first character of ARG becomes `(`);
 * - "inner-char-to-open" `...f(a, A(G` (the second character of ARG becomes `(`, ARG ≥ 3 characters),
 *   which keeps the new `(` apart from the one before it, so tokenizers that merge `((` still see
 *   it as a token of its own.
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
 */
export function makeCorruptedPairs(
  tokenizer: Tokenizer,
  prompts: ParenPrompt[],
  opts: { parens?: ParenRunTokens; strategies?: CorruptionStrategy[]; prefer?: "own-token" | "order" } = {},
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

// ---------------------------------------------------------------- JSONL

/** One JSON object per line. */
export function toJsonl(rows: unknown[]): string {
  return rows.map((r) => JSON.stringify(r)).join("\n") + (rows.length ? "\n" : "");
}

function checkPrompt(x: unknown, file: string, where: string): ParenPrompt {
  const o = x as Record<string, unknown>;
  const fail = (field: string, expected: string): never => {
    throw new DatasetError(`${file}: ${where}: field "${field}" should be ${expected}`, { file, field });
  };
  if (typeof o !== "object" || o === null) fail("(line)", "a JSON object");
  for (const f of ["id", "template", "split", "prompt", "label"]) if (typeof o[f] !== "string") fail(f, "a string");
  for (const f of ["n", "nOpen", "nClosed", "labelId", "length"]) if (!Number.isInteger(o[f])) fail(f, "an integer");
  if (!Array.isArray(o.promptIds) || !(o.promptIds as unknown[]).every((v) => Number.isInteger(v)))
    fail("promptIds", "an array of integers");
  const p = o as unknown as ParenPrompt;
  if (p.promptIds.length !== p.length) fail("length", `promptIds.length (${p.promptIds.length})`);
  if (p.label !== parenRun(p.n)) fail("label", `${p.n} closing parens`);
  return { ...p, fields: (o.fields as Record<string, string | number>) ?? {} };
}

function readLines(file: string): { line: number; value: unknown }[] {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new DatasetError(`Cannot read dataset file ${file}: ${(e as Error).message}`, { file });
  }
  const out: { line: number; value: unknown }[] = [];
  text.split("\n").forEach((l, i) => {
    if (!l.trim()) return;
    try {
      out.push({ line: i + 1, value: JSON.parse(l) });
    } catch {
      throw new DatasetError(`${file}: line ${i + 1} is not valid JSON`, { file, field: `line ${i + 1}` });
    }
  });
  return out;
}

/**
 * Read prompts written by scripts/datasets/make-datasets.ts. With `tokenizer`, every prompt is re-tokenized
 * and must give the stored ids (a dataset made for another tokenizer is refused).
 */
export function readPromptsJsonl(file: string, opts: { tokenizer?: Tokenizer } = {}): ParenPrompt[] {
  const prompts = readLines(file).map(({ line, value }) => checkPrompt(value, file, `line ${line}`));
  if (opts.tokenizer) for (const p of prompts) checkIds(opts.tokenizer, p, file);
  return prompts;
}

/** Read corrupted pairs written by scripts/datasets/make-datasets.ts (same checks as readPromptsJsonl). */
export function readPairsJsonl(file: string, opts: { tokenizer?: Tokenizer } = {}): CorruptedPair[] {
  return readLines(file).map(({ line, value }) => {
    const o = value as Record<string, unknown>;
    const clean = checkPrompt(o?.clean, file, `line ${line} clean`);
    const corrupted = checkPrompt(o?.corrupted, file, `line ${line} corrupted`);
    if (clean.length !== corrupted.length || corrupted.n !== clean.n + 1) {
      throw new DatasetError(`${file}: line ${line}: corrupted prompt must have clean's length and n + 1`, {
        file,
        field: "corrupted",
      });
    }
    if (opts.tokenizer) {
      checkIds(opts.tokenizer, clean, file);
      checkIds(opts.tokenizer, corrupted, file);
    }
    return {
      id: String(o.id),
      clean,
      corrupted,
      strategy: o.strategy as CorruptionStrategy,
      diffPositions: Array.isArray(o.diffPositions) ? (o.diffPositions as number[]) : [],
    };
  });
}

function checkIds(tokenizer: Tokenizer, p: ParenPrompt, file: string): void {
  const ids = tokenizer.encode(p.prompt + p.label);
  const same =
    ids.length === p.length + 1 && ids[ids.length - 1] === p.labelId && p.promptIds.every((v, i) => v === ids[i]);
  if (!same) {
    throw new DatasetError(
      `${file}: prompt ${p.id} does not tokenize to its stored ids with this tokenizer; regenerate the dataset for this model (generateDataset)`,
      { file, field: "promptIds" },
    );
  }
}

// ---------------------------------------------------------------- batching for the analyses

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
 * Indices of `items` in batches of equal token length (ascending length), at most `batchSize`
 * each, so that no batch needs padding and clean/corrupted pairs line up position by position.
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
