/**
 * Tables for notebooks and scripts: `showTable(rows | DataFrame, { name, csv })` displays a table
 * in the notebook (text/html + text/plain in one bundle) and writes its CSV atomically under
 * data/results/; `saveTable` (scripts, tests) writes the CSV and returns the rendered table. Accepts plain row objects or a danfojs-node DataFrame (read through its
 * `columns` and `values`, so the library does not load danfojs itself).
 * Display rounds numbers to `digits` significant digits; the CSV writes non-integers at
 * `csvDigits` (7) significant digits, the precision of the float32 computations behind them, so
 * that a re-run on another machine (last-bit float32 differences) leaves the file unchanged.
 * Non-finite numbers are refused unless asked for (rule: lib/docs/errors/NON_FINITE.md).
 */
import * as path from "path";
import { InputError, NonFiniteError } from "../core/errors";
import { checkOutputName, displayBundle, escapeHtml, projectRoot, resultsDir, writeFileAtomic } from "./env";

export type TableRow = Record<string, unknown>;

/** What showTable reads of a danfojs-node DataFrame (its `values` are typed 1-D or 2-D there; a DataFrame's are rows). */
export interface DataFrameLike {
  columns: string[];
  values: unknown[];
}

export interface SaveTableOptions {
  /** The table's name (caption, and the CSV's default file name). Letters, digits, '.', '_', '-'. */
  name: string;
  /** Write the CSV: a path relative to data/results/ (e.g. "counting-heads.csv"), or true for "<name>.csv". */
  csv?: string | boolean;
  /** Significant digits of non-integer numbers on display (default 4). */
  digits?: number;
  /** Rows shown (default 50; the CSV has them all). */
  maxRows?: number;
  /**
   * CSV digits
   *
   * Significant digits of non-integer numbers in the CSV (integers are written whole); 17 keeps
   * every float64 bit.
   *
   * @default 7 (float32 precision: re-runs that differ only in the last float32 bits write the same file)
   */
  csvDigits?: number;
  /**
   * Allow non-finite numbers
   *
   * By default a column holding ±Infinity, or a numeric column with no finite number (all NaN), is
   * refused (NonFiniteError); NaN beside finite numbers is kept ("not defined here"). true allows
   * every column; a list allows the named columns.
   *
   * @default false
   */
  allowNonFinite?: boolean | string[];
}
export type ShowTableOptions = SaveTableOptions;

export interface TableOutput {
  columns: string[];
  rows: unknown[][];
  csv: string | null; // absolute path of the CSV written, if any
  html: string; // the table as displayed
  text: string;
}

function isDataFrameLike(t: unknown): t is DataFrameLike {
  if (t === null || typeof t !== "object" || Array.isArray(t)) return false;
  const df = t as { columns?: unknown; values?: unknown };
  return Array.isArray(df.columns) && Array.isArray(df.values);
}

/** Columns and rows of the input, columns in order of first appearance. */
export function tableCells(table: TableRow[] | DataFrameLike): { columns: string[]; rows: unknown[][] } {
  if (isDataFrameLike(table)) {
    const columns = table.columns.map(String);
    const rows = table.values.map((row: unknown, i: number) => {
      if (!Array.isArray(row) || row.length !== columns.length) {
        throw new InputError(
          `showTable: DataFrame row ${i} has ${Array.isArray(row) ? row.length : "no"} values, expected ${columns.length}`,
          {
            field: `values[${i}]`,
          },
        );
      }
      return row.slice();
    });
    return { columns, rows };
  }
  if (!Array.isArray(table)) {
    throw new InputError("showTable: expected an array of row objects or a danfojs DataFrame", { field: "table" });
  }
  const columns: string[] = [];
  const seen = new Set<string>();
  table.forEach((row, i) => {
    if (row === null || typeof row !== "object" || Array.isArray(row)) {
      throw new InputError(`showTable: row ${i} must be an object { column: value }, got ${JSON.stringify(row)}`, {
        field: `rows[${i}]`,
      });
    }
    for (const key of Object.keys(row)) {
      if (!seen.has(key)) {
        seen.add(key);
        columns.push(key);
      }
    }
  });
  return { columns, rows: table.map((row) => columns.map((c) => row[c])) };
}

/** A cell for display. */
function formatCell(v: unknown, digits: number): string {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") {
    if (Number.isInteger(v) || !Number.isFinite(v)) return String(v);
    return String(Number(v.toPrecision(digits)));
  }
  if (typeof v === "string") return v;
  if (typeof v === "boolean" || typeof v === "bigint") return String(v);
  return JSON.stringify(v);
}

/** A cell for the CSV: non-integers at `digits` significant digits, RFC 4180 quoting. */
function csvCell(v: unknown, digits = 17): string {
  let s: string;
  if (v === null || v === undefined) s = "";
  else if (typeof v === "number")
    s = Number.isInteger(v) || !Number.isFinite(v) ? String(v) : String(Number(v.toPrecision(digits)));
  else if (typeof v === "boolean" || typeof v === "bigint") s = String(v);
  else if (typeof v === "string") s = v;
  else s = JSON.stringify(v);
  return /[",\r\n]/.test(s) || s !== s.trim() ? `"${s.replace(/"/g, '""')}"` : s;
}

/** The CSV text (header + rows, "\n" line ends, final newline); non-integers at `digits` significant digits. */
export function toCsv(columns: string[], rows: unknown[][], digits = 7): string {
  const line = (r: unknown[]) => r.map((v) => csvCell(v, digits)).join(",");
  return [columns.map((c) => csvCell(c)).join(","), ...rows.map(line)].join("\n") + "\n";
}

/**
 * Refuses ±Infinity in any column, and a numeric column with no finite number, unless allowed
 * (true, or the column listed). NaN beside finite numbers passes ("not defined here").
 */
export function checkFiniteColumns(
  where: string,
  columns: string[],
  rows: unknown[][],
  allow: boolean | string[] = false,
): void {
  if (allow === true) return;
  const allowed = new Set(Array.isArray(allow) ? allow : []);
  const hint = "pass allowNonFinite: true (or a list of columns) to write it anyway";
  columns.forEach((c, j) => {
    if (allowed.has(c)) return;
    let finite = 0;
    let bad = 0;
    let firstBad = -1;
    rows.forEach((r, i) => {
      const v = r[j];
      if (typeof v !== "number") return;
      if (Number.isFinite(v)) return void finite++;
      if (v === Infinity || v === -Infinity)
        throw new NonFiniteError(`${where}: column "${c}" row ${i} is ${v}; ${hint}`, { field: c, index: i });
      bad++;
      if (firstBad < 0) firstBad = i;
    });
    if (bad > 0 && finite === 0)
      throw new NonFiniteError(
        `${where}: column "${c}" has no finite number (${bad} NaN / Infinity, row ${firstBad} is NaN); ${hint}`,
        { field: c, index: firstBad },
      );
  });
}

function isNumeric(column: unknown[]): boolean {
  return (
    column.some((v) => typeof v === "number") &&
    column.every((v) => v === null || v === undefined || typeof v === "number")
  );
}

function renderTable(
  name: string,
  columns: string[],
  rows: unknown[][],
  digits: number,
  maxRows: number,
): { html: string; text: string } {
  const shown = rows.slice(0, maxRows);
  const more = rows.length - shown.length;
  const numeric = columns.map((_, j) => isNumeric(rows.map((r) => r[j])));
  const cells = shown.map((r) => r.map((v) => formatCell(v, digits)));
  const align = (j: number) => (numeric[j] ? ' style="text-align: right"' : "");

  const html = [
    `<table class="dataframe parenlens-table">`,
    `<caption>${escapeHtml(name)} (${rows.length} row${rows.length === 1 ? "" : "s"})</caption>`,
    `<thead><tr>${columns.map((c, j) => `<th${align(j)}>${escapeHtml(c)}</th>`).join("")}</tr></thead>`,
    "<tbody>",
    ...cells.map((r) => `<tr>${r.map((c, j) => `<td${align(j)}>${escapeHtml(c)}</td>`).join("")}</tr>`),
    "</tbody>",
    "</table>",
    more > 0 ? `<p>… ${more} more row${more === 1 ? "" : "s"}</p>` : "",
  ].join("\n");

  const widths = columns.map((c, j) => Math.max(c.length, ...cells.map((r) => r[j].length)));
  const pad = (s: string, j: number) => (numeric[j] ? s.padStart(widths[j]) : s.padEnd(widths[j]));
  const line = (r: string[]) => r.map(pad).join("  ").trimEnd();
  const text = [
    `${name} (${rows.length} row${rows.length === 1 ? "" : "s"})`,
    line(columns),
    line(widths.map((w) => "-".repeat(w))),
    ...cells.map(line),
    ...(more > 0 ? [`… ${more} more row${more === 1 ? "" : "s"}`] : []),
  ].join("\n");
  return { html, text };
}

/** The CSV's absolute path: relative to data/results/, never outside it. */
function csvPath(csv: string | true, name: string): string {
  const rel = csv === true ? `${name}.csv` : csv;
  if (typeof rel !== "string" || rel === "" || path.isAbsolute(rel)) {
    throw new InputError(
      `showTable: csv must be a path relative to data/results/ (or true), got ${JSON.stringify(csv)}`,
      { field: "csv" },
    );
  }
  const root = resultsDir();
  const file = path.resolve(root, rel);
  if (!file.startsWith(root + path.sep)) {
    throw new InputError(`showTable: csv path ${JSON.stringify(rel)} leaves data/results/`, { field: "csv" });
  }
  return file;
}

/**
 * Formats a table and (with `csv`) writes it under data/results/, without displaying it; returns
 * the cells, the rendered HTML/text and the CSV's path. For scripts and tests; notebooks use `showTable`.
 */
export function saveTable(table: TableRow[] | DataFrameLike, opts: SaveTableOptions): TableOutput {
  if (opts === null || typeof opts !== "object") {
    throw new InputError("showTable: options { name } are required", { field: "name" });
  }
  const name = checkOutputName(opts.name, "name");
  const digits = opts.digits ?? 4;
  if (!Number.isInteger(digits) || digits < 1 || digits > 17) {
    throw new InputError(`showTable: digits must be an integer in [1, 17], got ${JSON.stringify(opts.digits)}`, {
      field: "digits",
    });
  }
  const maxRows = opts.maxRows ?? 50;
  if (!Number.isInteger(maxRows) || maxRows < 0) {
    throw new InputError(`showTable: maxRows must be a non-negative integer, got ${JSON.stringify(opts.maxRows)}`, {
      field: "maxRows",
    });
  }
  const csvDigits = opts.csvDigits ?? 7;
  if (!Number.isInteger(csvDigits) || csvDigits < 1 || csvDigits > 17) {
    throw new InputError(`showTable: csvDigits must be an integer in [1, 17], got ${JSON.stringify(opts.csvDigits)}`, {
      field: "csvDigits",
    });
  }
  const allow = opts.allowNonFinite ?? false;
  if (typeof allow !== "boolean" && !(Array.isArray(allow) && allow.every((c) => typeof c === "string")))
    throw new InputError(`showTable: allowNonFinite must be true, false or a list of column names`, {
      field: "allowNonFinite",
    });
  const { columns, rows } = tableCells(table);
  checkFiniteColumns(`showTable ${name}`, columns, rows, allow);
  const { html, text } = renderTable(name, columns, rows, digits, maxRows);
  let csv: string | null = null;
  if (opts.csv !== undefined && opts.csv !== false) {
    csv = csvPath(opts.csv, name);
    writeFileAtomic(csv, toCsv(columns, rows, csvDigits));
  }
  return { columns, rows, csv, html, text };
}

/**
 * Displays a table in the notebook (HTML + text in one bundle) and (with `csv`) writes it under
 * data/results/; outside a kernel it only writes the CSV. Returns nothing, so that a cell ending
 * with it prints nothing more.
 *
 * ```ts
 * showTable([{ layer: 0, head: 3, accuracy: 0.91 }], { name: "counting-heads", csv: true });
 * showTable(df, { name: "logit-lens", csv: "logit-lens/by-layer.csv" });   // danfojs DataFrame
 * ```
 */
export function showTable(table: TableRow[] | DataFrameLike, opts: ShowTableOptions): void {
  const out = saveTable(table, opts);
  const root = projectRoot();
  const note = out.csv
    ? `\n(csv: ${out.csv.startsWith(root + path.sep) ? path.relative(root, out.csv) : out.csv})`
    : "";
  displayBundle({ "text/html": out.html, "text/plain": out.text + note });
}
