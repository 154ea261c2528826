import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as dfd from "danfojs-node";
import { tableCells } from "../../lib/src/notebook/table";
import { saveTable, showTable, toCsv, InputError } from "../../lib/src";

/** Stands in for tslab's kernel module, as notebook-env.ts finds it in the module cache. */
function fakeKernel(): { bundles: { data: Record<string, unknown> }[]; remove: () => void } {
  const key = path.join(os.tmpdir(), "fake", "node_modules", "tslab", "dist", "jupyter.js");
  const bundles: { data: Record<string, unknown> }[] = [];
  require.cache[key] = {
    exports: { lastWriteDisplayData: (content: { data: Record<string, unknown> }) => bundles.push(content) },
  } as NodeJS.Module;
  return { bundles, remove: () => delete require.cache[key] };
}

describe("saveTable and showTable", () => {
  let results: string;
  const saved = process.env.PARENLENS_RESULTS_DIR;
  before(() => {
    results = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-results-"));
    process.env.PARENLENS_RESULTS_DIR = results;
  });
  after(() => {
    if (saved === undefined) delete process.env.PARENLENS_RESULTS_DIR;
    else process.env.PARENLENS_RESULTS_DIR = saved;
    fs.rmSync(results, { recursive: true, force: true });
  });

  it("takes columns in order of first appearance and leaves missing cells empty", () => {
    const { columns, rows } = tableCells([
      { layer: 0, acc: 0.5 },
      { layer: 1, note: "late" },
    ]);
    assert.deepEqual(columns, ["layer", "acc", "note"]);
    assert.deepEqual(rows, [
      [0, 0.5, undefined],
      [1, undefined, "late"],
    ]);
  });

  it("writes a CSV at 7 significant digits (float32 precision) and RFC 4180 quoting under data/results", () => {
    const out = saveTable(
      [
        { head: "L0H1", score: 0.123456789, label: 'say "hi", twice' },
        { head: "L2H3", score: NaN, label: "two\nlines" },
      ],
      { name: "heads", csv: "sub/heads.csv" },
    );
    assert.equal(out.csv, path.join(results, "sub", "heads.csv"));
    assert.equal(
      fs.readFileSync(out.csv!, "utf8"),
      'head,score,label\nL0H1,0.1234568,"say ""hi"", twice"\nL2H3,NaN,"two\nlines"\n',
    );
  });

  it("rounds numbers on display only, right-aligns numeric columns and notes hidden rows", () => {
    const rows = Array.from({ length: 5 }, (_, i) => ({ i, x: i / 3 }));
    const out = saveTable(rows, { name: "thirds", digits: 3, maxRows: 2 });
    assert.equal(out.csv, null);
    assert.equal(
      out.text,
      ["thirds (5 rows)", "i      x", "-  -----", "0      0", "1  0.333", "… 3 more rows"].join("\n"),
    );
    assert.match(out.html, /<td style="text-align: right">0.333<\/td>/);
    assert.match(out.html, /… 3 more rows/);
    assert.equal(toCsv(out.columns, out.rows).split("\n")[2], "1,0.3333333");
  });

  it("reads a danfojs-node DataFrame", () => {
    const df = new dfd.DataFrame([
      { layer: 0, logit_diff: -1.25 },
      { layer: 1, logit_diff: 2.5 },
    ]);
    assert.equal(showTable(df, { name: "lens", csv: true }), undefined, "nothing for a notebook cell to print");
    assert.equal(fs.readFileSync(path.join(results, "lens.csv"), "utf8"), "layer,logit_diff\n0,-1.25\n1,2.5\n");
  });

  it("displays text/html and text/plain in one bundle inside a kernel, and escapes HTML", () => {
    const kernel = fakeKernel();
    try {
      showTable([{ code: "f(<x>)", n: 2 }], { name: "escaped" });
      assert.equal(kernel.bundles.length, 1);
      const data = kernel.bundles[0].data;
      assert.deepEqual(Object.keys(data).sort(), ["text/html", "text/plain"]);
      assert.match(data["text/html"] as string, /<td>f\(&lt;x&gt;\)<\/td>/);
      assert.match(data["text/plain"] as string, /^escaped \(1 row\)/);
    } finally {
      kernel.remove();
    }
  });

  it("refuses CSV paths outside data/results and input that is not a table", () => {
    const isCsvError = (e: unknown) => e instanceof InputError && e.field === "csv";
    assert.throws(() => showTable([{ a: 1 }], { name: "t", csv: "../escape.csv" }), isCsvError);
    assert.throws(() => showTable([{ a: 1 }], { name: "t", csv: "/etc/x.csv" }), isCsvError);
    assert.throws(
      () => showTable([1, 2] as never, { name: "t" }),
      (e: unknown) => e instanceof InputError && e.field === "rows[0]",
    );
    assert.throws(
      () => showTable({ columns: ["a"], values: [[1, 2]] }, { name: "t" }),
      (e: unknown) => e instanceof InputError && e.field === "values[0]",
    );
    assert.throws(
      () => showTable([{ a: 1 }], { name: "no spaces" }),
      (e: unknown) => e instanceof InputError && e.field === "name",
    );
    assert.equal(fs.existsSync(path.join(results, "..", "escape.csv")), false);
  });
});
