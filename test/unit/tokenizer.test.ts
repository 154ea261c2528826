import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { loadTokenizer, CheckpointError, InputError } from "../../lib/src";

const TOKENIZER = path.join(__dirname, "..", "fixtures/tokenizer");
// Written by scripts/golden/make_test_tokenizer.py with Python `tokenizers`.
const expected = JSON.parse(fs.readFileSync(path.join(TOKENIZER, "expected-ids.json"), "utf8")) as {
  vocab_size: number;
  parens: Record<string, number>;
  samples: { text: string; ids: number[]; ids_no_bos: number[]; tokens: string[]; decoded: string }[];
};

test("encodes exactly as Python tokenizers does, with and without BOS", () => {
  const tok = loadTokenizer(TOKENIZER);
  assert.ok(expected.samples.length >= 5);
  for (const s of expected.samples) {
    assert.deepEqual(tok.encode(s.text), s.ids, JSON.stringify(s.text));
    assert.deepEqual(tok.encode(s.text, { addBos: false }), s.ids_no_bos, JSON.stringify(s.text));
    assert.deepEqual(
      s.ids_no_bos.map((i) => tok.idToToken(i)),
      s.tokens,
    );
    assert.equal(tok.decode(s.ids_no_bos), s.decoded);
  }
});

test("special tokens, vocabulary size and byte fallback", () => {
  const tok = loadTokenizer(TOKENIZER);
  assert.equal(tok.bosId, 1);
  assert.equal(tok.eosId, 2);
  assert.equal(tok.padId, null); // tokenizer_config.json has pad_token null
  assert.equal(tok.vocabSize, expected.vocab_size);
  assert.equal(tok.tokenToId("<0x41>"), 3 + 0x41);
  assert.equal(tok.idToToken(0), "<unk>");
  assert.equal(tok.tokenToId("no-such-token"), undefined);
  // "é" is not in the training text: it falls back to its two UTF-8 bytes
  const ids = tok.encode("é", { addBos: false });
  assert.deepEqual(
    ids.filter((i) => i >= 3 && i < 259).map((i) => tok.idToToken(i)),
    ["<0xC3>", "<0xA9>"],
  );
  assert.equal(tok.decode(ids), "é");
});

test("closing-paren runs are single tokens", () => {
  const tok = loadTokenizer(TOKENIZER);
  for (const p of [")", "))", ")))", "))))"]) {
    assert.equal(tok.tokenToId(p), expected.parens[p]);
    assert.equal(tok.idToToken(expected.parens[p]), p);
  }
  const ids = tok.encode("print(str(x))", { addBos: false });
  assert.equal(ids[ids.length - 1], expected.parens["))"]);
});

test("bad ids are an InputError", () => {
  const tok = loadTokenizer(TOKENIZER);
  assert.throws(() => tok.decode([1, 99999]), InputError);
  assert.throws(() => tok.idToToken(-1), InputError);
  assert.equal(tok.decode([]), "");
});

test("missing or malformed tokenizer files are a CheckpointError naming the file", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tok-"));
  try {
    assert.throws(
      () => loadTokenizer(dir),
      (e: unknown) => e instanceof CheckpointError && e.file === path.join(dir, "tokenizer.json"),
    );
    fs.writeFileSync(path.join(dir, "tokenizer.model"), "");
    assert.throws(() => loadTokenizer(dir), /tokenizer\.model/);
    fs.writeFileSync(path.join(dir, "tokenizer.json"), "{oops");
    assert.throws(
      () => loadTokenizer(dir),
      (e: unknown) => e instanceof CheckpointError && /not a valid JSON/.test(e.message),
    );
    fs.writeFileSync(path.join(dir, "tokenizer.json"), "{}");
    assert.throws(
      () => loadTokenizer(dir),
      (e: unknown) => e instanceof CheckpointError && e.field === "model",
    );
    // tokenizer.json alone (no tokenizer_config.json): Llama's <s> and </s> are found in the vocabulary
    fs.copyFileSync(path.join(TOKENIZER, "tokenizer.json"), path.join(dir, "tokenizer.json"));
    const tok = loadTokenizer(dir);
    assert.equal(tok.bosId, 1);
    assert.equal(tok.eosId, 2);
    assert.deepEqual(tok.encode("print(str(x))"), expected.samples[0].ids);
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});
