/**
 * An interactive attention viewer for notebooks (CircuitsVis-style), in one call:
 * `showAttention(tokens, cache.get("pattern", 4), { heads })`. One MIME bundle:
 *  - `text/html`: a self-contained view (inline script and style, no network): a head selector,
 *    the prompt's tokens twice; hovering a token colours, in the first row, the tokens it attends
 *    to (its query row) and, in the second, the tokens that attend to it (its key column);
 *  - `image/png`: a static heatmap of the selected heads (rendered like every figure, plotly.js in
 *    headless Chromium), for exporters that take images; the HTML also carries it as an <img>
 *    that the script hides, so where scripts do not run (untrusted notebooks in JupyterLab,
 *    sanitising viewers such as GitHub's) the image shows instead of a dead view;
 *  - `text/plain`.
 * Same input → byte-identical bundle (the element id is a hash of the content).
 */
import { createHash } from "crypto";
import { InputError } from "../core/errors";
import { Tensor } from "../core/tensor";
import { displayBundle, escapeHtml, inNotebook } from "./env";
import { attentionPatternFigure, tokenLabels } from "./figures";
import { PlotlyFigure, renderFigurePng } from "./plot";

/** Options of showAttention / attentionViewerHtml. */
export interface ShowAttentionOptions {
  /**
   * Heads
   *
   * Which heads (indices along the pattern's head dim) the selector offers, in this order.
   *
   * @default every head
   */
  heads?: number[];
  /**
   * Layer
   *
   * Only for the labels: heads are called "L{layer}H{head}" when given, else "head {head}".
   *
   * @default none
   */
  layer?: number;
  /**
   * Prompt
   *
   * Which prompt of a [batch, head, query_pos, key_pos] pattern (e.g. `cache.get("pattern", 4)`).
   *
   * @default 0
   */
  batch?: number;
  /**
   * Padding side
   *
   * When the pattern has more positions than `tokens` (a padded batch), where the prompt's tokens
   * are: "left" takes the last tokens.length positions, "right" the first.
   *
   * @default "left"
   */
  padding?: "left" | "right";
  /**
   * Static image size
   *
   * Width of one head's heatmap in the PNG fallback, in CSS pixels.
   *
   * @default 280
   */
  pngHeadSize?: number;
}

/** Selected heads' patterns cut to the prompt: [head][query][key], with their labels. */
interface ViewerData {
  tokens: string[];
  labels: string[]; // one per selected head
  pattern: number[][][]; // [head, query_pos, key_pos], rounded to 4 decimals
}

/** [head, q, k] or [batch, head, q, k] (Tensor or nested arrays) → the selected heads of one prompt. */
function viewerData(tokens: string[], pattern: Tensor | number[][][], opts: ShowAttentionOptions): ViewerData {
  if (!Array.isArray(tokens) || tokens.length === 0 || tokens.some((t) => typeof t !== "string"))
    throw new InputError("showAttention: tokens must be a non-empty string[] (e.g. model.toStrTokens(prompt))", {
      field: "tokens",
    });
  let t = Array.isArray(pattern) ? null : pattern;
  if (t && t.shape.length === 4) t = t.select(0, opts.batch ?? 0); // [head, q, k]
  const nested = t ? (t.toNested() as number[][][]) : (pattern as number[][][]);
  const H = nested.length;
  const P = nested[0]?.length ?? 0;
  if ((t && t.shape.length !== 3) || P === 0 || nested.some((h) => h.length !== P || h.some((r) => r.length !== P)))
    throw new InputError(
      `showAttention: pattern must be [head, query_pos, key_pos] or [batch, head, query_pos, key_pos] (cache.get("pattern", layer)), got ${t ? `[${t.shape.join(", ")}]` : "ragged arrays"}`,
      { field: "pattern" },
    );
  const n = tokens.length;
  if (n > P) throw new InputError(`showAttention: ${n} tokens but the pattern has ${P} positions`, { field: "tokens" });
  const off = (opts.padding ?? "left") === "left" ? P - n : 0;
  const heads = opts.heads ?? Array.from({ length: H }, (_, h) => h);
  for (const h of heads)
    if (!Number.isInteger(h) || h < 0 || h >= H)
      throw new InputError(`showAttention: head ${h} out of range 0..${H - 1}`, { field: "heads" });
  const round = (x: number) => Math.round(x * 1e4) / 1e4;
  return {
    tokens,
    labels: heads.map((h) => (opts.layer === undefined ? `head ${h}` : `L${opts.layer}H${h}`)),
    pattern: heads.map((h) => nested[h].slice(off, off + n).map((row) => row.slice(off, off + n).map(round))), // [head, q, k]
  };
}

/** JSON safe inside a <script> element. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

/** The view's behaviour, run once per output (plain ES5: no helpers from a bundler). */
const VIEWER_SCRIPT = `(function () {
  var root = document.getElementById(ID);
  if (!root || root.getAttribute("data-ready")) return;
  root.setAttribute("data-ready", "1");
  var still = root.querySelector(".pl-static");
  if (still) still.style.display = "none";
  root.querySelector(".pl-live").style.display = "";
  var data = JSON.parse(root.querySelector("script.pl-data").textContent);
  var n = data.tokens.length, head = 0, current = -1;
  var to = root.querySelectorAll(".pl-to .pl-tok"), from = root.querySelectorAll(".pl-from .pl-tok");
  var buttons = root.querySelectorAll(".pl-head"), info = root.querySelector(".pl-info");
  function paint(el, w, rgb) {
    el.style.backgroundColor = "rgba(" + rgb + "," + w.toFixed(3) + ")";
    el.setAttribute("data-weight", w.toFixed(4));
  }
  function show(i) {
    current = i;
    var A = data.pattern[head], best = 0;
    for (var j = 0; j < n; j++) {
      paint(to[j], j <= i ? A[i][j] : 0, "33,113,181");
      paint(from[j], j >= i ? A[j][i] : 0, "230,85,13");
      to[j].classList.toggle("pl-hovered", j === i);
      from[j].classList.toggle("pl-hovered", j === i);
      if (A[i][j] > A[i][best]) best = j;
    }
    info.textContent = data.labels[head] + ": token " + i + " " + JSON.stringify(data.tokens[i]) +
      " attends most to token " + best + " " + JSON.stringify(data.tokens[best]) + " (" + A[i][best].toFixed(3) + ")";
  }
  function hover(e) { show(Number(e.currentTarget.getAttribute("data-pos"))); }
  for (var k = 0; k < n; k++) { to[k].addEventListener("mouseenter", hover); from[k].addEventListener("mouseenter", hover); }
  Array.prototype.forEach.call(buttons, function (b, h) {
    b.addEventListener("click", function () {
      head = h;
      Array.prototype.forEach.call(buttons, function (o, m) { o.setAttribute("aria-pressed", String(m === h)); });
      if (current >= 0) show(current);
    });
  });
})();`;

const VIEWER_STYLE = `
#ID { font: 13px/1.5 system-ui, sans-serif; }
#ID .pl-heads { margin-bottom: 6px; }
#ID .pl-head { margin: 0 4px 4px 0; padding: 1px 8px; border: 1px solid #999; border-radius: 3px; background: #fff; cursor: pointer; }
#ID .pl-head[aria-pressed="true"] { background: #2171b5; color: #fff; border-color: #2171b5; }
#ID .pl-row { margin: 4px 0; }
#ID .pl-row-label { display: inline-block; width: 110px; color: #555; }
#ID .pl-tok { display: inline-block; margin: 1px; padding: 0 3px; border: 1px solid #ddd; border-radius: 3px; font-family: monospace; white-space: pre; cursor: default; }
#ID .pl-tok.pl-hovered { outline: 2px solid #000; }
#ID .pl-info { color: #333; min-height: 1.5em; }`;

function tokenRow(cls: string, label: string, tokens: string[]): string {
  const spans = tokens
    .map(
      (t, i) =>
        `<span class="pl-tok" data-pos="${i}" title="${i}">${escapeHtml(JSON.stringify(t).slice(1, -1))}</span>`,
    )
    .join("");
  return `<div class="pl-row ${cls}"><span class="pl-row-label">${label}</span>${spans}</div>`;
}

/**
 * The viewer as one self-contained HTML fragment (no network: inline script and style).
 *
 * @example
 * const html = attentionViewerHtml(model.toStrTokens(prompt), cache.get("pattern", 4), { layer: 4 });
 */
export function attentionViewerHtml(
  tokens: string[],
  pattern: Tensor | number[][][],
  opts: ShowAttentionOptions = {},
): string {
  return htmlOf(viewerData(tokens, pattern, opts));
}

function htmlOf(data: ViewerData, pngBase64?: string): string {
  const json = scriptJson(data);
  const id = `pl-attn-${createHash("sha256").update(json).digest("hex").slice(0, 12)}`;
  const buttons = data.labels
    .map((l, h) => `<button class="pl-head" type="button" aria-pressed="${h === 0}">${escapeHtml(l)}</button>`)
    .join("");
  // Where scripts do not run (untrusted notebooks, sanitised viewers) the static image stays and
  // the live view stays hidden; the script swaps them.
  const still = pngBase64
    ? `<img class="pl-static" alt="attention pattern (static)" src="data:image/png;base64,${pngBase64}">`
    : "";
  return [
    `<div class="parenlens-attention" id="${id}">`,
    `<style>${VIEWER_STYLE.replace(/ID/g, id)}\n</style>`,
    still,
    `<div class="pl-live"${pngBase64 ? ' style="display: none"' : ""}>`,
    `<div class="pl-heads">${buttons}</div>`,
    tokenRow("pl-to", "attends to", data.tokens),
    tokenRow("pl-from", "attended by", data.tokens),
    `<div class="pl-info">hover a token: blue = where it attends (its query row), orange = what attends to it (its key column)</div>`,
    `</div>`,
    `<script class="pl-data" type="application/json">${json}</script>`,
    `<script>${VIEWER_SCRIPT.replace("ID", JSON.stringify(id))}</script>`,
    `</div>`,
  ].join("\n");
}

/** The static fallback: one heatmap per selected head, side by side (up to 4 per row). */
function attentionGridFigure(data: ViewerData, headSize = 280): PlotlyFigure {
  const cols = Math.min(4, data.labels.length);
  const rows = Math.ceil(data.labels.length / cols);
  const labels = tokenLabels(data.tokens);
  const layout: Record<string, unknown> = {
    grid: { rows, columns: cols, pattern: "independent" },
    width: cols * headSize + 120,
    height: rows * headSize + 120,
    annotations: [],
  };
  const traces = data.pattern.map((z, k) => {
    const ax = k === 0 ? "" : String(k + 1);
    const single = attentionPatternFigure(data.tokens, z, { everyLabel: data.tokens.length <= 24, tickFontSize: 9 });
    const { xaxis, yaxis } = single.layout as { xaxis: Record<string, unknown>; yaxis: Record<string, unknown> };
    layout[`xaxis${ax}`] = { ...xaxis, title: { text: data.labels[k] } };
    layout[`yaxis${ax}`] = { ...yaxis, title: k % cols === 0 ? yaxis.title : undefined };
    return { ...single.data[0], x: labels, y: labels, xaxis: `x${ax}`, yaxis: `y${ax}`, showscale: k === 0 };
  });
  return { data: traces, layout };
}

/**
 * Show an attention pattern in the notebook: interactive HTML (head selector, hover a token to
 * see where it attends and what attends to it) with a static PNG fallback in the same bundle.
 * Await it inside the cell; outside a kernel it does nothing. Renders the PNG only (fast), never
 * waits on a model run.
 *
 * @example
 * const { cache } = await model.runWithCache(prompt);
 * await showAttention(model.toStrTokens(prompt), cache.get("pattern", 4), { layer: 4, heads: [0, 5] });
 */
export async function showAttention(
  tokens: string[],
  pattern: Tensor | number[][][],
  opts: ShowAttentionOptions = {},
): Promise<void> {
  if (!inNotebook()) {
    viewerData(tokens, pattern, opts); // the same checks, nothing to show
    return;
  }
  const b = await attentionBundle(tokens, pattern, opts);
  displayBundle(
    { "text/html": b.html, "image/png": b.png.toString("base64"), "text/plain": b.text },
    { "image/png": { width: b.width, height: b.height } },
  );
}

/** What showAttention displays, built outside a kernel too (tests, scripts). */
export interface AttentionBundle {
  html: string; // the interactive view
  png: Buffer; // the static fallback
  width: number; // of the PNG, CSS pixels
  height: number;
  text: string; // text/plain
}

/**
 * The bundle showAttention displays: the HTML view, the PNG fallback and its size.
 *
 * @example
 * const { html, png } = await attentionBundle(tokens, cache.get("pattern", 1), { layer: 1 });
 */
export async function attentionBundle(
  tokens: string[],
  pattern: Tensor | number[][][],
  opts: ShowAttentionOptions = {},
): Promise<AttentionBundle> {
  const data = viewerData(tokens, pattern, opts);
  const fig = attentionGridFigure(data, opts.pngHeadSize);
  const { width, height } = fig.layout as { width: number; height: number };
  const png = await renderFigurePng(fig, { width, height, scale: 1 });
  const text = `<Attention ${data.labels.join(", ")} over ${data.tokens.length} tokens>`;
  return { html: htmlOf(data, png.toString("base64")), png, width, height, text };
}
