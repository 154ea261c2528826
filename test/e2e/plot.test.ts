import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  closeFigureRenderer,
  figureHtml,
  PLOTLY_MIME,
  renderFigurePng,
  saveFigure,
  showFigure,
  InputError,
} from "../../lib/src";

/** Width and height from a PNG's IHDR chunk. */
function pngSize(png: Buffer): { width: number; height: number } {
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "PNG signature");
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}

/** Stands in for tslab's kernel module, as plot.ts finds it in the module cache. */
function fakeKernel(): {
  bundles: { data: Record<string, unknown>; metadata: Record<string, unknown> }[];
  remove: () => void;
} {
  const key = path.join(os.tmpdir(), "fake", "node_modules", "tslab", "dist", "jupyter.js");
  const bundles: { data: Record<string, unknown>; metadata: Record<string, unknown> }[] = [];
  require.cache[key] = {
    exports: { lastWriteDisplayData: (content: (typeof bundles)[number]) => bundles.push(content) },
  } as NodeJS.Module;
  return { bundles, remove: () => delete require.cache[key] };
}

const heatmap = {
  data: [
    {
      type: "heatmap",
      z: [
        [0.9, 0.1],
        [0.3, 0.7],
      ],
      colorscale: "Blues",
    },
  ], // [query_pos, key_pos]
  layout: { xaxis: { title: { text: "key" } }, yaxis: { title: { text: "query" } } },
};

describe("saveFigure and showFigure", () => {
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-plot-"));
  });
  after(async () => {
    await closeFigureRenderer();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("writes an interactive HTML and a PNG of the figure's size × scale", async () => {
    const out = await saveFigure(heatmap, {
      name: "pattern",
      title: "A pattern",
      width: 400,
      height: 300,
      scale: 2,
      dir,
    });
    assert.equal(out.html, path.join(dir, "pattern.html"));
    assert.equal(out.figure.layout!.height, 300, "an explicit height also holds for the interactive figure");
    assert.deepEqual(pngSize(fs.readFileSync(out.png)), { width: 800, height: 600 });
    const html = fs.readFileSync(out.html, "utf8");
    assert.match(html, /<script src="plotly.min.js"><\/script>/);
    assert.match(html, /"z":\[\[0.9,0.1\],\[0.3,0.7\]\]/);
    assert.match(html, /"title":\{"text":"A pattern"\}/);
    assert.ok(fs.statSync(path.join(dir, "plotly.min.js")).size > 1_000_000, "plotly.js copied next to the HTML");
    assert.deepEqual(
      fs.readdirSync(dir).filter((f) => f.includes(".tmp-")),
      [],
      "no temporary files left",
    );
  });

  it("gives byte-identical files for the same figure", async () => {
    const a = await saveFigure(heatmap, { name: "twice", dir });
    const html1 = fs.readFileSync(a.html);
    const png1 = fs.readFileSync(a.png);
    const b = await saveFigure(heatmap, { name: "twice", dir });
    assert.ok(fs.readFileSync(b.html).equals(html1));
    assert.ok(fs.readFileSync(b.png).equals(png1));
  });

  it("writes typed arrays as plain arrays and keeps a title the layout already has", async () => {
    const fig = {
      data: [{ type: "scatter", x: [0, 1, 2], y: new Float32Array([0.5, 0.25, 0.125]) }],
      layout: { title: { text: "mine" } },
    };
    const out = await saveFigure(fig, { name: "typed", title: "ignored", dir });
    const html = fs.readFileSync(out.html, "utf8");
    assert.match(html, /"y":\[0.5,0.25,0.125\]/);
    assert.match(html, /"title":\{"text":"mine"\}/);
    assert.doesNotMatch(html, /ignored"\}/);
  });

  it("embeds plotly.js when asked for a self-contained HTML", async () => {
    const out = await saveFigure(heatmap, { name: "alone", selfContained: true, dir });
    const html = fs.readFileSync(out.html, "utf8");
    assert.doesNotMatch(html, /<script src=/);
    assert.ok(html.length > 1_000_000);
  });

  it("only writes the files outside a kernel, and returns nothing for a notebook cell to print", async () => {
    assert.equal(await showFigure(heatmap, { name: "quiet", dir }), undefined);
    assert.ok(fs.existsSync(path.join(dir, "quiet.html")) && fs.existsSync(path.join(dir, "quiet.png")));
  });

  it("sends one bundle with the Plotly JSON, a PNG at its CSS size and a text line in a kernel", async () => {
    const kernel = fakeKernel();
    try {
      await showFigure(heatmap, { name: "shown", width: 300, height: 200, dir });
      assert.equal(kernel.bundles.length, 1);
      const { data, metadata } = kernel.bundles[0];
      assert.deepEqual(Object.keys(data).sort(), ["image/png", PLOTLY_MIME, "text/plain"].sort());
      const plotly = data[PLOTLY_MIME] as { data: unknown[]; layout: Record<string, unknown> };
      assert.deepEqual(plotly.data, heatmap.data);
      assert.equal(plotly.layout.height, 200);
      // In the notebook at CSS size (JupyterLab's plotly renderer shows it unscaled), on disk at scale 2.
      assert.deepEqual(pngSize(Buffer.from(data["image/png"] as string, "base64")), { width: 300, height: 200 });
      assert.deepEqual(pngSize(fs.readFileSync(path.join(dir, "shown.png"))), { width: 600, height: 400 });
      assert.deepEqual(metadata, { "image/png": { width: 300, height: 200 } });
      assert.match(data["text/plain"] as string, /shown\.html/);
    } finally {
      kernel.remove();
    }
  });

  it("renders PNG bytes without writing files", async () => {
    const png = await renderFigurePng(heatmap, { width: 100, height: 80, scale: 1 });
    assert.deepEqual(pngSize(png), { width: 100, height: 80 });
  });

  it("rejects names that are not plain file names, and figures without a data array", async () => {
    await assert.rejects(
      showFigure(heatmap, { name: "../escape", dir }),
      (e: unknown) => e instanceof InputError && e.field === "name",
    );
    await assert.rejects(saveFigure(heatmap, { name: "a/b", dir }), InputError);
    await assert.rejects(
      showFigure({ data: "nope" } as never, { name: "x", dir }),
      (e: unknown) => e instanceof InputError && e.field === "data",
    );
    await assert.rejects(
      showFigure({ data: [42] } as never, { name: "x", dir }),
      (e: unknown) => e instanceof InputError && e.field === "data[0]",
    );
    await assert.rejects(
      saveFigure(heatmap, { name: "x", width: -5, dir }),
      (e: unknown) => e instanceof InputError && e.field === "width",
    );
  });

  it("escapes </script> inside figure text in the HTML", () => {
    const html = figureHtml(
      { data: [{ type: "scatter", name: "</script><b>x" }] },
      { title: "<t>", plotlyScript: { src: "plotly.min.js" } },
    );
    assert.doesNotMatch(html, /<\/script><b>/);
    assert.match(html, /<title>&lt;t&gt;<\/title>/);
  });
});
