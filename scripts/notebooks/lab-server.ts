/**
 * Starting and stopping a throw-away JupyterLab server: a free localhost port, waiting until the
 * server answers, shutting it (and the kernels it started) down. Used by screenshot-lab.ts and by
 * the browser tests (test/helpers/jupyter-lab.ts), which differ only in the command they spawn.
 */
import type { ChildProcess } from "child_process";
import * as net from "net";

/** A localhost TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Waits until `base`/api/status answers; fails at once if the server exits, or after `timeoutMs`. */
export async function waitForServer(
  base: string,
  token: string,
  server: ChildProcess,
  log: () => string,
  timeoutMs = 90_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`JupyterLab exited with code ${server.exitCode}:\n${log()}`);
    try {
      const res = await fetch(`${base}/api/status`, { headers: { Authorization: `token ${token}` } });
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`JupyterLab did not answer within ${timeoutMs / 1000} s:\n${log()}`);
}

/** Shuts the server down through its API (which also shuts its kernels), SIGTERM after 15 s. */
export async function stopServer(base: string, token: string, server: ChildProcess): Promise<void> {
  if (server.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => server.once("exit", () => resolve()));
  await fetch(`${base}/api/shutdown`, { method: "POST", headers: { Authorization: `token ${token}` } }).catch(
    () => undefined,
  );
  const timer = setTimeout(() => server.kill("SIGTERM"), 15_000);
  await exited;
  clearTimeout(timer);
}
