/**
 * `npm run bench`: tokens/s of the hooked runtime on one checkpoint, side by side —
 * plain forward (`run`), forward with a full cache (every hook point, per-head results included),
 * and forward with one intervention (`runWithHooks`, zeroing one head's z in the middle layer) —
 * as medians over repeated runs (rotating blocks per mode) after warm-up, with ratios against the plain forward and the
 * process' peak RSS. Two shapes: batch 1 × 20 tokens and batch 32 × 32 tokens.
 *
 * Checkpoint: `--checkpoint <folder>`; default the first model under data/models/, else a seeded
 * random checkpoint (6 layers, d_model 256, 8 heads, d_mlp 688, vocab 4096) written to a temp dir.
 * Other flags: `--runs N` (default 20), `--warmup N` (default 2), `--ep cpu|cuda`, `--threads N`
 * (onnxruntime intra-op threads; default: the runtime's default), `--write-md` (also write the
 * table into scripts/bench/BENCH.md between markers named after the thread setting).
 * `--scale`: the CodeLlama-7b-shaped benchmark instead (scripts/bench/scale-7b.ts).
 * `--peers`: side by side with TransformerLens and transformers instead (scripts/bench/peers.ts;
 * needs `scripts/setup.sh --bench`). Run it with `nice` on a shared machine.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { BENCH_MD, writeBenchSection } from "./bench-md";
import { scaleMain } from "./scale-7b";
import { HookedLlama } from "../../lib/src/runtime/hooked-llama";
import { hookNames } from "../../lib/src/hooks/hook-points";
import { loadLlamaConfig } from "../../lib/src/checkpoint/config";
import { writeRandomCheckpoint } from "../../lib/src/testing/random-checkpoint";
import { seededRandom } from "../../lib/src/core/random";
import type { Intervention } from "../../lib/src/hooks/interventions";
import { flag } from "./cli";

const MB = 1024 * 1024;
const ROUNDS = 4;
const peakRssMB = () => (process.resourceUsage().maxRSS * 1024) / MB; // maxRSS is in KiB
const rssMB = () => process.memoryUsage().rss / MB;

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The checkpoint to measure and a description of where it came from. */
function pickCheckpoint(): { folder: string; origin: string; cleanup?: () => void } {
  const given = flag("checkpoint", "");
  if (given) return { folder: path.resolve(given), origin: "--checkpoint" };
  const models = path.join(__dirname, "..", "..", "data", "models");
  if (fs.existsSync(models)) {
    for (const e of fs.readdirSync(models).sort()) {
      const f = path.join(models, e);
      if (fs.existsSync(path.join(f, "config.json"))) return { folder: f, origin: "embedded model" };
    }
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-bench-"));
  const { folder } = writeRandomCheckpoint(path.join(dir, "random-6l-256"), {
    seed: 1,
    config: {
      numLayers: 6,
      hiddenSize: 256,
      numHeads: 8,
      numKvHeads: 8,
      headDim: 32,
      intermediateSize: 688,
      vocabSize: 4096,
      maxPositionEmbeddings: 512,
    },
  });
  return {
    folder,
    origin: "random checkpoint (no model under data/models/)",
    cleanup: () => fs.rmSync(dir, { recursive: true, force: true }),
  };
}

function randomBatch(vocab: number, batch: number, length: number, seed: number): number[][] {
  const rand = seededRandom(seed);
  // Token ids from 3 up (skip the usual special ids 0-2).
  return Array.from({ length: batch }, () => Array.from({ length }, () => 3 + Math.floor(rand() * (vocab - 3))));
}

interface Row {
  shape: string;
  mode: string;
  medianMs: number;
  bestMs: number;
  tokensPerS: number;
  ratio: number;
  switchMs: number; // median of the first run after another mode's run
  rssMB: number;
  peakMB: number;
}

async function main(): Promise<void> {
  if (process.argv.includes("--peers")) return (await import("./peers")).peersMain(); // side by side with TL / HF
  const runs = Number(flag("runs", "20"));
  const warmup = Number(flag("warmup", "2"));
  const ep = flag("ep", "cpu") as "cpu" | "cuda";
  const { folder, origin, cleanup } = pickCheckpoint();
  const config = loadLlamaConfig(folder);
  const t0 = performance.now();
  const threadsFlag = flag("threads", "");
  const threads = threadsFlag ? Number(threadsFlag) : undefined;
  const model = await HookedLlama.fromPretrained(folder, { executionProvider: ep, threads, tokenizer: false });
  const loadMs = performance.now() - t0;
  const all = hookNames(config); // every hook point, attn.hook_result included
  const mid = Math.floor(config.numLayers / 2);
  const intervention: Intervention[] = [{ hook: `blocks.${mid}.attn.hook_z`, kind: "zero", heads: [0] }];

  console.log(`checkpoint: ${folder} (${origin})`);
  console.log(
    `model: ${config.numLayers} layers, d_model ${config.hiddenSize}, ${config.numHeads} heads (${config.numKvHeads} kv), d_mlp ${config.intermediateSize}, vocab ${config.vocabSize}`,
  );
  const loadBefore = os.loadavg()[0];
  console.log(
    `machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), node ${process.version}, execution provider ${ep}, intra-op threads ${threads ?? "default"}`,
  );
  console.log(
    `load: ${loadMs.toFixed(0)} ms; runs: median of ${Math.ceil(runs / ROUNDS) * ROUNDS} runs per mode (${ROUNDS} rotating blocks) after ${warmup} warm-up rounds`,
  );
  console.log(`full cache = ${all.length} hook points; intervention = zero head 0 of blocks.${mid}.attn.hook_z\n`);

  const modes: [string, (ids: number[][]) => Promise<unknown>][] = [
    ["plain forward", (ids) => model.run(ids)],
    ["one intervention", (ids) => model.runWithHooks(ids, intervention)],
    ["full cache", (ids) => model.runWithCache(ids, { names: all })],
  ];
  const rows: Row[] = [];
  for (const [batch, length] of [
    [1, 20],
    [32, 32],
  ]) {
    const ids = randomBatch(config.vocabSize, batch, length, batch * 1000 + length);
    const shape = `${batch} × ${length}`;
    // Memory pass: each mode once, in order; maxRSS is monotonic, so each row's peak includes the
    // rows above it and an increase is that mode's own extra memory. Doubles as the first warm-up.
    const mem = new Map<string, { rss: number; peak: number }>();
    for (const [mode, fn] of modes) {
      await fn(ids);
      mem.set(mode, { rss: rssMB(), peak: peakRssMB() });
    }
    for (let i = 1; i < warmup; i++) for (const [, fn] of modes) await fn(ids);
    // Timing pass: ROUNDS rounds; in each, every mode runs a block of consecutive runs. Rotating
    // blocks spread load from other processes over every mode; the first run of a block follows a
    // run of another mode (another ONNX session), which is slower, so it is timed separately.
    const steady = new Map<string, number[]>(modes.map(([m]) => [m, []]));
    const switched = new Map<string, number[]>(modes.map(([m]) => [m, []]));
    const perBlock = Math.ceil(runs / ROUNDS);
    for (let r = 0; r < ROUNDS; r++) {
      for (const [mode, fn] of modes) {
        for (let i = 0; i <= perBlock; i++) {
          const s = performance.now();
          await fn(ids);
          (i === 0 ? switched : steady).get(mode)!.push(performance.now() - s);
        }
      }
    }
    const plainMs = median(steady.get("plain forward")!);
    for (const [mode] of modes) {
      const med = median(steady.get(mode)!);
      rows.push({
        shape,
        mode,
        medianMs: med,
        bestMs: Math.min(...steady.get(mode)!),
        tokensPerS: (batch * length) / (med / 1000),
        ratio: plainMs / med,
        switchMs: median(switched.get(mode)!),
        rssMB: mem.get(mode)!.rss,
        peakMB: mem.get(mode)!.peak,
      });
    }
  }

  const loadAfter = os.loadavg()[0];
  console.log(
    `1-minute load average (other users of this machine included): ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after\n`,
  );
  const out: string[] = [];
  const say = (line: string) => (console.log(line), out.push(line));
  const header =
    "| batch × tokens | mode | median ms | best ms | tokens/s (median) | vs plain | first run after another mode (ms) | RSS after (MB) | peak RSS so far (MB) |";
  say(header);
  say(
    "|" +
      header
        .split("|")
        .slice(1, -1)
        .map(() => " --- ")
        .join("|") +
      "|",
  );
  for (const r of rows) {
    say(
      `| ${r.shape} | ${r.mode} | ${r.medianMs.toFixed(2)} | ${r.bestMs.toFixed(2)} | ${r.tokensPerS.toFixed(0)} | ${r.ratio.toFixed(2)}× | ${r.switchMs.toFixed(2)} | ${r.rssMB.toFixed(0)} | ${r.peakMB.toFixed(0)} |`,
    );
  }
  console.log(
    "\n'vs plain' = tokens/s of the mode / tokens/s of the plain forward on the same shape (1.00× = as fast).",
  );
  if (process.argv.includes("--write-md")) {
    const md = [
      `## Hooked runtime: plain forward vs full cache vs one intervention (intra-op threads: ${threads ?? "default"})`,
      "",
      `Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC by \`nice npm run bench -- ${process.argv.slice(2).join(" ")}\` on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), node ${process.version}, execution provider ${ep}, onnxruntime intra-op threads ${threads ?? "onnxruntime's default"}; 1-minute load average ${loadBefore.toFixed(1)} before and ${loadAfter.toFixed(1)} after (the machine is shared: absolute times are noisy, ratios less so).`,
      `Checkpoint: ${origin === "embedded model" ? path.relative(path.join(__dirname, "..", ".."), folder) : origin} — ${config.numLayers} layers, d_model ${config.hiddenSize}, ${config.numHeads} heads (${config.numKvHeads} kv), d_mlp ${config.intermediateSize}, vocab ${config.vocabSize}; load ${loadMs.toFixed(0)} ms.`,
      `Median of ${Math.ceil(runs / ROUNDS) * ROUNDS} runs per mode, in ${ROUNDS} rounds of consecutive-run blocks per mode, after ${warmup} warm-up rounds; the first run of each block (right after another mode, i.e. another ONNX session, ran) is timed apart in its own column. Full cache = all ${all.length} hook points (per-head hook_result included); intervention = zero head 0 of blocks.${mid}.attn.hook_z. "vs plain" = tokens/s ÷ plain tokens/s on the same shape. RSS is the whole process, measured in a first pass that runs each mode once in the order shown (peak RSS is monotonic: a row's increase over the row above is that mode's extra memory); timings come from the second pass.`,
      "",
      ...out,
    ].join("\n");
    writeBenchSection(flag("threads", "") ? `bench-threads-${flag("threads", "")}` : "bench", md);
    console.log(`written to ${BENCH_MD}`);
  }
  cleanup?.();
}

(process.argv.includes("--scale") ? scaleMain() : main()).catch((e) => {
  console.error(e);
  process.exit(1);
});
