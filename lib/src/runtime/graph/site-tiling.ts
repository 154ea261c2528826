/**
 * How K sites that branch off a trunk at one cut hook run their later segments as one batch of
 * K × B rows: which tensors crossing from the trunk into those segments are concatenated K times
 * along the batch axis (activations), recomputed from the tiled token feeds (masks, rotary
 * tables, shape tensors: they are computed from the batch, and a shape tensor's values hold the
 * batch size), or fed as they are (weights and what is computed from them alone). Decided from
 * batch-axes.ts, the graph's own batch analysis; when any later node may mix batch rows, or an
 * activation crossing the cut does not carry the batch on axis 0, there is no tiling (the reason
 * says why) and the sites run one by one, as before.
 */
import { BatchInfo, batchAxes, TOKEN_INPUTS } from "./batch-axes";
import { Graph, GraphConstant } from "./ir";
import { Segment } from "./partition";

/** The tiling of the segments after one branch segment (see siteTiling). */
export interface SiteTiling {
  /** token inputs the later segments read: fed tiled */
  tokens: string[];
  /** computed from the tokens alone: recomputed by `prologue` from the tiled token feeds */
  recompute: string[];
  /** a graph segment computing `recompute` from token inputs and constants (null when nothing to recompute) */
  prologue: Segment | null;
  /** activations [batch, ...]: each site's B rows concatenated along axis 0 */
  concat: string[];
  /** batch-independent (weights, tensors computed from weights only): fed as they are */
  shared: string[];
}

const analyses = new WeakMap<Graph, Map<string, BatchInfo>>();

/** batchAxes of a graph, computed once per graph object (graphs are immutable once built). */
export function graphBatchAxes(graph: Graph): Map<string, BatchInfo> {
  let a = analyses.get(graph);
  if (!a) {
    a = batchAxes(graph);
    analyses.set(graph, a);
  }
  return a;
}

/**
 * The tiling of the segments after `branch` (sites edited at its cut hook, and at `edited` hooks
 * later), or `{ reason }` when a tiled batch could mix the sites' rows.
 */
export function siteTiling(
  graph: Graph,
  segments: Segment[],
  branch: number,
  edited: Set<string>,
): SiteTiling | { reason: string } {
  const info = graphBatchAxes(graph);
  const later = segments.slice(branch + 1);
  const producedLater = new Set(later.flatMap((seg) => seg.nodes.flatMap((n) => n.outputs)));
  for (const seg of later)
    for (const n of seg.nodes)
      for (const o of n.outputs) {
        const i = info.get(o)!;
        if (i.bad) return { reason: i.bad };
        if ((edited.has(o) || o === "logits") && (i.axis !== 0 || i.valued))
          return { reason: `${o} does not carry the batch on axis 0` };
      }
  const crossing = [...new Set(later.flatMap((seg) => seg.inputs))].filter((t) => !producedLater.has(t));
  const tiling: SiteTiling = { tokens: [], recompute: [], prologue: null, concat: [], shared: [] };
  const weightInputs = new Set(graph.inputs.map((i) => i.name).filter((n) => !TOKEN_INPUTS.includes(n)));
  for (const t of crossing) {
    if (TOKEN_INPUTS.includes(t)) tiling.tokens.push(t);
    else if (weightInputs.has(t))
      continue; // weights are fed by the planner, not from the trunk
    else {
      const i = info.get(t)!;
      if (i.origin === "const" || i.origin === "weights") tiling.shared.push(t);
      else if (i.origin === "tokens") tiling.recompute.push(t);
      else if (i.axis === 0 && !i.valued && !i.bad && graph.elemTypes.get(t) === "float32") tiling.concat.push(t);
      else return { reason: `${t} crosses the cut without the batch on axis 0` };
    }
  }
  if (tiling.recompute.length) tiling.prologue = prologueSegment(graph, tiling.recompute);
  return tiling;
}

/** The nodes computing `targets` (token-only tensors) from the token inputs, as one segment. */
function prologueSegment(graph: Graph, targets: string[]): Segment {
  const producers = graph.producers();
  const need = new Set<number>();
  const stack = [...targets];
  while (stack.length) {
    const t = stack.pop()!;
    const p = producers.get(t);
    if (p === undefined || need.has(p)) continue;
    need.add(p);
    stack.push(...graph.nodes[p].inputs.filter((x) => x !== ""));
  }
  const nodes = [...need].sort((a, b) => a - b).map((k) => graph.nodes[k]);
  const inputs = new Set<string>();
  const constants = new Map<string, GraphConstant>();
  for (const n of nodes)
    for (const x of n.inputs) {
      const c = graph.constants.get(x);
      if (c) constants.set(x, c);
      else if (!producers.has(x) && x !== "") inputs.add(x);
    }
  return { nodes, inputs: [...inputs], outputs: targets, constants: [...constants.values()], cutHook: null };
}
