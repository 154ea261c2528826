/**
 * Progress of long calls in a notebook (the analyses, `scorePrompts`, `sweep`): when one starts, a
 * line says how many forward passes it will run and a rough time (from the last call's pace in
 * this kernel, or after its first step); while it runs the line is rewritten in place ("\r"):
 * done / total, elapsed, left.
 *
 * The line goes to stderr and starts with PROGRESS_MARKER. JupyterLab shows it updating in
 * place; scripts/notebooks/run_notebooks.py echoes marked lines to its terminal and keeps them
 * out of the saved notebook, so committed outputs never hold timings (they change every run).
 */
import { OnProgress, Progress, setDefaultProgress } from "../analysis/forward-progress";
import * as fs from "fs";
import type { HookedLlama } from "../runtime/hooked-llama";
import { inNotebook } from "./env";

/** Marks progress text (the headless runner drops it from saved outputs). */
export const PROGRESS_MARKER = "[progress]";

/** Milliseconds a forward took in the last finished call, for the next call's rough time. */
let lastMsPerForward: number | null = null;

function seconds(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 120) return `${s} s`;
  return s < 120 * 60 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
}

/** The text of one progress line (no timing when `elapsedMs` is null). */
export function progressText(p: Progress, elapsedMs: number | null, msPerForward: number | null): string {
  const head = `${PROGRESS_MARKER} ${p.label}: ${p.done}/${p.total} forward passes`;
  if (p.done === 0)
    return `${head}, rough time ${msPerForward === null ? "known after the first step" : seconds(msPerForward * p.total)}`;
  if (elapsedMs === null) return head;
  const left = p.done < p.total ? `, about ${seconds((elapsedMs / p.done) * (p.total - p.done))} left` : "";
  return `${head} in ${seconds(elapsedMs)}${left}`;
}

export interface ProgressLineOptions {
  /**
   * Shortest time between two rewrites of the line: a sweep reports every forward pass, and each
   * write is one message to JupyterLab (and one line in a CI log). The start and the end are always written.
   *
   * @default 250
   */
  minIntervalMs?: number;
  /** The clock, in milliseconds (tests pass their own). @default performance.now */
  now?: () => number;
}

/**
 * A reporter that writes a line updated in place (to stderr by default), at most every
 * `minIntervalMs`.
 *
 * @example
 * const onProgress = progressLine();
 * await sublayerEffects(model, pairs, { onProgress }); // [progress] sublayerEffects: 12/96 forward passes in 5 s, about 35 s left
 */
export function progressLine(
  write: (text: string) => void = (t) => process.stderr.write(t),
  opts: ProgressLineOptions = {},
): OnProgress {
  const now = opts.now ?? (() => performance.now());
  const minInterval = opts.minIntervalMs ?? 250;
  let start = 0;
  let lastWrite = 0;
  return (p: Progress) => {
    const t = now();
    if (p.done === 0) {
      start = lastWrite = t;
      write(`\r${progressText(p, null, lastMsPerForward)}`);
      return;
    }
    const finished = p.done >= p.total;
    if (!finished && t - lastWrite < minInterval) return;
    lastWrite = t;
    if (finished) lastMsPerForward = (t - start) / p.total;
    write(`\r${progressText(p, t - start, null)}${finished ? "\n" : ""}`); // one write: one message in a kernel
  };
}

/**
 * In a tslab kernel: show the progress of every long call that passes no onProgress of its own
 * (studyModel calls it). Outside a kernel (tests, scripts) it does nothing and returns false.
 *
 * @example
 * showProgressInNotebook(); // long calls now print "[progress] logitLens: 3/96 forward passes ..."
 */
export function showProgressInNotebook(): boolean {
  if (!inNotebook()) return false;
  setDefaultProgress(progressLine());
  return true;
}

/**
 * Keeps `file` holding the number of forward passes `model` has run (rewritten after each), so a
 * script that runs a notebook can read how many it took; studyModel does this when
 * $PARENLENS_FORWARD_LOG names a file. Returns the function that stops it.
 *
 * @example
 * // PARENLENS_FORWARD_LOG=/tmp/03.forwards npm run notebooks -- notebooks/03-mha-vs-ff.ipynb
 * logForwardPasses(model, "/tmp/03.forwards"); // the file reads e.g. "2124\n" when the notebook ends
 */
export function logForwardPasses(model: Pick<HookedLlama, "onForwards" | "forwardPasses">, file: string): () => void {
  const write = () => fs.writeFileSync(file, `${model.forwardPasses}\n`);
  write();
  return model.onForwards(write);
}
