/**
 * Progress of the long calls (sweeps and the analyses built on them): a call announces how many
 * forward passes it will run, then reports how many are done. The analyses count from the model:
 * HookedLlama tells listeners of every forward it runs (`onForwards`), so every run inside a call —
 * clean and corrupted caches, reference means, each swept site — is counted where it happens,
 * without threading a counter through the analysis' helpers.
 */

/** How far a long call is: `done` of `total` forward passes of the call named `label`. */
export interface Progress {
  label: string;
  done: number;
  total: number;
}

/** Called when a long call starts (done 0) and after each step. */
export type OnProgress = (p: Progress) => void;

let defaultReporter: OnProgress | null = null;

/**
 * The progress reporter of long calls that pass no `onProgress` (the notebook helpers install one
 * that prints a line updated in place; null: none).
 *
 * @example
 * setDefaultProgress((p) => console.log(`${p.label}: ${p.done}/${p.total}`));
 */
export function setDefaultProgress(fn: OnProgress | null): void {
  defaultReporter = fn;
}

/** The reporter set by setDefaultProgress (null: none). */
export function defaultProgress(): OnProgress | null {
  return defaultReporter;
}

/** A reporter that reports nothing (what an analysis hands its inner sweep: it counts the forwards itself). */
export const silentProgress: OnProgress = () => {};

/** What the progress of an analysis needs of a model (HookedLlama fits): a listener for its forward passes. */
export interface ForwardCounting {
  /** Calls `listener(n)` after every n forward passes the model runs; returns the function that stops it. */
  onForwards?(listener: (n: number) => void): () => void;
}

/** Where an analysis' progress goes and under which name. */
export interface ProgressOptions {
  /**
   * Progress
   *
   * Called with the forward passes done of the total the call announces: once at the start
   * (done 0, so a notebook can say how many forwards and a rough time before the work starts),
   * then after each forward pass (or group of swept sites sharing one upstream run).
   *
   * @default the reporter set by setDefaultProgress (the notebooks' progress line; none outside notebooks)
   * @example
   * await logitLens(model, prompts, { onProgress: (p) => console.log(`${p.done}/${p.total}`) });
   */
  onProgress?: OnProgress;
  /**
   * Name in progress reports
   *
   * @default the function's name, e.g. "logitLens"
   */
  label?: string;
}

/**
 * Runs `work` while counting the model's forward passes against `total`: reports done 0 first,
 * then the running count after each forward the model runs. Without a reporter (none given, no
 * default) it only runs `work`.
 *
 * @example
 * const total = lengthBatches(prompts, (p) => p.promptIds.length, 32).length;
 * const rows = await withForwardProgress(model, opts, "logitLens", total, () => lensBatches(model, prompts));
 */
export async function withForwardProgress<T>(
  model: ForwardCounting,
  opts: ProgressOptions,
  fallbackLabel: string,
  total: number,
  work: () => Promise<T>,
): Promise<T> {
  const report = opts.onProgress ?? defaultReporter;
  if (!report || !model.onForwards) return work();
  const label = opts.label ?? fallbackLabel;
  let done = 0;
  report({ label, done, total });
  const step = (n: number) => report({ label, done: (done += n), total });
  const stop = model.onForwards(step);
  creditListeners.add(step);
  try {
    return await work();
  } finally {
    stop();
    creditListeners.delete(step);
  }
}

/** The counters of the calls now running under withForwardProgress. */
const creditListeners = new Set<(n: number) => void>();

/**
 * Counts `n` forward passes as done without running them (a sweep's batches taken from its
 * journal), in every call now counting under withForwardProgress; the model's own count
 * (HookedLlama.forwardPasses) is not changed.
 */
export function creditForwards(n: number): void {
  if (n > 0) for (const step of creditListeners) step(n);
}
