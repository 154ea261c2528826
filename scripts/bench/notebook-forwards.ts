/**
 * How many forward passes each notebook runs on a model of a given layout, at a PARENLENS_PER_N
 * (or in full), without running a model: the notebooks' long calls with their own arguments,
 * counted by the functions whose totals the calls announce in their progress (sublayerEffectsForwards,
 * countingHeadsForwards, patchingGridForwards; one forward per length batch for the lenses,
 * per 64 prompts for scorePrompts), on the committed datasets (the embedded model's tokenizer).
 *
 *   node --import tsx scripts/bench/notebook-forwards.ts [--per-n 1] [--config test/fixtures/checkpoints/codellama-7b-hf.config.json]
 *
 * Prints one JSON line per notebook: forwards, and how many of them are swept sites (the rest:
 * caches and plain runs; counted as the same notebook on zero layers). Checked against the embedded model's measured
 * HookedLlama.forwardPasses (scripts/bench/scale-notebooks.ts) with `--config` = its config.json.
 * Notebook 04's headLogitLens runs only when some head has |r| ≥ 0.5 (model-dependent): printed
 * apart ("ifStrongHeads").
 */
import * as fs from "fs";
import * as path from "path";
import { LlamaConfig, parseLlamaConfig } from "../../lib/src/checkpoint/config";
import type { Tokenizer } from "../../lib/src/core/tokenizer";
import { loadTokenizer } from "../../lib/src/checkpoint/tokenizer";
import { studyData } from "../../lib/src/notebook/study-setup";
import { lengthBatches } from "../../lib/src/analysis/study";
import { sublayerEffectsForwards } from "../../lib/src/analysis/sublayer-effects";
import { countingHeadsForwards } from "../../lib/src/analysis/counting-heads";
import { patchingGridForwards } from "../../lib/src/analysis/patching-grid";
import { makeCorruptedPairs, DIGIT_REPLACEMENT } from "../../lib/src/task/corrupted-pairs";
import { parenRunTokens, parenTokenSets } from "../../lib/src/task/paren-tokens";
import type { StudyPrompt, PromptPair } from "../../lib/src/analysis/study";
import { flag } from "./cli";

const ROOT = path.join(__dirname, "..", "..");

const batchesOf = (prompts: StudyPrompt[], size = 32) => lengthBatches(prompts, (p) => p.promptIds.length, size).length;
const firstPer = <T extends { clean: { n: number } }>(pairs: T[], k: number) =>
  pairs.filter((p, i) => pairs.slice(0, i).filter((q) => q.clean.n === p.clean.n).length < k);

/** Each notebook's forward passes on a model of this config: [notebook, forwards, forwards if strong heads]. */
function count(config: LlamaConfig, tok: Tokenizer, perN: number | null): [string, number, number][] {
  const model = { config, tokenizer: tok };
  const log = () => {};
  const rows: [string, number, number][] = [];
  const out = (notebook: string, forwards: number, ifStrongHeads = 0) => rows.push([notebook, forwards, ifStrongHeads]);
  const data = (t: "authors" | "partial" | "complex") => studyData(tok, t, { perN, committed: true, log });

  out("00-quickstart", 2); // runWithCache + runWithHooks
  const templates = ["authors", "partial", "complex"] as const;
  out(
    "01-task-and-accuracy",
    templates.reduce((a, t) => a + Math.ceil(data(t).splits.analysis.length / 64), 0),
  );
  const authors = data("authors");
  const lens = authors.splits.analysis;
  out(
    "02-logit-lens",
    3 * batchesOf(lens) + batchesOf(data("partial").splits.analysis) + batchesOf(data("complex").splits.analysis),
  );

  const pairs = authors.pairs as PromptPair[];
  const reference = authors.splits.reference;
  const subset = firstPer(pairs, 30);
  const digitAll = makeCorruptedPairs(tok, lens, { strategies: DIGIT_REPLACEMENT }).pairs as PromptPair[];
  const sub = (p: PromptPair[], o: Parameters<typeof sublayerEffectsForwards>[2]) =>
    sublayerEffectsForwards(model, p, o);
  // the first call sums the reference activations; the five after it take them (main.reference)
  // and run no reference cache
  const summed = (p: PromptPair[], o: Parameters<typeof sublayerEffectsForwards>[2]) =>
    sub(p, o) - lengthBatches(reference, (q) => q.promptIds.length, 32).length;
  const nb03 =
    sub(pairs, { reference }) +
    2 * summed(pairs, { reference, methods: ["mean-ablation"] }) +
    2 * summed(subset, { reference }) +
    summed(firstPer(digitAll, 30), { reference }) +
    patchingGridForwards(model, firstPer(pairs, 10));
  out("03-mha-vs-ff", nb03);

  const partial = data("partial");
  const parens = parenRunTokens(tok);
  const sets = parenTokenSets(tok);
  const common = { causalPerN: 30, parens, parenSets: sets, permutationNull: false as const };
  const nb04 =
    countingHeadsForwards(model, partial.splits.analysis, {
      ...common,
      reference: partial.splits.reference,
      methods: ["zero", "mean", "knockout"],
    }) +
    countingHeadsForwards(model, partial.pairs, { ...common, methods: ["patch"] }) +
    2 * lengthBatches(partial.closedPairs, (p) => p.clean.promptIds.length, 32).length + // closedCountContrast
    1 + // the attention figure's runWithCache
    countingHeadsForwards(model, lens, { ...common, methods: [] });
  out("04-counting-heads", nb04, batchesOf(partial.splits.analysis));
  return rows;
}

function main(): void {
  const configFile = path.resolve(
    flag("config", path.join(ROOT, "test/fixtures/checkpoints/codellama-7b-hf.config.json")),
  );
  const config = parseLlamaConfig(JSON.parse(fs.readFileSync(configFile, "utf8")), configFile);
  const tok = loadTokenizer(path.join(ROOT, "data/models/parenlens-code-6l"));
  const perNFlag = flag("per-n", "all");
  const perN = perNFlag === "all" ? null : Number(perNFlag);
  const caches = count({ ...config, numLayers: 0 }, tok, perN); // no layers: no swept sites; caches and plain runs remain
  for (const [i, [notebook, forwards, ifStrongHeads]] of count(config, tok, perN).entries()) {
    const { numLayers: layers, numHeads: heads } = config;
    const sites = forwards - caches[i][1];
    console.log(JSON.stringify({ notebook, layers, heads, perN: perNFlag, forwards, sites, ifStrongHeads }));
  }
}

main();
