/**
 * Option checks of HookedLlama: every option value of the model and of a run is checked here,
 * before onnxruntime sees it (it would take `threads: -1` or a typo'd provider and fail later, or
 * not at all), and an option name that does not exist is an error with the closest valid names
 * (a typo such as `logitAt` would otherwise be ignored without a word).
 */
import { InputError } from "../core/errors";
import { editDistance } from "../hooks/hook-points";

/** Option names of `new HookedLlama(..., options)` / `fromPretrained(folder, options)`. */
export const MODEL_OPTION_NAMES = [
  "executionProvider",
  "threads",
  "sessionCacheSize",
  "spinning",
  "allowNonFinite",
  "tokenizer",
  "weightDtype",
  "computeDtype",
] as const;

/** Option names of run / runWithCache / runWithHooks (toTokens takes the token ones). */
export const RUN_OPTION_NAMES = [
  "logitsAt",
  "padding",
  "addBos",
  "padId",
  "names",
  "interventions",
  "withHeadResult",
  "allowNonFinite",
] as const;

/** Option names of runSites: a run's, and how many sites share a batch. */
export const RUN_SITES_OPTION_NAMES = [...RUN_OPTION_NAMES, "sitesPerBatch"] as const;

const TOKEN_OPTION_NAMES = ["padding", "addBos", "padId"];

function closest(name: string, valid: readonly string[]): string {
  const best = valid
    .map((v) => ({ v, d: editDistance(name.toLowerCase(), v.toLowerCase()) }))
    .sort((a, b) => a.d - b.d)[0];
  return best && best.d <= Math.max(2, Math.floor(name.length / 3)) ? ` (did you mean ${best.v}?)` : "";
}

/** Throws InputError for a non-object or an unknown option name. */
function checkNames(opts: unknown, valid: readonly string[], where: string): Record<string, unknown> {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== "object" || Array.isArray(opts))
    throw new InputError(`${where}: options must be an object, got ${JSON.stringify(opts)}`, { field: "options" });
  for (const key of Object.keys(opts)) {
    if (!valid.includes(key))
      throw new InputError(`${where}: unknown option "${key}"${closest(key, valid)}; options are ${valid.join(", ")}`, {
        field: key,
      });
  }
  return opts as Record<string, unknown>;
}

function optional(
  o: Record<string, unknown>,
  key: string,
  ok: (v: unknown) => boolean,
  expected: string,
  where: string,
) {
  const v = o[key];
  if (v !== undefined && !ok(v))
    throw new InputError(`${where}: ${key} must be ${expected}, got ${JSON.stringify(v) ?? String(v)}`, {
      field: key,
    });
}

const isBool = (v: unknown) => typeof v === "boolean";
const isPositiveInt = (v: unknown) => typeof v === "number" && Number.isInteger(v) && v > 0;

/**
 * The model's options, checked before any session is built.
 *
 * @example
 * checkModelOptions({ threads: -1 }); // InputError: HookedLlama: threads must be a positive integer, got -1
 */
export function checkModelOptions(opts: unknown): void {
  const where = "HookedLlama";
  const o = checkNames(opts, MODEL_OPTION_NAMES, where);
  optional(o, "executionProvider", (v) => v === "cpu" || v === "cuda", '"cpu" or "cuda"', where);
  optional(o, "threads", isPositiveInt, "a positive integer", where);
  optional(o, "sessionCacheSize", isPositiveInt, "a positive integer", where);
  optional(o, "spinning", isBool, "true or false", where);
  optional(o, "allowNonFinite", isBool, "true or false", where);
  optional(o, "tokenizer", isBool, "true or false", where);
  optional(o, "computeDtype", (v) => v === "float32" || v === "float16", '"float32" or "float16"', where);
  if (o.computeDtype === "float16" && o.executionProvider !== "cuda")
    throw new InputError(
      `${where}: computeDtype "float16" needs executionProvider "cuda" (got ${JSON.stringify(o.executionProvider ?? "cpu")}); the CPU computes in float32`,
      { field: "computeDtype" },
    );
  optional(o, "weightDtype", (v) => v === "stored" || v === "float32", '"stored" or "float32"', where);
}

/**
 * A run's options (or toTokens' with `tokensOnly`), checked before tokenizing. `vocabSize`
 * bounds padId.
 */
export function checkRunOptions(opts: unknown, vocabSize: number, where: string, tokensOnly = false): void {
  const o = checkNames(opts, tokensOnly ? TOKEN_OPTION_NAMES : RUN_OPTION_NAMES, where);
  optional(o, "logitsAt", (v) => v === "all" || v === "last", '"all" or "last"', where);
  optional(o, "padding", (v) => v === "left" || v === "right", '"left" or "right"', where);
  optional(o, "addBos", isBool, "true or false", where);
  optional(
    o,
    "padId",
    (v) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v < vocabSize,
    `an integer token id in 0..${vocabSize - 1}`,
    where,
  );
  optional(o, "withHeadResult", isBool, "true or false", where);
  optional(o, "allowNonFinite", isBool, "true or false", where);
  optional(o, "interventions", Array.isArray, "an array of interventions", where);
}

/** runSites' options: a run's, and `sitesPerBatch` (a positive integer or "auto"). */
export function checkRunSitesOptions(opts: unknown, vocabSize: number, where: string): void {
  const o = checkNames(opts, RUN_SITES_OPTION_NAMES, where);
  optional(o, "sitesPerBatch", (v) => v === "auto" || isPositiveInt(v), 'a positive integer or "auto"', where);
  const { sitesPerBatch: _, ...rest } = o;
  checkRunOptions(rest, vocabSize, where);
}
