import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  InputError,
  Tensor,
  escapeHtml,
  attentionPatternFigure,
  findingBundle,
  headGrid,
  intervalBand,
  intervalBars,
  intervalErrorY,
  intervalSeries,
  perHead,
  showFinding,
  subplotAxes,
  subplotAxis,
  subplotTitle,
  symmetricRange,
  tokenLabels,
  softmax,
} from "../../lib/src";

describe("subplotAxis and friends", () => {
  it("names the first subplot's axes x/y and the others x2/y2, ...", () => {
    assert.deepEqual(subplotAxis(0), {
      x: "x",
      y: "y",
      xaxis: "xaxis",
      yaxis: "yaxis",
      xDomain: "x domain",
      yDomain: "y domain",
    });
    assert.equal(subplotAxis(2).x, "x3");
    assert.equal(subplotAxis(2).yaxis, "yaxis3");
  });

  it("lays out axes in the order xaxis, yaxis, xaxis2, yaxis2 and titles each panel", () => {
    const layout = subplotAxes(2, (i) => ({ xaxis: { type: "category" }, yaxis: { range: [0, i + 1] } }));
    assert.deepEqual(Object.keys(layout), ["xaxis", "yaxis", "xaxis2", "yaxis2"]);
    assert.deepEqual(layout.yaxis2, { range: [0, 2] });
    assert.deepEqual(subplotTitle(1, "partial", 1.12), {
      text: "partial",
      showarrow: false,
      xref: "x2 domain",
      yref: "y2 domain",
      x: 0.5,
      y: 1.12,
    });
  });
});

describe("attentionPatternFigure", () => {
  const tokens = ["<s>", "print", "(", "(", '"a&b"\n'];
  const pattern = new Tensor(
    // [query_pos, key_pos], causal
    Float32Array.from({ length: 25 }, (_, i) => (i % 5 <= Math.floor(i / 5) ? 1 / (Math.floor(i / 5) + 1) : 0)),
    [5, 5],
    ["query_pos", "key_pos"],
  );

  it("labels every position with its index and the escaped token, so repeated tokens stay apart", () => {
    const labels = tokenLabels(tokens);
    assert.deepEqual(labels, ["0 &lt;s&gt;", "1 print", "2 (", "3 (", "4 \\&quot;a&amp;b\\&quot;\\n"]);
    assert.equal(new Set(labels).size, tokens.length);
  });

  it("draws one heatmap, queries down and keys across, on 0..1", () => {
    const fig = attentionPatternFigure(tokens, pattern);
    assert.equal(fig.data.length, 1);
    const [trace] = fig.data;
    assert.equal(trace.type, "heatmap");
    assert.deepEqual(trace.x, tokenLabels(tokens));
    assert.deepEqual(trace.y, tokenLabels(tokens));
    assert.deepEqual((trace.z as number[][])[1], [0.5, 0.5, 0, 0, 0]);
    assert.deepEqual([trace.zmin, trace.zmax], [0, 1]);
    const layout = fig.layout as Record<string, Record<string, unknown>>;
    assert.equal(layout.yaxis.autorange, "reversed");
    assert.equal(layout.xaxis.type, "category"); // numeric-looking tokens stay labels
    assert.deepEqual(layout.margin, { l: 120, b: 120 });
  });

  it("takes titles, tick size, every label and the margin as options", () => {
    const fig = attentionPatternFigure(tokens, pattern.toNested() as number[][], {
      keyTitle: "key",
      queryTitle: "query",
      tickFontSize: 9,
      everyLabel: true,
      margin: 110,
    });
    const layout = fig.layout as Record<string, Record<string, unknown>>;
    assert.deepEqual(layout.xaxis, {
      title: { text: "key" },
      type: "category",
      tickangle: -60,
      tickfont: { size: 9 },
      dtick: 1,
    });
    assert.deepEqual(layout.margin, { l: 110, b: 110 });
  });

  it("refuses a pattern with another number of positions than tokens", () => {
    assert.throws(() => attentionPatternFigure(tokens.slice(1), pattern), InputError);
  });
});

describe("headGrid", () => {
  const r = perHead(2, 3, (l, h) => (l === 1 && h === 2 ? NaN : l - h / 2)); // [layer, head]

  it("builds a [layer, head] matrix", () => {
    assert.deepEqual(r[0], [0, -0.5, -1]);
    assert.equal(r.length, 2);
  });

  it("puts one heatmap per panel in its own subplot, layers down and heads across, values printed", () => {
    const fig = headGrid([
      { title: "r", z: r, range: [-1, 1] },
      { title: "effect", z: r, colorscale: "Viridis", digits: 1 },
    ]);
    assert.equal(fig.data.length, 2);
    const [a, b] = fig.data;
    assert.deepEqual(a.x, ["H0", "H1", "H2"]);
    assert.deepEqual(a.y, ["L0", "L1"]);
    assert.deepEqual([a.zmin, a.zmax, a.colorscale], [-1, 1, "RdBu"]);
    assert.deepEqual((a.text as string[][])[1], ["1.00", "0.50", ""]); // NaN is blank
    assert.deepEqual([b.xaxis, b.yaxis, b.colorscale], ["x2", "y2", "Viridis"]);
    assert.deepEqual([b.zmin, b.zmax], [-1, 1]); // default: symmetric, ±max |z| over finite values
    const layout = fig.layout as Record<string, unknown>;
    assert.deepEqual(Object.keys(layout), ["grid", "margin", "annotations", "xaxis", "yaxis", "xaxis2", "yaxis2"]);
    assert.deepEqual(
      (layout.annotations as { text: string }[]).map((t) => t.text),
      ["r", "effect"],
    );
  });

  it("centres the default colour range on 0", () => {
    assert.deepEqual(symmetricRange([[0.2, -0.5, NaN]]), [-0.5, 0.5]);
    assert.deepEqual(symmetricRange([[0, 0]]), [-1e-9, 1e-9]);
  });
});

describe("intervals", () => {
  const rows = [
    { n: 1, acc: 0.9, lo: 0.8, hi: 0.95 },
    { n: 2, acc: 0.5, lo: 0.5, hi: 0.75 },
  ];
  const series = intervalSeries(
    rows,
    (r) => `n=${r.n}`,
    (r) => [r.acc, r.lo, r.hi],
  );

  it("turns rows into categories, estimates and interval ends", () => {
    assert.deepEqual(series, { x: ["n=1", "n=2"], y: [0.9, 0.5], lo: [0.8, 0.5], hi: [0.95, 0.75] });
  });

  it("gives Plotly the lengths above (hi − y) and below (y − lo) each estimate", () => {
    const e = intervalErrorY(series.y, series.lo, series.hi);
    assert.equal(e.symmetric, false);
    assert.deepEqual(e.array, [0.95 - 0.9, 0.75 - 0.5]);
    assert.deepEqual(e.arrayminus, [0.9 - 0.8, 0]);
    assert.throws(() => intervalErrorY([1, 2], [0], [3, 4]), InputError);
  });

  it("intervalBars: one bar trace with error bars, in the subplot asked for", () => {
    const t = intervalBars(series, { name: "authors", color: "#1f77b4", subplot: 1, showlegend: false });
    assert.deepEqual(Object.keys(t), [
      "type",
      "name",
      "legendgroup",
      "showlegend",
      "marker",
      "x",
      "y",
      "error_y",
      "xaxis",
      "yaxis",
    ]);
    assert.deepEqual([t.type, t.legendgroup, t.showlegend, t.xaxis, t.yaxis], ["bar", "authors", false, "x2", "y2"]);
    assert.deepEqual(t.marker, { color: "#1f77b4" });
  });

  it("intervalBand: upper edge, lower edge filled to it, then the line; one legend entry", () => {
    const [upper, lower, line] = intervalBand(series, { name: "n=1", rgb: [31, 119, 180], dash: "dash", width: 3 });
    assert.deepEqual(upper.y, series.hi);
    assert.deepEqual([lower.y, lower.fill, lower.fillcolor], [series.lo, "tonexty", "rgba(31,119,180,0.2)"]);
    assert.deepEqual([upper.showlegend, lower.showlegend, line.showlegend], [false, false, true]);
    assert.deepEqual(line.line, { color: "rgb(31,119,180)", width: 3, dash: "dash" });
    assert.deepEqual([line.legendgroup, line.name], ["n=1", "n=1"]);
  });
});

describe("showFinding", () => {
  const f = { verdict: "replicates", summary: "Accuracy ≥ 0.9 for every n.", markdown: "### Finding 0\n..." };
  const g = { verdict: "does not replicate", summary: "n = 4 fails.", markdown: "(unused)" };

  it("shows the finding's markdown, then the same rule on each variation", () => {
    const bundle = findingBundle(f, {
      label: "authors",
      also: [{ heading: "Same rule on the partial template", label: "partial", finding: g }],
    });
    assert.equal(
      bundle["text/markdown"],
      "### Finding 0\n...\n#### Same rule on the partial template: does not replicate\nn = 4 fails.\n",
    );
    assert.equal(
      bundle["text/plain"],
      "authors: replicates — Accuracy ≥ 0.9 for every n.\npartial: does not replicate — n = 4 fails.",
    );
  });

  it("without a label the plain text is the verdict and summary; outside a notebook nothing is shown", () => {
    assert.equal(findingBundle(f)["text/plain"], "replicates — Accuracy ≥ 0.9 for every n.");
    assert.equal(showFinding(f), undefined);
  });
});

describe("escapeHtml and softmax", () => {
  it("escapes the four HTML-special characters once", () => {
    assert.equal(escapeHtml(`<a href="x">&</a>`), "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
  });

  it("softmax sums to 1 and keeps the order of the logits", () => {
    const p = softmax(Float32Array.from([1, 3, 2]));
    assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-12);
    assert.ok(p[1] > p[2] && p[2] > p[0]);
    assert.ok(Math.abs(p[1] / p[0] - Math.exp(2)) < 1e-9);
  });
});
