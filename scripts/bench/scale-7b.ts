/**
 * `npm run bench -- --scale`: CodeLlama-7b's exact shape on this machine.
 *
 * Writes (once; reused while it is there) a seeded random BF16 checkpoint with CodeLlama-7b-hf's
 * own config.json (32 layers, d_model 4096, 32 heads, d_mlp 11008, vocab 32016, untied), sharded
 * in two files with model.safetensors.index.json as the Hub's, under $PARENLENS_SCALE_DIR
 * (default /tmp/i10/codellama-7b-shaped; never the repo). A fresh child process then loads it
 * (weights held as 2-byte values) and measures load time, peak RSS over the weight bytes on disk,
 * tokens/s at 1 × 20 and 8 × 32 tokens for a plain run, a selective cache and one intervention,
 * and a per-head zero-ablation sweep of one layer (32 heads): one runWithHooks per head (today's
 * sweep; `--baseline-sites N` of them timed, default 4, the per-head time × 32 reported as the
 * estimate for all 32) against runSites (upstream once, downstream per head) on all 32, whose
 * results are checked equal to the one-run-per-head ones.
 *
 * Writes the results into scripts/bench/BENCH.md (section scale-7b). `--delete` removes the
 * checkpoint folder afterwards (13.5 GB). `--ep cuda` runs it on the GPU (section scale-7b-cuda). Needs ~17 GB free RAM: run it alone, e.g.
 *   flock /work/re-tools/bigmem.lock nice npm run bench -- --scale --delete
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { execFileSync } from "child_process";
import { writeBenchSection, BENCH_MD } from "./bench-md";
import { HookedLlama } from "../../lib/src/runtime/hooked-llama";
import { writeRandomCheckpoint } from "../../lib/src/testing/random-checkpoint";
import { seededRandom } from "../../lib/src/core/random";
import { bf16ToFloat32Into } from "../../lib/src/checkpoint/safetensors";
import type { Intervention } from "../../lib/src/hooks/interventions";
import { flag } from "./cli";

const GB = 1024 ** 3;
const ROOT = path.join(__dirname, "..", "..");
const CODELLAMA_CONFIG = path.join(ROOT, "test", "fixtures", "checkpoints", "codellama-7b-hf.config.json");

const peakRss = () => process.resourceUsage().maxRSS * 1024; // bytes (maxRSS is KiB)

interface ModeResult {
  shape: string;
  mode: string;
  ms: number;
  tokensPerS: number;
}

interface ChildResult {
  loadMs: number;
  weightBytesHeld: number;
  peakAfterLoad: number;
  peakAfterRuns: number;
  modes: ModeResult[];
  layer: number;
  heads: number;
  baselineSites: number;
  baselinePerSiteMs: number;
  reuseMs: number;
  reuseEqual: boolean;
  convertLayerMs: number;
}

/** The layer the intervention and the sweep edit: the middle one (16 of CodeLlama-7b's 32). */
const sweepLayer = (model: HookedLlama) => model.config.numLayers >> 1;

function randomIds(batch: number, pos: number, vocab: number, seed: number): number[][] {
  const rand = seededRandom(seed);
  return Array.from({ length: batch }, () => [
    1,
    ...Array.from({ length: pos - 1 }, () => 3 + Math.floor(rand() * (vocab - 3))),
  ]);
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t = performance.now();
  const r = await fn();
  return [performance.now() - t, r];
}

/** Plain run, selective cache and one intervention at one shape: one timed run each (after a warm-up at 1 × 20). */
async function measureModes(model: HookedLlama, batch: number, pos: number): Promise<ModeResult[]> {
  const ids = randomIds(batch, pos, model.config.vocabSize, 7 + batch);
  const SWEEP_LAYER = sweepLayer(model);
  const names = [`blocks.${SWEEP_LAYER}.hook_resid_post`, `blocks.${SWEEP_LAYER}.attn.hook_pattern`];
  const zero: Intervention[] = [{ hook: `blocks.${SWEEP_LAYER}.attn.hook_z`, kind: "zero", heads: [5] }];
  const modes: [string, () => Promise<unknown>][] = [
    ["plain run", () => model.run(ids)],
    [`selective cache (${names.length} hooks)`, () => model.runWithCache(ids, { names })],
    ["one intervention (zero 1 head)", () => model.runWithHooks(ids, zero)],
  ];
  const out: ModeResult[] = [];
  for (const [mode, fn] of modes) {
    if (batch === 1) await fn(); // warm-up: builds the sessions of this plan (shared by every shape)
    const [ms] = await timed(fn);
    out.push({ shape: `${batch} × ${pos}`, mode, ms, tokensPerS: (batch * pos * 1000) / ms });
    console.error(`  ${batch} × ${pos} ${mode}: ${ms.toFixed(0)} ms`);
  }
  return out;
}

/** Per-head zero ablation of one layer: one run per head (k timed) vs runSites on all heads. */
async function measureSweep(model: HookedLlama, k: number) {
  const ids = randomIds(1, 20, model.config.vocabSize, 99);
  const H = model.config.numHeads;
  const SWEEP_LAYER = sweepLayer(model);
  const sites = Array.from({ length: H }, (_, h): Intervention[] => [
    { hook: `blocks.${SWEEP_LAYER}.attn.hook_z`, kind: "zero", heads: [h] },
  ]);
  await model.runWithHooks(ids, sites[0], { logitsAt: "last" }); // warm-up: the sweep's plan
  const baseline: Float32Array[] = [];
  const [baseMs] = await timed(async () => {
    for (let h = 0; h < k; h++) baseline.push((await model.runWithHooks(ids, sites[h], { logitsAt: "last" })).data);
  });
  console.error(`  sweep baseline: ${k} heads in ${baseMs.toFixed(0)} ms`);
  // one batch per head after the shared upstream run (bit for bit); batched: scale-site-batches.ts
  const [reuseMs, reused] = await timed(() => model.runSites(ids, sites, { logitsAt: "last", sitesPerBatch: 1 }));
  console.error(`  sweep reuse: ${H} heads in ${reuseMs.toFixed(0)} ms`);
  const reuseEqual = baseline.every(
    (b, h) => b.length === reused[h].data.length && b.every((v, i) => v === reused[h].data[i]),
  );
  return { layer: SWEEP_LAYER, heads: H, baselineSites: k, baselinePerSiteMs: baseMs / k, reuseMs, reuseEqual };
}

/** JS bf16 → float32 conversion time of one layer's weights (what each run pays per layer). */
function measureConversion(model: HookedLlama): number {
  const c = model.config;
  const n = 4 * c.hiddenSize * c.numHeads * c.headDim + 3 * c.hiddenSize * c.intermediateSize;
  const src = new Uint16Array(n).map((_, i) => (i * 40503) & 0x3fff);
  const dst = new Float32Array(n);
  bf16ToFloat32Into(src, dst); // warm-up
  const t = performance.now();
  bf16ToFloat32Into(src, dst);
  return performance.now() - t;
}

async function child(folder: string): Promise<void> {
  const executionProvider = flag("ep", "cpu") === "cuda" ? "cuda" : "cpu";
  const [loadMs, model] = await timed(() =>
    HookedLlama.fromPretrained(folder, { tokenizer: false, executionProvider }),
  );
  const peakAfterLoad = peakRss();
  console.error(`  loaded in ${(loadMs / 1000).toFixed(1)} s, peak RSS ${(peakAfterLoad / GB).toFixed(2)} GiB`);
  const modes = [...(await measureModes(model, 1, 20)), ...(await measureModes(model, 8, 32))];
  const sweep = await measureSweep(model, Number(flag("baseline-sites", "4")));
  const peakAfterRuns = peakRss();
  const r: ChildResult = {
    loadMs,
    weightBytesHeld: model.weightBytes,
    peakAfterLoad,
    peakAfterRuns,
    modes,
    ...sweep,
    convertLayerMs: measureConversion(model),
  };
  console.log("RESULT " + JSON.stringify(r));
}

/** The checkpoint folder, written unless a complete one is there. */
function ensureCheckpoint(folder: string): { files: string[]; writeS: number | null } {
  const done = path.join(folder, ".complete");
  if (!fs.existsSync(done)) {
    const t = performance.now();
    const codellama = JSON.parse(fs.readFileSync(CODELLAMA_CONFIG, "utf8"));
    writeRandomCheckpoint(folder, { seed: 7, dtype: "BF16", configJson: codellama, shards: 2 });
    fs.writeFileSync(done, "");
    const writeS = (performance.now() - t) / 1000;
    return { files: shardFiles(folder), writeS };
  }
  return { files: shardFiles(folder), writeS: null };
}

function shardFiles(folder: string): string[] {
  return fs
    .readdirSync(folder)
    .filter((f) => f.endsWith(".safetensors"))
    .map((f) => path.join(folder, f));
}

function report(r: ChildResult, diskBytes: number, writeS: number | null, machine: string): string {
  const g = (b: number) => (b / GB).toFixed(2);
  const ratio = r.peakAfterRuns / diskBytes;
  const H = r.heads;
  const SWEEP_LAYER = r.layer;
  const baseAll = r.baselinePerSiteMs * H;
  return [
    `## CodeLlama-7b shape: 32 random bf16 layers, weights held as 2-byte values`,
    ``,
    `Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC by \`flock /work/re-tools/bigmem.lock nice npm run bench -- --scale\` on ${machine}.`,
    `Checkpoint: CodeLlama-7b-hf's config.json unchanged (32 layers, d_model 4096, 32 heads, d_mlp 11008, vocab 32016, untied), seeded random BF16 weights in 2 shards + model.safetensors.index.json, ${g(diskBytes)} GiB on disk${writeS === null ? "" : ` (written in ${writeS.toFixed(0)} s)`}, in a temp folder. Loaded with the default \`weightDtype: "stored"\` in a fresh process; each mode ran once at 1 × 20 as a warm-up (session creation; plans do not depend on the shape), then once timed per shape.`,
    ``,
    `| measure | value |`,
    `| --- | --- |`,
    `| load time (fromPretrained, incl. the plain session) | ${(r.loadMs / 1000).toFixed(1)} s |`,
    `| weight bytes held | ${g(r.weightBytesHeld)} GiB |`,
    `| peak RSS after load | ${g(r.peakAfterLoad)} GiB |`,
    `| peak RSS after every run below | ${g(r.peakAfterRuns)} GiB = **${ratio.toFixed(3)} × the weight bytes on disk** (target ≤ 1.25; a float32 copy would be 2 ×) |`,
    `| bf16 → float32 conversion of one layer's weights in JS | ${r.convertLayerMs.toFixed(0)} ms (× 32 layers = ${((r.convertLayerMs * 32) / 1000).toFixed(1)} s a forward pass) |`,
    ``,
    `| shape (batch × tokens) | mode | time (ms) | tokens/s |`,
    `| --- | --- | --- | --- |`,
    ...r.modes.map((m) => `| ${m.shape} | ${m.mode} | ${m.ms.toFixed(0)} | ${m.tokensPerS.toFixed(2)} |`),
    ``,
    `Per-head zero-ablation sweep of blocks.${SWEEP_LAYER}.attn.hook_z (${H} heads, batch 1 × 20, logits at the last position):`,
    ``,
    `| | time |`,
    `| --- | --- |`,
    `| one runWithHooks per head (today's sweep): ${r.baselineSites} heads timed | ${(r.baselinePerSiteMs / 1000).toFixed(1)} s a head → ${(baseAll / 1000).toFixed(0)} s for ${H} (estimate: ${r.baselineSites} measured, × ${H}/${r.baselineSites}) |`,
    `| runSites, upstream once + downstream per head: all ${H} heads, measured | ${(r.reuseMs / 1000).toFixed(1)} s |`,
    `| speed-up | **${(baseAll / r.reuseMs).toFixed(1)} ×** |`,
    ``,
    `- runSites' logits for the ${r.baselineSites} timed heads ${r.reuseEqual ? "equal" : "**differ from**"} the one-run-per-head logits bit for bit.`,
  ].join("\n");
}

export async function scaleMain(): Promise<void> {
  const folder = process.env.PARENLENS_SCALE_DIR || "/tmp/i10/codellama-7b-shaped";
  fs.mkdirSync(path.dirname(folder), { recursive: true });
  const { files, writeS } = ensureCheckpoint(folder);
  const diskBytes = files.reduce((a, f) => a + fs.statSync(f).size, 0);
  console.error(
    `checkpoint ${folder}: ${(diskBytes / GB).toFixed(2)} GiB${writeS === null ? " (reused)" : ` written in ${writeS.toFixed(0)} s`}`,
  );
  const loadBefore = os.loadavg()[0];
  const ep = flag("ep", "cpu");
  const args = [
    "--import",
    "tsx",
    __filename,
    "--child",
    folder,
    "--baseline-sites",
    flag("baseline-sites", "4"),
    "--ep",
    ep,
  ];
  const out = execFileSync(process.execPath, args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });
  const line = out.split("\n").find((l) => l.startsWith("RESULT "));
  if (!line) throw new Error(`the measuring process printed no result:\n${out}`);
  const r: ChildResult = JSON.parse(line.slice(7));
  const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), ${(os.totalmem() / GB).toFixed(1)} GiB RAM, node ${process.version}, onnxruntime-node, execution provider ${ep}; 1-minute load average ${loadBefore.toFixed(1)} before and ${os.loadavg()[0].toFixed(1)} after (shared machine)`;
  const section = report(r, diskBytes, writeS, machine);
  console.log(section);
  writeBenchSection(ep === "cpu" ? "scale-7b" : `scale-7b-${ep}`, section);
  console.log(`\nwritten to ${BENCH_MD}`);
  if (process.argv.includes("--delete")) fs.rmSync(folder, { recursive: true, force: true });
}

if (require.main === module) {
  const ci = process.argv.indexOf("--child");
  (ci >= 0 ? child(process.argv[ci + 1]) : scaleMain()).catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
