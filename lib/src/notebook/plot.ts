/**
 * Plotly figures for notebooks and scripts.
 *
 * `showFigure(fig, { name })` (notebooks) does three things with one figure ({ data, layout } as
 * Plotly.js takes it):
 *  - in a tslab kernel, displays ONE MIME bundle: `application/vnd.plotly.v1+json` (interactive,
 *    rendered by JupyterLab's plotly extension) plus `image/png` (the static fallback that
 *    GitHub's notebook view and untrusted notebooks show) and `text/plain`. JupyterLab's plotly
 *    extension shows that PNG first and swaps in the interactive plot when the pointer enters it;
 *  - writes figures/<name>.html (interactive; loads plotly.min.js from the same folder, or embeds
 *    it with `selfContained: true`) and figures/<name>.png, each atomically;
 *  - renders the PNGs with the same plotly.js (plotly.js-dist-min, the version JupyterLab's
 *    extension bundles) in headless Chromium, driven by playwright-core. One browser per process,
 *    closed after a few idle seconds (and killed by playwright if the process exits first).
 * `saveFigure` (scripts, tests) only writes the files and returns their paths.
 * Same figure in → byte-identical files and bundle out: fixed element ids, no timestamps, numbers
 * at 7 significant digits (float32 precision: last-bit differences between machines do not show).
 * The HTML and the PNG are written as one unit (both complete before either replaces its file).
 * Non-finite numbers are refused unless asked for (rule: lib/docs/errors/NON_FINITE.md).
 */
import * as fs from "fs";
import * as path from "path";
import type { Browser, Page } from "playwright-core";
import { InputError, NonFiniteError, RenderError } from "../core/errors";
import {
  checkOutputName,
  displayBundle,
  escapeHtml,
  figuresDir,
  inNotebook,
  projectRoot,
  writeFileAtomic,
  writeFilesAtomic,
} from "./env";

/** A Plotly.js figure. Typed arrays inside are written out as plain arrays. */
export interface PlotlyFigure {
  data: Record<string, unknown>[];
  layout?: Record<string, unknown>;
  config?: Record<string, unknown>;
}

export interface SaveFigureOptions {
  /** File stem: figures/<name>.html and figures/<name>.png. Letters, digits, '.', '_', '-'. */
  name: string;
  /** Sets layout.title when the layout has none. */
  title?: string;
  /** Static image size in CSS pixels; default layout.width/height, else 720 × 480. `height` also sets layout.height when unset. */
  width?: number;
  height?: number;
  /** Device pixel ratio of figures/<name>.png (sharper, larger file); default 2. */
  scale?: number;
  /** Embed plotly.js (4.8 MB) in the HTML instead of loading plotly.min.js next to it. */
  selfContained?: boolean;
  /** Output folder; default figuresDir() (figures/ at the project root, or $PARENLENS_FIGURES_DIR). */
  dir?: string;
  /**
   * Allow non-finite numbers
   *
   * By default a trace array holding ±Infinity, or numbers none of which is finite (all NaN), is
   * refused (NonFiniteError); NaN beside finite numbers is a gap, as in Plotly.
   *
   * @default false
   */
  allowNonFinite?: boolean;
}

export interface ShowFigureOptions extends SaveFigureOptions {
  /**
   * Device pixel ratio of the PNG inside the notebook; default 1. JupyterLab's plotly renderer
   * shows that PNG at its pixel size until the pointer enters it (then the interactive plot
   * replaces it), so it must be drawn at CSS size.
   */
  notebookScale?: number;
}

export interface FigureOutput {
  html: string; // absolute path of the HTML file
  png: string; // absolute path of the PNG file
  width: number; // CSS pixels of the static image
  height: number;
  figure: PlotlyFigure; // the figure as written (plain JSON, title/height applied)
}

export const PLOTLY_MIME = "application/vnd.plotly.v1+json";
const DEFAULT_WIDTH = 720;
const DEFAULT_HEIGHT = 480;
const DEFAULT_SCALE = 2;
const BROWSER_IDLE_MS = 5000;
const PLOTLY_FILE = "plotly.min.js";
const DIV_ID = "parenlens-figure";

/** Significant digits of non-integer numbers written into figures (float32 precision). */
const FIGURE_DIGITS = 7;

/** The figure as plain JSON: typed arrays → arrays, NaN/±Infinity → null (as JSON does), non-integers at 7 significant digits. */
function toPlainFigure(fig: unknown): PlotlyFigure {
  if (fig === null || typeof fig !== "object" || !Array.isArray((fig as PlotlyFigure).data)) {
    throw new InputError("showFigure: the figure must be an object { data: trace[], layout? } as Plotly.js takes it", {
      field: "data",
    });
  }
  const f = fig as PlotlyFigure;
  f.data.forEach((trace, i) => {
    if (trace === null || typeof trace !== "object" || Array.isArray(trace)) {
      throw new InputError(`showFigure: data[${i}] must be a trace object, got ${JSON.stringify(trace)}`, {
        field: `data[${i}]`,
      });
    }
  });
  for (const key of ["layout", "config"] as const) {
    const v = f[key];
    if (v !== undefined && (v === null || typeof v !== "object" || Array.isArray(v))) {
      throw new InputError(`showFigure: ${key} must be an object when given`, { field: key });
    }
  }
  const json = JSON.stringify({ data: f.data, layout: f.layout ?? {}, config: f.config ?? {} }, (_k, v) => {
    if (typeof v === "number" && Number.isFinite(v) && !Number.isInteger(v))
      return Number(v.toPrecision(FIGURE_DIGITS));
    return ArrayBuffer.isView(v) && !(v instanceof DataView) ? Array.from(v as unknown as ArrayLike<number>) : v;
  });
  return JSON.parse(json) as PlotlyFigure;
}

/** Counts of the numbers in a (nested) array: finite, NaN, and the first ±Infinity's index path. */
function scanNumbers(v: unknown, at: string, acc: { finite: number; nan: number; inf: string | null }): void {
  if (typeof v === "number") {
    if (Number.isFinite(v)) acc.finite++;
    else if (Number.isNaN(v)) acc.nan++;
    else acc.inf ??= `${at} (${v})`;
  } else if (Array.isArray(v) || (ArrayBuffer.isView(v) && !(v instanceof DataView))) {
    const arr = v as ArrayLike<unknown>;
    for (let i = 0; i < arr.length; i++) scanNumbers(arr[i], `${at}[${i}]`, acc);
  }
}

/** Refuses a trace array with ±Infinity, or with numbers none of which is finite (see NON_FINITE.md). */
function checkFiniteTraces(fig: PlotlyFigure, where: string): void {
  const hint = "pass allowNonFinite: true to draw it anyway";
  fig.data.forEach((trace, t) => {
    for (const [key, v] of Object.entries(trace)) {
      if (!Array.isArray(v) && !ArrayBuffer.isView(v)) continue;
      const acc = { finite: 0, nan: 0, inf: null as string | null };
      scanNumbers(v, "", acc);
      if (acc.inf !== null)
        throw new NonFiniteError(`${where}: data[${t}].${key} holds Infinity at ${acc.inf}; ${hint}`, {
          field: `data[${t}].${key}`,
        });
      if (acc.nan > 0 && acc.finite === 0)
        throw new NonFiniteError(
          `${where}: data[${t}].${key} has no finite number (${acc.nan} NaN / Infinity); ${hint}`,
          {
            field: `data[${t}].${key}`,
          },
        );
    }
  });
}

function checkSize(value: unknown, field: string, max: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > max) {
    throw new InputError(`showFigure: ${field} must be a number in (0, ${max}], got ${JSON.stringify(value)}`, {
      field,
    });
  }
  return value;
}

/** Resolved paths of plotly.min.js (the same file for the browser and the HTML exports). */
function plotlyScriptPath(): string {
  try {
    return require.resolve("plotly.js-dist-min/plotly.min.js");
  } catch {
    throw new RenderError("plotly.js-dist-min is not installed: run `npm ci` at the project root", {
      field: "plotly.js-dist-min",
    });
  }
}

/** JSON safe to inline in a <script>: no "</script", no U+2028/2029 line breaks. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/<\//g, "<\\/")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** The interactive HTML page for a figure; deterministic for the same figure. */
export function figureHtml(
  fig: PlotlyFigure,
  opts: { title: string; plotlyScript: { src: string } | { inline: string } },
): string {
  const plain = toPlainFigure(fig);
  const script =
    "src" in opts.plotlyScript
      ? `<script src="${escapeHtml(opts.plotlyScript.src)}"></script>`
      : `<script>${opts.plotlyScript.inline.replace(/<\/script/gi, "<\\/script")}</script>`;
  return [
    "<!DOCTYPE html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    `<title>${escapeHtml(opts.title)}</title>`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    "<style>html, body { margin: 0; height: 100%; } #" + DIV_ID + " { width: 100%; height: 100%; }</style>",
    script,
    "</head>",
    "<body>",
    `<div id="${DIV_ID}"></div>`,
    "<script>",
    `const figure = ${scriptJson(plain)};`,
    `Plotly.newPlot("${DIV_ID}", figure.data, figure.layout, Object.assign({ responsive: true }, figure.config));`,
    "</script>",
    "</body>",
    "</html>",
    "",
  ].join("\n");
}

/** One headless Chromium page with plotly.js loaded, shared by every render of this process. */
class StaticRenderer {
  private browser: Browser | null = null;
  private page: Page | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  private idle: NodeJS.Timeout | null = null;

  /** PNG bytes of the figure at width × height CSS pixels and the given pixel ratio. */
  renderPng(fig: PlotlyFigure, width: number, height: number, scale: number): Promise<Buffer> {
    const job = this.queue.then(() => this.renderNow(fig, width, height, scale));
    this.queue = job.catch(() => undefined); // one failure must not block later renders
    return job;
  }

  async close(): Promise<void> {
    if (this.idle) clearTimeout(this.idle);
    this.idle = null;
    const browser = this.browser;
    this.browser = null;
    this.page = null;
    if (browser) await browser.close();
  }

  private async renderNow(fig: PlotlyFigure, width: number, height: number, scale: number): Promise<Buffer> {
    if (this.idle) clearTimeout(this.idle);
    try {
      const page = await this.ensurePage();
      // A string expression, not a function: code transpiled by tsx/esbuild may reference
      // helpers (__name) that do not exist in the page.
      const options = { format: "png", width, height, scale };
      const dataUrl = (await page.evaluate(`Plotly.toImage(${scriptJson(fig)}, ${JSON.stringify(options)})`)) as string;
      const prefix = "data:image/png;base64,";
      if (!dataUrl.startsWith(prefix)) {
        throw new RenderError(`Plotly.toImage returned something other than a PNG data URL: ${dataUrl.slice(0, 40)}…`);
      }
      return Buffer.from(dataUrl.slice(prefix.length), "base64");
    } catch (e) {
      if (e instanceof RenderError) throw e;
      // A crashed or closed browser: start afresh next time.
      await this.close().catch(() => undefined);
      throw new RenderError(`static rendering of the figure failed in headless Chromium: ${(e as Error).message}`);
    } finally {
      // Idle browsers go away so that scripts and tests can exit; unref: the timer alone keeps nothing alive.
      this.idle = setTimeout(() => void this.close().catch(() => undefined), BROWSER_IDLE_MS);
      this.idle.unref();
    }
  }

  private async ensurePage(): Promise<Page> {
    if (this.page && this.browser?.isConnected()) return this.page;
    await this.close().catch(() => undefined);
    const executablePath = chromiumPath();
    const { chromium } = await import("playwright-core");
    this.browser = await chromium.launch({
      executablePath,
      headless: true,
      // This machine has no network: background services would only fail and retry.
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
      ],
    });
    const page = await this.browser.newPage();
    await page.setContent(`<!DOCTYPE html><html><head><meta charset="utf-8"></head><body></body></html>`);
    await page.addScriptTag({ path: plotlyScriptPath() });
    this.page = page;
    return page;
  }
}

/** Chromium's binary: $PARENLENS_CHROMIUM, else Debian's /usr/bin/chromium. */
export function chromiumPath(): string {
  const candidate = process.env.PARENLENS_CHROMIUM || "/usr/bin/chromium";
  if (!fs.existsSync(candidate)) {
    throw new RenderError(
      `Chromium not found at ${candidate} (needed to render figures to PNG): run \`bash scripts/setup.sh\` ` +
        "(or `apt-get install chromium`), or set PARENLENS_CHROMIUM to a Chromium/Chrome binary",
      { file: candidate },
    );
  }
  return candidate;
}

const renderer = new StaticRenderer();

/** Closes the shared headless browser now (it also closes itself after a few idle seconds). */
export function closeFigureRenderer(): Promise<void> {
  return renderer.close();
}

/** Renders a figure to PNG bytes in headless Chromium (see `showFigure` for the sizes). */
export function renderFigurePng(
  fig: PlotlyFigure,
  opts: { width?: number; height?: number; scale?: number } = {},
): Promise<Buffer> {
  const plain = toPlainFigure(fig);
  const { width, height } = staticSize(plain, opts);
  const scale = checkSize(opts.scale ?? DEFAULT_SCALE, "scale", 8);
  return renderer.renderPng(plain, width, height, scale);
}

function staticSize(fig: PlotlyFigure, opts: { width?: number; height?: number }): { width: number; height: number } {
  const layout = fig.layout ?? {};
  const width = checkSize(opts.width ?? (layout.width as number | undefined) ?? DEFAULT_WIDTH, "width", 8192);
  const height = checkSize(opts.height ?? (layout.height as number | undefined) ?? DEFAULT_HEIGHT, "height", 8192);
  return { width, height };
}

/** Copies plotly.min.js into the figures folder unless the same file is already there. */
function ensureSharedPlotly(dir: string): void {
  const source = plotlyScriptPath();
  const target = path.join(dir, PLOTLY_FILE);
  const bytes = fs.readFileSync(source);
  if (fs.existsSync(target) && fs.statSync(target).size === bytes.length && fs.readFileSync(target).equals(bytes))
    return;
  writeFileAtomic(target, bytes);
}

interface PreparedFigure {
  name: string;
  plain: PlotlyFigure;
  width: number;
  height: number;
}

function prepare(fig: PlotlyFigure, opts: SaveFigureOptions, caller: string): PreparedFigure {
  if (opts === null || typeof opts !== "object") {
    throw new InputError(`${caller}: options { name } are required (the figure's file name)`, { field: "name" });
  }
  const name = checkOutputName(opts.name, "name");
  if (opts.allowNonFinite !== undefined && typeof opts.allowNonFinite !== "boolean")
    throw new InputError(`${caller}: allowNonFinite must be true or false`, { field: "allowNonFinite" });
  const plain = toPlainFigure(fig); // checks the figure's form
  if (!opts.allowNonFinite) checkFiniteTraces(fig, `${caller} ${name}`);
  const layout = (plain.layout ??= {});
  if (opts.title !== undefined && layout.title === undefined) layout.title = { text: opts.title };
  // An explicit height holds for the interactive views too (JupyterLab's renderer would use 360 px).
  if (opts.height !== undefined && layout.height === undefined) layout.height = opts.height;
  const { width, height } = staticSize(plain, opts);
  return { name, plain, width, height };
}

async function writeFigureFiles(p: PreparedFigure, opts: SaveFigureOptions): Promise<FigureOutput> {
  const scale = checkSize(opts.scale ?? DEFAULT_SCALE, "scale", 8);
  const dir = path.resolve(opts.dir ?? figuresDir());
  const png = await renderer.renderPng(p.plain, p.width, p.height, scale);
  const html = path.join(dir, `${p.name}.html`);
  const pngFile = path.join(dir, `${p.name}.png`);
  let plotlyScript: { src: string } | { inline: string };
  if (opts.selfContained) {
    plotlyScript = { inline: fs.readFileSync(plotlyScriptPath(), "utf8") };
  } else {
    ensureSharedPlotly(dir);
    plotlyScript = { src: PLOTLY_FILE };
  }
  // one unit: both files complete before either replaces the old one (never an HTML of one run beside a PNG of another)
  writeFilesAtomic([
    [html, figureHtml(p.plain, { title: opts.title ?? p.name, plotlyScript })],
    [pngFile, png],
  ]);
  return { html, png: pngFile, width: p.width, height: p.height, figure: p.plain };
}

/**
 * Writes <dir>/<name>.html and <dir>/<name>.png without displaying anything; returns where.
 * For scripts and tests; notebooks use `showFigure`.
 */
export async function saveFigure(fig: PlotlyFigure, opts: SaveFigureOptions): Promise<FigureOutput> {
  return writeFigureFiles(prepare(fig, opts, "saveFigure"), opts);
}

/**
 * Displays a figure in the notebook (interactive + static fallback) and writes
 * <dir>/<name>.html and <dir>/<name>.png (outside a kernel it only writes the files).
 * Await it inside the cell. Returns nothing, so that a cell ending with it prints nothing more.
 *
 * ```ts
 * await showFigure({ data: [{ type: "heatmap", z: pattern }], layout: { xaxis: { title: { text: "key" } } } },
 *                  { name: "attention-L0H1", title: "Layer 0, head 1" });
 * ```
 */
export async function showFigure(fig: PlotlyFigure, opts: ShowFigureOptions): Promise<void> {
  const p = prepare(fig, opts, "showFigure");
  const notebookScale = checkSize(opts.notebookScale ?? 1, "notebookScale", 8);
  const out = await writeFigureFiles(p, opts);
  if (!inNotebook()) return;
  const inlinePng = await renderer.renderPng(p.plain, p.width, p.height, notebookScale);
  const root = projectRoot();
  const shown = (f: string) => (f.startsWith(root + path.sep) ? path.relative(root, f) : f);
  displayBundle(
    {
      [PLOTLY_MIME]: p.plain,
      "image/png": inlinePng.toString("base64"),
      "text/plain": `<Figure ${p.name}: ${shown(out.html)}, ${shown(out.png)}>`,
    },
    // For viewers that honour it (JupyterLab's image renderer, nbconvert): the PNG's CSS size.
    { "image/png": { width: p.width, height: p.height } },
  );
}
