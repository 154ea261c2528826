// The headless notebook runner (scripts/notebooks/run_notebooks.py) on fixture notebooks, in the
// real tslab kernel. Needs `bash scripts/setup.sh` (venv with Jupyter, tslab kernel, Chromium)
// and a built lib (`npm test` builds it first).
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { tslabSkipReason } from "../helpers/jupyter-lab";

const ROOT = path.resolve(__dirname, "../..");
const PYTHON = path.join(ROOT, ".venv", "bin", "python");
const RUNNER = path.join(ROOT, "scripts", "notebooks", "run_notebooks.py");
const FIXTURES = path.join(ROOT, "test", "fixtures", "notebooks");

const skip = tslabSkipReason();

interface Output {
  output_type: string;
  data?: Record<string, unknown>;
  text?: string | string[];
}
interface Cell {
  cell_type: string;
  execution_count?: number | null;
  metadata: Record<string, unknown>;
  outputs?: Output[];
}

describe("run_notebooks.py", { skip }, () => {
  // Under the project root, so that the kernel resolves "parenlens" from node_modules.
  let work: string;
  let env: NodeJS.ProcessEnv;
  const run = (...notebooks: string[]) =>
    spawnSync(PYTHON, [RUNNER, ...notebooks.map((n) => path.join(work, n))], {
      cwd: ROOT,
      env,
      encoding: "utf8",
      timeout: 300_000,
    });

  before(() => {
    fs.mkdirSync(path.join(ROOT, "tmp"), { recursive: true });
    work = fs.mkdtempSync(path.join(ROOT, "tmp", "notebooks-test-"));
    for (const f of fs.readdirSync(FIXTURES)) fs.copyFileSync(path.join(FIXTURES, f), path.join(work, f));
    env = {
      ...process.env,
      PARENLENS_FIGURES_DIR: path.join(work, "figures"),
      PARENLENS_RESULTS_DIR: path.join(work, "results"),
    };
  });
  after(() => fs.rmSync(work, { recursive: true, force: true }));

  it("executes a notebook in tslab, writes its outputs back and signs it; a second run is identical", () => {
    const first = run("helpers.ipynb");
    assert.equal(first.status, 0, first.stderr + first.stdout);
    assert.match(first.stdout, /helpers\.ipynb\s+\(4 code cells, kernel tslab\)/);
    assert.match(first.stdout, /cell {2}4\/4 .* s\n/);
    assert.match(first.stdout, /done in [\d.]+ s, written and trusted/);

    const text1 = fs.readFileSync(path.join(work, "helpers.ipynb"), "utf8");
    const nb = JSON.parse(text1) as { cells: Cell[] };
    const code = nb.cells.filter((c) => c.cell_type === "code");
    assert.deepEqual(
      code.map((c) => c.execution_count),
      [1, 2, 3, 4],
    );
    assert.ok(
      code.every((c) => !("execution" in c.metadata)),
      "no execution timestamps",
    );
    // The figure cell: one bundle with the interactive figure and the static fallback.
    // showFigure and showTable return nothing: each of their cells has exactly one output, the bundle.
    assert.deepEqual(
      code[1].outputs!.map((o) => o.output_type),
      ["display_data"],
    );
    assert.deepEqual(
      code[2].outputs!.map((o) => o.output_type),
      ["display_data"],
    );
    const figure = code[1].outputs![0];
    assert.ok(figure.data!["application/vnd.plotly.v1+json"]);
    assert.ok((figure.data!["image/png"] as string).length > 1000);
    // The table cell: danfojs DataFrame shown as HTML; CSV written.
    const table = code[2].outputs![0];
    assert.match(String(table.data!["text/html"]), /<th style="text-align: right">score<\/th>/);
    assert.equal(
      fs.readFileSync(path.join(work, "results", "fixture", "table.csv"), "utf8"),
      "layer,head,score\n0,1,0.123456\n1,0,-2.5\n",
    );
    // Streams are coalesced into one output whatever the kernel's message chunking.
    assert.deepEqual(
      code[3].outputs!.map((o) => o.output_type),
      ["stream"],
    );

    const trusted = spawnSync(PYTHON, [
      "-c",
      "import sys, nbformat; from nbformat.sign import NotebookNotary; sys.exit(0 if NotebookNotary().check_signature(nbformat.read(sys.argv[1], 4)) else 3)",
      path.join(work, "helpers.ipynb"),
    ]);
    assert.equal(trusted.status, 0, "the notebook is signed as trusted");

    const png1 = fs.readFileSync(path.join(work, "figures", "fixture-pattern.png"));
    const second = run("helpers.ipynb");
    assert.equal(second.status, 0, second.stderr);
    assert.equal(fs.readFileSync(path.join(work, "helpers.ipynb"), "utf8"), text1, "same notebook bytes on a re-run");
    assert.ok(
      fs.readFileSync(path.join(work, "figures", "fixture-pattern.png")).equals(png1),
      "same figure on a re-run",
    );
  });

  it("stops at a failing cell with the notebook, cell, source and error, and leaves the file untouched", () => {
    const before = fs.readFileSync(path.join(work, "failing.ipynb"));
    const r = run("failing.ipynb", "helpers.ipynb");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /FAILED: .*failing\.ipynb/);
    assert.match(r.stderr, /cell 2 of 3 code cells/);
    assert.match(r.stderr, /\| function explode\(\): never \{/);
    assert.match(r.stderr, /Error: boom from the fixture/);
    assert.doesNotMatch(r.stdout, /helpers\.ipynb/, "later notebooks do not run");
    assert.ok(fs.readFileSync(path.join(work, "failing.ipynb")).equals(before));
    assert.deepEqual(
      fs.readdirSync(work).filter((f) => f.includes(".tmp-")),
      [],
    );
  });

  it("on SIGINT kills the kernel, says which notebook was left as it was, exits 130, no traceback", async () => {
    const file = path.join(work, "slow.ipynb");
    const before = fs.readFileSync(file);
    const child = spawn(PYTHON, [RUNNER, file], { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    await new Promise<void>((resolve) =>
      child.stdout.on("data", (d) => {
        stdout += d;
        if (/cell {2}1\/1/.test(stdout)) resolve(); // the slow cell is running
      }),
    );
    child.kill("SIGINT");
    assert.equal(await exited, 130, stderr);
    assert.match(stderr, /interrupted, .*slow\.ipynb left as it was/);
    assert.doesNotMatch(stderr + stdout, /Traceback/);
    assert.ok(fs.readFileSync(file).equals(before), "the notebook is unchanged");
    assert.deepEqual(
      fs.readdirSync(work).filter((f) => f.includes(".tmp-")),
      [],
    );
  });

  it("refuses a path that is not a notebook", () => {
    const r = run("missing.ipynb");
    assert.equal(r.status, 2);
    assert.match(r.stderr, /not a notebook file: .*missing\.ipynb/);
  });
});
