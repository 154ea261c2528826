/**
 * Prompt templates of the closing-paren task. A template draws the code text that comes before
 * the label (the run of n missing `)`), given a PRNG and n. Tokenization and validation live in
 * prompts.ts; templates only write text.
 */

export type TemplateName = "authors" | "partial" | "complex";

export interface TemplateDraw {
  /** The text before the label: the model must continue it with n `)`. */
  prompt: string;
  /** The parameters drawn (numbers, depths, function names), kept with the prompt for analysis. */
  fields: Record<string, string | number>;
}

export interface PromptTemplate {
  name: TemplateName;
  description: string;
  draw(rand: () => number, n: number): TemplateDraw;
}

function randInt(rand: () => number, lo: number, hi: number): number {
  return lo + Math.floor(rand() * (hi - lo + 1)); // inclusive bounds
}

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)];
}

/** A random 3-digit number, as in the authors' template. */
function threeDigits(rand: () => number): number {
  return randInt(rand, 100, 999);
}

/**
 * The authors' template (follow-up code of arXiv 2502.18499):
 * `#print the string N\nprint(` + k × `str(` + `N`, label = k + 1 closing parens.
 */
export const AUTHORS_TEMPLATE: PromptTemplate = {
  name: "authors",
  description: "#print the string N / print(str(...str(N  with k = n - 1 nested str( calls (the authors' template)",
  draw(rand, n) {
    const k = n - 1;
    const N = threeDigits(rand);
    return { prompt: `#print the string ${N}\nprint(${"str(".repeat(k)}${N}`, fields: { N, k } };
  },
};

/** Outer calls that take two arguments, so a closed argument can be followed by an open one. */
const TWO_ARG_CALLS = ["max(", "min(", "zip("] as const;

/**
 * Partly closed: some `)` are already written (closing earlier arguments), then an open
 * argument follows, so the prompt really ends inside n open calls with `)` tokens before it:
 * `#print the strings A and B\nprint(` + a outer calls + closed args (depth 1..3 each) + `, ` +
 * b × `str(` + `B`, with 1 + a + b = n. E.g. n = 2: `print(str(str(123)), str(456`.
 */
export const PARTIAL_TEMPLATE: PromptTemplate = {
  name: "partial",
  description: "print(<closed str(...) args>, str(...str(M  : earlier arguments already closed, n calls still open",
  draw(rand, n) {
    const a = randInt(rand, 0, n - 1); // outer two-argument calls around the arguments
    const b = n - 1 - a; // str( calls inside the open argument
    const nArgs = randInt(rand, 1, 2); // closed arguments before the open one
    const closedDepths: number[] = [];
    const values: number[] = [];
    const args: string[] = [];
    for (let i = 0; i < nArgs; i++) {
      const depth = randInt(rand, 1, 3);
      const v = threeDigits(rand);
      closedDepths.push(depth);
      values.push(v);
      args.push(`${"str(".repeat(depth)}${v}${")".repeat(depth)}`);
    }
    const last = threeDigits(rand);
    values.push(last);
    let outer = "";
    const outerNames: string[] = [];
    for (let i = 0; i < a; i++) {
      const f = pick(rand, TWO_ARG_CALLS);
      outer += f;
      outerNames.push(f.slice(0, -1));
    }
    const comment = `#print the strings ${values.slice(0, -1).join(", ")} and ${last}`;
    const code = `print(${outer}${args.join(", ")}, ${"str(".repeat(b)}${last}`;
    return {
      prompt: `${comment}\n${code}`,
      fields: {
        a,
        b,
        closedArgs: nArgs,
        closedDepths: closedDepths.join(","),
        outer: outerNames.join(","),
        M: last,
      },
    };
  },
};

const SPINE_CALLS = [
  "len",
  "str",
  "int",
  "abs",
  "max",
  "min",
  "sorted",
  "list",
  "sum",
  "round",
  "float",
  "tuple",
  "set",
  "print",
  "repr",
  "enumerate",
  "np.array",
  "os.path.join",
  "json.dumps",
  "math.sqrt",
  "self.process",
  "get_value",
  "parse_item",
  "helper.run",
] as const;
const LEAF_CALLS = ["len", "str", "int", "abs", "float", "repr", "get_key", "self.size"] as const;
const NAMES = [
  "items",
  "data",
  "key",
  "value",
  "size",
  "idx",
  "name",
  "count",
  "self.count",
  "config.limit",
  "row",
  "text",
] as const;
const STATEMENTS = ["result = ", "value = ", "return ", "out = ", "total = ", "self.value = "] as const;
const STRINGS = ["'a'", "'id'", "'name'", '"x"', "'utf-8'", "'%s'"] as const;

/** A complete (closed) argument: a name, a number, a string, or a closed call of depth 1..2. */
function closedArgument(rand: () => number, depthLeft: number): string {
  const r = rand();
  if (r < 0.3) return pick(rand, NAMES);
  if (r < 0.45) return String(randInt(rand, 0, 999));
  if (r < 0.55) return pick(rand, STRINGS);
  if (depthLeft <= 0) return pick(rand, NAMES);
  const f = pick(rand, LEAF_CALLS);
  const inner = rand() < 0.5 ? closedArgument(rand, depthLeft - 1) : `${pick(rand, NAMES)}, ${randInt(rand, 1, 99)}`;
  return `${f}(${inner})`;
}

/** The open argument the prompt ends with: at least 2 characters (a name or a 2-3 digit number). */
function finalArgument(rand: () => number): string {
  return rand() < 0.5
    ? pick(
        rand,
        NAMES.filter((s) => s.length >= 2),
      )
    : String(randInt(rand, 10, 999));
}

/**
 * Structurally more complex calls: an assignment or return (optionally inside a `def`), then a
 * spine of n open calls with varied names (builtins, methods, dotted functions), each with 0..2
 * complete arguments before the open one; complete arguments may be nested calls of depth 1..2.
 */
export const COMPLEX_TEMPLATE: PromptTemplate = {
  name: "complex",
  description: "x = f(a, g(b), h(i(c  : varied function names, several arguments, closed nested calls of varied depth",
  draw(rand, n) {
    const inDef = rand() < 0.4;
    const statement = pick(
      rand,
      STATEMENTS.filter((s) => inDef || s !== "return "),
    );
    let code = "";
    const names: string[] = [];
    let closedArgs = 0;
    for (let i = 0; i < n; i++) {
      const f = pick(rand, SPINE_CALLS);
      names.push(f);
      code += `${f}(`;
      const before = rand() < 0.5 ? 0 : randInt(rand, 1, 2);
      for (let j = 0; j < before; j++) code += `${closedArgument(rand, 2)}, `;
      closedArgs += before;
    }
    code += finalArgument(rand);
    const header = inDef
      ? `def compute(self, ${pick(
          rand,
          NAMES.filter((s) => !s.includes(".")),
        )}):\n    `
      : "";
    return {
      prompt: `${header}${statement}${code}`,
      fields: { calls: names.join(","), closedArgs, inDef: inDef ? 1 : 0 },
    };
  },
};

export const PROMPT_TEMPLATES: Record<TemplateName, PromptTemplate> = {
  authors: AUTHORS_TEMPLATE,
  partial: PARTIAL_TEMPLATE,
  complex: COMPLEX_TEMPLATE,
};
