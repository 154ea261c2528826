/**
 * One call per visual (CircuitsVis' `attention_pattern(tokens, attention)`): each function
 * returns the Plotly figure (or traces) that `showFigure` takes, so a notebook never builds a
 * chart by hand.
 *
 * ```ts
 * const pattern = cache.get("blocks.4.attn.hook_pattern").select(0, 0).select(0, 5); // [query_pos, key_pos]
 * await showFigure(attentionPatternFigure(model.toStrTokens(prompt), pattern), { name: "quickstart-attention" });
 * ```
 */
import { InputError } from "../core/errors";
import type { Tensor } from "../core/tensor";
import { displayBundle, escapeHtml } from "./env";
import type { PlotlyFigure } from "./plot";

type Trace = Record<string, unknown>;

/** The Plotly names of subplot `i`'s axes (0-based): `x`/`xaxis` for the first, `x2`/`xaxis2` for the second, .... */
export interface SubplotAxis {
  /** The trace's `xaxis` value, e.g. "x2". */
  x: string;
  /** The trace's `yaxis` value, e.g. "y2". */
  y: string;
  /** The layout key of the x axis, e.g. "xaxis2". */
  xaxis: string;
  /** The layout key of the y axis, e.g. "yaxis2". */
  yaxis: string;
  /** `xref` for positions in the subplot's own frame, e.g. "x2 domain". */
  xDomain: string;
  /** `yref` for positions in the subplot's own frame, e.g. "y2 domain". */
  yDomain: string;
}

/**
 * The axis names of subplot `i` (0-based), the `xaxis${i ? i + 1 : ""}` idiom once.
 *
 * @example
 * const a = subplotAxis(1);
 * traces.push({ type: "bar", x, y, xaxis: a.x, yaxis: a.y }); // "x2", "y2"
 */
export function subplotAxis(i: number): SubplotAxis {
  const k = i ? String(i + 1) : "";
  return {
    x: `x${k}`,
    y: `y${k}`,
    xaxis: `xaxis${k}`,
    yaxis: `yaxis${k}`,
    xDomain: `x${k} domain`,
    yDomain: `y${k} domain`,
  };
}

/**
 * The layout entries of `count` subplots' axes, in the order xaxis, yaxis, xaxis2, yaxis2, ...
 * Spread it into a layout.
 *
 * @example
 * layout: { grid: { rows: 1, columns: 3, pattern: "independent" }, ...subplotAxes(3, () => ({ xaxis: { type: "category" } })) }
 */
export function subplotAxes(
  count: number,
  axes: (i: number) => { xaxis?: Record<string, unknown>; yaxis?: Record<string, unknown> },
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < count; i++) {
    const a = subplotAxis(i);
    const { xaxis, yaxis } = axes(i);
    if (xaxis) out[a.xaxis] = xaxis;
    if (yaxis) out[a.yaxis] = yaxis;
  }
  return out;
}

/**
 * A title above subplot `i`: an annotation centred in the subplot's frame.
 *
 * @example
 * layout.annotations = ["authors", "partial"].map((t, i) => subplotTitle(i, t, 1.12));
 */
export function subplotTitle(i: number, text: string, y = 1.1): Record<string, unknown> {
  const a = subplotAxis(i);
  return { text, showarrow: false, xref: a.xDomain, yref: a.yDomain, x: 0.5, y };
}

/**
 * Unique, HTML-safe axis labels for tokens: "position token", the token JSON-escaped without its
 * quotes (so "\n" shows as `\n`) and HTML-escaped (Plotly reads labels as pseudo-HTML). The
 * position keeps repeated tokens apart: a category axis merges equal labels.
 *
 * @example
 * tokenLabels(["<s>", "(", "("]); // ["0 &lt;s&gt;", "1 (", "2 ("]
 */
export function tokenLabels(tokens: string[]): string[] {
  return tokens.map((t, i) => `${i} ${escapeHtml(JSON.stringify(t).slice(1, -1))}`);
}

/** Options of `attentionPatternFigure`. */
export interface AttentionPatternOptions {
  /**
   * Key axis title
   *
   * Title of the x axis (the attended-to positions).
   *
   * @default "key position"
   */
  keyTitle?: string;
  /**
   * Query axis title
   *
   * Title of the y axis (the attending positions).
   *
   * @default "query position"
   */
  queryTitle?: string;
  /**
   * Tick label size
   *
   * Font size of the token labels, in px; unset: Plotly's default.
   *
   * @default undefined
   */
  tickFontSize?: number;
  /**
   * Every label
   *
   * Label every position (Plotly otherwise thins out long axes).
   *
   * @default false
   */
  everyLabel?: boolean;
  /**
   * Margin
   *
   * Left and bottom margin in px, room for the token labels.
   *
   * @default 120
   */
  margin?: number;
}

/**
 * One head's attention pattern as a heatmap with token labels: rows are queries (top to bottom),
 * columns keys, 0..1 on a white-to-blue scale, hover shows the value.
 *
 * @param tokens the tokens of the prompt, one per position (e.g. `model.toStrTokens(prompt)`)
 * @param pattern attention probabilities, `[query_pos, key_pos]` (a Tensor or nested arrays)
 *
 * @example
 * const pattern = cache.get("blocks.4.attn.hook_pattern").select(0, 0).select(0, 5); // [query_pos, key_pos]
 * await showFigure(attentionPatternFigure(model.toStrTokens(prompt), pattern), { name: "L4H5", title: "L4H5" });
 */
export function attentionPatternFigure(
  tokens: string[],
  pattern: Tensor | number[][],
  opts: AttentionPatternOptions = {},
): PlotlyFigure {
  const z = Array.isArray(pattern) ? pattern : (pattern.toNested() as number[][]);
  if (z.length !== tokens.length) {
    throw new InputError(`attentionPatternFigure: ${tokens.length} tokens but the pattern has ${z.length} query rows`, {
      field: "pattern",
    });
  }
  const labels = tokenLabels(tokens);
  const font = opts.tickFontSize === undefined ? {} : { tickfont: { size: opts.tickFontSize } };
  const every = opts.everyLabel ? { dtick: 1 } : {};
  const margin = opts.margin ?? 120;
  return {
    data: [
      {
        type: "heatmap",
        z,
        x: labels,
        y: labels,
        colorscale: "Blues",
        reversescale: true,
        zmin: 0,
        zmax: 1,
        hovertemplate: "query %{y}<br>key %{x}<br>attention %{z:.3f}<extra></extra>",
      },
    ],
    layout: {
      xaxis: { title: { text: opts.keyTitle ?? "key position" }, type: "category", tickangle: -60, ...font, ...every },
      yaxis: {
        title: { text: opts.queryTitle ?? "query position" },
        type: "category",
        autorange: "reversed",
        ...font,
        ...every,
      },
      margin: { l: margin, b: margin },
    },
  };
}

/**
 * A per-head matrix `[layer, head]` of `f(layer, head)`.
 *
 * @example
 * const z = perHead(numLayers, numHeads, (l, h) => rowOf(l, h).r); // [layer, head]
 */
export function perHead(numLayers: number, numHeads: number, f: (layer: number, head: number) => number): number[][] {
  return Array.from({ length: numLayers }, (_, l) => Array.from({ length: numHeads }, (_, h) => f(l, h)));
}

/** One panel of `headGrid`. */
export interface HeadGridPanel {
  /**
   * Title
   *
   * Shown above the panel.
   */
  title: string;
  /**
   * Values
   *
   * One value per head, of the shape `[layer, head]`; non-finite values are drawn blank.
   */
  z: number[][];
  /**
   * Colour range
   *
   * `[zmin, zmax]` of the colour scale.
   *
   * @default symmetric around 0: ±max |z| over the finite values
   */
  range?: [number, number];
  /**
   * Colour scale
   *
   * A Plotly colour scale name.
   *
   * @default "RdBu"
   */
  colorscale?: string;
  /**
   * Digits
   *
   * Decimals of the value printed in each cell.
   *
   * @default 2
   */
  digits?: number;
}

/** ±max |z| over the finite values (at least 1e-9): a colour range centred on 0. */
export function symmetricRange(z: number[][]): [number, number] {
  const m = Math.max(1e-9, ...z.flat().filter(Number.isFinite).map(Math.abs));
  return [-m, m];
}

/**
 * Per-head heatmaps side by side, layers down (L0 at the top), heads across, each cell printed
 * with its value and each panel with its own horizontal colour bar below it.
 *
 * @example
 * await showFigure(headGrid([{ title: "r", z: perHead(L, H, (l, h) => r[l][h]), range: [-1, 1] }]), { name: "heads" });
 */
export function headGrid(panels: HeadGridPanel[]): PlotlyFigure {
  const numHeads = panels[0]?.z[0]?.length ?? 0;
  const headX = Array.from({ length: numHeads }, (_, h) => `H${h}`);
  const layerY = Array.from({ length: panels[0]?.z.length ?? 0 }, (_, l) => `L${l}`);
  const fmt = (z: number[][], d: number) => z.map((row) => row.map((v) => (Number.isFinite(v) ? v.toFixed(d) : "")));
  return {
    data: panels.map((p, i) => {
      const [zmin, zmax] = p.range ?? symmetricRange(p.z);
      return {
        type: "heatmap",
        z: p.z,
        x: headX,
        y: layerY,
        zmin,
        zmax,
        colorscale: p.colorscale ?? "RdBu",
        text: fmt(p.z, p.digits ?? 2),
        texttemplate: "%{text}",
        textfont: { size: 10 },
        colorbar: {
          orientation: "h",
          x: (i + 0.5) / panels.length,
          xanchor: "center",
          y: -0.12,
          yanchor: "top",
          len: 0.8 / panels.length,
          thickness: 10,
        },
        xaxis: subplotAxis(i).x,
        yaxis: subplotAxis(i).y,
      };
    }),
    layout: {
      grid: { rows: 1, columns: panels.length, pattern: "independent", xgap: 0.15 },
      margin: { b: 110 },
      annotations: panels.map((p, i) => subplotTitle(i, p.title)),
      ...subplotAxes(panels.length, () => ({
        xaxis: { type: "category" },
        yaxis: { type: "category", autorange: "reversed" },
      })),
    },
  };
}

/**
 * Plotly's asymmetric error bars for values `y` with intervals `[lo, hi]`: `array` = hi − y,
 * `arrayminus` = y − lo (the lengths above and below each point).
 *
 * @example
 * intervalErrorY([0.5], [0.4], [0.7]); // { type: "data", symmetric: false, array: [0.2], arrayminus: [0.1] } (to rounding)
 */
export function intervalErrorY(y: number[], lo: number[], hi: number[]): Record<string, unknown> {
  if (lo.length !== y.length || hi.length !== y.length) {
    throw new InputError(
      `intervalErrorY: y, lo and hi must have one value per point (${y.length}, ${lo.length}, ${hi.length})`,
      {
        field: "lo",
      },
    );
  }
  return {
    type: "data",
    symmetric: false,
    array: hi.map((h, i) => h - y[i]),
    arrayminus: lo.map((l, i) => y[i] - l),
  };
}

/** Values with a confidence interval, one per category: what `intervalBars` and `intervalBand` draw. */
export interface IntervalSeries {
  /** The categories (x axis), one per point. */
  x: (string | number)[];
  /** The estimates, one per point. */
  y: number[];
  /** Lower ends of the intervals, one per point. */
  lo: number[];
  /** Upper ends of the intervals, one per point. */
  hi: number[];
}

/**
 * An `IntervalSeries` from result rows: one point per row, `interval(row)` = [estimate, lo, hi].
 *
 * @example
 * intervalSeries(rows, (r) => `n=${r.n}`, (r) => [r.accuracy, r.accuracyLo, r.accuracyHi]);
 */
export function intervalSeries<R>(
  rows: R[],
  x: (row: R) => string | number,
  interval: (row: R) => [number, number, number],
): IntervalSeries {
  const v = rows.map(interval);
  return { x: rows.map(x), y: v.map((p) => p[0]), lo: v.map((p) => p[1]), hi: v.map((p) => p[2]) };
}

/** Options of `intervalBars`. */
export interface IntervalBarsOptions {
  /**
   * Legend name
   *
   * The series' name in the legend.
   */
  name: string;
  /**
   * Legend group
   *
   * Traces of one group toggle together (the same series in several subplots).
   *
   * @default name
   */
  legendgroup?: string;
  /**
   * Show in legend
   *
   * @default true
   */
  showlegend?: boolean;
  /**
   * Colour
   *
   * Bar colour (any CSS colour).
   *
   * @default Plotly's colour cycle
   */
  color?: string;
  /**
   * Subplot
   *
   * 0-based index of the subplot the bars go in (see `subplotAxis`).
   *
   * @default 0
   */
  subplot?: number;
}

/**
 * One bar trace with asymmetric error bars from the intervals.
 *
 * @example
 * traces.push(intervalBars({ x: ["n=1", "n=2"], y: [0.9, 0.8], lo: [0.85, 0.7], hi: [0.95, 0.9] }, { name: "authors" }));
 */
export function intervalBars(series: IntervalSeries, opts: IntervalBarsOptions): Trace {
  const a = subplotAxis(opts.subplot ?? 0);
  return {
    type: "bar",
    name: opts.name,
    legendgroup: opts.legendgroup ?? opts.name,
    showlegend: opts.showlegend ?? true,
    marker: opts.color === undefined ? {} : { color: opts.color },
    x: series.x,
    y: series.y,
    error_y: intervalErrorY(series.y, series.lo, series.hi),
    xaxis: a.x,
    yaxis: a.y,
  };
}

/** Options of `intervalBand`. */
export interface IntervalBandOptions {
  /**
   * Legend name
   *
   * The series' name in the legend (the band itself has no entry).
   */
  name: string;
  /**
   * Colour
   *
   * `[r, g, b]` of the line; the band is the same colour at 20 % opacity.
   *
   * @default [120, 120, 120]
   */
  rgb?: [number, number, number];
  /**
   * Line width
   *
   * @default 1.5
   */
  width?: number;
  /**
   * Dash
   *
   * Plotly's line dash ("solid", "dash", "dot", ...).
   *
   * @default "solid"
   */
  dash?: string;
  /**
   * Show in legend
   *
   * @default true
   */
  showlegend?: boolean;
  /**
   * Subplot
   *
   * 0-based index of the subplot (see `subplotAxis`).
   *
   * @default 0
   */
  subplot?: number;
}

/**
 * A line with markers and a shaded interval band: three traces (upper edge, lower edge filled up
 * to it, the line), in one legend group named `name`.
 *
 * @example
 * traces.push(...intervalBand({ x: points, y: mean, lo, hi }, { name: "n=1", rgb: [31, 119, 180] }));
 */
export function intervalBand(series: IntervalSeries, opts: IntervalBandOptions): Trace[] {
  const a = subplotAxis(opts.subplot ?? 0);
  const c = (opts.rgb ?? [120, 120, 120]).join(",");
  const common = { x: series.x, xaxis: a.x, yaxis: a.y, legendgroup: opts.name, hoverinfo: "skip" };
  const edge = { type: "scatter", mode: "lines" };
  return [
    { ...common, ...edge, y: series.hi, line: { width: 0 }, showlegend: false },
    {
      ...common,
      ...edge,
      y: series.lo,
      line: { width: 0 },
      fill: "tonexty",
      fillcolor: `rgba(${c},0.2)`,
      showlegend: false,
    },
    {
      x: series.x,
      xaxis: a.x,
      yaxis: a.y,
      legendgroup: opts.name,
      type: "scatter",
      mode: "lines+markers",
      name: opts.name,
      showlegend: opts.showlegend ?? true,
      y: series.y,
      line: { color: `rgb(${c})`, width: opts.width ?? 1.5, dash: opts.dash ?? "solid" },
    },
  ];
}

/** What `showFinding` reads of a Finding (analysis/findings/). */
export interface FindingText {
  verdict: string;
  summary: string;
  markdown: string;
}

/** Options of `showFinding`. */
export interface ShowFindingOptions {
  /**
   * Label
   *
   * Prefix of the finding's line in the plain-text view, e.g. "authors" → "authors: replicates — ...".
   *
   * @default none
   */
  label?: string;
  /**
   * Variations
   *
   * The same rule on other data or choices, each shown after the finding as
   * "#### heading: verdict" and its summary (plain text: "label: verdict — summary").
   *
   * @default []
   */
  also?: { heading: string; label: string; finding: FindingText }[];
}

/** The markdown and plain-text views `showFinding` displays. */
export function findingBundle(finding: FindingText, opts: ShowFindingOptions = {}): Record<string, string> {
  const also = opts.also ?? [];
  const line = (f: FindingText) => `${f.verdict} — ${f.summary}`;
  return {
    "text/markdown": [
      finding.markdown,
      ...also.map((a) => `#### ${a.heading}: ${a.finding.verdict}\n${a.finding.summary}\n`),
    ].join("\n"),
    "text/plain": [
      opts.label === undefined ? line(finding) : `${opts.label}: ${line(finding)}`,
      ...also.map((a) => `${a.label}: ${line(a.finding)}`),
    ].join("\n"),
  };
}

/**
 * Displays a finding (its markdown, and a plain-text line for text views), then the same rule on
 * variations. Outside a notebook it does nothing. Returns nothing, so a cell ending with it prints nothing more.
 *
 * @example
 * showFinding(layerwiseFinding(lens.rows, { numLayers }), {
 *   label: "authors",
 *   also: [{ heading: "Same rule on the partial template", label: "partial", finding: partialFinding }],
 * });
 */
export function showFinding(finding: FindingText, opts: ShowFindingOptions = {}): void {
  displayBundle(findingBundle(finding, opts));
}
