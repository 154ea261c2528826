/**
 * Sites as one batch on CodeLlama-7b's shape (the `--scale` checkpoint, bf16 weights held as
 * 2-byte values), batch 1 × 20, logits at the last position. Two sweeps:
 * - the per-head zero ablation of one layer (32 sites at blocks.{L/2}.attn.hook_z), and
 * - the sub-layer sweep's zero ablation (64 sites: every layer's hook_attn_out and hook_mlp_out),
 * each run three ways: one runWithHooks per site (`--baseline-sites k` of them timed, default 2,
 * scaled to all sites), runSites with `sitesPerBatch: 1` (shared trunk, each site its own batch
 * of B rows after its branch point: before this change) and runSites with the default
 * `sitesPerBatch: "auto"` (sites that branch off at one hook, or join later, run as one batch of
 * K × B rows). Logits of the batched run are compared with both others (max |Δ| / max |logit|).
 * Writes section scale-7b-site-batches of scripts/bench/BENCH.md (`--section` names another; `--threads`,
 * and `--cores` / `--conditions` for the text, describe the run).
 *
 *   flock /work/re-tools/bigmem.lock taskset -c 1 nice -n 5 node --import tsx scripts/bench/scale-site-batches.ts
 */
import * as os from "os";
import { HookedLlama } from "../../lib/src/runtime/hooked-llama";
import { seededRandom } from "../../lib/src/core/random";
import type { Intervention } from "../../lib/src/hooks/interventions";
import type { Tensor } from "../../lib/src/core/tensor";
import { writeBenchSection } from "./bench-md";
import { flag, timed } from "./cli";

const GB = 1024 ** 3;

/** Largest |a − b| over the largest |b|. */
function relDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let s = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    s = Math.max(s, Math.abs(b[i]));
  }
  return d / s;
}

interface SweepResult {
  name: string;
  sites: number;
  baselineSites: number;
  baselinePerSiteMs: number;
  trunkMs: number;
  batchedMs: number;
  vsTrunk: number;
  vsAlone: number;
}

async function measure(
  model: HookedLlama,
  name: string,
  ids: number[][],
  sites: Intervention[][],
  k: number,
): Promise<SweepResult> {
  const tiny = [[1, 5]]; // warm-ups build the plans' sessions (plans do not depend on the shape)
  const timedSites = Array.from({ length: k }, (_, j) => Math.floor(((j + 0.5) * sites.length) / k));
  for (const s of timedSites) await model.runWithHooks(tiny, sites[s], { logitsAt: "last" });
  await model.runSites(tiny, sites, { logitsAt: "last", sitesPerBatch: 1 });
  await model.runSites(tiny, sites, { logitsAt: "last" });
  const alone: Tensor[] = [];
  const [aloneMs] = await timed(async () => {
    for (const s of timedSites) alone.push(await model.runWithHooks(ids, sites[s], { logitsAt: "last" }));
  });
  console.error(`  ${name}: one run per site, ${k} sites in ${aloneMs.toFixed(0)} ms`);
  const [trunkMs, trunk] = await timed(() => model.runSites(ids, sites, { logitsAt: "last", sitesPerBatch: 1 }));
  console.error(`  ${name}: shared trunk, one batch per site: ${trunkMs.toFixed(0)} ms`);
  const [batchedMs, batched] = await timed(() => model.runSites(ids, sites, { logitsAt: "last" }));
  console.error(`  ${name}: shared trunk, sites batched: ${batchedMs.toFixed(0)} ms`);
  const vsTrunk = Math.max(...sites.map((_, i) => relDiff(batched[i].data, trunk[i].data)));
  const vsAlone = Math.max(...timedSites.map((s, j) => relDiff(batched[s].data, alone[j].data)));
  return {
    name,
    sites: sites.length,
    baselineSites: k,
    baselinePerSiteMs: aloneMs / k,
    trunkMs,
    batchedMs,
    vsTrunk,
    vsAlone,
  };
}

async function main(): Promise<void> {
  const folder = process.env.PARENLENS_SCALE_DIR || "/tmp/i10/codellama-7b-shaped";
  const load0 = os.loadavg()[0];
  const started = new Date();
  const model = await HookedLlama.fromPretrained(folder, { tokenizer: false, threads: Number(flag("threads", "1")) });
  const { numLayers: L, numHeads: H, vocabSize: V } = model.config;
  const rand = seededRandom(99);
  const ids = [[1, ...Array.from({ length: 19 }, () => 3 + Math.floor(rand() * (V - 3)))]];
  const layer = Math.floor(L / 2);
  const k = Number(flag("baseline-sites", "2"));
  const heads = Array.from({ length: H }, (_, h): Intervention[] => [
    { hook: `blocks.${layer}.attn.hook_z`, kind: "zero", heads: [h] },
  ]);
  const sublayers = Array.from({ length: L }, (_, l) =>
    (["attn", "mlp"] as const).map((s): Intervention[] => [{ hook: `blocks.${l}.hook_${s}_out`, kind: "zero" }]),
  ).flat();
  const results = [
    await measure(model, `per-head zero ablation of layer ${layer} (${H} sites)`, ids, heads, k),
    await measure(model, `zero ablation of every sub-layer (${2 * L} sites at ${2 * L} hooks)`, ids, sublayers, k),
  ];
  const peak = (process.resourceUsage().maxRSS * 1024) / GB;
  const s = (ms: number) => (ms / 1000).toFixed(1);
  const section = [
    `## CodeLlama-7b shape: sites as one batch after their branch point (runSites' sitesPerBatch)${flag("threads", "1") === "1" ? "" : `, ${flag("threads", "1")} threads`}`,
    ``,
    `Measured ${started.toISOString().slice(0, 16).replace("T", " ")} UTC by \`flock /work/re-tools/bigmem.lock taskset -c ${flag("cores", "1")} nice -n 5 node --import tsx scripts/bench/scale-site-batches.ts --threads ${flag("threads", "1")}\` on ${os.cpus()[0]?.model ?? "?"}, ${flag("conditions", "one core (core 1) with onnxruntime on 1 thread, while a training job ran on core 0")}; 1-minute load average ${load0.toFixed(1)} before and ${os.loadavg()[0].toFixed(1)} after. The \`--scale\` checkpoint (12.55 GiB of bf16 weights, held as 2-byte values), batch 1 × 20, logits at the last position; each plan's sessions built by a warm-up on 1 × 2 tokens first. "one run per site": ${k} sites timed, × sites/${k} (estimate); the two runSites rows are measured on all sites. \`sitesPerBatch: "auto"\` = ⌊1024 / (batch × tokens)⌋ = ${Math.floor(1024 / 20)} sites a batch here.`,
    ``,
    `| sweep | one run per site (est.) | shared trunk, one batch per site (\`sitesPerBatch: 1\`) | shared trunk, sites batched (\`"auto"\`) | batched vs one per site | batched vs trunk only | max \\|Δ logit\\| / max \\|logit\\| vs trunk-only / vs one run |`,
    `| --- | --- | --- | --- | --- | --- | --- |`,
    ...results.map(
      (r) =>
        `| ${r.name} | ${s(r.baselinePerSiteMs * r.sites)} s (${s(r.baselinePerSiteMs)} s a site) | ${s(r.trunkMs)} s | ${s(r.batchedMs)} s | **${((r.baselinePerSiteMs * r.sites) / r.batchedMs).toFixed(1)} ×** | **${(r.trunkMs / r.batchedMs).toFixed(1)} ×** | ${r.vsTrunk.toExponential(1)} / ${r.vsAlone.toExponential(1)} |`,
    ),
    ``,
    `- Peak RSS of the process: ${peak.toFixed(2)} GiB.`,
  ].join("\n");
  console.log(section);
  if (!process.argv.includes("--no-write")) writeBenchSection(flag("section", "scale-7b-site-batches"), section);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
