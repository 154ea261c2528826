/**
 * A sweep's finished batches on disk, so that a long sweep resumes where it stopped.
 *
 * On CodeLlama-7b on a CPU a notebook's sweeps run for hours; a kernel restart, a closed laptop or
 * a session limit would otherwise lose them. With a journal folder set (`setSweepJournal`, or
 * $PARENLENS_SWEEP_JOURNAL in the notebooks), `sweep` appends each batch's metric values to a
 * file named by the sweep's identity as soon as the batch is done, and a later run of the same
 * sweep takes them from there instead of running the batch's sites again.
 *
 * What makes a reused value trustworthy:
 * - the file name hashes everything the sweep is given as data: its label, the analysis'
 *   settings (`journalKey`), the model's config, the prompt count, the batches and the sites;
 * - a journaled batch still runs `prepare` (its clean / corrupted runs: the analyses fill their
 *   baselines there) and then one site run, the first, whose metric must agree with the journal
 *   (≤ 1e-4 relative): another checkpoint, changed analysis code or a changed metric is a
 *   JournalError naming the file, never a silent mix of old and new numbers;
 * - the reused values are the journaled doubles themselves (JSON round-trips a double exactly),
 *   so a resumed sweep gives the same numbers, and the same files, as one that never stopped;
 * - a record is one line, appended and fsync'ed; a line cut off by a kill is dropped on reading.
 *
 * The journal is a cache the user owns: delete its folder after changing the analysis code.
 */
import * as fs from "fs";
import * as path from "path";
import { createHash } from "crypto";
import { JournalError } from "../core/errors";

/** Journal file format (its first line says it). */
const FORMAT = 1;

let journalDir: string | null = null;

/**
 * Where sweeps keep their finished batches (null: nowhere, the default). The notebooks set it
 * from $PARENLENS_SWEEP_JOURNAL.
 *
 * @example
 * setSweepJournal("/data/journals/codellama-7b"); // every sweep after this resumes from there
 * const res = await sublayerEffects(model, pairs); // killed after 3 of 8 batches? run it again
 * setSweepJournal(null);
 */
export function setSweepJournal(dir: string | null): void {
  if (dir !== null && (typeof dir !== "string" || dir.trim() === ""))
    throw new JournalError(`the sweep journal must be a folder path or null, got ${JSON.stringify(dir)}`, {
      field: "PARENLENS_SWEEP_JOURNAL",
    });
  journalDir = dir === null ? null : path.resolve(dir.trim());
}

/** The folder set by setSweepJournal (null: none). */
export function sweepJournalDir(): string | null {
  return journalDir;
}

/**
 * sha256 of a value as data: JSON, with typed arrays (tensor data) hashed by their bytes, Maps and
 * Sets by their entries; a function, a symbol or a cycle cannot be part of an identity (JournalError).
 */
export function identityHash(value: unknown): string {
  const replacer = (_key: string, v: unknown): unknown => {
    if (typeof v === "function" || typeof v === "symbol")
      throw new JournalError(`a sweep's identity must be plain data, got a ${typeof v}`, { field: "journalKey" });
    if (typeof v === "bigint") return { $bigint: v.toString() };
    if (typeof v === "number" && !Number.isFinite(v)) return { $number: String(v) };
    if (v === null || typeof v !== "object") return v;
    if (ArrayBuffer.isView(v)) {
      const bytes = Buffer.from(v.buffer, v.byteOffset, v.byteLength);
      return { $typed: v.constructor.name, sha256: createHash("sha256").update(bytes).digest("hex") };
    }
    if (v instanceof Map) return { $map: [...v.entries()] };
    if (v instanceof Set) return { $set: [...v.values()] };
    return v;
  };
  let text: string | undefined;
  try {
    text = JSON.stringify(value, replacer);
  } catch (e) {
    if (e instanceof JournalError) throw e;
    throw new JournalError(`a sweep's identity must be plain data: ${(e as Error).message}`, { field: "journalKey" });
  }
  return createHash("sha256")
    .update(text ?? "undefined")
    .digest("hex");
}

/** A double as JSON: finite numbers as they are, -0, NaN and ±Infinity by name (JSON has none of them). */
function encode(x: number): number | string {
  if (Object.is(x, -0)) return "-0";
  return Number.isFinite(x) ? x : String(x);
}

function decode(v: unknown, file: string, line: number): number {
  if (typeof v === "number") return v;
  if (v === "-0") return -0;
  if (v === "NaN") return NaN;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  throw new JournalError(
    `${file} line ${line}: a value must be a number, "-0", "NaN" or "±Infinity", got ${JSON.stringify(v)}`,
    {
      file,
    },
  );
}

/** One finished batch: the prompt indices it covered and each site's metric values, in sweep order. */
interface BatchRecord {
  batch: number;
  indices: number[];
  values: Float64Array[]; // [site][prompt of the batch]
}

/** What the first line of a journal holds: the format, the label and the full identity hash. */
interface JournalHeader {
  format: number;
  label: string;
  identity: string;
  sites: number;
  batches: number;
}

/** The journal of one sweep: the batches already done, and where the next one is appended. */
export class SweepJournal {
  readonly file: string;
  private readonly done = new Map<number, BatchRecord>();

  private constructor(file: string) {
    this.file = file;
  }

  /**
   * The journal of the sweep whose identity is `identity` (everything it is given as data), in
   * `dir`: read when it exists (a line cut off by a kill is dropped, and the file rewritten
   * without it), else created with its header line.
   */
  static open(dir: string, label: string, identity: unknown, counts: { sites: number; batches: number }): SweepJournal {
    const hash = identityHash(identity);
    const safe = label.replace(/[^A-Za-z0-9._-]/g, "_").slice(0, 60) || "sweep";
    const file = path.join(dir, `${safe}-${hash.slice(0, 16)}.jsonl`);
    const journal = new SweepJournal(file);
    const header: JournalHeader = { format: FORMAT, label, identity: hash, ...counts };
    try {
      fs.mkdirSync(dir, { recursive: true });
    } catch (e) {
      throw new JournalError(`cannot create the sweep journal folder ${dir}: ${(e as Error).message}`, { file: dir });
    }
    if (!fs.existsSync(file)) {
      journal.writeWhole([JSON.stringify(header)]);
      return journal;
    }
    const text = fs.readFileSync(file, "utf8");
    const lines = text.split("\n");
    const complete = lines.slice(0, -1); // the last piece is "" (a complete file) or a line cut off by a kill
    if (complete.length === 0) {
      journal.writeWhole([JSON.stringify(header)]);
      return journal;
    }
    journal.checkHeader(complete[0], header);
    for (let i = 1; i < complete.length; i++) journal.addRecord(complete[i], i + 1, counts.sites);
    if (!text.endsWith("\n")) journal.writeWhole(complete); // drop the cut-off line before appending after it
    return journal;
  }

  /** How many batches the journal holds. */
  get size(): number {
    return this.done.size;
  }

  /** The journaled values of batch `batch` ([site][prompt of the batch]), or null when it is not done; its indices must match. */
  get(batch: number, indices: number[]): Float64Array[] | null {
    const rec = this.done.get(batch);
    if (!rec) return null;
    if (rec.indices.length !== indices.length || rec.indices.some((x, i) => x !== indices[i]))
      throw new JournalError(
        `${this.file}: batch ${batch} was journaled for prompts [${rec.indices.join(", ")}], this sweep's batch holds [${indices.join(", ")}]`,
        { file: this.file },
      );
    return rec.values;
  }

  /** Appends batch `batch`'s values as one line, fsync'ed before returning. */
  record(batch: number, indices: number[], values: ArrayLike<number>[]): void {
    const line = JSON.stringify({ batch, indices, values: values.map((v) => Array.from(v, encode)) }) + "\n";
    let fd: number | null = null;
    try {
      fd = fs.openSync(this.file, "a");
      fs.writeSync(fd, line);
      fs.fsyncSync(fd);
    } catch (e) {
      throw new JournalError(`cannot append to the sweep journal ${this.file}: ${(e as Error).message}`, {
        file: this.file,
      });
    } finally {
      if (fd !== null) fs.closeSync(fd);
    }
    this.done.set(batch, { batch, indices: [...indices], values: values.map((v) => Float64Array.from(v)) });
  }

  private checkHeader(line: string, expected: JournalHeader): void {
    let h: Partial<JournalHeader>;
    try {
      h = JSON.parse(line);
    } catch {
      throw new JournalError(`${this.file} line 1: not a sweep journal header (not JSON); delete the file`, {
        file: this.file,
      });
    }
    if (
      h.format !== FORMAT ||
      h.identity !== expected.identity ||
      h.sites !== expected.sites ||
      h.batches !== expected.batches
    )
      throw new JournalError(
        `${this.file} line 1: the journal is of another sweep (format ${h.format}, identity ${String(h.identity).slice(0, 16)}…, ${h.sites} sites, ${h.batches} batches; expected format ${FORMAT}, ${expected.identity.slice(0, 16)}…, ${expected.sites} sites, ${expected.batches} batches); delete the file`,
        { file: this.file },
      );
  }

  private addRecord(line: string, lineNo: number, sites: number): void {
    let r: { batch?: unknown; indices?: unknown; values?: unknown };
    try {
      r = JSON.parse(line);
    } catch {
      throw new JournalError(
        `${this.file} line ${lineNo}: not JSON (the file was edited or damaged); delete the file`,
        {
          file: this.file,
        },
      );
    }
    const bad = (what: string) =>
      new JournalError(`${this.file} line ${lineNo}: ${what}; delete the file`, { file: this.file });
    if (!Number.isInteger(r.batch) || (r.batch as number) < 0) throw bad("`batch` must be a batch number");
    if (!Array.isArray(r.indices) || !r.indices.every((x) => Number.isInteger(x) && x >= 0))
      throw bad("`indices` must be prompt indices");
    if (!Array.isArray(r.values) || r.values.length !== sites)
      throw bad(`\`values\` must hold one row per site (${sites})`);
    const n = r.indices.length;
    const values = r.values.map((row: unknown) => {
      if (!Array.isArray(row) || row.length !== n) throw bad(`every row of \`values\` must hold ${n} values`);
      return Float64Array.from(row, (v) => decode(v, this.file, lineNo));
    });
    this.done.set(r.batch as number, { batch: r.batch as number, indices: r.indices as number[], values });
  }

  /** Writes these lines as the whole file: a temp file renamed over it, so it is never half-written. */
  private writeWhole(lines: string[]): void {
    const tmp = `${this.file}.tmp-${process.pid}`;
    try {
      fs.writeFileSync(tmp, lines.map((l) => l + "\n").join(""));
      fs.renameSync(tmp, this.file);
    } catch (e) {
      throw new JournalError(`cannot write the sweep journal ${this.file}: ${(e as Error).message}`, {
        file: this.file,
      });
    }
  }
}

/**
 * Whether a journaled metric value and the same site's value run again agree: ≤ 1e-4 relative
 * (several sites in one batch may round differently from one run alone: ≤ 1e-6 on the logits),
 * NaN with NaN.
 */
export function journalAgrees(journaled: number, now: number): boolean {
  if (Number.isNaN(journaled) || Number.isNaN(now)) return Number.isNaN(journaled) && Number.isNaN(now);
  if (!Number.isFinite(journaled) || !Number.isFinite(now)) return journaled === now;
  return Math.abs(journaled - now) <= 1e-4 * Math.max(1, Math.abs(journaled), Math.abs(now));
}
