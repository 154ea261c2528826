/**
 * The first cell of every study notebook, as two calls:
 *
 * ```ts
 * const { model, tok, modelPath, settings } = await studyModel(); // prints the model's shape and the settings
 * const authors = studyData(tok, "authors");                       // prints where the prompts come from
 * ```
 *
 * Datasets go one way: when the model's tokenizer.json is the one data/datasets/ was made with
 * (its SHA-256 is the manifest's), the committed JSONL files are loaded — prompts and the
 * clean/corrupted pairs of scripts/datasets/make-datasets.ts — and re-tokenized as a check; for
 * any other tokenizer the same seed and sizes (read from the manifest) regenerate them in memory.
 * Both give what `generateDataset` + `makeCorruptedPairs` give for that tokenizer.
 */
import { firstPerN } from "../analysis/study";
import { setSweepJournal } from "../analysis/sweep-journal";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import { DatasetError, InputError } from "../core/errors";
import type { Tokenizer } from "../core/tokenizer";
import { HookedLlama, HookedLlamaOptions } from "../runtime/hooked-llama";
import { parenRunTokens } from "../task/paren-tokens";
import type { TemplateName } from "../task/prompt-templates";
import { generateDataset, ParenPrompt, PromptDataset, RejectionCounts } from "../task/prompts";
import { CorruptedPair, makeCorruptedPairs } from "../task/corrupted-pairs";
import { ClosedCountPair, makeClosedCountPairs } from "../task/closed-count-pairs";
import { readClosedPairsJsonl, readPairsJsonl, readPromptsJsonl } from "../task/prompts-jsonl";
import { notebookDevice, notebookModelPath, projectRoot } from "./env";
import { logForwardPasses, showProgressInNotebook } from "./progress";

/** The embedded model the notebooks run on when $PARENLENS_MODEL is not set. */
export const EMBEDDED_MODEL = "data/models/parenlens-code-6l";

/** The committed datasets' manifest, relative to the project root. */
export const DATASET_MANIFEST = "data/datasets/manifest.json";

/** What a study needs from data/datasets/manifest.json (written by scripts/datasets/make-datasets.ts). */
export interface DatasetManifest {
  /** Seed of `generateDataset`. */
  seed: number;
  /** Prompts per n and split, in draw order, e.g. `{ analysis: 100, reference: 50 }`. */
  perN: Record<string, number>;
  /** The counts n of missing parens, e.g. [1, 2, 3, 4]. */
  ns: number[];
  /** The tokenizer the files were made with: its folder and the SHA-256 of its tokenizer.json. */
  tokenizer: { folder: string; sha256: string };
  /** Per template: its split files (with their rejections and shortfalls) and its pairs file. */
  templates: Record<
    string,
    {
      splits: Record<string, { file: string; rejected: RejectionCounts; shortfall: Record<string, number> }>;
      pairs: { file: string; from: string };
      /** The partly-closed template's closed-count pairs (same n, one more `)` closed). */
      closedPairs?: { file: string; from: string };
    }
  >;
}

/** Reads and checks the manifest; `file` defaults to data/datasets/manifest.json under the project root. */
export function readDatasetManifest(file: string = path.join(projectRoot(), DATASET_MANIFEST)): DatasetManifest {
  let m: DatasetManifest;
  try {
    m = JSON.parse(fs.readFileSync(file, "utf8")) as DatasetManifest;
  } catch (e) {
    throw new DatasetError(
      `Cannot read the dataset manifest ${file}: ${(e as Error).message} (run scripts/datasets/make-datasets.ts)`,
      { file },
    );
  }
  const fail = (field: string, expected: string): never => {
    throw new DatasetError(`${file}: field "${field}" should be ${expected}`, { file, field });
  };
  if (!Number.isInteger(m?.seed)) fail("seed", "an integer");
  if (typeof m.perN !== "object" || m.perN === null || !Object.values(m.perN).every(Number.isInteger))
    fail("perN", 'an object of integers, e.g. { "analysis": 100, "reference": 50 }');
  if (!Array.isArray(m.ns) || !m.ns.every(Number.isInteger)) fail("ns", "an array of integers");
  if (typeof m.tokenizer?.sha256 !== "string") fail("tokenizer.sha256", "a string");
  if (typeof m.templates !== "object" || m.templates === null) fail("templates", "an object");
  return m;
}

/** SHA-256 (hex) of a file; null when it does not exist. */
export function fileSha256(file: string): string | null {
  return fs.existsSync(file) ? crypto.createHash("sha256").update(fs.readFileSync(file)).digest("hex") : null;
}

/** $PARENLENS_PER_N as a number of prompts per n; null when unset or empty. */
export function perNFromEnv(value: string | undefined = process.env.PARENLENS_PER_N): number | null {
  if (value === undefined || value.trim() === "") return null;
  const k = Number(value);
  if (!Number.isInteger(k) || k < 1) {
    throw new InputError(`PARENLENS_PER_N must be a positive integer, got ${JSON.stringify(value)}`, {
      field: "PARENLENS_PER_N",
    });
  }
  return k;
}

/** The settings a study runs under, as `studyModel` printed them. */
export interface StudySettings {
  /** Prompts analysed per n ($PARENLENS_PER_N); null: every prompt of the analysis split. */
  perN: number | null;
  /** The dataset manifest (seed, sizes, tokenizer fingerprint). */
  manifest: DatasetManifest;
  /** True when this model's tokenizer.json is the one data/datasets/ was made with: `studyData` loads the files. */
  committedData: boolean;
}

export interface StudyModelOptions {
  /**
   * Model folder or hub id
   *
   * The checkpoint to load.
   *
   * @default $PARENLENS_MODEL when set, else the embedded model data/models/parenlens-code-6l
   */
  model?: string;
  /**
   * Prompts per n
   *
   * Analyse only the first k prompts of each n (the analysis split keeps its order).
   *
   * @default $PARENLENS_PER_N when set, else every prompt
   */
  perN?: number | null;
  /**
   * Dataset manifest
   *
   * The manifest of the committed datasets (seed, sizes, the tokenizer's SHA-256).
   *
   * @default data/datasets/manifest.json under the project root
   */
  manifestFile?: string;
  /**
   * Runtime options
   *
   * Passed to `HookedLlama.fromPretrained` (execution provider, threads, ...).
   *
   * @default { executionProvider: $PARENLENS_DEVICE or "cpu" }
   */
  runtime?: HookedLlamaOptions;
  /**
   * Printer
   *
   * Where the set-up lines go; `() => {}` silences them.
   *
   * @default console.log
   */
  log?: (line: string) => void;
}

/** What `studyModel` returns. */
export interface StudyModel {
  model: HookedLlama;
  /** The model's tokenizer (never null: a study needs one). */
  tok: Tokenizer;
  /** The folder (or hub id) the model was loaded from. */
  modelPath: string;
  /** Its basename, for figure titles. */
  modelName: string;
  settings: StudySettings;
}

/** How `studyData` finds the tokenizer.json of a tokenizer that `studyModel` loaded. */
const settingsOf = new WeakMap<Tokenizer, StudySettings & { manifestFile: string }>();

/**
 * Loads the study's model and reads the settings; prints the model's shape, whether its tokenizer
 * is the one data/datasets/ was made with, and $PARENLENS_PER_N when set.
 *
 * @example
 * const { model, tok, modelPath, settings } = await studyModel();
 * // parenlens-code-6l: 6 layers × 8 heads, d_model 256, vocab 3070
 * // tokenizer is the one data/datasets was made with
 */
export async function studyModel(opts: StudyModelOptions = {}): Promise<StudyModel> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const modelPath = opts.model ?? notebookModelPath(EMBEDDED_MODEL);
  const device = notebookDevice();
  const model = await HookedLlama.fromPretrained(modelPath, { executionProvider: device, ...opts.runtime });
  showProgressInNotebook(); // long calls print how many forward passes, a rough time and a line updated in place
  const journal = process.env.PARENLENS_SWEEP_JOURNAL?.trim();
  if (journal) setSweepJournal(journal); // sweeps keep their finished batches there: a re-run resumes
  const forwardLog = process.env.PARENLENS_FORWARD_LOG?.trim();
  if (forwardLog) logForwardPasses(model, forwardLog); // scripts/bench/scale-notebooks.ts reads it
  const tok = model.tokenizer;
  if (!tok) throw new InputError(`${modelPath} has no tokenizer: a study needs one`, { field: "tokenizer" });
  const manifestFile = opts.manifestFile ?? path.join(projectRoot(), DATASET_MANIFEST);
  const manifest = readDatasetManifest(manifestFile);
  const committedData = manifest.tokenizer.sha256 === fileSha256(path.join(modelPath, "tokenizer.json"));
  const perN = opts.perN === undefined ? perNFromEnv() : opts.perN;
  const settings: StudySettings = { perN, manifest, committedData };
  settingsOf.set(tok, { ...settings, manifestFile });
  const modelName = path.basename(modelPath);
  const { numLayers, numHeads, hiddenSize, vocabSize } = model.config;
  log(`${modelName}: ${numLayers} layers × ${numHeads} heads, d_model ${hiddenSize}, vocab ${vocabSize}`);
  log(`tokenizer ${committedData ? "is" : "is not"} the one data/datasets was made with`);
  if (device !== "cpu") log(`PARENLENS_DEVICE=${device}: running on ${device}`);
  if (journal)
    log(
      `PARENLENS_SWEEP_JOURNAL=${journal}: finished sweep batches are kept there and reused when a notebook runs again`,
    );
  if (perN !== null && perN < manifest.perN.analysis) {
    log(`PARENLENS_PER_N=${perN}: the first ${perN} prompts per n are analysed`);
  }
  return { model, tok, modelPath, modelName, settings };
}

/** A template's prompts for a study: the dataset's splits plus the clean/corrupted pairs of its analysis split. */
export interface StudyData extends PromptDataset {
  /**
   * Clean/corrupted pairs of the analysed prompts (`makeCorruptedPairs` with the default options:
   * the authors' call-boundary corruption, positions aligned index for index).
   */
  pairs: CorruptedPair[];
  /**
   * Partly-closed template only (else empty): pairs of the same n and length whose partner has one
   * more `)` already closed (makeClosedCountPairs), for finding 3.
   */
  closedPairs: ClosedCountPair[];
  /** The analysed prompts that got no pair, and why. */
  pairsRejected: RejectionCounts;
  /** "committed": read from data/datasets/; "generated": drawn in memory with the manifest's seed and sizes. */
  source: "committed" | "generated";
}

export interface StudyDataOptions {
  /**
   * Prompts per n
   *
   * Keep only the first k prompts of each n in the analysis split (and pair only those).
   *
   * @default the `perN` of the `studyModel` call that loaded `tok`, else $PARENLENS_PER_N, else every prompt
   */
  perN?: number | null;
  /**
   * Committed data
   *
   * Load the committed files (true) or regenerate (false).
   *
   * @default whether `tok` came with a tokenizer.json matching the manifest (`studyModel` checks it); false for other tokenizers
   */
  committed?: boolean;
  /**
   * Dataset manifest
   *
   * @default the one `studyModel` read, else data/datasets/manifest.json under the project root
   */
  manifestFile?: string;
  /**
   * Printer
   *
   * @default console.log
   */
  log?: (line: string) => void;
}

/** The largest count whose run is one token: the counts asked, less those this tokenizer cannot study. */
function studiedCount(data: PromptDataset): number {
  const studied = data.ns.filter((n) => !data.unstudiable.some((m) => m.n === n));
  return Math.max(1, ...studied);
}

/** The first k items of each n, in order (`PARENLENS_PER_N`). */
function loadCommitted(tok: Tokenizer, template: TemplateName, manifest: DatasetManifest, dir: string): PromptDataset {
  const entry = manifest.templates[template];
  if (!entry) {
    throw new DatasetError(`${path.join(dir, "manifest.json")} has no template "${template}"`, { field: "templates" });
  }
  const out: PromptDataset = {
    template,
    seed: manifest.seed,
    ns: manifest.ns,
    splits: {},
    rejected: {},
    shortfall: {},
    unstudiable: [], // committed datasets are written for a tokenizer whose runs are all single tokens
  };
  for (const split of Object.keys(manifest.perN)) {
    const s = entry.splits[split];
    out.splits[split] = readPromptsJsonl(path.join(dir, s.file), { tokenizer: tok });
    out.rejected[split] = s.rejected;
    out.shortfall[split] = s.shortfall;
  }
  return out;
}

/**
 * The committed pairs of the analysed prompts. The file holds pairs for the whole analysis split;
 * pairing is per prompt, so keeping those of the analysed prompts is what `makeCorruptedPairs`
 * gives on them. The reasons for prompts without a pair are not stored per prompt: they are
 * recounted on those prompts alone (same order, same counts).
 */
function committedPairs(
  tok: Tokenizer,
  file: string,
  analysed: ParenPrompt[],
  seed: number,
): { pairs: CorruptedPair[]; rejected: RejectionCounts } {
  const byClean = new Map(readPairsJsonl(file, { tokenizer: tok }).map((p) => [p.clean.id, p]));
  const pairs = analysed.flatMap((p) => (byClean.has(p.id) ? [byClean.get(p.id) as CorruptedPair] : []));
  const unpaired = analysed.filter((p) => !byClean.has(p.id));
  return { pairs, rejected: makeCorruptedPairs(tok, unpaired, { seed }).rejected };
}

/** The closed-count pairs of the analysed prompts (partly-closed template only): committed or made here. */
function closedCountPairs(
  tok: Tokenizer,
  template: TemplateName,
  analysed: ParenPrompt[],
  manifest: DatasetManifest | null,
  dir: string,
  studied: number,
): ClosedCountPair[] {
  if (template !== "partial") return [];
  const entry = manifest?.templates[template]?.closedPairs;
  if (!manifest) return makeClosedCountPairs(tok, analysed, { parens: parenRunTokens(tok, studied) }).pairs;
  if (!entry) return [];
  const byClean = new Map(
    readClosedPairsJsonl(path.join(dir, entry.file), { tokenizer: tok }).map((p) => [p.clean.id, p]),
  );
  return analysed.flatMap((p) => (byClean.has(p.id) ? [byClean.get(p.id)!] : []));
}

/**
 * A template's prompts for a study, with the clean/corrupted pairs of its analysis split: loaded
 * from data/datasets/ when `tok` is the tokenizer they were made with, else generated with the
 * manifest's seed and sizes. Prints one line of provenance.
 *
 * @example
 * const authors = studyData(tok, "authors");
 * // authors: 400 analysis + 200 reference prompts (rejected draws: 18 {"duplicate":18}); loaded from data/datasets/authors-*.jsonl
 * const { pairs } = authors; // clean/corrupted pairs of authors.splits.analysis
 */
export function studyData(tok: Tokenizer, template: TemplateName, opts: StudyDataOptions = {}): StudyData {
  const log = opts.log ?? ((line: string) => console.log(line));
  const known = settingsOf.get(tok);
  const manifestFile = opts.manifestFile ?? known?.manifestFile ?? path.join(projectRoot(), DATASET_MANIFEST);
  const manifest = opts.manifestFile || !known ? readDatasetManifest(manifestFile) : known.manifest;
  const committed = opts.committed ?? known?.committedData ?? false;
  const perN = opts.perN !== undefined ? opts.perN : known ? known.perN : perNFromEnv();
  const dir = path.dirname(manifestFile);
  const data = committed
    ? loadCommitted(tok, template, manifest, dir)
    : generateDataset(tok, { template, perN: manifest.perN, ns: manifest.ns, seed: manifest.seed });
  const all = data.splits.analysis;
  const rej = data.rejected.analysis;
  const where = committed
    ? `loaded from ${path.relative(projectRoot(), dir) || "."}/${template}-*.jsonl`
    : `generated with seed ${manifest.seed} (this tokenizer is not the one data/datasets was made with)`;
  log(
    `${template}: ${all.length} analysis + ${data.splits.reference?.length ?? 0} reference prompts ` +
      `(rejected draws: ${rej.total} ${JSON.stringify(rej.byReason)}); ${where}`,
  );
  if (data.unstudiable.length)
    log(
      `  counts not studied with this tokenizer: ${data.unstudiable.map((m) => `n = ${m.n} (${m.reason})`).join("; ")}`,
    );
  if (perN !== null && perN < manifest.perN.analysis) {
    data.splits.analysis = firstPerN(all, perN, (p) => p.n).map((i) => all[i]);
    log(`  PARENLENS_PER_N=${perN}: analysing the first ${data.splits.analysis.length} prompts`);
  }
  const paired = committed
    ? committedPairs(tok, path.join(dir, manifest.templates[template].pairs.file), data.splits.analysis, manifest.seed)
    : makeCorruptedPairs(tok, data.splits.analysis, {
        parens: parenRunTokens(tok, studiedCount(data)),
        seed: manifest.seed,
      });
  return {
    ...data,
    pairs: paired.pairs,
    closedPairs: closedCountPairs(
      tok,
      template,
      data.splits.analysis,
      committed ? manifest : null,
      dir,
      studiedCount(data),
    ),
    pairsRejected: paired.rejected,
    source: committed ? "committed" : "generated",
  };
}
