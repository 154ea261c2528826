/**
 * Checks that a notebook opened in JupyterLab shows a rendered, interactive Plotly figure, and
 * saves a screenshot of it.
 *
 *   node --import tsx scripts/notebooks/screenshot-lab.ts [NOTEBOOK] [--out FILE]
 *
 * NOTEBOOK defaults to notebooks/00-quickstart.ipynb, FILE to figures/jupyterlab-screenshot.png.
 * Starts JupyterLab (the venv's, with the tslab kernel) on a free localhost port with a random
 * token and the notebook's folder as root, opens the notebook in headless Chromium (Debian's,
 * driven by playwright-core), waits until a Plotly figure is drawn by JupyterLab's plotly
 * extension (which shows the static PNG until the pointer enters it: the script hovers), takes
 * the screenshot, shuts JupyterLab down. Exits 1 when no rendered figure appears
 * (e.g. the notebook has not been executed, or is untrusted and shows only its PNG fallback).
 */
import { spawn } from "child_process";
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { chromium, type Browser } from "playwright-core";
import { chromiumPath } from "../../lib/src/notebook/plot";
import { writeFileAtomic } from "../../lib/src/notebook/env";
import { freePort, stopServer, waitForServer } from "./lab-server";

const ROOT = path.resolve(__dirname, "..", "..");
const JUPYTER = path.join(ROOT, ".venv", "bin", "jupyter");
const SERVER_START_MS = 90_000;
const FIGURE_WAIT_MS = 120_000;

function parseArgs(argv: string[]): { notebook: string; out: string } {
  let notebook = path.join(ROOT, "notebooks", "00-quickstart.ipynb");
  let out = path.join(ROOT, "figures", "jupyterlab-screenshot.png");
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--out") out = path.resolve(argv[++i] ?? "");
    else if (argv[i] === "-h" || argv[i] === "--help") {
      console.log("usage: node --import tsx scripts/notebooks/screenshot-lab.ts [NOTEBOOK] [--out FILE]");
      process.exit(0);
    } else notebook = path.resolve(argv[i]);
  }
  if (!fs.existsSync(notebook)) throw new Error(`notebook not found: ${notebook}`);
  if (!fs.existsSync(JUPYTER)) throw new Error(`${JUPYTER} not found: run \`bash scripts/setup.sh\` first`);
  return { notebook, out };
}

async function main(): Promise<number> {
  const { notebook, out } = parseArgs(process.argv.slice(2));
  const port = await freePort();
  const token = randomBytes(16).toString("hex");
  const base = `http://127.0.0.1:${port}`;
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-lab-"));
  let serverLog = "";
  const server = spawn(
    JUPYTER,
    [
      "lab",
      "--no-browser",
      "--ServerApp.ip=127.0.0.1",
      `--ServerApp.port=${port}`,
      "--ServerApp.port_retries=0",
      `--IdentityProvider.token=${token}`,
      `--ServerApp.root_dir=${path.dirname(notebook)}`,
      // No network here: no update checks or news; a scratch workspace, not the user's.
      "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
      "--LabApp.news_url=",
      `--LabApp.workspaces_dir=${scratch}`,
      `--LabApp.user_settings_dir=${scratch}`,
      ...(process.getuid?.() === 0 ? ["--allow-root"] : []),
    ],
    { cwd: path.dirname(notebook), stdio: ["ignore", "pipe", "pipe"] },
  );
  // Settings of this throw-away lab: no "get Jupyter news?" toast over the notebook.
  const notification = path.join(scratch, "@jupyterlab", "apputils-extension", "notification.jupyterlab-settings");
  fs.mkdirSync(path.dirname(notification), { recursive: true });
  fs.writeFileSync(notification, JSON.stringify({ fetchNews: "false", checkForUpdates: false }));
  server.stdout!.on("data", (d) => (serverLog += d));
  server.stderr!.on("data", (d) => (serverLog += d));
  const tail = () => serverLog.split("\n").slice(-30).join("\n");

  let browser: Browser | null = null;
  try {
    console.log(`JupyterLab on ${base} (root ${path.relative(ROOT, path.dirname(notebook)) || "."})`);
    await waitForServer(base, token, server, tail, SERVER_START_MS);
    browser = await chromium.launch({
      executablePath: chromiumPath(),
      headless: true,
      args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
    });
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const url = `${base}/lab/tree/${encodeURIComponent(path.basename(notebook))}?reset&token=${token}`;
    console.log(`opening ${path.basename(notebook)} in headless Chromium`);
    await page.goto(url, { waitUntil: "domcontentloaded" });
    // JupyterLab's plotly renderer first shows the bundle's PNG (.plot-img) and draws the
    // interactive plot when the pointer enters it: hover, then wait for plotly's own SVG.
    const output = page.locator(".jp-OutputArea-output.jp-RenderedPlotly").first();
    const plot = output.locator(".plot-container .main-svg").first();
    try {
      await output.waitFor({ state: "attached", timeout: FIGURE_WAIT_MS });
      await output.scrollIntoViewIfNeeded();
      await output.hover();
      await plot.waitFor({ state: "visible", timeout: FIGURE_WAIT_MS });
    } catch (e) {
      const images = await page.locator(".jp-OutputArea-output img").count();
      writeFileAtomic(out, await page.screenshot());
      console.error(
        `no rendered Plotly figure (${(e as Error).message.split("\n")[0]}); ${images} image output(s) shown. ` +
          `Is the notebook executed? (\`npm run notebooks\` executes and trusts it.) Screenshot of what was shown: ${out}`,
      );
      return 1;
    }
    await page.mouse.move(5, 500); // no hover label in the shot
    await page.waitForTimeout(1000); // let plotly finish drawing before the shot
    const count = await page.locator(".jp-OutputArea-output.jp-RenderedPlotly .plot-container").count();
    const shot = await page.screenshot();
    writeFileAtomic(out, shot);
    console.log(`${count} rendered Plotly figure(s); screenshot: ${path.relative(process.cwd(), out)}`);
    return 0;
  } finally {
    if (browser) await browser.close();
    await stopServer(base, token, server);
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
