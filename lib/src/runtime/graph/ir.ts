/**
 * A tiny graph IR: named tensors and ONNX nodes recorded in topological order (every node is
 * appended after the nodes that produce its inputs). Hook points are Identity nodes whose output
 * tensor is named after the hook, so cutting the graph "just after a hook" is cutting the node list.
 */

export type ElemType = "float32" | "float16" | "int64" | "bool";

/** A dimension: a fixed size or a symbolic name (ONNX dim_param, e.g. "batch"). */
export type Dim = number | string;

export type AttrValue = number | number[] | string | { float: number } | { floats: number[] };

export interface GraphNode {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

export interface GraphInput {
  name: string;
  elemType: ElemType;
  shape: Dim[];
}

/** A constant baked into the model (small: shape tables, inverse frequencies, scalars). */
export interface GraphConstant {
  name: string;
  elemType: ElemType;
  shape: number[];
  values: number[];
}

export class Graph {
  constructor(
    readonly inputs: GraphInput[],
    readonly constants: Map<string, GraphConstant>,
    readonly nodes: GraphNode[],
    /** element type of every tensor (inputs, constants, node outputs) */
    readonly elemTypes: Map<string, ElemType>,
    /** hook name → index of its Identity node in `nodes` */
    readonly hooks: Map<string, number>,
    /** the final outputs (normally just "logits") */
    readonly outputs: string[],
  ) {}

  /** Index of the node producing each tensor. */
  producers(): Map<string, number> {
    const m = new Map<string, number>();
    this.nodes.forEach((n, i) => n.outputs.forEach((o) => m.set(o, i)));
    return m;
  }
}

export class GraphBuilder {
  private readonly inputs: GraphInput[] = [];
  private readonly constants = new Map<string, GraphConstant>();
  private readonly nodes: GraphNode[] = [];
  private readonly elemTypes = new Map<string, ElemType>();
  private readonly hooks = new Map<string, number>();
  private counter = 0;

  /** Declare a graph input. */
  input(name: string, elemType: ElemType, shape: Dim[]): string {
    this.declare(name, elemType);
    this.inputs.push({ name, elemType, shape });
    return name;
  }

  /** A constant tensor; identical constants are shared. */
  constant(values: number[], elemType: ElemType, shape: number[] = [values.length]): string {
    const key = `c_${elemType}_${shape.join("x")}_${values.join("_")}`;
    const name = key.length <= 80 ? key : `c${this.counter++}_${elemType}`;
    if (this.constants.has(name)) return name;
    const size = shape.reduce((a, b) => a * b, 1);
    if (size !== values.length) throw new Error(`constant ${name}: ${values.length} values for shape [${shape}]`);
    this.declare(name, elemType);
    this.constants.set(name, { name, elemType, shape, values });
    return name;
  }

  /** int64 1-D constant (axes, shapes, indices). */
  ints(values: number[]): string {
    return this.constant(values, "int64", [values.length]);
  }

  /** float32 scalar constant. */
  scalar(value: number): string {
    return this.constant([value], "float32", []);
  }

  /**
   * Append a node; returns its output names. `outTypes` defaults to the element type of the
   * first input for every output.
   */
  node(
    op: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    nOut = 1,
    outTypes?: ElemType[],
    outNames?: string[],
  ): string[] {
    for (const i of inputs) {
      if (i !== "" && !this.elemTypes.has(i)) throw new Error(`graph: ${op} uses tensor "${i}" before it is defined`);
    }
    const outputs: string[] = [];
    for (let k = 0; k < nOut; k++) {
      const name = outNames?.[k] ?? `${op.toLowerCase()}_${this.counter++}`;
      const t = outTypes?.[k] ?? this.elemTypes.get(inputs[0]);
      if (!t) throw new Error(`graph: cannot infer element type of ${op} output`);
      this.declare(name, t);
      outputs.push(name);
    }
    this.nodes.push({ op, inputs, outputs, attrs });
    return outputs;
  }

  /** Single-output node. */
  op(op: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outType?: ElemType): string {
    return this.node(op, inputs, attrs, 1, outType ? [outType] : undefined)[0];
  }

  /** A hook point: an Identity node whose output is the tensor named `name`. */
  hook(name: string, x: string): string {
    if (this.hooks.has(name)) throw new Error(`graph: hook ${name} defined twice`);
    this.node("Identity", [x], {}, 1, undefined, [name]);
    this.hooks.set(name, this.nodes.length - 1);
    return name;
  }

  /** Rename a tensor into a final output name with an Identity node. */
  output(name: string, x: string): string {
    this.node("Identity", [x], {}, 1, undefined, [name]);
    return name;
  }

  build(outputs: string[]): Graph {
    for (const o of outputs) if (!this.elemTypes.has(o)) throw new Error(`graph: output ${o} is not defined`);
    return new Graph(
      this.inputs.slice(),
      new Map(this.constants),
      this.nodes.slice(),
      new Map(this.elemTypes),
      new Map(this.hooks),
      outputs,
    );
  }

  private declare(name: string, t: ElemType): void {
    if (this.elemTypes.has(name)) throw new Error(`graph: tensor "${name}" defined twice`);
    this.elemTypes.set(name, t);
  }
}
