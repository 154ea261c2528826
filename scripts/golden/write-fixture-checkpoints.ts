/**
 * Writes the committed fixture checkpoints under test/fixtures/checkpoints/ with
 * writeRandomCheckpoint (deterministic: rerunning rewrites the same bytes).
 *
 * Run: node --import tsx scripts/golden/write-fixture-checkpoints.ts
 * Then: .venv/bin/python scripts/golden/make_random_goldens.py
 */
import * as fs from "fs";
import * as path from "path";
import { writeRandomCheckpoint, RandomCheckpointSpec } from "../../lib/src/testing/random-checkpoint";

const ROOT = path.join(__dirname, "..", "..", "test", "fixtures", "checkpoints");
const TOKENIZER = path.join(__dirname, "..", "..", "test", "fixtures", "tokenizer");

// CodeLlama-7b-hf's config.json as published; only the sizes are shrunk below.
const codellamaConfig = JSON.parse(fs.readFileSync(path.join(ROOT, "codellama-7b-hf.config.json"), "utf8"));
const tokenizerVocab = JSON.parse(fs.readFileSync(path.join(TOKENIZER, "expected-ids.json"), "utf8"))
  .vocab_size as number;

export const FIXTURES: Record<string, RandomCheckpointSpec> = {
  // 2 layers, d_model 32, 4 heads, d_mlp 64, vocab 64, untied (the random-checkpoint defaults)
  "tiny-f32": { seed: 1 },
  "tiny-gqa": { seed: 2, config: { numKvHeads: 2 } },
  "tiny-tied": { seed: 3, tied: true },
  "tiny-bf16": { seed: 4, dtype: "BF16" },
  // same seed as tiny-f32: identical tensors, split over two files + index
  "tiny-sharded": { seed: 1, shards: 2 },
  "tiny-rope-linear": { seed: 6, config: { ropeScaling: { type: "linear", factor: 2 } } },
  // vocabulary = the test tokenizer's, so string prompts work end to end
  "tiny-tok": { seed: 7, config: { vocabSize: tokenizerVocab }, tokenizerFrom: TOKENIZER },
  "codellama-shrunk": {
    seed: 5,
    dtype: "BF16",
    configJson: {
      ...codellamaConfig,
      hidden_size: 32,
      intermediate_size: 86,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      num_key_value_heads: 4,
    },
    tokenizerFrom: TOKENIZER,
  },
};

if (require.main === module) {
  for (const [name, spec] of Object.entries(FIXTURES)) {
    const folder = path.join(ROOT, name);
    const { config, files } = writeRandomCheckpoint(folder, spec);
    const bytes = files.reduce((a, f) => a + fs.statSync(f).size, 0);
    console.log(
      `${name}: ${config.numLayers} layers, d_model ${config.hiddenSize}, vocab ${config.vocabSize}, ${(bytes / 1024).toFixed(0)} KiB`,
    );
  }
}
