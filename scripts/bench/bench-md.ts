import * as fs from "fs";
import * as path from "path";

/** scripts/bench/BENCH.md: each benchmark script owns one marked section of it. */
export const BENCH_MD = path.join(__dirname, "BENCH.md");

/** Replace the section between `<!-- key:start -->` and `<!-- key:end -->` of BENCH.md, or append it. */
export function writeBenchSection(key: string, section: string): void {
  const START = `<!-- ${key}:start -->`;
  const END = `<!-- ${key}:end -->`;
  const block = `${START}\n${section}\n${END}`;
  let md = fs.existsSync(BENCH_MD) ? fs.readFileSync(BENCH_MD, "utf8") : "# parenlens benchmarks\n\n";
  const a = md.indexOf(START);
  const b = md.indexOf(END);
  md = a >= 0 && b > a ? md.slice(0, a) + block + md.slice(b + END.length) : md.trimEnd() + "\n\n" + block + "\n";
  fs.writeFileSync(BENCH_MD, md);
}
