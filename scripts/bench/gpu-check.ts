/**
 * The GPU check a session with the GPU machine runs (scripts/bench/gpu-check.sh starts it):
 * CPU against CUDA on the embedded model — logits and a selective cache of a batch of its own
 * prompts, CUDA with float32 compute and with the explicit computeDtype "float16" — as max |Δ|
 * and max |Δ| / max |x|, plus the time of a forward on each.
 * Prints one JSON line (RESULT ...) and a Markdown section, written into scripts/bench/BENCH.md
 * (section gpu-check) only when CUDA ran. Without the CUDA provider it says so and exits 2:
 * never a made-up GPU figure.
 */
import * as path from "path";
import { writeBenchSection } from "./bench-md";
import { HookedLlama } from "../../lib/src/runtime/hooked-llama";
import { ExecutionProviderError } from "../../lib/src/core/errors";

const MODEL = path.join(__dirname, "..", "..", "data", "models", "parenlens-code-6l");
const PROMPTS = ["def f(x):\n    return len(str(x", "print(max(min(a, b", "y = sorted(list(set(z"];
const NAMES = ["blocks.2.hook_resid_post", "blocks.5.attn.hook_pattern", "blocks.5.mlp.hook_post"];

function diff(a: ArrayLike<number>, b: ArrayLike<number>): { abs: number; rel: number } {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(a[i]));
  }
  return { abs: d, rel: m === 0 ? d : d / m };
}

async function forwardMs(model: HookedLlama): Promise<number> {
  await model.run(PROMPTS);
  const t = performance.now();
  for (let i = 0; i < 5; i++) await model.run(PROMPTS);
  return (performance.now() - t) / 5;
}

async function main(): Promise<void> {
  const cpu = await HookedLlama.fromPretrained(MODEL);
  let cuda: HookedLlama;
  try {
    cuda = await HookedLlama.fromPretrained(MODEL, { executionProvider: "cuda" });
  } catch (e) {
    if (!(e instanceof ExecutionProviderError)) throw e;
    console.error(`no CUDA here: ${e.message}`);
    process.exit(2);
  }
  // the explicit float16 option: projections in float16 on CUDA, against CPU float32
  const cuda16 = await HookedLlama.fromPretrained(MODEL, { executionProvider: "cuda", computeDtype: "float16" });
  const a = await cpu.runWithCache(PROMPTS, { names: NAMES });
  const against = async (m: HookedLlama, compute: string) => {
    const b = await m.runWithCache(PROMPTS, { names: NAMES });
    return [
      [compute, "logits", diff(a.logits.data, b.logits.data)] as const,
      ...NAMES.map((n) => [compute, n, diff(a.cache.get(n).data, b.cache.get(n).data)] as const),
    ];
  };
  const rows = [...(await against(cuda, "float32")), ...(await against(cuda16, "float16"))];
  const [cpuMs, cudaMs] = [await forwardMs(cpu), await forwardMs(cuda)];
  console.log("RESULT " + JSON.stringify({ rows, cpuMs, cudaMs }));
  const section = [
    `## GPU check: CPU (float32) vs CUDA (float32 compute, and computeDtype "float16") on the embedded model`,
    ``,
    `Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC by \`bash scripts/bench/gpu-check.sh\`; batch of ${PROMPTS.length} prompts.`,
    ``,
    `| CUDA compute | tensor | max abs diff | max abs diff / max abs |`,
    `| --- | --- | --- | --- |`,
    ...rows.map(([c, n, d]) => `| ${c} | ${n} | ${d.abs.toExponential(2)} | ${d.rel.toExponential(2)} |`),
    ``,
    `Forward (run, ${PROMPTS.length} prompts, mean of 5 after a warm-up): CPU ${cpuMs.toFixed(1)} ms, CUDA ${cudaMs.toFixed(1)} ms.`,
  ].join("\n");
  console.log(section);
  writeBenchSection("gpu-check", section);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
