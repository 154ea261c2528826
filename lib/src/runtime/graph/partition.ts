/**
 * Cut a graph just after the Identity node of each intervened hook. Segment k ends with its hook
 * as an output; JS changes that value; segment k+1 takes it (and every other tensor it needs from
 * earlier segments or the graph inputs) as inputs. No cuts → one segment.
 */
import { Graph, GraphConstant, GraphNode } from "./ir";

export interface Segment {
  nodes: GraphNode[];
  /** tensors consumed here but produced by graph inputs or earlier segments */
  inputs: string[];
  /** tensors later segments need, requested outputs produced here, and the cut hook */
  outputs: string[];
  /** constants used by this segment's nodes */
  constants: GraphConstant[];
  /** the hook this segment ends at (intervened on), or null for the last segment */
  cutHook: string | null;
}

/**
 * @param cuts hook names to cut after (any order; must be hooks of the graph)
 * @param requested tensors wanted back (cache names and the final outputs)
 */
export function partitionGraph(graph: Graph, cuts: string[], requested: string[]): Segment[] {
  const producers = graph.producers();
  const graphInputs = new Set(graph.inputs.map((i) => i.name));
  for (const r of requested) {
    if (!producers.has(r) && !graphInputs.has(r))
      throw new Error(`partition: requested tensor ${r} is not in the graph`);
  }
  const cutIdx = cuts.map((h) => {
    const i = graph.hooks.get(h);
    if (i === undefined) throw new Error(`partition: ${h} is not a hook of this graph`);
    return { hook: h, end: i + 1 };
  });
  cutIdx.sort((a, b) => a.end - b.end);

  // node ranges [start, end)
  const ranges: { start: number; end: number; cutHook: string | null }[] = [];
  let start = 0;
  for (const c of cutIdx) {
    ranges.push({ start, end: c.end, cutHook: c.hook });
    start = c.end;
  }
  ranges.push({ start, end: graph.nodes.length, cutHook: null });

  // segment index of each tensor's producer (-1 = graph input)
  const segOf = new Map<string, number>();
  ranges.forEach((r, s) => {
    for (let i = r.start; i < r.end; i++) for (const o of graph.nodes[i].outputs) segOf.set(o, s);
  });
  // last segment that consumes each tensor
  const lastUse = new Map<string, number>();
  ranges.forEach((r, s) => {
    for (let i = r.start; i < r.end; i++) for (const x of graph.nodes[i].inputs) lastUse.set(x, s);
  });
  const requestedSet = new Set(requested);

  return ranges.map((r, s) => {
    const nodes = graph.nodes.slice(r.start, r.end);
    const inputs: string[] = [];
    const constants: GraphConstant[] = [];
    const seen = new Set<string>();
    for (const n of nodes) {
      for (const x of n.inputs) {
        if (x === "" || seen.has(x)) continue;
        seen.add(x);
        const c = graph.constants.get(x);
        if (c) constants.push(c);
        else if (segOf.get(x) !== s) inputs.push(x);
      }
    }
    const outputs: string[] = [];
    for (const n of nodes) {
      for (const o of n.outputs) {
        if (requestedSet.has(o) || o === r.cutHook || (lastUse.get(o) ?? -1) > s) outputs.push(o);
      }
    }
    return { nodes, inputs, outputs, constants, cutHook: r.cutHook };
  });
}
