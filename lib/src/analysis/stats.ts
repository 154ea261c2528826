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

/** log Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error ≈ 1e-15). */
function logGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059,
    12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - logGamma(1 - x);
  x -= 1;
  let a = c[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** P(X ≤ k) for X ~ Binomial(n, p), summed in log space. */
export function binomialCdf(k: number, n: number, p: number): number {
  if (k < 0) return 0;
  if (k >= n) return 1;
  if (p <= 0) return 1;
  if (p >= 1) return 0;
  const lnC = logGamma(n + 1);
  let s = 0;
  for (let i = 0; i <= k; i++) {
    s += Math.exp(lnC - logGamma(i + 1) - logGamma(n - i + 1) + i * Math.log(p) + (n - i) * Math.log1p(-p));
  }
  return Math.min(1, s);
}

/** The p in [0, 1] where a decreasing function f(p) crosses `target` (bisection, 60 steps). */
function solveDecreasing(f: (p: number) => number, target: number): number {
  let lo = 0;
  let hi = 1;
  for (let i = 0; i < 60; i++) {
    const mid = (lo + hi) / 2;
    if (f(mid) > target) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/** Which exact-or-score interval `binomialInterval` computes. */
export type BinomialIntervalMethod = "clopper-pearson" | "wilson";

/**
 * Interval for a proportion of `successes` out of `trials`: Clopper–Pearson (exact: never below the
 * nominal coverage; 100 / 100 gives [0.964, 1] at 95 %) or Wilson (score interval, shorter).
 * Unlike a percentile bootstrap it does not collapse to [1, 1] when every trial succeeds.
 *
 * @param level coverage, in (0, 1); @default 0.95
 * @param method @default "clopper-pearson"
 *
 * @example
 * binomialInterval(100, 100); // { estimate: 1, lo: 0.9638, hi: 1, level: 0.95 }
 */
export function binomialInterval(
  successes: number,
  trials: number,
  level = 0.95,
  method: BinomialIntervalMethod = "clopper-pearson",
): { estimate: number; lo: number; hi: number; level: number } {
  if (!(Number.isInteger(successes) && Number.isInteger(trials) && successes >= 0 && successes <= trials))
    throw new InputError(`binomialInterval: need integers 0 ≤ successes ≤ trials, got ${successes} / ${trials}`, {
      field: "successes",
    });
  if (!(level > 0 && level < 1))
    throw new InputError(`binomialInterval: level must be in (0, 1), got ${level}`, { field: "level" });
  if (trials === 0) return { estimate: NaN, lo: NaN, hi: NaN, level };
  const k = successes;
  const n = trials;
  const alpha = 1 - level;
  if (method === "wilson") {
    const z = normalQuantile(1 - alpha / 2);
    const p = k / n;
    const centre = (p + (z * z) / (2 * n)) / (1 + (z * z) / n);
    const half = (z / (1 + (z * z) / n)) * Math.sqrt((p * (1 - p)) / n + (z * z) / (4 * n * n));
    return { estimate: p, lo: Math.max(0, centre - half), hi: Math.min(1, centre + half), level };
  }
  // P(X ≥ k | p) increases with p, P(X ≤ k | p) decreases with p.
  const lo = k === 0 ? 0 : solveDecreasing((p) => binomialCdf(k - 1, n, p), 1 - alpha / 2);
  const hi = k === n ? 1 : solveDecreasing((p) => binomialCdf(k, n, p), alpha / 2);
  return { estimate: k / n, lo, hi, level };
}

/** Standard normal quantile (Acklam's rational approximation, relative error ≈ 1e-9). */
export function normalQuantile(q: number): number {
  if (!(q > 0 && q < 1)) return NaN;
  const a = [
    -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239,
  ];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [
    -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968,
    2.938163982698783,
  ];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const pl = 0.02425;
  if (q < pl) {
    const t = Math.sqrt(-2 * Math.log(q));
    return (
      (((((c[0] * t + c[1]) * t + c[2]) * t + c[3]) * t + c[4]) * t + c[5]) /
      ((((d[0] * t + d[1]) * t + d[2]) * t + d[3]) * t + 1)
    );
  }
  if (q > 1 - pl) return -normalQuantile(1 - q);
  const s = q - 0.5;
  const r = s * s;
  return (
    ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * s) /
    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
  );
}

/** Residuals of y after a least-squares fit on an intercept and the `controls` (normal equations, Gaussian elimination). */
export function residualize(y: ArrayLike<number>, controls: ArrayLike<number>[]): Float64Array {
  const n = y.length;
  const cols = [Float64Array.from({ length: n }, () => 1), ...controls.map((c) => Float64Array.from(c))];
  const k = cols.length;
  // A = XᵀX [k, k | 1]: augmented with Xᵀy
  const A = Array.from({ length: k }, (_, i) => {
    const row = new Float64Array(k + 1);
    for (let j = 0; j < k; j++) for (let t = 0; t < n; t++) row[j] += cols[i][t] * cols[j][t];
    for (let t = 0; t < n; t++) row[k] += cols[i][t] * y[t];
    return row;
  });
  for (let i = 0; i < k; i++) {
    let piv = i;
    for (let r = i + 1; r < k; r++) if (Math.abs(A[r][i]) > Math.abs(A[piv][i])) piv = r;
    [A[i], A[piv]] = [A[piv], A[i]];
    if (Math.abs(A[i][i]) < 1e-12) continue; // a control collinear with others: drop it
    for (let r = 0; r < k; r++) {
      if (r === i) continue;
      const f = A[r][i] / A[i][i];
      for (let j = i; j <= k; j++) A[r][j] -= f * A[i][j];
    }
  }
  const beta = A.map((row, i) => (Math.abs(row[i]) < 1e-12 ? 0 : row[k] / row[i]));
  return Float64Array.from({ length: n }, (_, t) => y[t] - cols.reduce((a, c, j) => a + beta[j] * c[t], 0));
}

/**
 * Partial correlation of x and y given `controls`: Pearson r of their residuals after regressing
 * each on the controls (with an intercept). E.g. a head's attention on `)` vs the number closed,
 * controlling for prompt length and the share of `)` tokens.
 *
 * @example
 * partialCorrelation(attnClose, nClosed, [lengths, closeShare]);
 */
export function partialCorrelation(
  xs: ArrayLike<number>,
  ys: ArrayLike<number>,
  controls: ArrayLike<number>[],
): number {
  if (xs.length !== ys.length || controls.some((c) => c.length !== xs.length))
    throw new InputError("partialCorrelation: x, y and every control need the same length", { field: "controls" });
  return pearson(residualize(xs, controls), residualize(ys, controls));
}
