/**
 * Errors as a documented vocabulary: every ErrorCode has its page under lib/docs/errors/ (exact
 * messages, Symptom / Cause / Fix), the README indexes them all, and every thrown message ends
 * with a pointer to its page.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { TINY_CONFIG } from "../../lib/src/testing/random-checkpoint";
import {
  CheckpointError,
  ConfigError,
  DatasetError,
  ERROR_CODES,
  ErrorCode,
  ExecutionProviderError,
  FeedError,
  HookNameError,
  InputError,
  InterventionError,
  JournalError,
  NonFiniteError,
  ParenlensError,
  RenderError,
  SafetensorsError,
  validateHookName,
} from "../../lib/src";

const repo = path.join(__dirname, "..", "..");
const page = (code: string) => path.join(repo, "lib", "docs", "errors", `${code}.md`);

/** One instance of each typed class, by code. */
const examples: Record<ErrorCode, ParenlensError> = {
  CONFIG: new ConfigError("c"),
  SAFETENSORS: new SafetensorsError("s"),
  CHECKPOINT: new CheckpointError("k"),
  HOOK_NAME: new HookNameError("blocks.0.hook_x", []),
  INTERVENTION: new InterventionError("i"),
  INPUT: new InputError("n"),
  DATASET: new DatasetError("d"),
  FEED: new FeedError("f"),
  EXECUTION_PROVIDER: new ExecutionProviderError("e"),
  RENDER: new RenderError("r"),
  NON_FINITE: new NonFiniteError("x"),
  JOURNAL: new JournalError("j"),
};

test("every ErrorCode has a page with its messages, Symptom, Cause and Fix", () => {
  for (const code of ERROR_CODES) {
    assert.ok(fs.existsSync(page(code)), `lib/docs/errors/${code}.md is missing`);
    const text = fs.readFileSync(page(code), "utf8");
    assert.match(text, new RegExp(`^# ${code} — \``), `${code}.md starts with its title`);
    for (const section of ["## Messages", "## Symptom", "## Cause", "## Fix"])
      assert.ok(text.includes(section), `${code}.md has ${section}`);
    assert.match(text, /```ts\n/, `${code}.md has a TypeScript example`);
  }
});

test("the README indexes every page", () => {
  const readme = fs.readFileSync(path.join(repo, "lib", "docs", "errors", "README.md"), "utf8");
  for (const code of ERROR_CODES) assert.ok(readme.includes(`[${code}](${code}.md)`), `README links ${code}`);
});

test("every typed class carries its code, and its message points to the code's page", () => {
  for (const code of ERROR_CODES) {
    const e = examples[code];
    assert.ok(e instanceof ParenlensError);
    assert.equal(e.code, code);
    assert.equal(e.docs, `lib/docs/errors/${code}.md`);
    assert.ok(e.message.endsWith(`(parenlens ${code} — lib/docs/errors/${code}.md)`), e.message);
    assert.ok(e.message.startsWith(e.detail));
  }
});

test("a thrown error's message names its page and keeps the original text", () => {
  try {
    validateHookName("blocks.0.attn.hook_patern", TINY_CONFIG);
    assert.fail("expected a HookNameError");
  } catch (e) {
    assert.ok(e instanceof HookNameError);
    assert.equal(
      e.message,
      'Unknown hook point "blocks.0.attn.hook_patern". Did you mean: blocks.0.attn.hook_pattern, ' +
        "blocks.1.attn.hook_pattern, blocks.0.attn.hook_rot_k? " +
        "(parenlens HOOK_NAME — lib/docs/errors/HOOK_NAME.md)",
    );
    assert.ok(fs.existsSync(path.join(repo, e.docs)));
  }
});
