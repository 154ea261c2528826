/** Sensitivity of a verdict: the same finding re-computed over a grid of its thresholds. */
import { Finding, Verdict } from "./finding";

/** One row of a sensitivity table: the option values tried and what the finding gave. */
export interface SensitivityRow {
  [option: string]: number | string | boolean | null;
  verdict: Verdict;
}

/**
 * Re-run a finding over every combination of option values: does the verdict flip with a threshold?
 * `pick` names extra `numbers` to copy into each row.
 *
 * @example
 * findingSensitivity({ tolerance: [0, 0.02, 0.1] }, (o) => accuracyFinding(rows, o));
 */
export function findingSensitivity<O extends object>(
  grid: { [K in keyof O]?: Array<O[K]> },
  run: (opts: O) => Finding,
  pick: string[] = [],
): SensitivityRow[] {
  let combos: Record<string, unknown>[] = [{}];
  for (const [k, values] of Object.entries(grid) as [string, unknown[]][])
    combos = combos.flatMap((c) => values.map((v) => ({ ...c, [k]: v })));
  return combos.map((c) => {
    const f = run(c as O);
    const row: Record<string, number | string | boolean | null> = {};
    for (const [k, v] of Object.entries(c))
      row[k] =
        typeof v === "number" || typeof v === "string" ? v : Array.isArray(v) ? v.join(" ") || "none" : String(v);
    for (const k of pick) row[k] = f.numbers[k] ?? null;
    return { ...row, verdict: f.verdict };
  });
}
