/**
 * No silent wrong answers, without a model: non-finite intervention values and results, option
 * and batch checks, hook-name forms, duplicate JSON keys, the table rule for NaN / Infinity, CSV
 * precision, and atomic writes that leave no temporary files behind.
 */
import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { TINY_CONFIG } from "../../lib/src/testing/random-checkpoint";
import { applyIntervention } from "../../lib/src/hooks/interventions";
import { findDuplicateKey } from "../../lib/src/checkpoint/json-text";
import { writeFilesAtomic, writeFileAtomic } from "../../lib/src/notebook/env";
import { checkModelOptions } from "../../lib/src/runtime/options";
import {
  InputError,
  NonFiniteError,
  Tensor,
  padTokens,
  saveFigure,
  saveTable,
  toCsv,
  validateIntervention,
  validateTokenBatch,
  TokenBatch,
} from "../../lib/src";

const config = { ...TINY_CONFIG, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 3 };
const hook = "blocks.1.hook_resid_post";
const value = () => new Tensor(new Float32Array(2 * 3 * 32).fill(1), [2, 3, 32], ["batch", "pos", "d_model"]);

/** The error thrown by fn, asserted to be a NonFiniteError naming `field`. */
function nonFinite(fn: () => unknown, field: string): NonFiniteError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof NonFiniteError, `expected NonFiniteError, got ${String(e)}`);
    assert.equal(e.code, "NON_FINITE");
    assert.equal(e.field, field);
    return e;
  }
  return assert.fail("expected a NonFiniteError");
}

describe("non-finite intervention values", () => {
  it("a NaN constant or a mean with Infinity is refused before the run, naming the hook", () => {
    const e = nonFinite(() => validateIntervention({ hook, kind: "constant", value: NaN }, config), hook);
    assert.match(e.message, /Intervention on blocks\.1\.hook_resid_post: constant value: value 0 of 1 is NaN/);
    const mean = new Tensor(new Float32Array(32).fill(0), [32], ["d_model"]);
    mean.data[5] = Infinity;
    const m = nonFinite(() => validateIntervention({ hook, kind: "mean", mean }, config), hook);
    assert.equal(m.index, 5);
    // the opt-out
    validateIntervention({ hook, kind: "constant", value: NaN }, config, { allowNonFinite: true });
  });

  it("a function returning NaN and a patch source holding NaN are refused when applied", () => {
    const fn = (v: Tensor) => {
      v.data[7] = NaN;
    };
    const e = nonFinite(() => applyIntervention(value(), { hook, kind: "function", fn }), hook);
    assert.match(e.message, /function result: value 7 of 192 is NaN/);
    const source = value();
    source.data[0] = -Infinity;
    nonFinite(() => applyIntervention(value(), { hook, kind: "patch", source }), hook);
    const allowed = applyIntervention(value(), { hook, kind: "patch", source }, undefined, { allowNonFinite: true });
    assert.equal(allowed.data[0], -Infinity);
  });
});

describe("options and batches are checked before any work", () => {
  it("model options: values and names", () => {
    assert.throws(() => checkModelOptions({ threads: -1 }), /threads must be a positive integer, got -1/);
    assert.throws(() => checkModelOptions({ threads: 1.5 }), InputError);
    assert.throws(() => checkModelOptions({ executionProvider: "gpu" }), /executionProvider must be "cpu" or "cuda"/);
    assert.throws(() => checkModelOptions({ thread: 2 }), /unknown option "thread" \(did you mean threads\?\)/);
    checkModelOptions({ threads: 2, executionProvider: "cpu", allowNonFinite: true, tokenizer: false });
  });

  it("a hand-made TokenBatch whose lengths, mask or padding lie is refused", () => {
    const good = padTokens([
      [1, 2, 3],
      [4, 5],
    ]);
    validateTokenBatch(good);
    const lie = (edit: (b: TokenBatch) => void): TokenBatch => {
      const b = structuredClone(good);
      edit(b);
      return b;
    };
    assert.throws(
      () => validateTokenBatch(lie((b) => (b.lengths = [3, 3]))),
      (e: unknown) => e instanceof InputError && e.field === "lengths[1]" && /2 real tokens/.test(e.message),
    );
    assert.throws(() => validateTokenBatch(lie((b) => (b.attentionMask[1] = [0, 0, 0]))), /row 1 has no real token/);
    assert.throws(() => validateTokenBatch(lie((b) => (b.padding = "middle" as "left"))), /expected "left" or "right"/);
    assert.throws(
      () => validateTokenBatch(lie((b) => (b.attentionMask[1] = [1, 1, 0]))),
      /attentionMask\[1\] is not left-padded/,
    );
    assert.throws(() => padTokens([[1]], { padding: "up" as "left" }), /padding is "up"/);
  });
});

describe("duplicate JSON keys", () => {
  it("finds the first repeated key and where it is", () => {
    assert.deepEqual(findDuplicateKey('{"weight_map": {"a": "1", "b": {"a": 2}, "a": "2"}}'), {
      key: "a",
      path: ".weight_map",
    });
    assert.deepEqual(findDuplicateKey('{"x": 1, "x": 2}'), { key: "x", path: "" });
    assert.equal(findDuplicateKey('{"a": ["a", "a"], "s": "\\"a\\"", "b": [{"a": 1}, {"a": 1}]}'), null);
  });
});

describe("tables: non-finite numbers and CSV precision", () => {
  let results: string;
  const saved = process.env.PARENLENS_RESULTS_DIR;
  before(() => {
    results = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-nf-"));
    process.env.PARENLENS_RESULTS_DIR = results;
  });
  after(() => {
    if (saved === undefined) delete process.env.PARENLENS_RESULTS_DIR;
    else process.env.PARENLENS_RESULTS_DIR = saved;
    fs.rmSync(results, { recursive: true, force: true });
  });

  it("refuses a column of NaN only and any Infinity, keeps NaN beside finite numbers, writes nothing when refused", () => {
    const e = nonFinite(() => saveTable([{ r: NaN }, { r: NaN }], { name: "broken", csv: true }), "r");
    assert.match(e.message, /showTable broken: column "r" has no finite number/);
    assert.equal(fs.existsSync(path.join(results, "broken.csv")), false);
    nonFinite(() => saveTable([{ r: 1 }, { r: Infinity }], { name: "inf" }), "r");
    saveTable(
      [
        { r: 0.5, effect: NaN },
        { r: 0.25, effect: 1 },
      ],
      { name: "partial", csv: true },
    );
    saveTable([{ untested: null, r: 1 }], { name: "empty-cells" }); // null is not a number
    saveTable([{ r: NaN }], { name: "allowed", allowNonFinite: ["r"] });
    saveTable([{ r: Infinity }], { name: "allowed-all", allowNonFinite: true });
  });

  it("writes non-integers at 7 significant digits (float32 precision), integers whole", () => {
    assert.equal(toCsv(["a", "b", "c"], [[1 / 3, 123456789, 1.0000001192092896]]), "a,b,c\n0.3333333,123456789,1\n");
    const out = saveTable([{ x: Math.fround(0.1) }], { name: "digits", csv: true, csvDigits: 17 });
    assert.equal(fs.readFileSync(out.csv!, "utf8"), "x\n0.10000000149011612\n");
  });
});

describe("atomic writes leave no temporary files", () => {
  it("a failed unit write keeps every old file and removes its temporaries; stale ones of dead writers go", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-atomic-"));
    const a = path.join(dir, "a.html");
    writeFileAtomic(a, "old a");
    const stale = path.join(dir, ".a.html.tmp-999999999"); // no such process
    fs.writeFileSync(stale, "left by a killed writer");
    assert.throws(() =>
      writeFilesAtomic([
        [a, "new a"],
        [path.join(dir, "a.html", "b.png"), "new b"], // its folder cannot exist: a.html is a file
      ]),
    );
    assert.equal(fs.readFileSync(a, "utf8"), "old a", "the first file is not replaced when the second cannot be");
    assert.deepEqual(
      fs.readdirSync(dir).filter((f) => f.includes(".tmp-")),
      [],
      "no temporary file left",
    );
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe("figures: non-finite numbers", () => {
  it("refuses a trace array with Infinity or with no finite number, before rendering anything", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-nf-fig-"));
    await assert.rejects(
      saveFigure(
        {
          data: [
            {
              type: "heatmap",
              z: [
                [NaN, NaN],
                [NaN, NaN],
              ],
            },
          ],
        },
        { name: "nan", dir },
      ),
      (e) => {
        assert.ok(e instanceof NonFiniteError);
        assert.equal(e.field, "data[0].z");
        assert.match(e.message, /saveFigure nan: data\[0\]\.z has no finite number \(4 NaN/);
        return true;
      },
    );
    await assert.rejects(
      saveFigure({ data: [{ type: "bar", x: [1, 2], y: new Float32Array([1, Infinity]) }] }, { name: "inf", dir }),
      (e) => e instanceof NonFiniteError && e.field === "data[0].y" && /\[1\] \(Infinity\)/.test(e.message),
    );
    assert.deepEqual(fs.readdirSync(dir), [], "nothing written");
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
