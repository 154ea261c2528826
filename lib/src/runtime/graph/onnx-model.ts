/**
 * Serialise a segment of a graph to an ONNX ModelProto (opset 21, standard ops only).
 * Weights stay graph *inputs* (fed from JS), constants become initializers that are not inputs
 * (an input with an initializer default is invisible to onnxruntime-node's `inputNames`).
 */
import { onnx } from "onnx-proto";
import { AttrValue, Dim, ElemType, Graph, GraphNode } from "./ir";
import { Segment } from "./partition";

export const OPSET = 21;
export const IR_VERSION = 10;

const ELEM: Record<ElemType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  int64: onnx.TensorProto.DataType.INT64,
  bool: onnx.TensorProto.DataType.BOOL,
};

function valueInfo(name: string, elemType: ElemType, shape?: Dim[]): onnx.IValueInfoProto {
  const tensorType: onnx.TypeProto.ITensor = { elemType: ELEM[elemType] };
  if (shape) {
    tensorType.shape = { dim: shape.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })) };
  }
  return { name, type: { tensorType } };
}

function attribute(name: string, v: AttrValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: use { float } for non-integers`);
    return { name, type: T.INT, i: v };
  }
  if (typeof v === "string") return { name, type: T.STRING, s: Buffer.from(v, "utf8") };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ("float" in v) return { name, type: T.FLOAT, f: v.float };
  return { name, type: T.FLOATS, floats: v.floats };
}

/**
 * One segment of a graph as a serialized ONNX ModelProto. Graph inputs (ids, mask, weights) are
 * declared with their known shapes; intermediate tensors crossing segments with their element
 * type only.
 */
export function segmentToModel(
  graph: Graph,
  seg: Segment,
  name = "parenlens",
  opts: { flat?: boolean } = {},
): Uint8Array {
  const declared = new Map(graph.inputs.map((i) => [i.name, i]));
  const typeOf = (t: string): ElemType => {
    const e = graph.elemTypes.get(t);
    if (!e) throw new Error(`onnx-model: unknown tensor ${t}`);
    return e;
  };
  const inputs = seg.inputs.map((t) => {
    const d = declared.get(t);
    return d ? valueInfo(t, d.elemType, d.shape) : valueInfo(t, typeOf(t));
  });
  const outputs = seg.outputs.map((t) => valueInfo(t, typeOf(t)));
  const initializer: onnx.ITensorProto[] = seg.constants.map((c) => {
    const t: onnx.ITensorProto = { name: c.name, dataType: ELEM[c.elemType], dims: c.shape };
    if (c.elemType === "float32") t.floatData = c.values;
    else if (c.elemType === "int64") t.int64Data = c.values;
    else t.int32Data = c.values.map((v) => (v ? 1 : 0));
    return t;
  });
  const nodes = foldOutputIdentities(opts.flat ? foldFlatOutputs(seg) : seg);
  const node: onnx.INodeProto[] = nodes.map((n, i) => ({
    opType: n.op,
    name: `n${i}_${n.outputs[0]}`,
    input: n.inputs,
    output: n.outputs,
    attribute: Object.entries(n.attrs).map(([k, v]) => attribute(k, v)),
  }));
  const model: onnx.IModelProto = {
    irVersion: IR_VERSION,
    producerName: "parenlens",
    opsetImport: [{ domain: "", version: OPSET }],
    graph: { name, node, initializer, input: inputs, output: outputs },
  };
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}

/**
 * The segment outputs a projection writes flat (`foldFlatOutputs`): hook Identity ← Reshape ←
 * Gemm (or the float16 path's Cast of it), the Gemm's [batch*pos, out] result read by nothing but
 * that Reshape. Their values come back as [batch*pos, rest]: the same floats in the same order as
 * the hook's [batch, pos, ...] (runtime/session-plan.ts allocates them flat and views them with the
 * hook's shape).
 */
export function flatOutputs(seg: Segment): Set<string> {
  const outputs = new Set(seg.outputs);
  const producer = new Map<string, GraphNode>();
  const uses = new Map<string, number>();
  for (const n of seg.nodes) {
    for (const o of n.outputs) producer.set(o, n);
    for (const x of n.inputs) uses.set(x, (uses.get(x) ?? 0) + 1);
  }
  const flat = new Set<string>();
  for (const n of seg.nodes) {
    if (n.op !== "Identity" || !outputs.has(n.outputs[0])) continue;
    const reshape = producer.get(n.inputs[0]);
    if (reshape?.op !== "Reshape" || outputs.has(reshape.outputs[0])) continue;
    const y = reshape.inputs[0]; // [batch*pos, out]
    const gemm = producer.get(y);
    if (!gemm || (gemm.op !== "Gemm" && gemm.op !== "Cast") || outputs.has(y) || uses.get(y) !== 1) continue;
    if (gemm.op === "Cast" && producer.get(gemm.inputs[0])?.op !== "Gemm") continue;
    flat.add(n.outputs[0]);
  }
  return flat;
}

/**
 * The segment with each of `flatOutputs` written by its Gemm itself: the Gemm's 2-D result takes
 * the hook's name (a segment output, so onnxruntime writes it into the buffer JS allocated), the
 * Reshape reads it and its [batch, pos, ...] view feeds the hook's consumers (an alias, no copy).
 * Without it the Reshape, whose output is a segment output, copies the value into that buffer:
 * the 131 MB of [32, 32, 32016] logits, and every projection hook of a cache run.
 */
export function foldFlatOutputs(seg: Segment): Segment {
  const flat = flatOutputs(seg);
  if (flat.size === 0) return seg;
  const producer = new Map<string, GraphNode>();
  for (const n of seg.nodes) for (const o of n.outputs) producer.set(o, n);
  const renameOut = new Map<string, string>(); // Gemm output → hook name
  const readView = new Map<string, string>(); // hook name → the Reshape's view, for its consumers
  for (const n of seg.nodes) {
    if (n.op !== "Identity" || !flat.has(n.outputs[0])) continue;
    const reshape = producer.get(n.inputs[0])!;
    renameOut.set(reshape.inputs[0], n.outputs[0]);
    readView.set(n.outputs[0], reshape.outputs[0]);
  }
  const nodes = seg.nodes
    .filter((n) => !(n.op === "Identity" && flat.has(n.outputs[0])))
    .map((n) => {
      const outputs = n.outputs.map((o) => renameOut.get(o) ?? o);
      // the Reshape reads the renamed Gemm output; every other consumer of a hook reads the view
      const inputs =
        n.op === "Reshape" && renameOut.has(n.inputs[0])
          ? [renameOut.get(n.inputs[0])!, ...n.inputs.slice(1)]
          : n.inputs.map((x) => readView.get(x) ?? x);
      return { ...n, inputs, outputs };
    });
  return { ...seg, nodes };
}

/**
 * The segment's nodes with each hook Identity whose output is a segment output folded into its
 * producer: the producer writes the hook's name itself. onnxruntime removes an Identity between
 * two inner tensors, but one that produces a graph output stays and copies the tensor; folded,
 * the value is written once, straight into the output buffer JS allocated for it. Kept: an
 * Identity whose input is a segment input, a constant, or itself an output (two names, two buffers).
 */
export function foldOutputIdentities(seg: Segment): GraphNode[] {
  const outputs = new Set(seg.outputs);
  const producedHere = new Set(seg.nodes.flatMap((n) => n.outputs));
  const rename = new Map<string, string>(); // producer output → the hook output it becomes
  for (const n of seg.nodes) {
    const x = n.inputs[0];
    if (n.op !== "Identity" || !outputs.has(n.outputs[0]) || !producedHere.has(x)) continue;
    if (outputs.has(x) || rename.has(x)) continue;
    rename.set(x, n.outputs[0]);
  }
  if (rename.size === 0) return seg.nodes;
  const to = (t: string) => rename.get(t) ?? t;
  return seg.nodes
    .filter((n) => !(n.op === "Identity" && rename.get(n.inputs[0]) === n.outputs[0]))
    .map((n) => ({ ...n, inputs: n.inputs.map(to), outputs: n.outputs.map(to) }));
}
