/**
 * Sites at different layers on CodeLlama-7b's shape: the sub-layer sweep's kind of site (zero one
 * layer's MLP output, one site per layer, 32 sites), batch 1 × 20, logits at the last position.
 * Before: sites that edit different hooks ran one forward each (each converting all 32 layers'
 * bf16 weights and re-running the layers below its edit). Now (HookedLlama.runSites on 2-byte
 * weights): one plan cut at every site's hook, one unedited trunk, each site branching off at
 * its own layer, every layer's weights converted once for all. `--baseline-sites k` (default 2)
 * of the one-forward-per-site runs are timed (× 32 / k reported as the estimate for all 32) and
 * their logits compared with runSites' bit for bit. Section scale-7b-branches of BENCH.md.
 *
 *   flock /work/re-tools/bigmem.lock nice -n 10 node --import tsx scripts/bench/scale-branches.ts
 */
import * as os from "os";
import { HookedLlama } from "../../lib/src/runtime/hooked-llama";
import { seededRandom } from "../../lib/src/core/random";
import type { Intervention } from "../../lib/src/hooks/interventions";
import { writeBenchSection } from "./bench-md";
import { flag, timed } from "./cli";

const GB = 1024 ** 3;

async function main(): Promise<void> {
  const folder = process.env.PARENLENS_SCALE_DIR || "/tmp/i10/codellama-7b-shaped";
  const load0 = os.loadavg()[0];
  const model = await HookedLlama.fromPretrained(folder, { tokenizer: false });
  const L = model.config.numLayers;
  const rand = seededRandom(99);
  const ids = [[1, ...Array.from({ length: 19 }, () => 3 + Math.floor(rand() * (model.config.vocabSize - 3)))]];
  const sites = Array.from({ length: L }, (_, l): Intervention[] => [
    { hook: `blocks.${l}.hook_mlp_out`, kind: "zero" },
  ]);
  const k = Number(flag("baseline-sites", "2"));
  const timedLayers = Array.from({ length: k }, (_, j) => Math.floor(((j + 0.5) * L) / k)); // spread over depth
  const tiny = [[1, 5]]; // warm-ups build each plan's sessions (plans do not depend on the shape)
  for (const l of timedLayers) await model.runWithHooks(tiny, sites[l], { logitsAt: "last" });
  const baseline: Float32Array[] = [];
  const [baseMs] = await timed(async () => {
    for (const l of timedLayers) baseline.push((await model.runWithHooks(ids, sites[l], { logitsAt: "last" })).data);
  });
  console.error(`  one forward per site: ${k} sites in ${baseMs.toFixed(0)} ms`);
  await model.runSites(tiny, sites, { logitsAt: "last", sitesPerBatch: 1 });
  // one batch per site after its branch point: sites batched are measured by scale-site-batches.ts
  const [branchMs, branched] = await timed(() => model.runSites(ids, sites, { logitsAt: "last", sitesPerBatch: 1 }));
  console.error(`  runSites (trunk + branches): ${L} sites in ${branchMs.toFixed(0)} ms`);
  const equal = timedLayers.every((l, j) => baseline[j].every((v, i) => v === branched[l].data[i]));
  const perSite = baseMs / k;
  const peak = (process.resourceUsage().maxRSS * 1024) / GB;
  const section = [
    `## CodeLlama-7b shape: sites at different layers share one trunk (runSites on bf16 weights)`,
    ``,
    `Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC by \`flock /work/re-tools/bigmem.lock nice -n 10 node --import tsx scripts/bench/scale-branches.ts\` on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "?"}), shared machine, 1-minute load average ${load0.toFixed(1)} before and ${os.loadavg()[0].toFixed(1)} after; the \`--scale\` checkpoint (12.55 GiB of bf16 weights). ${L} sites: zero blocks.{l}.hook_mlp_out for every layer l (the sub-layer sweep's kind of site), batch 1 × 20, logits at the last position; each plan's sessions were built by a warm-up run on 1 × 2 tokens before the timed runs.`,
    ``,
    `| | time |`,
    `| --- | --- |`,
    `| one forward per site (how sites editing different hooks ran before): ${k} sites timed (layers ${timedLayers.join(", ")}) | ${(perSite / 1000).toFixed(1)} s a site → ${((perSite * L) / 1000).toFixed(0)} s for ${L} (estimate: ${k} measured, × ${L}/${k}) |`,
    `| runSites: one trunk, each site branching off at its layer, each layer's weights converted once: all ${L} sites, measured | ${(branchMs / 1000).toFixed(1)} s |`,
    `| speed-up | **${((perSite * L) / branchMs).toFixed(1)} ×** |`,
    `| peak RSS of the process | ${peak.toFixed(2)} GiB |`,
    ``,
    `- runSites' logits for the ${k} timed sites ${equal ? "equal" : "**differ from**"} the one-forward-per-site logits bit for bit.`,
  ].join("\n");
  console.log(section);
  writeBenchSection("scale-7b-branches", section);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
