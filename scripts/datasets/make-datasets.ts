/**
 * Write the closing-paren datasets for a model's tokenizer:
 *   data/datasets/<template>-<split>.jsonl   prompts (analysis / reference splits, n = 1..4)
 *   data/datasets/<template>-pairs.jsonl     clean/corrupted pairs from the analysis split (the authors'
 *                                            corruption: one `(` after the c-th open call, c seeded per prompt)
 *   data/datasets/partial-closed-pairs.jsonl same n, one more `)` already closed (finding 3)
 *   data/datasets/manifest.json              seed, tokenizer fingerprint, counts, rejections
 *
 *   node --import tsx scripts/datasets/make-datasets.ts [--model data/models/parenlens-code-6l] [--out data/datasets] [--seed 2502] [--analysis 100] [--reference 50]
 *
 * Same tokenizer + seed → byte-identical files. Notebooks on another model regenerate the prompts
 * in memory with generateDataset(tokenizer, ...) instead of reading these files.
 */
import * as fs from "fs";
import * as path from "path";
import { loadTokenizer } from "../../lib/src/checkpoint/tokenizer";
import { parenRunTokens } from "../../lib/src/task/paren-tokens";
import { PROMPT_TEMPLATES, TemplateName } from "../../lib/src/task/prompt-templates";
import { generateDataset } from "../../lib/src/task/prompts";
import { makeCorruptedPairs } from "../../lib/src/task/corrupted-pairs";
import { makeClosedCountPairs } from "../../lib/src/task/closed-count-pairs";
import { toJsonl } from "../../lib/src/task/prompts-jsonl";
import { fileSha256 } from "../../lib/src/notebook/study-setup";

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

function defaultModel(root: string): string {
  const models = path.join(root, "data/models");
  const found = fs.existsSync(models)
    ? fs.readdirSync(models).filter((d) => fs.existsSync(path.join(models, d, "tokenizer.json")))
    : [];
  if (found.length === 0)
    throw new Error(`No model folder with a tokenizer.json under ${models}; pass --model <folder>`);
  return path.join(models, found.sort()[0]);
}

const root = path.resolve(__dirname, "..", "..");
const model = path.resolve(arg("model", defaultModel(root)));
const out = path.resolve(arg("out", path.join(root, "data/datasets")));
const seed = Number(arg("seed", "2502"));
const perN = { analysis: Number(arg("analysis", "100")), reference: Number(arg("reference", "50")) };
const ns = [1, 2, 3, 4];

const tok = loadTokenizer(model);
const parens = parenRunTokens(tok);
fs.mkdirSync(out, { recursive: true });
const tokenizerSha = fileSha256(path.join(model, "tokenizer.json"));

const manifest: Record<string, unknown> = {
  seed,
  perN,
  ns,
  tokenizer: {
    folder: path.relative(root, model),
    sha256: tokenizerSha,
    vocabSize: tok.vocabSize,
    parenRunIds: Object.fromEntries(parens.runs.map((r, i) => [r, parens.ids[i]])),
  },
  templates: {} as Record<string, unknown>,
};

for (const name of Object.keys(PROMPT_TEMPLATES) as TemplateName[]) {
  const data = generateDataset(tok, { template: name, perN, ns, seed });
  const splits: Record<string, unknown> = {};
  for (const [split, prompts] of Object.entries(data.splits)) {
    const file = `${name}-${split}.jsonl`;
    fs.writeFileSync(path.join(out, file), toJsonl(prompts));
    const byN: Record<string, number> = {};
    for (const p of prompts) byN[p.n] = (byN[p.n] ?? 0) + 1;
    splits[split] = {
      file,
      count: prompts.length,
      byN,
      shortfall: data.shortfall[split],
      rejected: data.rejected[split],
    };
  }
  const { pairs, rejected } = makeCorruptedPairs(tok, data.splits.analysis, { seed });
  const pairFile = `${name}-pairs.jsonl`;
  fs.writeFileSync(path.join(out, pairFile), toJsonl(pairs));
  const strategies: Record<string, number> = {};
  const byN: Record<string, number> = {};
  for (const p of pairs) {
    strategies[p.strategy] = (strategies[p.strategy] ?? 0) + 1;
    byN[p.clean.n] = (byN[p.clean.n] ?? 0) + 1;
  }
  const sites: Record<string, number> = {};
  for (const p of pairs) {
    const k = String(p.corrupted.fields.corruptionCall ?? "-");
    sites[k] = (sites[k] ?? 0) + 1;
  }
  const pairsEntry = {
    file: pairFile,
    from: "analysis",
    count: pairs.length,
    byN,
    strategies,
    corruptionCall: sites,
    alignment: "same-length (positions index for index; pairs of different lengths rejected)",
    rejected,
  };
  const entry: Record<string, unknown> = { description: PROMPT_TEMPLATES[name].description, splits, pairs: pairsEntry };
  if (name === "partial") {
    const closed = makeClosedCountPairs(tok, data.splits.analysis);
    const closedFile = `${name}-closed-pairs.jsonl`;
    fs.writeFileSync(path.join(out, closedFile), toJsonl(closed.pairs));
    const closedByN: Record<string, number> = {};
    for (const p of closed.pairs) closedByN[p.clean.n] = (closedByN[p.clean.n] ?? 0) + 1;
    entry.closedPairs = {
      file: closedFile,
      from: "analysis",
      count: closed.pairs.length,
      byN: closedByN,
      strategy: "deeper-closed-arg (same n and length, nClosed + 1)",
      rejected: closed.rejected,
    };
  }
  (manifest.templates as Record<string, unknown>)[name] = entry;
  const s = splits as Record<string, { count: number; rejected: { total: number } }>;
  console.log(
    `${name}: ${Object.entries(s)
      .map(([k, v]) => `${k} ${v.count} (rejected ${v.rejected.total})`)
      .join(", ")}; pairs ${pairs.length} (rejected ${rejected.total}: ${JSON.stringify(rejected.byReason)})`,
  );
}
fs.writeFileSync(path.join(out, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(`wrote ${out}`);
