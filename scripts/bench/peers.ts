/**
 * `npm run bench -- --peers`: parenlens side by side with TransformerLens (3: HookedTransformer,
 * 4: TransformerBridge) and transformers (LlamaForCausalLM, eager) on the same checkpoint and the
 * same token batches, in interleaved rounds (each round runs every mode once per tool, the tools'
 * order rotating), per mode: plain forward, full cache, selective cache (the lens' hooks), one
 * intervention (zero head 0 of the middle layer's z), logit lens (every resid_pre/resid_post at the
 * last position through the final norm onto the whole vocabulary), DLA (decompose_resid through the
 * cached final norm onto four W_U columns), head projections (every head's output at the last
 * position through the cached final norm onto the whole vocabulary) and a per-head ablation sweep
 * (four heads of the middle layer). Peak RSS: each tool's worker over the whole run, and fresh
 * processes that run one mode once (the memory goals).
 *
 * Peers run in Python venvs made by `scripts/setup.sh --bench` (.venv-bench: transformers + TL 4;
 * .venv-bench-tl3: TL 3); a tool whose venv is missing is skipped (said in the output). Never run
 * in CI or a unit test. Flags: `--checkpoint <folder>` (default: the embedded model), `--rounds N`
 * (default 3), `--shapes 1x20,32x32,8x128`, `--tools tl,bridge,hf`, `--threads N` (every tool at N
 * threads: parenlens' `threads`, the peers' torch.set_num_threads; section "peers-threads-N"), `--write-md` (section "peers"
 * of scripts/bench/BENCH.md). Run it under `flock /work/re-tools/bigmem.lock` on a shared machine.
 */
import { spawn, ChildProcessWithoutNullStreams, execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as readline from "readline";
import { writeBenchSection } from "./bench-md";
import { HookedLlama } from "../../lib/src/runtime/hooked-llama";
import { seededRandom } from "../../lib/src/core/random";
import { Tensor } from "../../lib/src/core/tensor";
import type { ActivationCache } from "../../lib/src/hooks/activation-cache";
import { expectedLlamaWeights } from "../../lib/src/checkpoint/weights";
import { flag } from "./cli";

const ROOT = path.join(__dirname, "..", "..");
const MB = 1024 * 1024;
const MODES = [
  "plain",
  "full_cache",
  "selective_cache",
  "intervention",
  "logit_lens",
  "dla",
  "head_projections",
  "ablation_sweep",
] as const;
type Mode = (typeof MODES)[number];
const SWEEP_HEADS = 4;
const PEERS: Record<string, { label: string; venv: string }> = {
  tl: { label: "TL 3 HookedTransformer", venv: ".venv-bench-tl3" },
  bridge: { label: "TL 4 TransformerBridge", venv: ".venv-bench" },
  hf: { label: "HF eager", venv: ".venv-bench" },
};

/** `--threads N`: every tool at N intra-op threads (undefined: each tool's default). */
function threadsFlag(): number | undefined {
  const t = flag("threads", "");
  return t ? Number(t) : undefined;
}
/** The peers' environment: PEERS_THREADS for `--threads` (peers.py calls torch.set_num_threads). */
function peerEnv(): NodeJS.ProcessEnv {
  const t = threadsFlag();
  return t === undefined ? process.env : { ...process.env, PEERS_THREADS: String(t) };
}
/** Peak RSS since this process' exec (VmHWM; maxRSS would carry the parent's over fork + exec). */
function peakMB(): number {
  const hwm = fs.existsSync("/proc/self/status") && /VmHWM:\s+(\d+)/.exec(fs.readFileSync("/proc/self/status", "utf8"));
  return hwm ? Number(hwm[1]) / 1024 : (process.resourceUsage().maxRSS * 1024) / MB;
}
function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** The same token batch for every tool: seeded ids from 3 up (skipping the usual special ids). */
export function benchIds(vocab: number, batch: number, length: number): number[][] {
  const rand = seededRandom(batch * 1000 + length);
  return Array.from({ length: batch }, () => Array.from({ length }, () => 3 + Math.floor(rand() * (vocab - 3))));
}

/** One mode with parenlens: the same work as scripts/bench/peers.py does with the peers. */
export async function parenlensMode(model: HookedLlama, mode: Mode, ids: number[][]): Promise<unknown> {
  const L = model.config.numLayers;
  const mid = Math.floor(L / 2);
  const zero = (head: number) => [{ hook: `blocks.${mid}.attn.hook_z`, kind: "zero" as const, heads: [head] }];
  const points = Array.from({ length: L }, (_, l) => [
    `blocks.${l}.hook_resid_pre`,
    `blocks.${l}.hook_resid_post`,
  ]).flat();
  const stackAt = (cache: ActivationCache, names: string[]) => {
    const parts = names.map((n) => cache.atPos(n, "last").data); // [batch, d_model] each
    const data = new Float32Array(parts.length * parts[0].length);
    parts.forEach((p, i) => data.set(p, i * p.length));
    return new Tensor(data, [names.length, ids.length, model.config.hiddenSize], ["point", "batch", "d_model"]);
  };
  switch (mode) {
    case "plain":
      return model.run(ids);
    case "full_cache":
      return model.runWithCache(ids);
    case "selective_cache":
      return model.runWithCache(ids, { names: [...points, "ln_final.hook_scale"] });
    case "intervention":
      return model.runWithHooks(ids, zero(0));
    case "logit_lens": {
      const { cache } = await model.runWithCache(ids, { names: [...points, "ln_final.hook_scale"], logitsAt: "last" });
      return model.unembed(stackAt(cache, points), { norm: "own-rms" }); // [point, batch, vocab]
    }
    case "dla": {
      const names = (n: string) => /hook_embed|hook_attn_out|hook_mlp_out|ln_final.hook_scale/.test(n);
      const { cache } = await model.runWithCache(ids, { names, logitsAt: "last" });
      const { stack } = cache.decomposeResid({ pos: "last", applyLn: true }); // [component, batch, d_model]
      return model.unembed(stack, { columns: [3, 4, 5, 6] }); // [component, batch, column]
    }
    case "head_projections": {
      const names = (n: string) => /attn.hook_z|ln_final.hook_scale/.test(n);
      const { cache } = await model.runWithCache(ids, { names, logitsAt: "last" });
      const { stack } = cache.stackHeadResults({ pos: "last", applyLn: true }); // [layer*head, batch, d_model]
      return model.unembed(stack); // [layer*head, batch, vocab]
    }
    case "ablation_sweep": {
      const out = [];
      for (let h = 0; h < SWEEP_HEADS; h++) out.push(await model.runWithHooks(ids, zero(h), { logitsAt: "last" }));
      return out;
    }
  }
}

/** A peer worker: scripts/bench/peers.py in its venv, one JSON line per command. */
class Peer {
  private readonly lines: AsyncIterableIterator<string>;
  /** the end of the worker's stderr (progress bars, warnings, a traceback) */
  stderr = "";
  private constructor(
    readonly tool: string,
    private readonly child: ChildProcessWithoutNullStreams,
  ) {
    this.lines = readline.createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }
  static async start(tool: string, folder: string): Promise<{ peer: Peer; ready: Record<string, unknown> }> {
    const python = path.join(ROOT, PEERS[tool].venv, "bin", "python");
    const child = spawn(python, [path.join(__dirname, "peers.py"), tool, folder], {
      stdio: ["pipe", "pipe", "pipe"],
      env: peerEnv(),
    });
    const peer = new Peer(tool, child);
    child.stderr.on("data", (d: Buffer) => (peer.stderr = (peer.stderr + d.toString()).slice(-2000))); // kept for errors
    return { peer, ready: await peer.read() };
  }
  async ask(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    this.child.stdin.write(JSON.stringify(cmd) + "\n");
    return this.read();
  }
  async quit(): Promise<void> {
    this.child.stdin.write(JSON.stringify({ cmd: "quit" }) + "\n");
    await new Promise((r) => this.child.on("close", r));
  }
  private async read(): Promise<Record<string, unknown>> {
    const { value, done } = await this.lines.next();
    if (done) throw new Error(`peer ${this.tool} closed its output; its stderr ended with:\n${this.stderr}`);
    return JSON.parse(value);
  }
}

/** Peak RSS of a fresh process that loads the checkpoint and runs one mode once on `ids`. */
function freshPeak(tool: string, folder: string, mode: Mode, ids: number[][]): { peakMB: number; afterLoadMB: number } {
  const input = JSON.stringify({ ids }) + "\n";
  const out =
    tool === "parenlens"
      ? execFileSync(
          process.execPath,
          [
            "--import",
            "tsx",
            __filename,
            "--memory-child",
            mode,
            "--checkpoint",
            folder,
            ...(threadsFlag() === undefined ? [] : ["--threads", String(threadsFlag())]),
          ],
          {
            input,
            cwd: ROOT,
          },
        )
      : execFileSync(
          path.join(ROOT, PEERS[tool].venv, "bin", "python"),
          [path.join(__dirname, "peers.py"), tool, folder, mode],
          {
            input,
            stdio: ["pipe", "pipe", "ignore"],
            env: peerEnv(),
          },
        );
  return JSON.parse(out.toString().trim().split("\n").pop()!);
}

/** The child of freshPeak for parenlens: load, run the mode once, print peak RSS and the cache's bytes. */
async function memoryChild(folder: string, mode: Mode): Promise<void> {
  const { ids } = JSON.parse(fs.readFileSync(0, "utf8"));
  const model = await HookedLlama.fromPretrained(folder, { tokenizer: false, threads: threadsFlag() });
  const afterLoadMB = peakMB();
  const out = await parenlensMode(model, mode, ids);
  let cacheBytes = 0;
  const cache = (out as { cache?: ActivationCache }).cache;
  if (cache) for (const n of cache.names()) cacheBytes += cache.get(n).data.byteLength;
  const peak = peakMB();
  let weightBytes = 0;
  for (const shape of expectedLlamaWeights(model.config).values()) weightBytes += 4 * shape.reduce((a, d) => a * d, 1);
  console.log(JSON.stringify({ afterLoadMB, peakMB: peak, cacheMB: cacheBytes / MB, weightMB: weightBytes / MB }));
}

/** Largest |a − b| / max |b| (logit agreement of two tools). */
function agreement(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0,
    m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(b[i]));
  }
  return d / m;
}

type Times = Map<string, number[]>; // `${shape}|${mode}|${tool}` → ms of each round
type Say = (line: string) => void;

/** Start each wanted peer whose venv exists (said when skipped). */
async function startPeers(folder: string, wanted: string[], say: Say): Promise<{ peers: Peer[]; versions: string[] }> {
  const peers: Peer[] = [];
  const versions: string[] = [];
  for (const tool of wanted) {
    if (!fs.existsSync(path.join(ROOT, PEERS[tool].venv, "bin", "python"))) {
      say(`skipping ${PEERS[tool].label}: no ${PEERS[tool].venv} (scripts/setup.sh --bench makes it)`);
      continue;
    }
    const { peer, ready } = await Peer.start(tool, folder);
    versions.push(`${PEERS[tool].label} (torch ${ready.torch}, load ${Number(ready.loadMs).toFixed(0)} ms)`);
    peers.push(peer);
  }
  return { peers, versions };
}

/** Each peer's last-position logits on a 1 × 20 batch against parenlens'. */
async function agreements(model: HookedLlama, peers: Peer[]): Promise<string[]> {
  const check = benchIds(model.config.vocabSize, 1, 20);
  const ours = (await model.run(check, { logitsAt: "last" })).data;
  const agree: string[] = [];
  for (const p of peers) {
    const theirs = (await p.ask({ cmd: "check", ids: check })).logits as number[];
    agree.push(`${PEERS[p.tool].label} ${agreement(theirs, ours).toExponential(1)}`);
  }
  return agree;
}

/** One warm-up round, then `rounds` interleaved rounds: every mode once per tool, order rotating. */
async function timeRounds(model: HookedLlama, peers: Peer[], shapes: [number, number][], rounds: number, say: Say) {
  const V = model.config.vocabSize;
  const tools = ["parenlens", ...peers.map((p) => p.tool)];
  const times: Times = new Map();
  for (const [B, P] of shapes) {
    const ids = benchIds(V, B, P);
    for (const mode of MODES) await parenlensMode(model, mode, ids); // warm-up (session builds)
    for (const p of peers) for (const mode of MODES) await p.ask({ cmd: "run", mode, ids });
  }
  for (let r = 0; r < rounds; r++) {
    for (const [B, P] of shapes) {
      const ids = benchIds(V, B, P);
      for (const mode of MODES) {
        for (let k = 0; k < tools.length; k++) {
          const tool = tools[(k + r) % tools.length]; // rotate who runs first
          let ms: number | null;
          if (tool === "parenlens") {
            const s = performance.now();
            await parenlensMode(model, mode, ids);
            ms = performance.now() - s;
          } else ms = (await peers.find((p) => p.tool === tool)!.ask({ cmd: "run", mode, ids })).ms as number | null;
          if (ms === null) continue;
          const key = `${B} × ${P}|${mode}|${tool}`;
          times.set(key, [...(times.get(key) ?? []), ms]);
        }
      }
      say(`round ${r + 1}/${rounds}, ${B} × ${P} done`);
    }
  }
  return times;
}

/** The timing table: parenlens' median per shape and mode, each peer's with its ratio. */
function timingTable(times: Times, shapes: [number, number][], peers: Peer[]): string[] {
  const cols = peers.map((p) => PEERS[p.tool].label);
  const out = [
    `| batch × tokens | mode | parenlens ms | ${cols.map((l) => `${l} ms (its time ÷ parenlens')`).join(" | ")} |`,
    `| --- | --- | --- | ${cols.map(() => "---").join(" | ")} |`,
  ];
  for (const [B, P] of shapes) {
    const ours = (mode: Mode) => median(times.get(`${B} × ${P}|${mode}|parenlens`)!);
    for (const mode of MODES) {
      const cells = peers.map((p) => {
        const t = times.get(`${B} × ${P}|${mode}|${p.tool}`);
        return t ? `${median(t).toFixed(0)} (${(median(t) / ours(mode)).toFixed(2)}×)` : "–";
      });
      out.push(`| ${B} × ${P} | ${mode.replace(/_/g, " ")} | ${ours(mode).toFixed(0)} | ${cells.join(" | ")} |`);
    }
    const ratio = ours("full_cache") / ours("plain");
    out.push(
      `| ${B} × ${P} | parenlens full cache ÷ plain | ${ratio.toFixed(2)}× | ${cols.map(() => "").join(" | ")} |`,
    );
  }
  return out;
}

/** Fresh-process peak RSS on the 32 × 32 batch: parenlens plain and full cache, each peer's. */
function memoryTable(folder: string, tools: string[], vocab: number): string[] {
  const ids = benchIds(vocab, 32, 32);
  const ours = freshPeak("parenlens", folder, "full_cache", ids) as ReturnType<typeof freshPeak> & {
    cacheMB: number;
    weightMB: number;
  };
  const plain = freshPeak("parenlens", folder, "plain", ids);
  const rows = [
    `| parenlens | plain | ${plain.afterLoadMB.toFixed(0)} | ${plain.peakMB.toFixed(0)} |`,
    `| parenlens | full cache (${ours.cacheMB.toFixed(0)} MB cached, ${ours.weightMB.toFixed(0)} MB float32 weights) | ${ours.afterLoadMB.toFixed(0)} | ${ours.peakMB.toFixed(0)} |`,
  ];
  let hfPlain: number | null = null;
  for (const tool of tools) {
    for (const mode of tool === "hf" ? (["plain"] as Mode[]) : (["plain", "full_cache"] as Mode[])) {
      const m = freshPeak(tool, folder, mode, ids);
      if (tool === "hf") hfPlain = m.peakMB;
      rows.push(
        `| ${PEERS[tool].label} | ${mode.replace(/_/g, " ")} | ${m.afterLoadMB.toFixed(0)} | ${m.peakMB.toFixed(0)} |`,
      );
    }
  }
  const constant = ours.peakMB - ours.afterLoadMB - ours.cacheMB;
  const goal = hfPlain === null ? null : 1.5 * hfPlain + ours.cacheMB;
  return [
    "Peak RSS of fresh processes (load, then the mode once on the 32 × 32 batch):",
    "",
    "| tool | mode | peak RSS after load (MB) | peak RSS after the run (MB) |",
    "| --- | --- | --- | --- |",
    ...rows,
    "",
    `parenlens full cache: peak − (peak after load) − cache bytes = ${constant.toFixed(0)} MB (the constant over weights + cache)` +
      (goal !== null
        ? `; goal peak ≤ 1.5 × HF plain peak + cache bytes = ${goal.toFixed(0)} MB: ${ours.peakMB <= goal ? "met" : "not met"} (${ours.peakMB.toFixed(0)} MB).`
        : "."),
  ];
}

/** `--memory-only`: just the fresh-process memory table (section "peers-memory" with --write-md). */
function memoryOnly(folder: string): void {
  const config = JSON.parse(fs.readFileSync(path.join(folder, "config.json"), "utf8"));
  const tools = flag("tools", "tl,bridge,hf")
    .split(",")
    .filter((t) => fs.existsSync(path.join(ROOT, PEERS[t].venv, "bin", "python")));
  const loadBefore = os.loadavg()[0];
  const out = memoryTable(folder, tools, config.vocab_size);
  const load = `1-minute load average ${loadBefore.toFixed(1)} before and ${os.loadavg()[0].toFixed(1)} after`;
  out.forEach((l) => console.log(l));
  console.log(load);
  if (!process.argv.includes("--write-md")) return;
  const when = new Date().toISOString().slice(0, 16).replace("T", " ");
  writeBenchSection(
    "peers-memory",
    [
      "## Peak RSS side by side (`npm run bench -- --peers --memory-only`)",
      "",
      `Measured ${when} UTC by \`npm run bench -- ${process.argv.slice(2).join(" ")}\`; checkpoint ${path.basename(folder)}; ${load}. Each row is a fresh process (peak RSS = its VmHWM): load, then the mode once on the 32 × 32 batch.`,
      "",
      ...out,
    ].join("\n"),
  );
}

export async function peersMain(): Promise<void> {
  const folder = path.resolve(flag("checkpoint", path.join(ROOT, "data", "models", "parenlens-code-6l")));
  if (process.argv.includes("--memory-child")) return memoryChild(folder, flag("memory-child", "full_cache") as Mode);
  const rounds = Number(flag("rounds", "3"));
  const shapes = flag("shapes", "1x20,32x32,8x128")
    .split(",")
    .map((s) => s.split("x").map(Number) as [number, number]);
  if (process.argv.includes("--memory-only")) return memoryOnly(folder);
  const model = await HookedLlama.fromPretrained(folder, { tokenizer: false, threads: threadsFlag() });
  const c = model.config;
  const say: Say = (line) => console.log(line);
  const shape = `${c.numLayers} layers, d_model ${c.hiddenSize}, ${c.numHeads} heads, d_mlp ${c.intermediateSize}, vocab ${c.vocabSize}`;
  say(`checkpoint: ${folder} — ${shape}`);
  const { peers, versions } = await startPeers(folder, flag("tools", "tl,bridge,hf").split(","), say);
  const agree = await agreements(model, peers);
  say(`last-position logits vs parenlens, max|Δ|/max|parenlens|: ${agree.join(", ")}`);
  const loadBefore = os.loadavg()[0];
  const times = await timeRounds(model, peers, shapes, rounds, say);
  const loadAfter = os.loadavg()[0];
  const runPeak: string[] = [`parenlens ${peakMB().toFixed(0)} MB`];
  for (const p of peers)
    runPeak.push(`${PEERS[p.tool].label} ${Number((await p.ask({ cmd: "rss" })).peakMB).toFixed(0)} MB`);
  for (const p of peers) await p.quit();
  const out = [
    ...timingTable(times, shapes, peers),
    "",
    ...memoryTable(
      folder,
      peers.map((p) => p.tool),
      c.vocabSize,
    ),
    `Peak RSS of each tool's worker over the whole timed run: ${runPeak.join(", ")}.`,
  ];
  out.forEach(say);
  if (!process.argv.includes("--write-md")) return;
  const when = new Date().toISOString().slice(0, 16).replace("T", " ");
  const cpu = `${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"})`;
  writeBenchSection(
    threadsFlag() === undefined ? "peers" : `peers-threads-${threadsFlag()}`,
    [
      `## Side by side with TransformerLens and transformers (\`npm run bench -- --peers\`)${threadsFlag() === undefined ? "" : `, every tool at ${threadsFlag()} thread${threadsFlag() === 1 ? "" : "s"}`}`,
      "",
      `Measured ${when} UTC by \`npm run bench -- ${process.argv.slice(2).join(" ")}\` on ${cpu}, node ${process.version}; 1-minute load average ${loadBefore.toFixed(1)} before and ${loadAfter.toFixed(1)} after (a shared machine: absolute times move with it, ratios of one round less so).`,
      `Checkpoint: ${path.basename(folder)} — ${shape}, float32. Peers: ${versions.join("; ")}. Last-position logits against parenlens (max|Δ|/max|parenlens|): ${agree.join(", ")}.`,
      `Median of ${rounds} interleaved rounds (each round: every mode once per tool, the tools' order rotating) after one warm-up round; ratios are the peer's time ÷ parenlens' (> 1 = parenlens faster). Modes as in scripts/bench/peers.ts (same work for every tool): logit lens = 2 × layers residual points at the last position through each one's own RMS and the final norm onto the whole vocabulary; DLA = decompose_resid through the cached final-norm scale onto four W_U columns; head projections = every head's z·W_O at the last position through the cached scale onto the whole vocabulary; ablation sweep = ${SWEEP_HEADS} single-head zero ablations of the middle layer. In the lens, DLA and head-projection modes parenlens runs with \`logitsAt: "last"\` as its analyses do (no [batch, pos, vocab] logits: the analysis reads the cache), while the peers' \`run_with_cache\` compute the logits at every position (their default). HF has no cache or lens API ("–").`,
      "",
      ...out,
    ].join("\n"),
  );
}

if (process.argv.includes("--memory-child")) {
  peersMain().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
