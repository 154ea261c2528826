/**
 * The notebooks on CodeLlama-7b's shape: each notebook runs headlessly (scripts/notebooks/
 * run_notebooks.py --out-dir) with PARENLENS_MODEL = the 7B-shaped checkpoint of
 * `npm run bench -- --scale` (written here if missing, with the embedded model's tokenizer
 * padded to the model's 32016 ids), a small PARENLENS_PER_N, and results, figures and the executed
 * notebook in a temp folder — never over the committed ones. Records per notebook: finished or
 * stopped, wall time, forward passes (HookedLlama.forwardPasses through $PARENLENS_FORWARD_LOG),
 * and the last progress line of each long call (done / total forward passes and elapsed time).
 *
 *   flock /work/re-tools/bigmem.lock nice -n 10 node --import tsx scripts/bench/scale-notebooks.ts \
 *     --per-n 1 --notebooks 00,01,02 [--budget-s 900] [--layout]
 *
 * `--budget-s S` stops a notebook after S seconds (SIGINT: the runner kills the kernel) and keeps
 * what its progress lines said. `--journal DIR` runs with PARENLENS_SWEEP_JOURNAL=DIR: the sweeps
 * keep their finished batches there, so the same command again (another session, with DIR kept)
 * resumes a stopped notebook where it stopped; each run records the journaled batches before and
 * after it, and its wall time is that run's only (a notebook's total is the sum of its runs). `--layout` runs on a checkpoint with CodeLlama-7b's layout (32
 * layers × 32 heads, vocabulary 32016) but tiny widths (d_model 64): the same forward passes (their
 * number depends only on layers, heads, prompts and batches), in seconds, to count them for
 * a full run; `--model DIR` runs on another checkpoint (e.g. the embedded model, to compare
 * counts at PARENLENS_PER_N=1 and in full). Each run appends its results to $PARENLENS_SCALE_NB_JSON (default
 * /tmp/i10/scale-notebooks.json); `--write-md` then writes those of one checkpoint (`--checkpoint`,
 * default 7b-shaped) into scripts/bench/BENCH.md (section scale-notebooks).
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { spawn } from "child_process";
import { writeRandomCheckpoint } from "../../lib/src/testing/random-checkpoint";
import { writeBenchSection } from "./bench-md";
import { flag } from "./cli";

const ROOT = path.join(__dirname, "..", "..");
const CODELLAMA_CONFIG = path.join(ROOT, "test", "fixtures", "checkpoints", "codellama-7b-hf.config.json");
const TOKENIZER_FROM = path.join(ROOT, "data", "models", "parenlens-code-6l");
const RESULTS_JSON = process.env.PARENLENS_SCALE_NB_JSON || "/tmp/i10/scale-notebooks.json";

/** The last progress line of one long call: "label: done/total forward passes in X s". */
interface CallProgress {
  label: string;
  done: number;
  total: number;
  elapsedS: number | null;
}

export interface NotebookRun {
  notebook: string;
  /** "7b-shaped", "layout", or the basename of --model. */
  checkpoint: string;
  perN: string;
  status: "ran end to end" | "stopped" | "failed";
  wallS: number;
  forwards: number | null;
  calls: CallProgress[];
  loadAverage: [number, number];
  at: string;
  /** With --journal: batches in the journal's files before → after this run. */
  journalBatches?: [number, number];
}

/** Batches held by the sweep journals in `dir` (one line per batch after each file's header). */
function journalBatches(dir: string): number {
  if (!fs.existsSync(dir)) return 0;
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith(".jsonl"))
    .reduce((a, f) => a + Math.max(0, fs.readFileSync(path.join(dir, f), "utf8").split("\n").length - 2), 0);
}

/** The 7B-shaped checkpoint (CodeLlama-7b's config, random bf16, 2 shards) or its layout-only twin, with a tokenizer. */
function ensureCheckpoint(folder: string, layout: boolean): void {
  if (fs.existsSync(path.join(folder, ".complete"))) return;
  const config = JSON.parse(fs.readFileSync(CODELLAMA_CONFIG, "utf8"));
  if (layout) Object.assign(config, { hidden_size: 64, intermediate_size: 64 }); // 32 layers × 32 heads of d_head 2
  writeRandomCheckpoint(folder, {
    seed: 7,
    dtype: layout ? "F32" : "BF16", // float32: no per-layer conversion cuts, so counting runs fast
    configJson: config,
    shards: 2,
    tokenizerFrom: TOKENIZER_FROM,
  });
  fs.writeFileSync(path.join(folder, ".complete"), "");
}

/**
 * Pads the tokenizer's vocabulary to the model's (CodeLlama-7b: 32016) with plain entries
 * "<extra_i>" that no text encodes to, so that every id the random model predicts decodes. The
 * tokenizer.json then differs from the one data/datasets was made with: studyData regenerates the
 * same prompts (same seed and sizes, same encodings) in memory.
 */
function padTokenizer(folder: string): void {
  const file = path.join(folder, "tokenizer.json");
  const vocabSize = JSON.parse(fs.readFileSync(path.join(folder, "config.json"), "utf8")).vocab_size as number;
  const tok = JSON.parse(fs.readFileSync(file, "utf8"));
  const vocab = tok.model.vocab as Record<string, number>;
  const size = Object.keys(vocab).length;
  if (size >= vocabSize) return;
  for (let id = size; id < vocabSize; id++) vocab[`<extra_${id}>`] = id;
  fs.writeFileSync(file, JSON.stringify(tok));
}

/** Each call's last progress line in the runner's output, in call order (lines are rewritten with "\r"; a call starts at done 0). */
function lastProgress(out: string): CallProgress[] {
  const calls: CallProgress[] = [];
  for (const piece of out.split(/[\r\n]/)) {
    const m = /^\s+(.+?): (\d+)\/(\d+) forward passes(?: in ([\d.]+) (s|min|h))?/.exec(piece);
    if (!m) continue;
    const elapsedS = m[4] === undefined ? null : Number(m[4]) * { s: 1, min: 60, h: 3600 }[m[5] as "s" | "min" | "h"];
    const done = Number(m[2]);
    if (done === 0 || calls.length === 0 || calls.at(-1)!.label !== m[1])
      calls.push({ label: m[1], done, total: 0, elapsedS });
    Object.assign(calls.at(-1)!, { done, total: Number(m[3]), elapsedS });
  }
  return calls;
}

async function runNotebook(
  file: string,
  folder: string,
  perN: string,
  budgetS: number,
  checkpoint: string,
  journal: string,
) {
  const name = path.basename(file, ".ipynb");
  const out = fs.mkdtempSync(path.join(os.tmpdir(), `parenlens-scale-${name}-`));
  const forwardLog = path.join(out, "forwards");
  const env = {
    ...process.env,
    PARENLENS_MODEL: folder,
    PARENLENS_PER_N: perN === "all" ? "" : perN,
    PARENLENS_RESULTS_DIR: path.join(out, "results"),
    PARENLENS_FIGURES_DIR: path.join(out, "figures"),
    PARENLENS_FORWARD_LOG: forwardLog,
    ...(journal ? { PARENLENS_SWEEP_JOURNAL: journal } : {}),
  };
  const journal0 = journal ? journalBatches(journal) : 0;
  const python = path.join(ROOT, ".venv", "bin", "python");
  const runner = path.join(ROOT, "scripts", "notebooks", "run_notebooks.py");
  const args = [runner, "--out-dir", path.join(out, "notebooks"), "--timeout", "86400", file];
  const load0 = os.loadavg()[0];
  const t0 = performance.now();
  const child = spawn(python, args, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"] });
  let text = "";
  const keep = (chunk: Buffer, to: NodeJS.WriteStream) => {
    text += chunk.toString();
    to.write(chunk);
  };
  child.stdout.on("data", (c: Buffer) => keep(c, process.stdout));
  child.stderr.on("data", (c: Buffer) => keep(c, process.stderr));
  let stopped = false;
  const timer = budgetS > 0 ? setTimeout(() => ((stopped = true), child.kill("SIGINT")), budgetS * 1000) : null;
  const code: number = await new Promise((resolve) => child.on("close", (c) => resolve(c ?? 1)));
  if (timer) clearTimeout(timer);
  const run: NotebookRun = {
    notebook: name,
    checkpoint,
    perN,
    status: code === 0 ? "ran end to end" : stopped ? "stopped" : "failed",
    wallS: (performance.now() - t0) / 1000,
    forwards: fs.existsSync(forwardLog) ? Number(fs.readFileSync(forwardLog, "utf8")) : null,
    calls: lastProgress(text),
    loadAverage: [load0, os.loadavg()[0]],
    at: new Date().toISOString(),
    ...(journal ? { journalBatches: [journal0, journalBatches(journal)] as [number, number] } : {}),
  };
  fs.rmSync(out, { recursive: true, force: true });
  return run;
}

function readRuns(): NotebookRun[] {
  return fs.existsSync(RESULTS_JSON) ? (JSON.parse(fs.readFileSync(RESULTS_JSON, "utf8")) as NotebookRun[]) : [];
}

function section(runs: NotebookRun[]): string {
  const rows = runs.map((r) => {
    const calls = r.calls.map(
      (c) => `${c.label} ${c.done}/${c.total}${c.elapsedS === null ? "" : ` in ${c.elapsedS} s`}`,
    );
    const status = r.journalBatches ? `${r.status} (journal: ${r.journalBatches.join(" → ")} batches)` : r.status;
    return `| ${r.notebook} | ${r.checkpoint} | ${r.perN} | ${status} | ${r.wallS.toFixed(0)} | ${r.forwards ?? "?"} | ${r.loadAverage.map((x) => x.toFixed(1)).join(" → ")} | ${calls.join("; ") || "–"} |`;
  });
  return [
    `## The notebooks on CodeLlama-7b's shape`,
    ``,
    `Measured by \`flock /work/re-tools/bigmem.lock nice -n 10 node --import tsx scripts/bench/scale-notebooks.ts\` (runs from ${runs[0]?.at.slice(0, 16).replace("T", " ")} to ${runs.at(-1)?.at.slice(0, 16).replace("T", " ")} UTC) on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB RAM, shared with other work (1-minute load average before → after each run in the table).`,
    `Checkpoints: "7b-shaped" = the \`--scale\` checkpoint (CodeLlama-7b-hf's config.json, random bf16 weights, 12.55 GiB, 2 shards) with the embedded model's tokenizer padded to 32016 entries (the extra ones "<extra_i>", which no text encodes to), so studyData regenerates the committed prompts in memory (same seed, sizes and encodings); "layout" = the same config with d_model 64, d_mlp 64 and float32 weights (32 layers × 32 heads, vocabulary 32016): the same forward passes, to count them. Results, figures and executed notebooks went to a temp folder. Forward passes = HookedLlama.forwardPasses at the end (one per run / runWithCache / runWithHooks, one per swept site). "calls" = each long call's last progress line (forward passes done / announced, elapsed).`,
    ``,
    `| notebook | checkpoint | PARENLENS_PER_N | status | wall (s) | forward passes | load avg | calls |`,
    `| --- | --- | --- | --- | --- | --- | --- | --- |`,
    ...rows,
  ].join("\n");
}

async function main(): Promise<void> {
  if (process.argv.includes("--write-md")) {
    const runs = readRuns().filter((r) => r.checkpoint === flag("checkpoint", "7b-shaped"));
    writeBenchSection("scale-notebooks", section(runs));
    console.log(section(runs));
    return;
  }
  const layout = process.argv.includes("--layout");
  const base = process.env.PARENLENS_SCALE_DIR || "/tmp/i10/codellama-7b-shaped";
  const model = flag("model", "");
  const folder = model ? path.resolve(model) : layout ? `${base}-layout` : base;
  const checkpoint = model ? path.basename(folder) : layout ? "layout" : "7b-shaped";
  if (!model) {
    ensureCheckpoint(folder, layout);
    padTokenizer(folder);
  }
  const perN = flag("per-n", "1");
  const budgetS = Number(flag("budget-s", "0"));
  const journal = flag("journal", "") && path.resolve(flag("journal", ""));
  const wanted = flag("notebooks", "00,01,02,03,04").split(",");
  const files = fs
    .readdirSync(path.join(ROOT, "notebooks"))
    .filter((f) => f.endsWith(".ipynb") && wanted.some((w) => f.startsWith(w)))
    .sort()
    .map((f) => path.join(ROOT, "notebooks", f));
  for (const file of files) {
    const run = await runNotebook(file, folder, perN, budgetS, checkpoint, journal);
    console.log(`RESULT ${JSON.stringify(run)}`);
    fs.mkdirSync(path.dirname(RESULTS_JSON), { recursive: true });
    fs.writeFileSync(RESULTS_JSON, JSON.stringify([...readRuns(), run], null, 1) + "\n");
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
