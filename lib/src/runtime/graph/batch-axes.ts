/**
 * Where the batch lives in every tensor of a graph, from the graph's own inputs and ops (never by
 * guessing from a run's sizes: `dims[0] === batch` is also true of a [head, ...] tensor when the
 * batch has as many rows as the model has heads). What session-plan.ts needs to run several sites
 * as one tiled batch of K × B rows after their branch point:
 * - `origin`: "const" / "weights" (constants, weights: batch-independent, fed as is), "tokens" (the
 *   token inputs and constants only, no weight: masks, position tables, shape tensors; recomputed
 *   from the tiled token feeds), "mixed" (activations: must carry the batch on axis 0, then K
 *   sites' values are concatenated along it);
 * - `axis`: the axis whose index is the batch row (0 also for a batch-major merge such as
 *   [batch·pos, d] after a Reshape to [-1, d]), null for none;
 * - `batchElem`: for a 1-D int64 shape vector, the element that is (a multiple of) the batch size;
 * - `valued`: the tensor's values depend on the batch size in a way not tracked by `batchElem`;
 * - `bad`: why the op may mix rows of the batch (a reduction or slice over the batch axis, a
 *   batch axis the rules cannot follow, an op without a rule): a tiled run must not run this node.
 * The rules cover the ops the graphs of llama-graph.ts / adapters use; any other op taking a
 * batch-dependent input is `bad`, so a new op turns tiling off rather than making it wrong.
 */
import { Graph, GraphNode } from "./ir";

/** What a tensor is computed from: constants only, weights (and constants), token inputs (and constants), or both. */
export type Origin = "const" | "weights" | "tokens" | "mixed";

export interface BatchInfo {
  origin: Origin;
  /** tensor rank when known */
  rank: number | null;
  /** axis that indexes the batch (rows of one prompt contiguous and batch-major), null = none */
  axis: number | null;
  /** 1-D shape vectors: the element that scales with the batch size */
  batchElem: number | null;
  /** 1-D tensors: their length when statically known */
  length: number | null;
  /** values depend on the batch size (beyond batchElem) */
  valued: boolean;
  /** why this tensor may mix batch rows (null: it does not) */
  bad: string | null;
}

/** The token inputs of a parenlens forward graph (all [batch, pos] int64). */
export const TOKEN_INPUTS = ["input_ids", "attention_mask", "position_ids"];

const UNARY = new Set([
  "Identity",
  "Cast",
  "Neg",
  "Sqrt",
  "Sigmoid",
  "Erf",
  "Tanh",
  "Cos",
  "Sin",
  "Exp",
  "Log",
  "Abs",
  "Not",
  "Reciprocal",
  "Relu",
]);
const ELEMENTWISE = new Set([
  "Add",
  "Sub",
  "Mul",
  "Div",
  "Pow",
  "Where",
  "And",
  "Or",
  "LessOrEqual",
  "Less",
  "Greater",
  "GreaterOrEqual",
  "Equal",
  "Max",
  "Min",
]);
const REDUCE = new Set(["ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin"]);

/** Batch information of every tensor of `graph` (inputs, constants, node outputs). */
export function batchAxes(graph: Graph): Map<string, BatchInfo> {
  const info = new Map<string, BatchInfo>();
  const tokens = new Set(TOKEN_INPUTS);
  for (const i of graph.inputs) {
    const isToken = tokens.has(i.name);
    info.set(i.name, {
      origin: isToken ? "tokens" : "weights",
      rank: i.shape.length,
      length: i.shape.length === 1 && typeof i.shape[0] === "number" ? i.shape[0] : null,
      axis: isToken ? 0 : null,
      batchElem: null,
      valued: false,
      bad: null,
    });
  }
  for (const c of graph.constants.values())
    info.set(c.name, {
      origin: "const",
      rank: c.shape.length,
      length: c.shape.length === 1 ? c.shape[0] : null,
      axis: null,
      batchElem: null,
      valued: false,
      bad: null,
    });
  const ints = (name: string): number[] | null => {
    const c = graph.constants.get(name);
    return c && c.elemType === "int64" ? c.values : null;
  };
  for (const node of graph.nodes) {
    const ins = node.inputs.map((x) => (x === "" ? null : info.get(x)!));
    const outs = rule(node, ins, ints);
    node.outputs.forEach((o, k) => info.set(o, outs[k] ?? outs[0]));
  }
  return info;
}

type Ints = (name: string) => number[] | null;

const norm = (a: number, rank: number) => (a < 0 ? a + rank : a);

/** Output info of one node from its inputs' (the per-op rules). */
function rule(node: GraphNode, ins: (BatchInfo | null)[], ints: Ints): BatchInfo[] {
  const present = ins.filter((x): x is BatchInfo => x !== null);
  const fromWeights = present.some((i) => i.origin === "weights" || i.origin === "mixed");
  const fromTokens = present.some((i) => i.origin === "tokens" || i.origin === "mixed");
  const origin: Origin = fromWeights ? (fromTokens ? "mixed" : "weights") : fromTokens ? "tokens" : "const";
  const inheritedBad = present.find((x) => x.bad)?.bad ?? null;
  const base = { origin, batchElem: null, length: null, valued: present.some((i) => i.valued), bad: inheritedBad };
  const batchDependent = present.some((x) => x.axis !== null || x.valued || x.batchElem !== null);
  const bad = (why: string): BatchInfo[] => [
    { ...base, rank: null, axis: null, bad: inheritedBad ?? `${node.op} ${node.outputs[0]}: ${why}` },
  ];
  const op = node.op;
  const x = ins[0];
  const out = (rank: number | null, axis: number | null, extra: Partial<BatchInfo> = {}): BatchInfo[] => [
    { ...base, rank, axis, ...extra },
  ];
  if (!batchDependent) {
    // nothing here depends on the batch: only the rank matters
    return out(rankOf(node, ins, ints), null);
  }
  if (UNARY.has(op) || op === "Softmax") {
    if (op === "Softmax" && x!.axis !== null && x!.rank !== null) {
      const a = norm(Number(node.attrs.axis ?? -1), x!.rank);
      if (a === x!.axis) return bad("softmax over the batch axis");
    }
    if (x!.batchElem !== null && op !== "Identity") return out(x!.rank, x!.axis, { valued: true });
    return out(x!.rank, x!.axis, { batchElem: x!.batchElem });
  }
  if (ELEMENTWISE.has(op)) {
    if (present.some((i) => i.rank === null)) return bad("rank unknown");
    const R = Math.max(...present.map((i) => i.rank!));
    const axes = new Set(present.filter((i) => i.axis !== null).map((i) => i.axis! + R - i.rank!));
    if (axes.size > 1) return bad("inputs carry the batch on different axes");
    const valued = present.some((i) => i.valued || i.batchElem !== null);
    return out(R, axes.size ? [...axes][0] : null, { valued });
  }
  if (op === "Transpose") {
    const perm = node.attrs.perm as number[];
    return out(x!.rank, x!.axis === null ? null : perm.indexOf(x!.axis), {
      valued: x!.valued || x!.batchElem !== null,
    });
  }
  if (op === "Unsqueeze") {
    const axes = ints(node.inputs[1]);
    if (!axes || x!.rank === null) return bad("axes or rank unknown");
    const R = x!.rank + axes.length;
    const inserted = new Set(axes.map((a) => norm(a, R)));
    let axis: number | null = null;
    if (x!.axis !== null) {
      let seen = -1;
      for (let k = 0; k < R; k++) if (!inserted.has(k) && ++seen === x!.axis) axis = k;
    }
    return out(R, axis);
  }
  if (op === "Shape") {
    if (x!.rank === null) return bad("rank unknown");
    const start = norm(Number(node.attrs.start ?? 0), x!.rank);
    const end = node.attrs.end === undefined ? x!.rank : norm(Number(node.attrs.end), x!.rank);
    const batchElem = x!.axis !== null && x!.axis >= start && x!.axis < end ? x!.axis - start : null;
    return out(1, null, { batchElem, valued: false, length: end - start });
  }
  if (op === "Gather") {
    const data = ins[0]!;
    const idx = ins[1]!;
    if (data.rank === null || idx.rank === null) return bad("rank unknown");
    const g = norm(Number(node.attrs.axis ?? 0), data.rank);
    const R = data.rank - 1 + idx.rank;
    if (data.batchElem !== null && data.rank === 1) {
      // an element of a shape vector: the batch size only if it is the batch element
      const k = ints(node.inputs[1]);
      const picksBatch = !k || k.some((v) => norm(v, shapeLength(data) ?? Infinity) === data.batchElem);
      return out(R, null, { valued: picksBatch || data.valued || idx.axis !== null });
    }
    if (data.axis !== null) {
      if (idx.axis !== null || idx.valued) return bad("gather with batch-dependent data and indices");
      if (g === data.axis) return bad("gather along the batch axis");
      return out(R, data.axis < g ? data.axis : data.axis - 1 + idx.rank);
    }
    if (data.valued) return bad("gather from batch-dependent values");
    return out(R, idx.axis === null ? null : g + idx.axis, { valued: idx.valued });
  }
  if (op === "Reshape") {
    const shape = ins[1]!;
    const target = ints(node.inputs[1]);
    const R = target ? target.length : shapeLength(shape);
    if (x!.axis === null) {
      if (x!.valued || shape.batchElem !== null || shape.valued)
        return bad("reshape of batch-free values to a batch-dependent shape");
      return out(R, null);
    }
    if (x!.axis !== 0) return bad("reshape of a tensor whose batch is not on axis 0");
    // axis 0 stays the batch (or a batch-major merge of it): a copied leading dim (0), a leading
    // -1 before fixed sizes, or a shape whose first element is the batch size
    if (target) {
      const rest = target.slice(1);
      if (target[0] === 0 || (target[0] === -1 && rest.every((d) => d > 0))) return out(R, 0);
      return bad(`reshape to [${target}] moves the batch`);
    }
    if (shape.batchElem === 0 && !shape.valued) return out(R, 0);
    return bad("reshape to a shape whose first element is not the batch");
  }
  if (op === "Gemm") {
    const [a, w, c] = ins;
    if (node.attrs.transA) return bad("Gemm with transA");
    if (w!.axis !== null || w!.valued || (c && (c.axis !== null || c.valued))) return bad("batch in Gemm's B or C");
    if (a!.axis !== null && a!.axis !== 0) return bad("Gemm with the batch on A's columns");
    if (a!.valued) return bad("Gemm of batch-dependent values");
    return out(2, a!.axis);
  }
  if (op === "MatMul") {
    const [a, m] = ins as BatchInfo[];
    if (a.rank === null || m.rank === null || a.rank < 2 || m.rank < 2) return bad("MatMul rank");
    if (a.valued || m.valued) return bad("MatMul of batch-dependent values");
    const R = Math.max(a.rank, m.rank);
    const axes = new Set<number>();
    if (a.axis !== null) {
      if (a.axis === a.rank - 1) return bad("batch on MatMul's contracted axis");
      axes.add(a.axis + R - a.rank);
    }
    if (m.axis !== null) {
      if (m.axis >= m.rank - 2) return bad("batch on MatMul's right matrix axes");
      axes.add(m.axis + R - m.rank);
    }
    if (axes.size > 1) return bad("MatMul inputs carry the batch on different axes");
    return out(R, [...axes][0] ?? null);
  }
  if (op === "Einsum") {
    const eq = String(node.attrs.equation).replace(/\s/g, "");
    if (eq.includes(".") || !eq.includes("->")) return bad("einsum form not followed");
    const [lhs, rhs] = eq.split("->");
    const terms = lhs.split(",");
    const letters = new Set<string>();
    for (const [k, t] of terms.entries()) {
      const i = ins[k]!;
      if (i.valued) return bad("einsum of batch-dependent values");
      if (i.axis !== null) letters.add(t[i.axis]);
    }
    if (letters.size > 1) return bad("einsum inputs carry the batch under different letters");
    if (letters.size === 0) return out(rhs.length, null);
    const L = [...letters][0];
    for (const [k, t] of terms.entries())
      if (t.includes(L) && ins[k]!.axis !== t.indexOf(L)) return bad("batch letter on a non-batch axis");
    if (!rhs.includes(L)) return bad("einsum sums over the batch");
    return out(rhs.length, rhs.indexOf(L));
  }
  if (REDUCE.has(op)) {
    if (x!.rank === null) return bad("rank unknown");
    const given = node.inputs[1] ? ints(node.inputs[1]) : ((node.attrs.axes as number[] | undefined) ?? []);
    if (!given) return bad("reduction axes unknown");
    const axes = given.length ? given.map((a) => norm(a, x!.rank!)) : Array.from({ length: x!.rank }, (_, k) => k);
    const keep = Number(node.attrs.keepdims ?? 1) === 1;
    const R = keep ? x!.rank : x!.rank - axes.length;
    if (x!.axis !== null && axes.includes(x!.axis)) {
      // max / min of identical copies is the value of one copy: fine for the token tensors,
      // which a tiled run recomputes from K copies of the same tokens; never for activations
      if ((op === "ReduceMax" || op === "ReduceMin") && x!.origin === "tokens") return out(R, null);
      return bad(`${op} over the batch axis`);
    }
    const axis = x!.axis === null ? null : keep ? x!.axis : x!.axis - axes.filter((a) => a < x!.axis!).length;
    return out(R, axis, { valued: x!.valued || x!.batchElem !== null });
  }
  if (op === "Split") {
    if (x!.rank === null) return bad("rank unknown");
    if (x!.axis !== null && norm(Number(node.attrs.axis ?? 0), x!.rank) === x!.axis)
      return bad("split along the batch axis");
    return node.outputs.map(() => out(x!.rank, x!.axis)[0]);
  }
  if (op === "Concat") {
    if (present.some((i) => i.rank === null)) return bad("rank unknown");
    const R = present[0].rank!;
    if (R === 1 && present.every((i) => i.axis === null)) {
      // shape vectors: the batch element moves by the lengths before it
      let offset = 0;
      let batchElem: number | null = null;
      let valued = false;
      for (const i of present) {
        const len = shapeLength(i);
        if (i.batchElem !== null) {
          if (batchElem !== null || len === null) valued = true;
          else batchElem = offset + i.batchElem;
        }
        valued ||= i.valued;
        offset += len ?? NaN;
      }
      return out(1, null, { batchElem, valued, length: Number.isNaN(offset) ? null : offset });
    }
    const a = norm(Number(node.attrs.axis), R);
    if (present.some((i) => i.valued || i.batchElem !== null)) return bad("concat of batch-dependent values");
    if (!present.every((i) => i.axis === present[0].axis)) return bad("concat of inputs with and without the batch");
    if (present[0].axis === a) return bad("concat along the batch axis");
    return out(R, present[0].axis);
  }
  if (op === "Slice") {
    if (x!.rank === null) return bad("rank unknown");
    if (x!.batchElem !== null || x!.valued) return out(x!.rank, null, { valued: true });
    const axes = node.inputs[3] ? ints(node.inputs[3]) : Array.from({ length: x!.rank }, (_, k) => k);
    if (!axes) return bad("slice axes unknown");
    if (x!.axis !== null && axes.map((v) => norm(v, x!.rank!)).includes(x!.axis))
      return bad("slice along the batch axis");
    return out(x!.rank, x!.axis);
  }
  if (op === "Expand") {
    const shape = ints(node.inputs[1]);
    if (!shape || x!.rank === null) return bad("expand shape unknown");
    const R = Math.max(x!.rank, shape.length);
    if (x!.axis === null) return x!.valued ? bad("expand of batch-dependent values") : out(R, null);
    const axis = x!.axis + R - x!.rank;
    const at = shape[axis - (R - shape.length)];
    if (at !== undefined && at !== 1) return bad("expand along the batch axis");
    return out(R, axis);
  }
  if (op === "Range") return out(1, null, { valued: true });
  return bad(`no batch rule for ${op}`);
}

/** Statically known length of a 1-D tensor. */
function shapeLength(i: BatchInfo): number | null {
  return i.length;
}

/** Rank of a node's output when no input depends on the batch (ranks stay known for the rules). */
function rankOf(node: GraphNode, ins: (BatchInfo | null)[], ints: Ints): number | null {
  const r = ins[0]?.rank ?? null;
  const ranks = ins.filter((i): i is BatchInfo => i !== null).map((i) => i.rank);
  const maxRank = ranks.every((v) => v !== null) ? Math.max(...(ranks as number[])) : null;
  const op = node.op;
  if (op === "Shape" || op === "Range") return 1;
  if (op === "Gemm") return 2;
  if (op === "Unsqueeze") {
    const axes = ints(node.inputs[1]);
    return r === null || !axes ? null : r + axes.length;
  }
  if (op === "Reshape") return ints(node.inputs[1])?.length ?? shapeLength(ins[1]!);
  if (op === "Gather") return r === null || ins[1]?.rank == null ? null : r - 1 + ins[1].rank;
  if (op === "Einsum") return String(node.attrs.equation).split("->")[1]?.trim().length ?? null;
  if (op === "Expand") {
    const s = ints(node.inputs[1]);
    return r === null || !s ? null : Math.max(r, s.length);
  }
  if (op === "MatMul" || ELEMENTWISE.has(op)) return maxRank;
  if (REDUCE.has(op)) {
    if (r === null) return null;
    if (Number(node.attrs.keepdims ?? 1) === 1) return r;
    if (!node.inputs[1]) return 0;
    const axes = ints(node.inputs[1]);
    return axes ? r - axes.length : null;
  }
  return r; // unary, Transpose, Softmax, Split, Slice, Concat, Cast
}
