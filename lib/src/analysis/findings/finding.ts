/**
 * A verdict on one of the paper's findings, computed from the result rows of a run (never typed in).
 *
 * Each finding function (accuracy.ts, layerwise.ts, sublayer.ts, counting.ts) takes the tidy rows
 * the analyses return (only the fields it reads, so hand-made rows work too), applies a rule stated
 * in its output, and returns a `Finding`: a verdict ("replicates" / "partly" / "does not
 * replicate"), the numbers it rests on, and a markdown text for the notebook's last cell. The
 * rules' thresholds are options with defaults. This file holds the shared type and text helpers.
 */
import { InputError } from "../../core/errors";

export type Verdict = "replicates" | "partly" | "does not replicate";

export interface Finding {
  /** "accuracy", "layer-wise", "sub-layers", "counting-heads". */
  id: string;
  title: string;
  /** The paper's claim, in our words (mission.md). */
  claim: string;
  verdict: Verdict;
  /** One sentence: the verdict's reason, with numbers. */
  summary: string;
  /** The rule the verdict follows, with its thresholds. */
  rule: string;
  /** Supporting lines, with numbers. */
  evidence: string[];
  /** The numbers the verdict rests on (for tests and tables). */
  numbers: Record<string, number | string | boolean | null>;
  /** Everything above as markdown. */
  markdown: string;
}

export const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)} %` : "n/a");
export const num = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");

export function finish(f: Omit<Finding, "markdown">): Finding {
  const lines = [
    `### Finding — ${f.title}`,
    "",
    `**Paper:** ${f.claim}`,
    "",
    `**Verdict on this model: ${f.verdict}.** ${f.summary}`,
    "",
    `*Rule:* ${f.rule}`,
    "",
    ...f.evidence.map((e) => `- ${e}`),
  ];
  return { ...f, markdown: lines.join("\n") + "\n" };
}

export function requireRows<T>(rows: T[], field: string): void {
  if (!Array.isArray(rows) || rows.length === 0)
    throw new InputError(`${field}: give at least one result row`, { field });
}
