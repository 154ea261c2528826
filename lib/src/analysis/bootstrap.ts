/**
 * Seeded percentile bootstrap: resample prompts with replacement, recompute a statistic, take
 * the (1 − level)/2 and (1 + level)/2 quantiles. Same seed, same data → same interval.
 */
import { seededRandom } from "../core/random";
import { pearson, quantile } from "./stats";
import { InputError } from "../core/errors";

export interface BootstrapOptions {
  /**
   * Resamples
   *
   * Number of resamples drawn with replacement.
   *
   * @default 1000
   */
  samples?: number;
  /**
   * Seed
   *
   * PRNG seed: same seed, same data → same interval.
   *
   * @default 0
   */
  seed?: number;
  /**
   * Level
   *
   * Coverage of the interval.
   *
   * @default 0.95
   */
  level?: number;
}

export interface Interval {
  /** The statistic on the full sample. */
  estimate: number;
  lo: number;
  hi: number;
  level: number;
  /** Resamples whose statistic was defined (NaN resamples, e.g. a constant variable, are dropped). */
  samples: number;
}

function checkOptions(opts: BootstrapOptions): Required<BootstrapOptions> {
  const samples = opts.samples ?? 1000;
  const seed = opts.seed ?? 0;
  const level = opts.level ?? 0.95;
  if (!Number.isInteger(samples) || samples < 1) {
    throw new InputError(`bootstrap: samples must be a positive integer, got ${samples}`, { field: "samples" });
  }
  if (!(level > 0 && level < 1)) {
    throw new InputError(`bootstrap: level must be in (0, 1), got ${level}`, { field: "level" });
  }
  return { samples, seed, level };
}

/**
 * The general form: `statistic(indices)` is evaluated on the identity sample (the estimate) and
 * on `samples` resamples of the indices 0..n-1 drawn with replacement.
 */
export function bootstrapIndices(
  n: number,
  statistic: (indices: Int32Array) => number,
  opts: BootstrapOptions = {},
): Interval {
  const { samples, seed, level } = checkOptions(opts);
  const identity = Int32Array.from({ length: n }, (_, i) => i);
  const estimate = n > 0 ? statistic(identity) : NaN;
  if (n === 0) return { estimate, lo: NaN, hi: NaN, level, samples: 0 };
  const rand = seededRandom(seed);
  const stats: number[] = [];
  const idx = new Int32Array(n);
  for (let s = 0; s < samples; s++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(rand() * n);
    const v = statistic(idx);
    if (Number.isFinite(v)) stats.push(v);
  }
  if (stats.length === 0) return { estimate, lo: NaN, hi: NaN, level, samples: 0 };
  return {
    estimate,
    lo: quantile(stats, (1 - level) / 2),
    hi: quantile(stats, (1 + level) / 2),
    level,
    samples: stats.length,
  };
}

/**
 * Interval for the mean of `values`.
 *
 * @example
 * bootstrapMean([0.2, 0.4, 0.9], { seed: 0 }); // { estimate: 0.5, lo, hi, level: 0.95, samples: 1000 }
 */
export function bootstrapMean(values: ArrayLike<number>, opts: BootstrapOptions = {}): Interval {
  const v = Float64Array.from(values);
  return bootstrapIndices(
    v.length,
    (idx) => {
      let s = 0;
      for (let i = 0; i < idx.length; i++) s += v[idx[i]];
      return s / idx.length;
    },
    opts,
  );
}

/**
 * Interval for a proportion (e.g. accuracy) from per-prompt successes.
 *
 * @example
 * bootstrapProportion(scores.map((s) => s.correct)).estimate; // accuracy
 */
export function bootstrapProportion(successes: ArrayLike<boolean>, opts: BootstrapOptions = {}): Interval {
  return bootstrapMean(
    Array.from(successes, (b) => (b ? 1 : 0)),
    opts,
  );
}

/**
 * Interval for the Pearson correlation of paired values (pairs resampled together).
 *
 * @example
 * bootstrapPearson(attnClose, nClosed, { seed: 0 }); // r with its 95 % interval
 */
export function bootstrapPearson(xs: ArrayLike<number>, ys: ArrayLike<number>, opts: BootstrapOptions = {}): Interval {
  if (xs.length !== ys.length) {
    throw new InputError(`bootstrapPearson: ${xs.length} x values but ${ys.length} y values`, { field: "ys" });
  }
  const x = Float64Array.from(xs);
  const y = Float64Array.from(ys);
  const bx = new Float64Array(x.length);
  const by = new Float64Array(y.length);
  return bootstrapIndices(
    x.length,
    (idx) => {
      for (let i = 0; i < idx.length; i++) {
        bx[i] = x[idx[i]];
        by[i] = y[idx[i]];
      }
      return pearson(bx, by);
    },
    opts,
  );
}

/**
 * Interval for the fraction of the clean − corrupted gap that patching restores or destroys, as a
 * ratio of means over the resampled prompts (stable where single prompts have a tiny gap):
 * "restored" (denoising: corrupted run, clean value patched in) = (Σpatched − Σcorrupted) / (Σclean − Σcorrupted);
 * "destroyed" (noising: clean run, corrupted value patched in) = (Σclean − Σpatched) / (Σclean − Σcorrupted).
 * `clean`, `corrupted`, `patched` hold one logit difference per prompt; `idx` picks the prompts resampled.
 *
 * @example
 * const ci = bootstrapGapFraction([3, 2], [-1, -2], [1, 0], [0, 1], "restored", { seed: 0 });
 * ci.estimate; // (1 − (−3)) / (5 − (−3)) = 0.5
 */
export function bootstrapGapFraction(
  clean: ArrayLike<number>,
  corrupted: ArrayLike<number>,
  patched: ArrayLike<number>,
  idx: number[],
  direction: "restored" | "destroyed",
  opts: BootstrapOptions = {},
): Interval {
  return bootstrapIndices(
    idx.length,
    (sample) => {
      let cl = 0,
        co = 0,
        pa = 0;
      for (const j of sample) {
        const i = idx[j];
        cl += clean[i];
        co += corrupted[i];
        pa += patched[i];
      }
      return direction === "restored" ? (pa - co) / (cl - co) : (cl - pa) / (cl - co);
    },
    opts,
  );
}
