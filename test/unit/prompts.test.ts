import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
  loadTokenizer,
  DatasetError,
  InputError,
  parenRunTokens,
  parenTokenSets,
  findParenRunTokens,
  buildPrompt,
  generateDataset,
  generatePrompts,
  corruptionCandidates,
  makeCorruptedPairs,
  makeClosedCountPairs,
  deeperClosedArgument,
  openCallSites,
  DIGIT_REPLACEMENT,
  CALL_BOUNDARY,
  readPairsJsonl,
  readPromptsJsonl,
  toJsonl,
  groupByLength,
} from "../../lib/src";
import type { Tokenizer } from "../../lib/src";

const tok = loadTokenizer(path.join(__dirname, "..", "fixtures/tokenizer"));
const parens = parenRunTokens(tok);

/**
 * A greedy longest-match tokenizer over a hand-picked vocabulary, to control merges exactly:
 * `7)` is one token (so a label after a 7 is not a single token) and `((` is one token.
 */
function greedyTokenizer(extra: string[], drop: string[] = []): Tokenizer {
  const chars = "abcdefghijklmnopqrstuvwxyz0123456789 #\n(),.'\"_=:%-";
  const vocab = ["<s>", ...chars.split(""), "))", ")))", "))))", ...extra].filter((t) => !drop.includes(t));
  const index = new Map(vocab.map((t, i) => [t, i]));
  return {
    vocabSize: vocab.length,
    bosId: 0,
    eosId: null,
    padId: null,
    tokenToId: (t) => index.get(t),
    idToToken: (id) => vocab[id],
    decode: (ids) => ids.map((i) => vocab[i]).join(""),
    encode(text, opts = {}) {
      const ids = opts.addBos === false ? [] : [0];
      for (let i = 0; i < text.length;) {
        let best = "";
        for (const t of vocab) if (t.length > best.length && t !== "<s>" && text.startsWith(t, i)) best = t;
        if (!best) throw new Error(`no token for ${JSON.stringify(text[i])}`);
        ids.push(index.get(best)!);
        i += best.length;
      }
      return ids;
    },
  };
}

test("paren-run tokens and paren-containing tokens are looked up through the tokenizer", () => {
  const expected = JSON.parse(
    fs.readFileSync(path.join(__dirname, "..", "fixtures/tokenizer/expected-ids.json"), "utf8"),
  );
  assert.deepEqual(
    parens.ids,
    [")", "))", ")))", "))))"].map((r) => expected.parens[r]),
  );
  const sets = parenTokenSets(tok);
  assert.equal(sets.close.get(parens.ids[2]), 3); // ")))" holds three ")"
  assert.equal(sets.open.get(tok.tokenToId("(")!), 1);
  for (const id of sets.open.keys()) assert.ok(tok.decode([id]).includes("("));
  assert.throws(
    () => parenRunTokens(greedyTokenizer([]), 5),
    (e: unknown) => e instanceof DatasetError && e.field === "parenRun[5]",
  );
});

test("the same seed gives the same prompts; another seed gives others", () => {
  const a = generatePrompts(tok, { template: "authors", perN: 6, seed: 11 });
  const b = generatePrompts(tok, { template: "authors", perN: 6, seed: 11 });
  const c = generatePrompts(tok, { template: "authors", perN: 6, seed: 12 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(
    a.prompts.map((p) => p.prompt),
    c.prompts.map((p) => p.prompt),
  );
});

test("the authors' template: exact text, label = the run of k + 1 parens, one token", () => {
  const { prompts, rejected, shortfall } = generatePrompts(tok, { template: "authors", perN: 10, seed: 3 });
  assert.equal(prompts.length, 40);
  assert.equal(rejected.total, 0);
  assert.deepEqual(shortfall, { 1: 0, 2: 0, 3: 0, 4: 0 });
  for (const p of prompts) {
    const m = /^#print the string (\d{3})\nprint\(((?:str\()*)(\d{3})$/.exec(p.prompt);
    assert.ok(m, p.prompt);
    assert.equal(m[1], m[3]); // the same N in the comment and the call
    assert.equal(m[2].length / 4, p.n - 1); // k = n - 1 nested str(
    assert.equal(p.label, ")".repeat(p.n));
    assert.equal(tok.decode([p.labelId]), p.label);
    assert.equal(p.labelId, parens.ids[p.n - 1]);
    assert.deepEqual(tok.encode(p.prompt + p.label), [...p.promptIds, p.labelId]);
    assert.equal(p.nOpen, p.n);
    assert.equal(p.nClosed, 0);
  }
});

test("the partly-closed template: parens already closed in the prompt, the label is the rest", () => {
  const { prompts, rejected } = generatePrompts(tok, { template: "partial", perN: 10, seed: 4 });
  assert.equal(rejected.total, 0);
  const closeIds = parenTokenSets(tok).close;
  const nClosedSeen = new Set<number>();
  for (const p of prompts) {
    assert.ok(p.nClosed >= 1);
    assert.equal(p.nOpen - p.nClosed, p.n);
    assert.ok(
      p.promptIds.some((id) => closeIds.has(id)),
      `${p.prompt}: a ")" token should be in the prompt`,
    );
    assert.ok(!p.prompt.endsWith(")"), "an open argument follows the closed ones");
    assert.equal(p.labelId, parens.ids[p.n - 1]);
    assert.deepEqual(tok.encode(p.prompt + p.label), [...p.promptIds, p.labelId]);
    nClosedSeen.add(p.nClosed);
  }
  assert.ok(nClosedSeen.size >= 3, "nClosed should vary across prompts for the counting analysis");
});

test("the complex template: varied function names, several arguments, labels valid", () => {
  const { prompts } = generatePrompts(tok, { template: "complex", perN: 10, seed: 5 });
  assert.equal(prompts.length, 40);
  const callNames = new Set(prompts.flatMap((p) => String(p.fields.calls).split(",")));
  assert.ok(callNames.size >= 8);
  assert.ok(
    prompts.some((p) => p.prompt.includes(", ")),
    "some calls have several arguments",
  );
  assert.ok(
    prompts.some((p) => p.nClosed > 0),
    "some arguments are closed nested calls",
  );
  for (const p of prompts) {
    assert.equal(p.nOpen - p.nClosed, p.n);
    assert.equal(p.labelId, parens.ids[p.n - 1]);
  }
});

test("a label that merges with the code before it is rejected and counted, never kept", () => {
  const greedy = greedyTokenizer(["7)"]); // "...7))" tokenizes as "7)" ")"
  const g = generatePrompts(greedy, { template: "authors", perN: 30, seed: 1 });
  const bad = g.rejected.byReason["label-not-single-token"] ?? 0;
  assert.ok(bad > 0);
  assert.equal(g.rejected.total, bad + (g.rejected.byReason.duplicate ?? 0)); // the only other reason: a repeated draw
  assert.equal(g.prompts.length + g.rejected.total, g.draws);
  for (const p of g.prompts) assert.ok(!p.prompt.endsWith("7"));
  for (const e of g.rejected.examples) if (e.reason === "label-not-single-token") assert.match(e.text, /7\)+$/);
  assert.equal(
    Object.values(g.rejected.byN).reduce((a, b) => a + b, 0),
    g.rejected.total,
  );
  // buildPrompt on its own says why
  assert.equal(
    buildPrompt(greedy, parenRunTokens(greedy), "print(127", 1, { id: "x", template: "t", split: "s" }),
    "label-not-single-token",
  );
  assert.equal(
    buildPrompt(greedy, parenRunTokens(greedy), "print(12", 2, { id: "x", template: "t", split: "s" }),
    "paren-count-mismatch",
  );
});

test("splits are disjoint and reproducible", () => {
  const d = generateDataset(tok, { template: "authors", perN: { analysis: 20, reference: 20 }, seed: 9 });
  const a = new Set(d.splits.analysis.map((p) => p.prompt));
  assert.equal(a.size, 80);
  assert.equal(d.splits.reference.length, 80);
  for (const p of d.splits.reference) {
    assert.ok(!a.has(p.prompt));
    assert.equal(p.split, "reference");
  }
  assert.equal(new Set([...d.splits.analysis, ...d.splits.reference].map((p) => p.id)).size, 160);
});

test("corrupted pairs: one extra '(', label one paren longer, same token count; n = 4 rejected", () => {
  const clean = generatePrompts(tok, { template: "authors", perN: 8, seed: 2 }).prompts;
  const { pairs, rejected } = makeCorruptedPairs(tok, clean, { strategies: DIGIT_REPLACEMENT });
  assert.equal(pairs.length + rejected.total, clean.length);
  assert.equal(rejected.byReason["corrupted-label-not-single-token"], 8); // ")))))" is not a token
  assert.equal(rejected.byN["4"], 8);
  assert.equal(pairs.length, 24);
  for (const { clean: c, corrupted: x, diffPositions, strategy } of pairs) {
    assert.equal(x.length, c.length);
    assert.equal(x.n, c.n + 1);
    assert.equal(x.nOpen, c.nOpen + 1);
    assert.equal(x.labelId, parens.ids[c.n]);
    assert.ok(diffPositions.length >= 1);
    for (const i of diffPositions) assert.notEqual(x.promptIds[i], c.promptIds[i]);
    // this tokenizer keeps "(" separate, so the first aligned candidate with "(" as its own token
    // is the argument's first digit becoming "("
    assert.equal(strategy, "arg-char-to-open");
  }
  // a tokenizer that merges "((": inserting "(" aligns, but hides the extra paren in a "((" token;
  // by default the pair where the new "(" is a token of its own is preferred
  const greedy = greedyTokenizer(["(("]);
  const g = generatePrompts(greedy, { template: "authors", perN: 4, seed: 2, ns: [1, 2, 3] }).prompts;
  const gp = makeCorruptedPairs(greedy, g, { strategies: DIGIT_REPLACEMENT });
  assert.equal(gp.pairs.length, 12);
  const open = greedy.tokenToId("(")!;
  for (const p of gp.pairs) {
    assert.equal(p.strategy, "inner-char-to-open"); // print(str(1(3
    assert.equal(p.diffPositions.length, 1);
    assert.equal(p.corrupted.promptIds[p.diffPositions[0]], open);
  }
  const inOrder = makeCorruptedPairs(greedy, g, { strategies: DIGIT_REPLACEMENT, prefer: "order" });
  for (const p of inOrder.pairs) assert.equal(p.strategy, "double-open"); // print(str((123: "((" is one token
  assert.deepEqual(
    corruptionCandidates("print(str(123").map((c) => c.text),
    ["print(str((123", "print(str((23", "print(str(1(3"],
  );
  assert.deepEqual(corruptionCandidates("print(x)"), []);
});

test("the authors' corruption (default): one '(' after the c-th open call, c seeded per prompt and varying", () => {
  assert.deepEqual(openCallSites("print(str(f(1), str(12"), [6, 10, 20]); // f(1) is closed, str( stays open
  const greedy = greedyTokenizer(["(("]); // merges "((" like the embedded tokenizer: insertion keeps the length
  const g = generatePrompts(greedy, { template: "authors", perN: 12, seed: 2, ns: [1, 2, 3] }).prompts;
  const { pairs, rejected } = makeCorruptedPairs(greedy, g, { seed: 7 });
  assert.equal(pairs.length, g.length);
  assert.equal(rejected.total, 0);
  const calls = new Set<number>();
  for (const p of pairs) {
    assert.equal(p.strategy, "call-boundary");
    assert.equal(p.alignment, "same-length");
    assert.equal(p.corrupted.length, p.clean.length);
    assert.equal(p.corrupted.n, p.clean.n + 1);
    const c = p.corrupted.fields.corruptionCall as number;
    assert.ok(c >= 0 && c < p.clean.n); // n open calls: print( and n − 1 str(
    assert.equal(p.corrupted.prompt, p.clean.prompt.slice(0, p.site) + "(" + p.clean.prompt.slice(p.site));
    assert.equal(p.clean.prompt[p.site! - 1], "(");
    if (p.clean.n === 3) calls.add(c);
  }
  assert.ok(calls.size >= 2, "the call boundary varies over prompts");
  // the same seed gives the same sites; another seed moves some
  assert.deepEqual(makeCorruptedPairs(greedy, g, { seed: 7 }).pairs, pairs);
  const other = makeCorruptedPairs(greedy, g, { seed: 8 }).pairs;
  assert.ok(other.some((p, i) => p.site !== pairs[i].site));
  // a tokenizer that keeps every "(" apart: the insertion adds a token, so the pair is right-aligned
  // (patched by distance from the end); lengthMismatch "reject" falls back to the digit replacement
  const plainPrompts = generatePrompts(tok, { template: "authors", perN: 4, seed: 2, ns: [2] }).prompts;
  const rightAligned = makeCorruptedPairs(tok, plainPrompts, { strategies: CALL_BOUNDARY });
  assert.equal(rightAligned.pairs.length, 4);
  for (const p of rightAligned.pairs) {
    assert.equal(p.alignment, "right-aligned");
    assert.equal(p.corrupted.length, p.clean.length + 1);
    // every clean token after the insertion has the same token at the same distance from the end
    const site = tok.encode(p.clean.prompt.slice(0, p.site)).length; // clean tokens up to the site
    for (let i = site; i < p.clean.length; i++) assert.equal(p.corrupted.promptIds[i + 1], p.clean.promptIds[i]);
    assert.ok(p.diffPositions.every((i) => i < site));
  }
  assert.deepEqual(makeCorruptedPairs(tok, plainPrompts).pairs, rightAligned.pairs); // the default
  const authorsOnly = makeCorruptedPairs(tok, plainPrompts, { strategies: CALL_BOUNDARY, lengthMismatch: "reject" });
  assert.equal(authorsOnly.pairs.length, 0);
  assert.equal(authorsOnly.rejected.byReason["corrupted-length-mismatch"], 4);
  const fallback = makeCorruptedPairs(tok, plainPrompts, { lengthMismatch: "reject" });
  assert.equal(fallback.pairs.length, 4);
  for (const p of fallback.pairs) {
    assert.equal(p.strategy, "arg-char-to-open");
    assert.equal(p.alignment, "same-length");
    assert.equal(p.corrupted.length, p.clean.length);
  }
  assert.throws(
    () => makeCorruptedPairs(tok, plainPrompts, { lengthMismatch: "pad" as "reject" }),
    (e: unknown) => e instanceof InputError && e.field === "lengthMismatch",
  );
});

test("closed-count pairs: same n and length, one more ')' already closed", () => {
  assert.equal(deeperClosedArgument("print(str(123), str(45"), "print(str(str(1)), str(45");
  assert.equal(deeperClosedArgument("print(str(45"), null);
  const prompts = generatePrompts(tok, { template: "partial", perN: 10, seed: 3, ns: [1, 2, 3] }).prompts;
  const { pairs, rejected } = makeClosedCountPairs(tok, prompts);
  assert.equal(pairs.length + rejected.total, prompts.length);
  assert.ok(pairs.length > 0);
  for (const p of pairs) {
    assert.equal(p.corrupted.n, p.clean.n);
    assert.equal(p.corrupted.labelId, p.clean.labelId);
    assert.equal(p.corrupted.nClosed, p.clean.nClosed + 1);
    assert.equal(p.corrupted.length, p.clean.length);
  }
});

test("pairs that do not align are rejected with a count", () => {
  const clean = generatePrompts(tok, { template: "complex", perN: 10, seed: 5, ns: [1, 2] }).prompts;
  const { pairs, rejected } = makeCorruptedPairs(tok, clean, { strategies: ["double-open"] });
  // with this tokenizer "(" never merges, so inserting one always adds a token
  assert.equal(pairs.length, 0);
  assert.equal(rejected.byReason["corrupted-length-mismatch"], clean.length);
});

test("JSONL round trip, and a dataset for another tokenizer is refused", () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-prompts-"));
  const prompts = generatePrompts(tok, { template: "partial", perN: 3, seed: 1 }).prompts;
  const pairs = makeCorruptedPairs(tok, prompts, { strategies: DIGIT_REPLACEMENT }).pairs;
  assert.ok(pairs.length > 0);
  fs.writeFileSync(path.join(dir, "p.jsonl"), toJsonl(prompts));
  fs.writeFileSync(path.join(dir, "q.jsonl"), toJsonl(pairs));
  assert.deepEqual(readPromptsJsonl(path.join(dir, "p.jsonl"), { tokenizer: tok }), prompts);
  assert.deepEqual(readPairsJsonl(path.join(dir, "q.jsonl"), { tokenizer: tok }), pairs);
  assert.throws(
    () => readPromptsJsonl(path.join(dir, "p.jsonl"), { tokenizer: greedyTokenizer([]) }),
    (e: unknown) => e instanceof DatasetError && e.field === "promptIds",
  );
  fs.writeFileSync(path.join(dir, "bad.jsonl"), JSON.stringify({ ...prompts[0], labelId: "x" }) + "\n");
  assert.throws(
    () => readPromptsJsonl(path.join(dir, "bad.jsonl")),
    (e: unknown) => e instanceof DatasetError && e.field === "labelId",
  );
  assert.throws(() => generatePrompts(tok, { template: "nope" as never, perN: 1, seed: 0 }), DatasetError);
  fs.rmSync(dir, { recursive: true });
});

test("groupByLength batches prompts of equal token length", () => {
  const prompts = generatePrompts(tok, { template: "authors", perN: 5, seed: 1 }).prompts;
  const groups = groupByLength(prompts, (p) => p.length);
  let total = 0;
  let prev = -1;
  for (const [L, g] of groups) {
    assert.ok(L > prev);
    prev = L;
    for (const p of g) assert.equal(p.length, L);
    total += g.length;
  }
  assert.equal(total, prompts.length);
});

test("the committed datasets match their manifest and the embedded model's tokenizer", (t) => {
  const root = path.join(__dirname, "..", "..");
  const manifestFile = path.join(root, "data/datasets/manifest.json");
  if (!fs.existsSync(manifestFile)) return t.skip("no data/datasets yet (run scripts/datasets/make-datasets.ts)");
  const manifest = JSON.parse(fs.readFileSync(manifestFile, "utf8"));
  const folder = path.join(root, manifest.tokenizer.folder);
  if (!fs.existsSync(path.join(folder, "tokenizer.json"))) return t.skip(`${manifest.tokenizer.folder} not present`);
  const modelTok = loadTokenizer(folder);
  for (const [name, spec] of Object.entries(manifest.templates) as [
    string,
    { splits: Record<string, { file: string; count: number }>; pairs: { file: string; count: number } },
  ][]) {
    for (const [split, s] of Object.entries(spec.splits)) {
      // re-tokenizing every prompt must give the stored ids (a changed tokenizer means: regenerate)
      const prompts = readPromptsJsonl(path.join(root, "data/datasets", s.file), { tokenizer: modelTok });
      assert.equal(prompts.length, s.count, `${name} ${split}`);
      assert.ok(prompts.every((p) => p.template === name && p.split === split));
    }
    const pairs = readPairsJsonl(path.join(root, "data/datasets", spec.pairs.file));
    assert.equal(pairs.length, spec.pairs.count);
    assert.ok(pairs.every((p) => p.corrupted.length === p.clean.length && p.corrupted.n === p.clean.n + 1));
  }
});

test("paren runs are found from the vocabulary; a run that is not one token is reported, and its prompts rejected with the reason", () => {
  // "))))" is not in this vocabulary: it tokenizes as "))" + "))"
  const short = greedyTokenizer([], ["))))"]);
  const search = findParenRunTokens(short, 4);
  assert.deepEqual(search.studiable, [1, 2, 3]);
  assert.deepEqual([...search.found.keys()], [1, 2, 3]);
  assert.equal(search.missing.length, 1);
  assert.equal(search.missing[0].n, 4);
  assert.match(search.missing[0].reason, /no single token of this tokenizer decodes to "\)\)\)\)"/);
  assert.throws(
    () => parenRunTokens(short, 4),
    (e: unknown) => e instanceof DatasetError && /counts 1, 2, 3 are single tokens; n = 4/.test(e.message),
  );
  const data = generateDataset(short, { template: "authors", perN: { analysis: 3, reference: 2 }, seed: 1 });
  assert.deepEqual(
    data.unstudiable.map((m) => m.n),
    [4],
  );
  for (const [split, perN] of [
    ["analysis", 3],
    ["reference", 2],
  ] as const) {
    assert.ok(
      data.splits[split].every((p) => p.n <= 3),
      `${split}: no n = 4 prompt`,
    );
    assert.equal(data.shortfall[split]["4"], perN);
    assert.equal(data.rejected[split].byReason["paren-run-not-one-token"], 1);
  }
  assert.equal(data.splits.analysis.filter((p) => p.n === 3).length, 3, "the studiable counts are complete");

  // a vocabulary that spells the run differently (no exact entry) is still searched by decoding
  const spelled = greedyTokenizer([]);
  const hidden: Tokenizer = { ...spelled, tokenToId: () => undefined };
  assert.deepEqual(parenRunTokens(hidden).ids, parenRunTokens(spelled).ids);
  // no studiable count at all: the generator refuses with the reason
  assert.throws(
    () =>
      generateDataset(greedyTokenizer([], ["))", ")))", "))))"]), {
        template: "authors",
        perN: { analysis: 1 },
        ns: [2, 3],
        seed: 1,
      }),
    (e: unknown) => e instanceof DatasetError && /None of the counts 2, 3/.test(e.message),
  );
});
