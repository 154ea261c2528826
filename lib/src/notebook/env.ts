/**
 * Where a notebook's outputs go and how they reach Jupyter.
 *
 * Notebooks run with cwd = notebooks/ (JupyterLab and scripts/notebooks/run_notebooks.py), tests
 * and scripts with cwd = the repository root: paths are resolved from the project root, found by
 * walking up to the workbench's package.json, so both see the same figures/ and data/results/.
 *
 * Inside a tslab kernel, rich output is sent as one Jupyter `display_data` message holding a
 * whole MIME bundle (tslab's own `display.*` functions send one MIME type per message, which
 * cannot carry an interactive figure *and* its static fallback). Outside a kernel (tests, plain
 * node) nothing is displayed and only files are written.
 */
import * as fs from "fs";
import * as path from "path";
import { InputError } from "../core/errors";

/** The root package.json's name: the folder holding it is the project root. */
const WORKBENCH_PACKAGE = "parenlens-workbench";

/** The project root: nearest ancestor of `from` (default cwd) whose package.json is the workbench's; `from` itself when there is none. */
export function projectRoot(from: string = process.cwd()): string {
  let dir = path.resolve(from);
  for (;;) {
    const pkg = path.join(dir, "package.json");
    if (fs.existsSync(pkg)) {
      try {
        if (JSON.parse(fs.readFileSync(pkg, "utf8")).name === WORKBENCH_PACKAGE) return dir;
      } catch {
        // an unreadable package.json is not ours: keep walking up
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return path.resolve(from);
    dir = parent;
  }
}

/** figures/ under the project root, or $PARENLENS_FIGURES_DIR. */
export function figuresDir(): string {
  return path.resolve(process.env.PARENLENS_FIGURES_DIR || path.join(projectRoot(), "figures"));
}

/** data/results/ under the project root, or $PARENLENS_RESULTS_DIR. */
export function resultsDir(): string {
  return path.resolve(process.env.PARENLENS_RESULTS_DIR || path.join(projectRoot(), "data", "results"));
}

/**
 * The model the notebooks run on: $PARENLENS_MODEL (a folder or hub id) when set, else
 * `fallback` resolved against the project root (e.g. "data/models/<name>").
 */
export function notebookModelPath(fallback: string): string {
  const fromEnv = process.env.PARENLENS_MODEL;
  if (fromEnv && fromEnv.trim() !== "") return fromEnv.trim();
  return path.resolve(projectRoot(), fallback);
}

/**
 * The execution provider the notebooks run on: $PARENLENS_DEVICE ("cpu" or "cuda") when set,
 * else "cpu". "cuda" needs onnxruntime-node's CUDA provider (README, "GPU").
 *
 * @example
 * // PARENLENS_DEVICE=cuda npm run notebooks
 * notebookDevice(); // "cuda"
 */
export function notebookDevice(value: string | undefined = process.env.PARENLENS_DEVICE): "cpu" | "cuda" {
  const v = (value ?? "").trim().toLowerCase();
  if (v === "" || v === "cpu") return "cpu";
  if (v === "cuda" || v === "gpu") return "cuda";
  throw new InputError(`PARENLENS_DEVICE must be "cpu" or "cuda", got ${JSON.stringify(value)}`, {
    field: "PARENLENS_DEVICE",
  });
}

/**
 * A file name for an output: letters, digits, '.', '_' and '-' only, so that figure names
 * map one-to-one to files and cannot leave their folder.
 */
export function checkOutputName(name: unknown, field: string): string {
  if (typeof name !== "string" || !/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) || name.includes("..")) {
    throw new InputError(
      `${field} must be a file name of letters, digits, '.', '_' or '-' (no folders), got ${JSON.stringify(name)}`,
      { field },
    );
  }
  return name;
}

/** The temporary name of `file` while this process writes it: `.<name>.tmp-<pid>` (.gitignore: `.*.tmp-*`). */
function tempName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
}

/** True when a process with this id exists (EPERM: it exists, owned by someone else). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Removes `.<name>.tmp-<pid>` files of `file` left by writers that were killed (their pid is gone). */
function removeStaleTemps(file: string): void {
  const prefix = `.${path.basename(file)}.tmp-`;
  let names: string[];
  try {
    names = fs.readdirSync(path.dirname(file));
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const pid = Number(n.slice(prefix.length));
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !processAlive(pid))
      fs.rmSync(path.join(path.dirname(file), n), { force: true });
  }
}

/**
 * Writes several files as one unit: every file is written completely to its temporary name first,
 * and only then are they renamed into place (each rename atomic on POSIX), so a failure or a kill
 * while writing leaves every target as it was. Temporary files are removed on error, and stale ones
 * of killed writers are removed before writing. Creates the folders when needed.
 *
 * @example
 * writeFilesAtomic([["figures/a.html", html], ["figures/a.png", png]]); // both from the same run
 */
export function writeFilesAtomic(files: [file: string, data: string | Uint8Array][]): void {
  const temps: string[] = [];
  try {
    for (const [file, data] of files) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      removeStaleTemps(file);
      const tmp = tempName(file);
      temps.push(tmp);
      fs.writeFileSync(tmp, data);
    }
    files.forEach(([file], i) => fs.renameSync(temps[i], file));
  } catch (e) {
    for (const tmp of temps) fs.rmSync(tmp, { force: true });
    throw e;
  }
}

/**
 * Writes a file so that a reader never sees it half-written: a temporary file in the same
 * folder, then a rename (atomic on POSIX). Creates the folder when needed.
 */
export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  writeFilesAtomic([[file, data]]);
}

/**
 * Escapes `&`, `<`, `>` and `"` for HTML text and attribute values (tables, figure pages, and
 * Plotly labels, which Plotly reads as pseudo-HTML).
 *
 * @example
 * escapeHtml("<s>"); // "&lt;s&gt;"
 */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c] as string);
}

/** A Jupyter MIME bundle: MIME type → string (text, JSON-able object, or base64 for binary). */
export type MimeBundle = Record<string, unknown>;

type WriteDisplayData = (content: { data: MimeBundle; metadata: Record<string, unknown> }, update: boolean) => void;

/**
 * tslab's writer for the cell being executed, when this process is a tslab kernel. It is looked
 * up in the module cache (tslab's dist/jupyter.js) rather than required, so that the library
 * neither depends on tslab nor loads a second copy of it.
 */
function tslabWriter(): WriteDisplayData | null {
  const cache = typeof require !== "undefined" ? require.cache : undefined;
  if (!cache) return null;
  for (const key of Object.keys(cache)) {
    if (!/[\\/]tslab[\\/]dist[\\/]jupyter\.js$/.test(key)) continue;
    const writer = (cache[key]?.exports as { lastWriteDisplayData?: unknown } | undefined)?.lastWriteDisplayData;
    if (typeof writer === "function") return writer as WriteDisplayData;
  }
  return null;
}

/** True inside a tslab kernel that is executing a cell. */
export function inNotebook(): boolean {
  return tslabWriter() !== null;
}

/**
 * Sends one display_data message with the whole bundle to the cell being executed; returns false
 * (and does nothing) outside a kernel. Await the call that leads here inside the cell, or the
 * output lands in whichever cell runs when it resolves.
 */
export function displayBundle(data: MimeBundle, metadata: Record<string, unknown> = {}): boolean {
  const writer = tslabWriter();
  if (!writer) return false;
  writer({ data, metadata }, false);
  return true;
}
