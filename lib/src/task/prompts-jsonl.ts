/**
 * The dataset files written by scripts/datasets/make-datasets.ts: one JSON object per line, checked
 * field by field on reading (and, with a tokenizer, re-tokenized against the stored ids).
 */
import * as fs from "fs";
import { DatasetError } from "../core/errors";
import type { Tokenizer } from "../core/tokenizer";
import { parenRun } from "./paren-tokens";
import type { ParenPrompt } from "./prompts";
import type { CorruptedPair, CorruptionStrategy } from "./corrupted-pairs";
import type { ClosedCountPair } from "./closed-count-pairs";

/**
 * One JSON object per line.
 *
 * @example
 * fs.writeFileSync("authors-analysis.jsonl", toJsonl(data.splits.analysis));
 */
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
 *
 * @example
 * const prompts = readPromptsJsonl("data/datasets/authors-analysis.jsonl", { tokenizer: tok });
 */
export function readPromptsJsonl(file: string, opts: { tokenizer?: Tokenizer } = {}): ParenPrompt[] {
  const prompts = readLines(file).map(({ line, value }) => checkPrompt(value, file, `line ${line}`));
  if (opts.tokenizer) for (const p of prompts) checkIds(opts.tokenizer, p, file);
  return prompts;
}

/**
 * Read corrupted pairs written by scripts/datasets/make-datasets.ts (same checks as readPromptsJsonl).
 *
 * @example
 * const pairs = readPairsJsonl("data/datasets/authors-pairs.jsonl", { tokenizer: tok });
 */
export function readPairsJsonl(file: string, opts: { tokenizer?: Tokenizer } = {}): CorruptedPair[] {
  return readLines(file).map(({ line, value }) => {
    const o = value as Record<string, unknown>;
    const clean = checkPrompt(o?.clean, file, `line ${line} clean`);
    const corrupted = checkPrompt(o?.corrupted, file, `line ${line} corrupted`);
    const closedPair = o.strategy === "deeper-closed-arg";
    const shapeOk = closedPair
      ? corrupted.n === clean.n && corrupted.nClosed === clean.nClosed + 1
      : corrupted.n === clean.n + 1;
    const rightAligned = o.alignment === "right-aligned";
    if ((clean.length !== corrupted.length && !rightAligned) || !shapeOk) {
      throw new DatasetError(
        `${file}: line ${line}: corrupted prompt must have clean's length (or the pair alignment "right-aligned") and ${closedPair ? "n, with nClosed + 1" : "n + 1"}`,
        { file, field: "corrupted" },
      );
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
      alignment: clean.length === corrupted.length ? ("same-length" as const) : ("right-aligned" as const),
      ...(Number.isInteger(o.site) ? { site: o.site as number } : {}),
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

/**
 * Read the closed-count pairs (same n, one more `)` closed) written by make-datasets.ts; every line
 * must be a "deeper-closed-arg" pair.
 *
 * @example
 * const closed = readClosedPairsJsonl("data/datasets/partial-closed-pairs.jsonl", { tokenizer: tok });
 */
export function readClosedPairsJsonl(file: string, opts: { tokenizer?: Tokenizer } = {}): ClosedCountPair[] {
  const pairs = readPairsJsonl(file, opts);
  pairs.forEach((p, i) => {
    if ((p.strategy as string) !== "deeper-closed-arg")
      throw new DatasetError(`${file}: pair ${i + 1} has strategy "${p.strategy}", expected "deeper-closed-arg"`, {
        file,
        field: "strategy",
      });
  });
  return pairs.map(({ site: _site, ...p }) => p as unknown as ClosedCountPair);
}
