/**
 * A starting point for a new analysis: `npm run new-notebook -- NAME` writes notebooks/NAME.ipynb
 * (tslab kernel) with the set-up cell, a cache, an intervention and a figure, ready to step through
 * in `npm run lab` or to re-run with `npm run notebooks -- notebooks/NAME.ipynb`.
 *
 *   node --import tsx scripts/notebooks/new-notebook.ts NAME [--dir DIR] [--force]
 *
 * NAME: letters, digits, "-" and "_" (".ipynb" is added). Refuses to overwrite unless --force.
 */
import * as fs from "fs";
import * as path from "path";

const ROOT = path.resolve(__dirname, "..", "..");

/** One cell of the template: markdown, or code (unexecuted). */
function cell(kind: "markdown" | "code", id: string, source: string): Record<string, unknown> {
  const lines = source.split("\n").map((l, i, all) => (i < all.length - 1 ? l + "\n" : l));
  const base = { cell_type: kind, id, metadata: {}, source: lines };
  return kind === "code" ? { ...base, execution_count: null, outputs: [] } : base;
}

/** The template's cells for a notebook called `name`. */
export function templateCells(name: string): Record<string, unknown>[] {
  const md = (i: number, s: string) => cell("markdown", `${name}-${String(i).padStart(2, "0")}`, s);
  const code = (i: number, s: string) => cell("code", `${name}-${String(i).padStart(2, "0")}`, s);
  return [
    md(0, `# ${name}\n\nA new analysis, from \`npm run new-notebook\`. Step through it with \`npm run lab\`; re-run it\nheadlessly with \`npm run notebooks -- notebooks/${name}.ipynb\`. Figures go to \`figures/\`.`),
    code(1, `import { parenRunTokens, showAttention, showFigure, showTable, softmax, studyModel } from "parenlens";\n\n// $PARENLENS_MODEL when set, else the embedded model; prints its shape.\nconst { model, tok } = await studyModel();`),
    md(2, "## A cache\n\nEvery hook point of one run (`runWithCache` without `names`), read with TransformerLens' shorthands."),
    code(3, `const prompt = "#print the string 123\\nprint(str(str(123";\nconst tokens = model.toStrTokens(prompt); // BOS first\nconst { logits, cache } = await model.runWithCache(prompt);\nconst layer = 2;\nconst pattern = cache.get("pattern", layer); // blocks.2.attn.hook_pattern [batch, head, query_pos, key_pos]\nconsole.log(\`\${tokens.length} tokens, \${cache.size} hook values cached\`);`),
    md(4, "## An intervention\n\nZero one head's output (`attn.hook_z`) at the last token and compare the closing-paren runs."),
    code(5, `const head = 0;\nconst parens = parenRunTokens(tok); // ids of ")", "))", ")))", "))))"\nconst clean = softmax(logits.select(1, -1).select(0, 0).data); // [vocab]\nconst ablatedLogits = await model.runWithHooks(\n  prompt,\n  [{ hook: \`blocks.\${layer}.attn.hook_z\`, kind: "zero", heads: [head], positions: [-1] }],\n  { logitsAt: "last" },\n); // [batch, vocab]\nconst ablated = softmax(ablatedLogits.select(0, 0).data);\nshowTable(
  parens.ids.map((id, i) => ({ run: parens.runs[i], clean: clean[id], ablated: ablated[id] })),
  { name: "${name}-ablation" },
);`),
    md(6, "## A figure\n\nThe layer's attention: pick a head, hover a token to see where it attends and what attends to it."),
    code(7, `await showAttention(tokens, pattern, { layer: layer }); // (tslab needs \`layer: layer\`: no shorthand for a cell's top-level names)\nawait showFigure(\n  {\n    data: [{ type: "bar", x: parens.runs, y: parens.ids.map((id) => ablated[id] - clean[id]) }],\n    layout: { xaxis: { type: "category", title: { text: "next token" } }, yaxis: { title: { text: "Δ probability" } } },\n  },\n  { name: "${name}-ablation", title: \`Zeroing L\${layer}H\${head} at the last token\` },\n);`),
  ];
}

/** The notebook as nbformat 4.5 JSON, with the tslab kernel. */
export function templateNotebook(name: string): Record<string, unknown> {
  return {
    cells: templateCells(name),
    metadata: {
      kernelspec: { display_name: "TypeScript", language: "typescript", name: "tslab" },
      language_info: { codemirror_mode: { mode: "typescript", name: "javascript", typescript: true }, file_extension: ".ts", mimetype: "text/typescript", name: "typescript", version: "3.7.2" },
    },
    nbformat: 4,
    nbformat_minor: 5,
  };
}

function main(argv: string[]): number {
  const force = argv.includes("--force");
  const d = argv.indexOf("--dir");
  const dir = d >= 0 ? path.resolve(argv[d + 1] ?? "") : path.join(ROOT, "notebooks");
  const name = argv.filter((a, i) => !a.startsWith("--") && (d < 0 || i !== d + 1))[0]?.replace(/\.ipynb$/, "");
  if (!name || !/^[A-Za-z0-9][A-Za-z0-9_-]*$/.test(name)) {
    console.error("usage: npm run new-notebook -- NAME   (letters, digits, - and _; e.g. 05-my-analysis)");
    return 2;
  }
  const file = path.join(dir, `${name}.ipynb`);
  if (fs.existsSync(file) && !force) {
    console.error(`${path.relative(process.cwd(), file)} exists: choose another name, or pass --force`);
    return 1;
  }
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(file, JSON.stringify(templateNotebook(name), null, 1) + "\n");
  console.log(`wrote ${path.relative(process.cwd(), file)}: open it with \`npm run lab\``);
  return 0;
}

if (require.main === module) process.exit(main(process.argv.slice(2)));
