/**
 * A throw-away JupyterLab for browser tests: `npm run lab`'s script (the project's lab settings)
 * on a free localhost port with a known token, rooted at `dir`; stop() shuts it and its kernels.
 */
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { freePort, stopServer, waitForServer } from "../../scripts/notebooks/lab-server";

const ROOT = path.resolve(__dirname, "../..");
const PYTHON = path.join(ROOT, ".venv", "bin", "python");

/** A skip reason for tests that need the venv's Jupyter with the tslab kernel, or false when it is there. */
export function tslabSkipReason(): string | false {
  const r = fs.existsSync(PYTHON)
    ? spawnSync(PYTHON, ["-m", "jupyter", "kernelspec", "list"], { encoding: "utf8" })
    : null;
  const registered = r !== null && r.status === 0 && /^\s*tslab\s/m.test(r.stdout);
  return registered ? false : "no venv with the tslab kernel: run `bash scripts/setup.sh`";
}

export interface Lab {
  base: string; // http://127.0.0.1:PORT
  token: string;
  stop(): Promise<void>;
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
  const stop = () => stopServer(base, token, lab);
  try {
    await waitForServer(base, token, lab, () => "(lab.sh output not captured)", 60_000);
  } catch (e) {
    await stop();
    throw e;
  }
  return { base, token, stop };
}
