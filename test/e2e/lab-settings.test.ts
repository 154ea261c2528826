// `npm run lab` (scripts/notebooks/lab.sh) starts JupyterLab with the project's lab settings: the
// "get notified about official Jupyter news?" prompt and update checks are off (no network here).
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { startLab } from "../helpers/jupyter-lab";

const ROOT = path.resolve(__dirname, "../..");
const skip = fs.existsSync(path.join(ROOT, ".venv", "bin", "jupyter")) ? false : "no venv: run `bash scripts/setup.sh`";

test(
  "npm run lab never asks about Jupyter news: fetchNews defaults to Never in the served settings",
  { skip },
  async () => {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-lab-"));
    const lab = await startLab(path.join(ROOT, "notebooks"), scratch);
    try {
      const url = `${lab.base}/lab/api/settings/@jupyterlab/apputils-extension:notification`;
      const res = await fetch(url, { headers: { Authorization: `token ${lab.token}` } });
      const body = (await res.json()) as { schema: { properties: Record<string, { default: unknown }> } };
      assert.equal(body.schema.properties.fetchNews.default, "false"); // "Never", not "none" (ask)
      assert.equal(body.schema.properties.checkForUpdates.default, false);
    } finally {
      await lab.stop();
      fs.rmSync(scratch, { recursive: true, force: true });
    }
  },
);
