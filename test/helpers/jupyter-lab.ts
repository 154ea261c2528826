/**
 * A throw-away JupyterLab for browser tests: `npm run lab`'s script (the project's lab settings)
 * on a free localhost port with a known token, rooted at `dir`; stop() shuts it and its kernels.
 */
import { spawn } from "child_process";
import * as net from "net";
import * as path from "path";

const ROOT = path.resolve(__dirname, "../..");

export interface Lab {
  base: string; // http://127.0.0.1:PORT
  token: string;
  stop(): Promise<void>;
}

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

/** Starts scripts/notebooks/lab.sh rooted at `dir` and waits (up to 60 s) until it answers. */
export async function startLab(dir: string, workspaces: string): Promise<Lab> {
  const port = await freePort();
  const token = `parenlens-test-${port}`;
  const lab = spawn(
    "bash",
    [
      path.join(ROOT, "scripts/notebooks/lab.sh"),
      "--no-browser",
      `--port=${port}`,
      "--ServerApp.ip=127.0.0.1",
      "--ServerApp.port_retries=0",
      `--IdentityProvider.token=${token}`,
      `--ServerApp.root_dir=${dir}`,
      `--LabApp.workspaces_dir=${workspaces}`,
      `--LabApp.user_settings_dir=${workspaces}`,
    ],
    { stdio: "ignore" },
  );
  const base = `http://127.0.0.1:${port}`;
  const auth = { headers: { Authorization: `token ${token}` } };
  const stop = async () => {
    await fetch(`${base}/api/shutdown`, { method: "POST", ...auth }).catch(() => undefined);
    lab.kill("SIGTERM");
  };
  for (let i = 0; i < 120; i++) {
    await new Promise((r) => setTimeout(r, 500));
    const ok = await fetch(`${base}/api/status`, auth)
      .then((r) => r.ok)
      .catch(() => false);
    if (ok) return { base, token, stop };
  }
  await stop();
  throw new Error("JupyterLab did not answer within 60 s");
}
