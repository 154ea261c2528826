/**
 * The layering of lib/src, checked from the code's own imports (lib/DESIGN.md "Layers"): nothing
 * imports a folder above its own, no analysis imports another analysis, test support is imported
 * by no library file, and onnxruntime-node is imported by runtime/session-plan.ts alone.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";

const SRC = path.join(__dirname, "..", "..", "lib", "src");
const FLOOR: Record<string, number> = {
  core: 1,
  checkpoint: 2,
  hooks: 3,
  runtime: 4,
  task: 5,
  analysis: 6,
  notebook: 7,
};
const ANALYSES = ["logit-lens", "sublayer-effects", "counting-heads", "patching-grid"];

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? sourceFiles(p) : p.endsWith(".ts") ? [p] : [];
  });
}

/** Every import of a file as [specifier, resolved repo-relative path under lib/src or null]. */
function importsOf(file: string): { spec: string; target: string | null }[] {
  const text = fs.readFileSync(file, "utf8");
  const specs = [...text.matchAll(/(?:^|\n)\s*(?:import|export)[^;'"]*?from\s+["']([^"']+)["']/g)].map((m) => m[1]);
  return specs.map((spec) => ({
    spec,
    target: spec.startsWith(".") ? path.relative(SRC, path.resolve(path.dirname(file), spec)) : null,
  }));
}

const folderOf = (rel: string) => rel.split(path.sep)[0];
const files = sourceFiles(SRC)
  .map((f) => ({ file: f, rel: path.relative(SRC, f) }))
  .filter(({ rel }) => rel !== "index.ts");

test("no library file imports a layer above its own", () => {
  const upward: string[] = [];
  let seen = 0;
  for (const { file, rel } of files) {
    const from = folderOf(rel);
    if (!(from in FLOOR)) continue;
    for (const { target } of importsOf(file)) {
      if (target === null) continue;
      seen++;
      const to = folderOf(target);
      if (to in FLOOR && FLOOR[to] > FLOOR[from]) upward.push(`${rel} → ${target}`);
    }
  }
  assert.ok(seen > 100, `only ${seen} relative imports found: the import scanner is broken`);
  assert.deepEqual(upward, []);
});

test("test support (testing/) is imported by no library file, and imports only core/ and checkpoint/", () => {
  for (const { file, rel } of files) {
    const from = folderOf(rel);
    for (const { target } of importsOf(file)) {
      if (target === null) continue;
      if (from !== "testing") assert.notEqual(folderOf(target), "testing", `${rel} imports ${target}`);
      else assert.ok(["core", "checkpoint", "testing"].includes(folderOf(target)), `${rel} imports ${target}`);
    }
  }
});

test("no analysis imports another analysis; the findings import only core/errors and the statistics floor", () => {
  for (const name of ANALYSES) {
    const targets = importsOf(path.join(SRC, "analysis", `${name}.ts`)).map((i) => i.target);
    for (const other of ANALYSES.filter((o) => o !== name)) {
      assert.ok(!targets.includes(path.join("analysis", other)), `${name} imports ${other}`);
    }
  }
  // Verdicts are computed from rows: errors, pure statistics (exact intervals, bootstrap) and each
  // other's shared Finding type — nothing that runs a model.
  const allowed = [path.join("core", "errors"), path.join("analysis", "stats"), path.join("analysis", "bootstrap")];
  const dir = path.join(SRC, "analysis", "findings");
  for (const f of fs.readdirSync(dir)) {
    for (const { spec, target } of importsOf(path.join(dir, f))) {
      const ok =
        target !== null && (allowed.includes(target) || path.dirname(target) === path.join("analysis", "findings"));
      assert.ok(ok, `analysis/findings/${f} imports ${target ?? spec}`);
    }
  }
});

test("onnxruntime-node is imported by runtime/session-plan.ts alone", () => {
  const importers = files.filter(({ file }) => importsOf(file).some((i) => i.spec === "onnxruntime-node"));
  assert.deepEqual(
    importers.map((f) => f.rel),
    [path.join("runtime", "session-plan.ts")],
  );
});
