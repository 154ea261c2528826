/**
 * `npm run new-notebook -- NAME` writes a valid notebook that runs as written: in the tslab kernel
 * (run_notebooks.py) it caches, intervenes, shows a table, the attention viewer and a figure. Then
 * JupyterLab (headless Chromium) opens the executed notebook: hovering a token of the viewer
 * colours that token's query row; an untrusted copy (scripts off, as on GitHub) shows the PNG
 * fallback of the same output instead. Screenshots go to tmp/.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { chromium, type Browser } from "playwright-core";
import { chromiumPath } from "../../lib/src";
import { startLab, tslabSkipReason, type Lab } from "../helpers/jupyter-lab";

const ROOT = path.resolve(__dirname, "../..");
const PYTHON = path.join(ROOT, ".venv", "bin", "python");
const NAME = "05-from-template";

const skip = tslabSkipReason();

interface Output {
  output_type: string;
  data?: Record<string, string | string[]>;
}
const text = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join("") : (v ?? ""));

describe("new-notebook", { skip }, () => {
  let work: string; // under the project root, so that the kernel resolves "parenlens"
  const file = () => path.join(work, `${NAME}.ipynb`);
  const create = (...extra: string[]) =>
    spawnSync(
      process.execPath,
      ["--import", "tsx", "scripts/notebooks/new-notebook.ts", NAME, "--dir", work, ...extra],
      {
        cwd: ROOT,
        encoding: "utf8",
      },
    );
  before(() => {
    fs.mkdirSync(path.join(ROOT, "tmp"), { recursive: true });
    work = fs.mkdtempSync(path.join(ROOT, "tmp", "new-notebook-"));
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it("writes a valid nbformat 4 notebook with the setup cell, and refuses to overwrite it", () => {
    const r = create();
    assert.equal(r.status, 0, r.stderr);
    const valid = spawnSync(PYTHON, [
      "-c",
      "import nbformat,sys; nbformat.validate(nbformat.read(sys.argv[1], 4))",
      file(),
    ]);
    assert.equal(valid.status, 0, String(valid.stderr));
    const nb = JSON.parse(fs.readFileSync(file(), "utf8"));
    assert.equal(nb.metadata.kernelspec.name, "tslab");
    const code = nb.cells
      .filter((c: { cell_type: string }) => c.cell_type === "code")
      .map((c: { source: string[] }) => c.source.join(""));
    assert.match(code[0], /await studyModel\(\)/);
    assert.match(code.join("\n"), /runWithCache\(prompt\)[\s\S]*runWithHooks[\s\S]*showAttention/);
    assert.equal(create().status, 1, "a second run without --force refuses");
    assert.equal(create("--force").status, 0);
  });

  it("runs as written in tslab; the viewer's bundle has the HTML view and a PNG fallback", () => {
    const env = {
      ...process.env,
      PARENLENS_FIGURES_DIR: path.join(work, "figures"),
      PARENLENS_RESULTS_DIR: path.join(work, "results"),
    };
    const r = spawnSync(PYTHON, [path.join(ROOT, "scripts/notebooks/run_notebooks.py"), file()], {
      cwd: ROOT,
      env,
      encoding: "utf8",
      timeout: 300_000,
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const nb = JSON.parse(fs.readFileSync(file(), "utf8"));
    const outputs: Output[] = nb.cells.flatMap((c: { outputs?: Output[] }) => c.outputs ?? []);
    const viewer = outputs.find((o) => text(o.data?.["text/html"]).includes("parenlens-attention"));
    assert.ok(viewer, "the attention viewer was displayed");
    assert.ok(!/src="(?!data:)|https?:\/\//.test(text(viewer.data!["text/html"])), "self-contained HTML");
    assert.equal(Buffer.from(text(viewer.data!["image/png"]), "base64").subarray(1, 4).toString(), "PNG");
    assert.ok(fs.existsSync(path.join(work, "figures", `${NAME}-ablation.png`)), "the figure's files were written");
  });

  it("in JupyterLab, hovering a viewer token colours its query row; untrusted, the PNG shows", async () => {
    const nb = JSON.parse(fs.readFileSync(file(), "utf8"));
    nb.metadata.untrusted_copy = true; // a changed notebook loses its signature: JupyterLab runs no scripts
    fs.writeFileSync(path.join(work, "untrusted.ipynb"), JSON.stringify(nb));
    const lab: Lab = await startLab(work, path.join(work, "lab-state"));
    let browser: Browser | null = null;
    try {
      browser = await chromium.launch({ executablePath: chromiumPath(), headless: true, args: ["--no-sandbox"] });
      const page = await browser.newPage({ viewport: { width: 1300, height: 900 } });
      await page.goto(`${lab.base}/lab/tree/${NAME}.ipynb?reset&token=${lab.token}`);
      const view = page.locator(".jp-OutputArea-output .parenlens-attention").first();
      await view.waitFor({ state: "visible", timeout: 90_000 });
      await view.scrollIntoViewIfNeeded();
      const data = JSON.parse((await view.locator("script.pl-data").textContent())!) as { pattern: number[][][] };
      const q = 5;
      await view.locator(`.pl-to .pl-tok[data-pos="${q}"]`).hover();
      const shown = await view
        .locator(".pl-to .pl-tok")
        .evaluateAll((els) => els.map((e) => Number(e.getAttribute("data-weight"))));
      const expected = data.pattern[0][q].map((w, j) => (j <= q ? w : 0));
      assert.ok(
        shown.every((w, j) => Math.abs(w - expected[j]) < 1e-4),
        `row ${q} of head 0: ${shown} vs ${expected}`,
      );
      assert.equal(await view.locator(".pl-to .pl-hovered").getAttribute("data-pos"), String(q));
      await view.screenshot({ path: path.join(ROOT, "tmp", "attention-viewer-jupyterlab.png") });

      await page.goto(`${lab.base}/lab/tree/untrusted.ipynb?reset&token=${lab.token}`);
      const still = page.locator(".jp-OutputArea-output .parenlens-attention img.pl-static").first();
      await still.waitFor({ state: "visible", timeout: 90_000 });
      assert.equal(await page.locator(".parenlens-attention[data-ready]").count(), 0, "no script ran untrusted");
      assert.equal(await page.locator(".parenlens-attention .pl-live").first().isVisible(), false);
      await still.screenshot({ path: path.join(ROOT, "tmp", "attention-viewer-untrusted.png") });
    } finally {
      await browser?.close();
      await lab.stop();
    }
  });
});
