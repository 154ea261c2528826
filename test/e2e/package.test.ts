/**
 * The library as an installable package: `npm pack` in lib/ gives a `parenlens` tarball with its
 * types, an exports map, its own README and LICENSE; installed into a fresh project (from the
 * registry only, no workspace), lib/README.md's example type-checks and runs from TypeScript
 * there and prints what its comments say. Skips, saying why, when the registry is unreachable.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

const ROOT = path.resolve(__dirname, "../..");
const LIB = path.join(ROOT, "lib");
const NPM = "npm";
const rootPkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));

/** The ```ts block under "## A quick example" in lib/README.md. */
function readmeExample(): string {
  const readme = fs.readFileSync(path.join(LIB, "README.md"), "utf8");
  const m = /## A quick example\n\n```ts\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, "lib/README.md has a ```ts block under '## A quick example'");
  return m[1];
}

function pack(dest: string): string {
  const out = execFileSync(NPM, ["pack", "--json", "--pack-destination", dest], { cwd: LIB, encoding: "utf8" });
  const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
  const files = info.files.map((f) => f.path);
  for (const f of ["package.json", "README.md", "LICENSE", "dist/index.js", "dist/index.d.ts", "docs/errors/README.md"])
    assert.ok(files.includes(f), `the tarball holds ${f}`);
  return path.join(dest, info.filename);
}

function registryReachable(): string | null {
  const r = spawnSync(NPM, ["ping"], { encoding: "utf8", timeout: 20_000 });
  return r.status === 0
    ? null
    : `npm registry unreachable (npm ping: ${(r.stderr || r.error?.message || "").trim().split("\n")[0]})`;
}

test("npm pack gives an installable parenlens whose README example runs from TypeScript", async (t) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(LIB, "package.json"), "utf8"));
  assert.equal(pkg.name, "parenlens");
  assert.equal(pkg.license, "MIT");
  assert.deepEqual(pkg.exports["."], { types: "./dist/index.d.ts", default: "./dist/index.js" });
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "parenlens-pkg-"));
  try {
    const tarball = pack(work);
    const offline = registryReachable();
    if (offline) return t.skip(offline);
    const project = path.join(work, "project");
    fs.mkdirSync(project);
    // onnxruntime-node's CPU binaries ship in its package; skip its optional CUDA download
    fs.writeFileSync(path.join(project, ".npmrc"), "onnxruntime-node-install=skip\nfund=false\naudit=false\n");
    const dev = rootPkg.devDependencies;
    fs.writeFileSync(
      path.join(project, "package.json"),
      JSON.stringify({
        name: "uses-parenlens",
        private: true,
        type: "module",
        dependencies: { parenlens: `file:${tarball}` },
        devDependencies: { typescript: dev.typescript, tsx: dev.tsx, "@types/node": dev["@types/node"] },
      }),
    );
    const install = spawnSync(NPM, ["install", "--no-package-lock"], {
      cwd: project,
      encoding: "utf8",
      timeout: 480_000,
    });
    assert.equal(install.status, 0, `npm install failed:\n${install.stderr}`);
    assert.ok(fs.existsSync(path.join(project, "node_modules/parenlens/dist/index.d.ts")));
    assert.ok(!fs.lstatSync(path.join(project, "node_modules/parenlens")).isSymbolicLink(), "installed, not linked");

    const example = readmeExample();
    fs.writeFileSync(path.join(project, "example.mts"), example);
    fs.writeFileSync(
      path.join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "nodenext",
          moduleResolution: "nodenext",
          strict: true,
          noEmit: true,
          skipLibCheck: true, // @types/node 20 against TypeScript 5.9's lib, as in the workspace
        },
        files: ["example.mts"],
      }),
    );
    const tsc = spawnSync(process.execPath, [path.join(project, "node_modules/typescript/bin/tsc"), "-p", project], {
      cwd: project,
      encoding: "utf8",
    });
    assert.equal(tsc.status, 0, `the README example type-checks against the package's types:\n${tsc.stdout}`);
    const run = spawnSync(process.execPath, ["--import", "tsx", "example.mts"], { cwd: project, encoding: "utf8" });
    assert.equal(run.status, 0, run.stderr);
    const lines = run.stdout.trim().split("\n");
    const documented = [...example.matchAll(/console\.log\(.*?\);\s*\/\/ (.*)/g)].map((m) => m[1].trim());
    assert.equal(documented.length, 3);
    documented.forEach((d, i) => assert.equal(lines[i].replace(/\s+/g, " "), d.replace(/\s+/g, " ")));
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
});
