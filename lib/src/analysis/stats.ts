/**
 * Small descriptive statistics used by the study modules: mean, standard deviation, quantiles
 * (linear interpolation, as numpy's default), Pearson correlation. NaN in, NaN out: callers
 * decide what an undefined statistic means (e.g. a correlation with a constant variable).
 */
import { InputError } from "../core/errors";

/** Arithmetic mean; NaN for an empty list. */
export function meanOf(values: ArrayLike<number>): number {
  if (values.length === 0) return NaN;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += values[i];
  return s / values.length;
}

/** Sample standard deviation (n − 1 in the denominator); NaN for fewer than two values. */
export function stdOf(values: ArrayLike<number>): number {
  const n = values.length;
  if (n < 2) return NaN;
  const m = meanOf(values);
  let s = 0;
  for (let i = 0; i < n; i++) s += (values[i] - m) ** 2;
  return Math.sqrt(s / (n - 1));
}

/** Quantile q ∈ [0, 1] with linear interpolation between order statistics (numpy "linear"). */
export function quantile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0 || !(q >= 0 && q <= 1)) return NaN;
  const sorted = Float64Array.from(values).sort();
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

/** Median (quantile 0.5). */
export function medianOf(values: ArrayLike<number>): number {
  return quantile(values, 0.5);
}

/**
 * Pearson correlation of paired values. NaN when fewer than two pairs or when either variable
 * is constant (the correlation is undefined there, not zero).
 */
export function pearson(xs: ArrayLike<number>, ys: ArrayLike<number>): number {
  const n = xs.length;
  if (n !== ys.length) throw new InputError(`pearson: ${n} x values but ${ys.length} y values`, { field: "ys" });
  if (n < 2) return NaN;
  const mx = meanOf(xs);
  const my = meanOf(ys);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i] - mx;
    const dy = ys[i] - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  // Relative tolerance: a variable constant up to float rounding has no defined correlation.
  if (sxx <= 1e-24 * Math.max(1, mx * mx) * n || syy <= 1e-24 * Math.max(1, my * my) * n) return NaN;
  return sxy / Math.sqrt(sxx * syy);
}

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
