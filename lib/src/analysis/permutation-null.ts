/**
 * A stratified permutation null for many correlations at once (finding 3's counting criterion over
 * every head): the target (nClosed) is shuffled only among prompts of the same stratum (the same
 * prompt length), so whatever the signals share with length survives every shuffle and only the
 * part of r that follows the target within a length is tested. The p-value of each signal is
 * family-wise over all signals (max-|r| statistic across heads), beside the per-signal one.
 */
import { InputError } from "../core/errors";
import { seededRandom } from "../core/random";

export interface PermutationNullOptions {
  /**
   * Permutations
   *
   * Number of within-stratum shuffles of the target.
   *
   * @default 1000
   */
  permutations?: number;
  /**
   * Seed
   *
   * Seed of the shuffles (mulberry32).
   *
   * @default 0
   */
  seed?: number;
}

export interface PermutationNullResult {
  /** Observed Pearson r per signal (NaN for a constant signal). */
  r: number[];
  /** Per signal: (1 + #{shuffles with |r*| ≥ |r|}) / (1 + permutations); NaN for NaN r. */
  pRaw: number[];
  /** Per signal, family-wise over all signals: (1 + #{shuffles with max_k |r*_k| ≥ |r|}) / (1 + permutations). */
  p: number[];
  /** The 95th percentile of max_k |r*_k| over shuffles: a signal needs |r| above it to pass at 0.05. */
  maxAbsR95: number;
  permutations: number;
  seed: number;
  /** Number of strata with at least two prompts (only those are shuffled). */
  strata: number;
}

/** Centred copy and its norm (0 for a constant). */
function centred(x: ArrayLike<number>): { c: Float64Array; norm: number } {
  const n = x.length;
  let m = 0;
  for (let i = 0; i < n; i++) m += x[i];
  m /= n;
  const c = new Float64Array(n);
  let ss = 0;
  for (let i = 0; i < n; i++) {
    c[i] = x[i] - m;
    ss += c[i] * c[i];
  }
  return { c, norm: Math.sqrt(ss) };
}

/** r of every signal with `y` (centred; its norm is the same under any shuffle). */
function correlations(signals: { c: Float64Array; norm: number }[], y: Float64Array, yNorm: number): number[] {
  return signals.map(({ c, norm }) => {
    if (norm === 0 || yNorm === 0) return NaN;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += c[i] * y[i];
    return s / (norm * yNorm);
  });
}

/**
 * Permute `target` within the strata of `strata` (e.g. prompt lengths) and compare each signal's
 * |r| with the shuffled ones. A signal that depends on the stratum only (attention that follows
 * prompt length) keeps its r under every shuffle and gets p = 1; one that follows the target
 * within strata loses it under the shuffles and gets a small p.
 *
 * @example
 * const nul = stratifiedPermutationNull(headSignals, nClosed, lengths, { permutations: 1000, seed: 0 });
 * nul.p[k] <= 0.05; // head k's r survives the length-stratified null, family-wise over all heads
 */
export function stratifiedPermutationNull(
  signals: ArrayLike<number>[],
  target: ArrayLike<number>,
  strata: ArrayLike<number>,
  opts: PermutationNullOptions = {},
): PermutationNullResult {
  const B = opts.permutations ?? 1000;
  const seed = opts.seed ?? 0;
  const n = target.length;
  if (!Number.isInteger(B) || B < 1)
    throw new InputError(`permutations must be a positive integer, got ${B}`, { field: "permutations" });
  if (strata.length !== n || signals.some((s) => s.length !== n))
    throw new InputError(`stratifiedPermutationNull: signals, target and strata need ${n} values each`, {
      field: "strata",
    });
  const sig = signals.map(centred);
  const { c: y, norm: yNorm } = centred(target);
  const r = correlations(sig, y, yNorm);
  const groups = new Map<number, number[]>();
  for (let i = 0; i < n; i++) groups.set(strata[i], [...(groups.get(strata[i]) ?? []), i]);
  const shuffled = [...groups.values()].filter((g) => g.length > 1);
  const rand = seededRandom(seed);
  const yPerm = Float64Array.from(y);
  const exceed = new Int32Array(r.length);
  const exceedMax = new Int32Array(r.length);
  const maxes = new Float64Array(B);
  const tol = 1e-12; // a length-only signal gets |r*| = |r| up to rounding: that counts as reaching it
  for (let b = 0; b < B; b++) {
    for (const g of shuffled) {
      for (let i = g.length - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        const t = yPerm[g[i]];
        yPerm[g[i]] = yPerm[g[j]];
        yPerm[g[j]] = t;
      }
    }
    const rp = correlations(sig, yPerm, yNorm).map((v) => (Number.isFinite(v) ? Math.abs(v) : 0));
    const mx = Math.max(...rp);
    maxes[b] = mx;
    r.forEach((v, k) => {
      if (rp[k] >= Math.abs(v) - tol) exceed[k]++;
      if (mx >= Math.abs(v) - tol) exceedMax[k]++;
    });
  }
  const pOf = (count: Int32Array) => r.map((v, k) => (Number.isFinite(v) ? (1 + count[k]) / (1 + B) : NaN));
  const sorted = Float64Array.from(maxes).sort();
  return {
    r,
    pRaw: pOf(exceed),
    p: pOf(exceedMax),
    maxAbsR95: sorted[Math.min(B - 1, Math.ceil(0.95 * B) - 1)],
    permutations: B,
    seed,
    strata: shuffled.length,
  };
}
