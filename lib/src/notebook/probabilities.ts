/**
 * Next-token probabilities for notebook tables. (An analysis-level home, analysis/metrics.ts, may
 * suit it better; it lives here so that notebooks need no softmax of their own.)
 */

/**
 * Softmax of one logit vector, in float64: exp(x − max) / Σ exp(x − max).
 *
 * @param logits one position's logits, `[vocab]`
 * @returns probabilities, `[vocab]`
 *
 * @example
 * const probs = softmax(logits.select(1, -1).select(0, 0).data); // [vocab]
 */
export function softmax(logits: ArrayLike<number> & Iterable<number>): Float64Array {
  let max = -Infinity;
  for (const v of logits) max = Math.max(max, v);
  const e = Float64Array.from(logits, (v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}
