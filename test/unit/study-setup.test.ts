import { describe, it } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  loadTokenizer,
  DatasetError,
  InputError,
  fileSha256,
  perNFromEnv,
  readDatasetManifest,
  studyData,
  StudyData,
  generateDataset,
  makeCorruptedPairs,
} from "../../lib/src";

const ROOT = path.join(__dirname, "..", "..");
const MANIFEST = path.join(ROOT, "data/datasets/manifest.json");
const EMBEDDED = path.join(ROOT, "data/models/parenlens-code-6l");
const tok = loadTokenizer(EMBEDDED);
const quiet = { log: () => undefined };

/** studyData with its printed lines collected. */
function study(
  template: "authors" | "partial" | "complex",
  opts: Parameters<typeof studyData>[2],
): {
  data: StudyData;
  lines: string[];
} {
  const lines: string[] = [];
  const data = studyData(tok, template, { manifestFile: MANIFEST, log: (l) => lines.push(l), ...opts });
  return { data, lines };
}

describe("readDatasetManifest", () => {
  it("reads the seed and sizes the committed datasets were made with", () => {
    const m = readDatasetManifest(MANIFEST);
    assert.equal(m.seed, 2502);
    assert.deepEqual(m.perN, { analysis: 100, reference: 50 });
    assert.deepEqual(m.ns, [1, 2, 3, 4]);
    // the embedded model's tokenizer is the one they were made with
    assert.equal(m.tokenizer.sha256, fileSha256(path.join(EMBEDDED, "tokenizer.json")));
  });

  it("names the file and the field when the manifest is broken", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "manifest-"));
    const file = path.join(dir, "manifest.json");
    fs.writeFileSync(file, JSON.stringify({ seed: "2502" }));
    assert.throws(
      () => readDatasetManifest(file),
      (e: unknown) => e instanceof DatasetError && e.field === "seed",
    );
    assert.throws(() => readDatasetManifest(path.join(dir, "missing.json")), DatasetError);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe("perNFromEnv", () => {
  it("is null when unset and a positive integer otherwise", () => {
    assert.equal(perNFromEnv(undefined), null);
    assert.equal(perNFromEnv(""), null);
    assert.equal(perNFromEnv("20"), 20);
    assert.throws(() => perNFromEnv("0"), InputError);
    assert.throws(() => perNFromEnv("a few"), InputError);
  });
});

describe("studyData: committed files or regenerated, the same prompts and pairs", () => {
  for (const template of ["authors", "partial", "complex"] as const) {
    it(`${template}: loading data/datasets gives what generateDataset + makeCorruptedPairs give`, () => {
      const loaded = study(template, { committed: true, perN: null });
      const generated = study(template, { committed: false, perN: null });
      assert.equal(loaded.data.source, "committed");
      assert.equal(generated.data.source, "generated");
      assert.match(loaded.lines[0], new RegExp(`^${template}: 400 analysis \\+ 200 reference prompts .*loaded from`));
      assert.match(generated.lines[0], /generated with seed 2502/);
      const { source: _a, ...fromFiles } = loaded.data;
      const { source: _b, ...inMemory } = generated.data;
      assert.deepEqual(fromFiles, inMemory);
      assert.equal(JSON.stringify(fromFiles), JSON.stringify(inMemory)); // same key order too

      // ... and both are what the notebooks computed before studyData existed
      const today = generateDataset(tok, { template, perN: { analysis: 100, reference: 50 }, seed: 2502 });
      const pairs = makeCorruptedPairs(tok, today.splits.analysis, { seed: 2502 });
      assert.deepEqual(loaded.data.splits, today.splits);
      assert.deepEqual(loaded.data.rejected, today.rejected);
      assert.deepEqual(loaded.data.pairs, pairs.pairs);
      assert.deepEqual(loaded.data.pairsRejected, pairs.rejected);
    });
  }

  it("PARENLENS_PER_N keeps the first k prompts per n and pairs only those, in both directions", () => {
    const loaded = study("partial", { committed: true, perN: 5 });
    const generated = study("partial", { committed: false, perN: 5 });
    assert.equal(loaded.data.splits.analysis.length, 20);
    assert.deepEqual(
      loaded.data.splits.analysis.map((p) => p.n),
      [1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4],
    );
    assert.equal(loaded.lines[1], "  PARENLENS_PER_N=5: analysing the first 20 prompts");
    assert.deepEqual(loaded.data.pairs, generated.data.pairs);
    assert.deepEqual(loaded.data.pairsRejected, generated.data.pairsRejected);
    assert.equal(loaded.data.pairs.length, 15); // n = 4 has no five-paren run to corrupt to
    assert.equal(loaded.data.pairsRejected.total, 5);
  });

  it("regenerates with the manifest's seed and sizes, not hard-coded ones", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "manifest-"));
    const m = JSON.parse(fs.readFileSync(MANIFEST, "utf8"));
    fs.writeFileSync(
      path.join(dir, "manifest.json"),
      JSON.stringify({ ...m, seed: 7, perN: { analysis: 3, reference: 2 } }),
    );
    const data = studyData(tok, "authors", {
      manifestFile: path.join(dir, "manifest.json"),
      committed: false,
      ...quiet,
    });
    assert.equal(data.seed, 7);
    assert.equal(data.splits.analysis.length, 12);
    assert.equal(data.splits.reference.length, 8);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("without studyModel, a tokenizer is not assumed to match the committed files", () => {
    const data = studyData(tok, "authors", { manifestFile: MANIFEST, perN: 2, ...quiet });
    assert.equal(data.source, "generated");
  });
});
