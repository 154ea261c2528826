// `npm run lab` (scripts/notebooks/lab.sh) starts JupyterLab with the project's lab settings: the
// "get notified about official Jupyter news?" prompt and update checks are off (no network here).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";

const ROOT = path.resolve(__dirname, "../..");
const skip = fs.existsSync(path.join(ROOT, ".venv", "bin", "jupyter")) ? false : "no venv: run `bash scripts/setup.sh`";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

test(
  "npm run lab never asks about Jupyter news: fetchNews defaults to Never in the served settings",
  { skip },
  async () => {
    const port = await freePort();
    const token = "parenlens-lab-settings-test";
    const lab = spawn(
      "bash",
      [
        path.join(ROOT, "scripts/notebooks/lab.sh"),
        "--no-browser",
        `--port=${port}`,
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port_retries=0",
        `--IdentityProvider.token=${token}`,
      ],
      { stdio: "ignore" },
    );
    const url = `http://127.0.0.1:${port}/lab/api/settings/@jupyterlab/apputils-extension:notification`;
    const auth = { headers: { Authorization: `token ${token}` } };
    try {
      let body: { schema: { properties: Record<string, { default: unknown }> } } | null = null;
      for (let i = 0; i < 120 && !body; i++) {
        await new Promise((r) => setTimeout(r, 500));
        body = await fetch(url, auth)
          .then((r) => (r.ok ? r.json() : null))
          .catch(() => null);
      }
      assert.ok(body, "JupyterLab answered within 60 s");
      assert.equal(body.schema.properties.fetchNews.default, "false"); // "Never", not "none" (ask)
      assert.equal(body.schema.properties.checkForUpdates.default, false);
    } finally {
      await fetch(`http://127.0.0.1:${port}/api/shutdown`, { method: "POST", ...auth }).catch(() => undefined);
      lab.kill("SIGTERM");
    }
  },
);
