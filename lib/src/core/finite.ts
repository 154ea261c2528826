/**
 * Finiteness checks: one pass over a float array that finds the first NaN / ±Infinity, and the
 * typed error that names where it was (tensor, hook, column) and what it was.
 */
import { NonFiniteError } from "./errors";

/** Flat index of the first NaN / ±Infinity in `data`, or -1 when every value is finite. */
export function firstNonFinite(data: ArrayLike<number>): number {
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    // v - v is 0 for finite v and NaN for NaN / ±Infinity: one comparison per element
    if (v - v !== 0) return i;
  }
  return -1;
}

/** How many values of `data` are NaN / ±Infinity (for messages; only called after a hit). */
function countNonFinite(data: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < data.length; i++) if (data[i] - data[i] !== 0) n++;
  return n;
}

/**
 * Throws NonFiniteError unless every value of `data` is finite. `what` opens the message
 * ("weight model.norm.weight in <file>"); `hint` ends it (how to opt out, or where to look).
 *
 * @example
 * assertFinite(w.data, "setWeight(lm_head.weight)", { field: "lm_head.weight" });
 * // NonFiniteError: setWeight(lm_head.weight): value 3 of 1024 is NaN (1 non-finite value) ...
 */
export function assertFinite(
  data: ArrayLike<number>,
  what: string,
  details: { file?: string; field?: string; hint?: string } = {},
): void {
  const i = firstNonFinite(data);
  if (i < 0) return;
  const n = countNonFinite(data);
  const hint = details.hint ?? "pass allowNonFinite: true to let NaN / Infinity through on purpose";
  throw new NonFiniteError(
    `${what}: value ${i} of ${data.length} is ${data[i]} (${n} non-finite value${n === 1 ? "" : "s"}); ${hint}`,
    { file: details.file, field: details.field, index: i },
  );
}
