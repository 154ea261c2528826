/**
 * Typed errors. Every error the library throws on bad input is a ParenlensError that names
 * what was wrong (file, field, hook) and what was expected, so a user never has to read a
 * stack trace from inside onnxruntime. Every message ends with a pointer to its code's page,
 * "(parenlens FEED — lib/docs/errors/FEED.md)", added once here in the ParenlensError constructor.
 */
/**
 * Every error code parenlens throws, as a list (for tests and tools that walk the pages).
 * Each code has a page `lib/docs/errors/<CODE>.md` (symptom, cause, fix).
 */
export const ERROR_CODES = [
  "CONFIG",
  "SAFETENSORS",
  "CHECKPOINT",
  "HOOK_NAME",
  "INTERVENTION",
  "INPUT",
  "DATASET",
  "FEED",
  "EXECUTION_PROVIDER",
  "RENDER",
  "NON_FINITE",
  "JOURNAL",
] as const;

/** Every error code parenlens throws; `switch (e.code)` on a caught `ParenlensError` is exhaustive. */
export type ErrorCode = (typeof ERROR_CODES)[number];

/** The documentation page of an error code, relative to the repository root. */
export function errorDocPath(code: ErrorCode): string {
  return `lib/docs/errors/${code}.md`;
}

/**
 * The base of every parenlens error: a code to `switch` on, the file / field it is about, and a
 * message that ends with a pointer to the code's page (symptom, cause, fix).
 *
 * @example
 * try {
 *   await model.runWithCache(prompts, { names: ["blocks.0.attn.hook_patern"] });
 * } catch (e) {
 *   if (e instanceof ParenlensError && e.code === "HOOK_NAME") console.log(e.message);
 *   // Unknown hook point "blocks.0.attn.hook_patern". Did you mean: blocks.0.attn.hook_pattern?
 *   //   (parenlens HOOK_NAME — lib/docs/errors/HOOK_NAME.md), with up to three suggestions
 * }
 */
export class ParenlensError extends Error {
  readonly code: ErrorCode;
  readonly file?: string;
  readonly field?: string;
  /** The message without the page pointer. */
  readonly detail: string;
  /** The code's page, e.g. "lib/docs/errors/FEED.md". */
  readonly docs: string;
  constructor(code: ErrorCode, message: string, details: { file?: string; field?: string } = {}) {
    super(`${message} (parenlens ${code} — ${errorDocPath(code)})`);
    this.name = new.target.name;
    this.code = code;
    this.file = details.file;
    this.field = details.field;
    this.detail = message;
    this.docs = errorDocPath(code);
  }
}

/** config.json missing, unparsable, or a field missing / of the wrong type / out of range. */
export class ConfigError extends ParenlensError {
  constructor(message: string, details: { file?: string; field?: string } = {}) {
    super("CONFIG", message, details);
  }
}

/** A safetensors file whose header is malformed or lies about offsets, shapes or dtypes. */
export class SafetensorsError extends ParenlensError {
  constructor(message: string, details: { file?: string; field?: string } = {}) {
    super("SAFETENSORS", message, details);
  }
}

/** A checkpoint folder or hub id that cannot be used (missing files, unsupported architecture, no network). */
export class CheckpointError extends ParenlensError {
  constructor(message: string, details: { file?: string; field?: string } = {}) {
    super("CHECKPOINT", message, details);
  }
}

/** A hook name that does not exist; `suggestions` holds the closest valid names. */
export class HookNameError extends ParenlensError {
  readonly suggestions: string[];
  /**
   * `reason` replaces "Unknown hook point" when the name is well-formed but wrong (e.g. its layer);
   * `note` adds context in parentheses (e.g. which shorthand the name came from).
   */
  constructor(name: string, suggestions: string[], reason?: string, note?: string) {
    const hint = suggestions.length ? ` Did you mean: ${suggestions.join(", ")}?` : "";
    const what = reason ? `Hook point "${name}": ${reason}` : `Unknown hook point "${name}"`;
    super("HOOK_NAME", `${what}${note ? ` (${note})` : ""}.${hint}`, {
      field: typeof name === "string" ? name : String(name),
    });
    this.suggestions = suggestions;
  }
}

/** An intervention whose shape, head index, position or source does not fit its hook. */
export class InterventionError extends ParenlensError {
  constructor(message: string, details: { field?: string } = {}) {
    super("INTERVENTION", message, details);
  }
}

/** Input tokens / text that cannot be run (empty batch, id out of vocabulary, ...). */
export class InputError extends ParenlensError {
  constructor(message: string, details: { field?: string } = {}) {
    super("INPUT", message, details);
  }
}

/** Task data that does not fit the model (e.g. a label that is not one token). */
export class DatasetError extends ParenlensError {
  constructor(message: string, details: { file?: string; field?: string } = {}) {
    super("DATASET", message, details);
  }
}

/** A graph feed that onnxruntime would drop or cannot take (a name the segment does not have, a missing weight). */
export class FeedError extends ParenlensError {
  constructor(message: string, details: { field?: string } = {}) {
    super("FEED", message, details);
  }
}

/** An execution provider that is not available in this onnxruntime-node install (e.g. "cuda" without its files). */
export class ExecutionProviderError extends ParenlensError {
  constructor(message: string, details: { field?: string } = {}) {
    super("EXECUTION_PROVIDER", message, details);
  }
}

/** A figure that cannot be rendered (plotly.js missing, no Chromium for the static image, a failed page). */
export class RenderError extends ParenlensError {
  constructor(message: string, details: { file?: string; field?: string } = {}) {
    super("RENDER", message, details);
  }
}

/**
 * A NaN or ±Infinity where a finite number is needed: a checkpoint weight, setWeight data, an
 * intervention's value or result, a patch source, a table or figure. `file` / `field` name the
 * tensor, hook or column; `index` is the first bad element's flat index. Each check has an opt-out
 * (`allowNonFinite: true`) for runs that mean to propagate NaN.
 */
export class NonFiniteError extends ParenlensError {
  readonly index?: number;
  constructor(message: string, details: { file?: string; field?: string; index?: number } = {}) {
    super("NON_FINITE", message, details);
    this.index = details.index;
  }
}

/**
 * A sweep journal (analysis/sweep-journal.ts) that cannot be used: a folder that cannot be
 * written, a damaged file, or journaled values that disagree with the same site run again (another
 * checkpoint or changed analysis code behind the same sweep). `file` names the journal file.
 */
export class JournalError extends ParenlensError {
  constructor(message: string, details: { file?: string; field?: string } = {}) {
    super("JOURNAL", message, details);
  }
}
