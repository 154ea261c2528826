/**
 * Scale check: does the runtime load and run a checkpoint with CodeLlama-7b's real widths?
 *
 * Measures the float32 path (weightDtype "float32"; scale-7b.ts measures the default 2-byte one).
 * Writes (to a temp dir, never the repo) a seeded random BF16 checkpoint with CodeLlama-7b-hf's
 * own config.json (d_model 4096, 32 heads, d_mlp 11008, vocab 32016, untied, rope_theta 1e6)
 * but 2 layers (~1.3 GB on disk), plus a 1-layer variant that hard-links the same weights file
 * (extra tensors are ignored). Each variant is loaded and run in a fresh child process so its
 * peak RSS is its own: load time, RSS, peak RSS during load, forward time (batch 1 × 20 tokens,
 * median of 3 after a warm-up). Per layer = 2-layer − 1-layer; extrapolated to 32 layers.
 * Also checks that loading never holds more than one extra copy of the weights: the load's peak
 * RSS increase is compared with the float32 weight bytes.
 *
 * Prints the results and writes them into scripts/bench/BENCH.md (between scale-check markers).
 * Run: nice node --import tsx scripts/bench/scale-check.ts   (needs ~4 GB free RAM, ~3 GB disk in tmp)
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { BENCH_MD, writeBenchSection } from "./bench-md";
import { execFileSync } from "child_process";
import { HookedLlama } from "../../lib/src/runtime/hooked-llama";
import { loadLlamaConfig, LlamaConfig } from "../../lib/src/checkpoint/config";
import { writeRandomCheckpoint } from "../../lib/src/testing/random-checkpoint";
import { seededRandom } from "../../lib/src/core/random";

const MB = 1024 * 1024;
const GB = 1024 * MB;
const ROOT = path.join(__dirname, "..", "..");
const CODELLAMA_CONFIG = path.join(ROOT, "test", "fixtures", "checkpoints", "codellama-7b-hf.config.json");

interface ChildResult {
  layers: number;
  baselineRss: number; // bytes, before loading
  loadMs: number;
  rssAfterLoad: number;
  peakRssAfterLoad: number; // process maxRSS after loading (bytes)
  forwardMs: number[]; // timed runs, batch 1 × 20 tokens
  peakRssAfterRuns: number;
}

const peakRss = () => process.resourceUsage().maxRSS * 1024; // maxRSS is KiB

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** float32 bytes of every weight the runtime holds for this config. */
function f32WeightBytes(c: LlamaConfig, layers = c.numLayers): number {
  const d = c.hiddenSize;
  const perLayer =
    2 * d + d * c.numHeads * c.headDim * 2 + d * c.numKvHeads * c.headDim * 2 + 3 * d * c.intermediateSize;
  const params = c.vocabSize * d * (c.tieWordEmbeddings ? 1 : 2) + d + layers * perLayer;
  return params * 4;
}

/** In the child: load one variant, run it, print one JSON line. */
async function child(folder: string): Promise<void> {
  const config = loadLlamaConfig(folder);
  const baselineRss = process.memoryUsage().rss;
  const t0 = performance.now();
  const model = await HookedLlama.fromPretrained(folder, { tokenizer: false, weightDtype: "float32" }); // the float32 path, as the report says
  const loadMs = performance.now() - t0;
  const rssAfterLoad = process.memoryUsage().rss;
  const peakRssAfterLoad = peakRss();
  const rand = seededRandom(7);
  const ids = [Array.from({ length: 20 }, () => 3 + Math.floor(rand() * (config.vocabSize - 3)))];
  await model.run(ids); // warm-up (session creation)
  const forwardMs: number[] = [];
  for (let i = 0; i < 3; i++) {
    const s = performance.now();
    await model.run(ids);
    forwardMs.push(performance.now() - s);
  }
  const r: ChildResult = {
    layers: config.numLayers,
    baselineRss,
    loadMs,
    rssAfterLoad,
    peakRssAfterLoad,
    forwardMs,
    peakRssAfterRuns: peakRss(),
  };
  console.log("RESULT " + JSON.stringify(r));
}

function runChild(folder: string): ChildResult {
  const out = execFileSync(process.execPath, ["--import", "tsx", __filename, "--child", folder], {
    encoding: "utf8",
    maxBuffer: 16 * MB,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = out.split("\n").find((l) => l.startsWith("RESULT "));
  if (!line) throw new Error(`child for ${folder} printed no result:\n${out}`);
  return JSON.parse(line.slice(7));
}

async function main(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-scale-"));
  try {
    const codellama = JSON.parse(fs.readFileSync(CODELLAMA_CONFIG, "utf8"));
    const two = path.join(dir, "codellama-widths-2l");
    const t = performance.now();
    const { config, files } = writeRandomCheckpoint(two, {
      seed: 7,
      dtype: "BF16",
      configJson: { ...codellama, num_hidden_layers: 2 },
    });
    const writeS = (performance.now() - t) / 1000;
    const diskBytes = files.reduce((a, f) => a + fs.statSync(f).size, 0);
    console.log(`wrote ${two}: ${(diskBytes / GB).toFixed(2)} GiB bf16 in ${writeS.toFixed(1)} s`);

    // 1-layer variant: same weights file (hard link), config says 1 layer.
    const one = path.join(dir, "codellama-widths-1l");
    fs.mkdirSync(one);
    fs.writeFileSync(
      path.join(one, "config.json"),
      JSON.stringify(
        { ...JSON.parse(fs.readFileSync(path.join(two, "config.json"), "utf8")), num_hidden_layers: 1 },
        null,
        2,
      ),
    );
    fs.linkSync(path.join(two, "model.safetensors"), path.join(one, "model.safetensors"));

    const loadBefore = os.loadavg()[0];
    const r1 = runChild(one);
    const r2 = runChild(two);
    const loadAfter = os.loadavg()[0];
    const f1 = f32WeightBytes(config, 1);
    const f2 = f32WeightBytes(config, 2);
    const f32Layer = f2 - f1;
    const f32At32 = f32WeightBytes(config, 32);
    const fwd1 = median(r1.forwardMs);
    const fwd2 = median(r2.forwardMs);
    const perLayerMs = fwd2 - fwd1;
    const fixedMs = fwd1 - perLayerMs; // embedding, final norm, unembedding, session overhead
    const loadPerLayerS = (r2.loadMs - r1.loadMs) / 1000;
    const rssPerLayer = r2.rssAfterLoad - r1.rssAfterLoad;
    const loadPeakIncrease = r2.peakRssAfterLoad - r2.baselineRss;
    const extraCopies = loadPeakIncrease / f2 - 1; // 0 = exactly the f32 weights, 1 = one full extra copy
    const totalMem = os.totalmem();
    const machine = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), ${(totalMem / GB).toFixed(1)} GiB RAM, node ${process.version}, onnxruntime-node CPU; 1-minute load average ${loadBefore.toFixed(1)} before and ${loadAfter.toFixed(1)} after (shared machine)`;
    const g = (b: number) => (b / GB).toFixed(2);
    const lines = [
      `## Scale check: CodeLlama-7b widths, 2 random bf16 layers`,
      ``,
      `Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC by \`nice node --import tsx scripts/bench/scale-check.ts\` on ${machine}.`,
      `Checkpoint: CodeLlama-7b-hf's config.json with num_hidden_layers = 2 (d_model ${config.hiddenSize}, ${config.numHeads} heads, d_mlp ${config.intermediateSize}, vocab ${config.vocabSize}, untied), seeded random BF16 weights, ${g(diskBytes)} GiB on disk (written in ${writeS.toFixed(0)} s). The 1-layer variant reads the same file. Each variant ran in a fresh process; forward = \`model.run\` on batch 1 × 20 tokens, median of 3 after one warm-up.`,
      ``,
      `| | 1 layer | 2 layers | per layer (2 − 1) | extrapolated to 32 layers |`,
      `| --- | --- | --- | --- | --- |`,
      `| load time (s) | ${(r1.loadMs / 1000).toFixed(1)} | ${(r2.loadMs / 1000).toFixed(1)} | ${loadPerLayerS.toFixed(1)} | ${(r1.loadMs / 1000 + 31 * loadPerLayerS).toFixed(0)} |`,
      `| forward 1 × 20 tokens (ms) | ${fwd1.toFixed(0)} | ${fwd2.toFixed(0)} | ${perLayerMs.toFixed(0)} | ${(fixedMs + 32 * perLayerMs).toFixed(0)} |`,
      `| RSS after load (GiB) | ${g(r1.rssAfterLoad)} | ${g(r2.rssAfterLoad)} | ${g(rssPerLayer)} | ${g(r1.rssAfterLoad + 31 * rssPerLayer)} |`,
      `| peak RSS, load + runs (GiB) | ${g(r1.peakRssAfterRuns)} | ${g(r2.peakRssAfterRuns)} | ${g(r2.peakRssAfterRuns - r1.peakRssAfterRuns)} | ${g(r1.peakRssAfterRuns + 31 * (r2.peakRssAfterRuns - r1.peakRssAfterRuns))} |`,
      `| float32 weight bytes (GiB) | ${g(f1)} | ${g(f2)} | ${g(f32Layer)} | ${g(f32At32)} |`,
      ``,
      `- Forward time per layer: ${perLayerMs.toFixed(0)} ms for 20 tokens (${((20 / perLayerMs) * 1000).toFixed(0)} tokens/s per layer); fixed part (embedding, final norm, 32016-way unembedding, run overhead) ${fixedMs.toFixed(0)} ms; a 32-layer forward would take about ${((fixedMs + 32 * perLayerMs) / 1000).toFixed(1)} s on this machine.`,
      `- Memory: the runtime keeps every weight as float32 in JS, ${g(f32Layer)} GiB per layer; CodeLlama-7b's 32 layers need ${g(f32At32)} GiB of float32 weights (extrapolated RSS ${g(r1.rssAfterLoad + 31 * rssPerLayer)} GiB), **more than this machine's ${(totalMem / GB).toFixed(1)} GiB**: the real 7B model does not fit here as float32; it needs a machine with ≳ 32 GiB RAM.`,
      `- Loading holds at most one extra copy: during the 2-layer load the peak RSS rose by ${g(loadPeakIncrease)} GiB over the pre-load baseline for ${g(f2)} GiB of float32 weights (${(extraCopies * 100).toFixed(0)} % of one extra copy above the weights themselves) — ${extraCopies < 1 ? "**holds**" : "**does not hold**"}.`,
    ];
    const section = lines.join("\n");
    console.log("\n" + section);
    writeBenchSection("scale-check", section);
    console.log(`\nwritten to ${BENCH_MD}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const ci = process.argv.indexOf("--child");
(ci >= 0 ? child(process.argv[ci + 1]) : main()).catch((e) => {
  console.error(e);
  process.exit(1);
});
