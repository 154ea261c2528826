/**
 * The README's library example is real code: it is cut out of README.md and run as written
 * (against the built `parenlens` package, which `npm test` builds first), so it cannot rot.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

const root = path.resolve(__dirname, "../..");

test("the README's 'library in a few lines' example runs and prints what its comments say", () => {
  const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## The library in a few lines"));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(match, "README has a ```ts block in 'The library in a few lines'");
  // run it as an ES module inside the repo (so "parenlens" resolves), and show the ablated run
  const script = match[1] + '\nconsole.log("ablated", ablated.shape);\n';
  const dir = fs.mkdtempSync(path.join(root, "test", ".readme-"));
  try {
    const file = path.join(dir, "example.mts");
    fs.writeFileSync(file, script);
    const out = execFileSync(process.execPath, ["--import", "tsx", file], { cwd: root, encoding: "utf8" });
    const lines = out.trim().split("\n");
    // each console.log line of the example ends with the comment that documents it
    const documented = [...match[1].matchAll(/console\.log\(.*?\);\s*\/\/ (.*)/g)].map((m) => m[1].trim());
    assert.ok(documented.length >= 2);
    documented.forEach((d, i) => assert.equal(lines[i].replace(/\s+/g, " "), d.replace(/\s+/g, " ")));
    assert.match(lines[documented.length], /ablated \[ 2, 3070 \]/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
