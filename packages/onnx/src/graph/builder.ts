// Small helpers over the generated ONNX protobuf bindings (protobuf-es keeps unknown fields, so fields
// newer than ONNX 1.12's onnx.proto survive a decode/encode round trip).
import { create } from '@bufbuild/protobuf'
import { float16BitsToFloat32 } from '@guidekit/core'
import { type AttributeProto, AttributeProtoSchema, AttributeProto_AttributeType, type GraphProto, GraphProtoSchema, type NodeProto, NodeProtoSchema, type TensorProto, TensorProtoSchema, TensorProto_DataLocation, TensorProto_DataType, type ValueInfoProto, ValueInfoProtoSchema, TypeProtoSchema, TypeProto_TensorSchema, TensorShapeProtoSchema, TensorShapeProto_DimensionSchema } from './onnx_pb.js'

export { TensorProto_DataType as DataType, AttributeProto_AttributeType as AttributeType }

export type AttrValue =
  | { readonly i: number }
  | { readonly f: number }
  | { readonly s: string }
  | { readonly ints: readonly number[] }
  | { readonly t: TensorProto }
  | { readonly g: GraphProto }

export function attribute(name: string, value: AttrValue): AttributeProto {
  if ('i' in value) return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(value.i) })
  if ('f' in value) return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.FLOAT, f: value.f })
  if ('s' in value) return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.STRING, s: new TextEncoder().encode(value.s) })
  if ('ints' in value) return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INTS, ints: value.ints.map((x) => BigInt(x)) })
  if ('t' in value) return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.TENSOR, t: value.t })
  return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.GRAPH, g: value.g })
}

export function getAttribute(node: NodeProto, name: string): AttributeProto | undefined {
  return node.attribute.find((a) => a.name === name)
}

export function intAttribute(node: NodeProto, name: string): number | undefined {
  const a = getAttribute(node, name)
  return a === undefined ? undefined : Number(a.i)
}

export function floatAttribute(node: NodeProto, name: string): number | undefined {
  const a = getAttribute(node, name)
  return a === undefined ? undefined : a.f
}

export function intsAttribute(node: NodeProto, name: string): number[] | undefined {
  const a = getAttribute(node, name)
  return a === undefined ? undefined : a.ints.map(Number)
}

export function floatTensor(name: string, dims: readonly number[], values: ArrayLike<number>): TensorProto {
  const data = Float32Array.from(values)
  return create(TensorProtoSchema, {
    name,
    dims: dims.map((d) => BigInt(d)),
    dataType: TensorProto_DataType.FLOAT,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  })
}

export function int64Tensor(name: string, dims: readonly number[], values: readonly number[]): TensorProto {
  const data = BigInt64Array.from(values.map((v) => BigInt(v)))
  return create(TensorProtoSchema, {
    name,
    dims: dims.map((d) => BigInt(d)),
    dataType: TensorProto_DataType.INT64,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  })
}

/** Reads the values of an inline float/double/int tensor as numbers; undefined for external or unsupported data. */
export function tensorValues(t: TensorProto): number[] | undefined {
  if (t.dataLocation === TensorProto_DataLocation.EXTERNAL || t.externalData.length > 0) return undefined
  const raw = t.rawData
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength)
  // data_type is an int32 field in onnx.proto that holds a TensorProto.DataType value.
  switch (t.dataType as TensorProto_DataType) {
    case TensorProto_DataType.FLOAT:
      if (raw.length > 0) return Array.from({ length: raw.length / 4 }, (_, i) => view.getFloat32(i * 4, true))
      return [...t.floatData]
    case TensorProto_DataType.DOUBLE:
      if (raw.length > 0) return Array.from({ length: raw.length / 8 }, (_, i) => view.getFloat64(i * 8, true))
      return [...t.doubleData]
    case TensorProto_DataType.FLOAT16: {
      const bits = raw.length > 0 ? Array.from({ length: raw.length / 2 }, (_, i) => view.getUint16(i * 2, true)) : [...t.int32Data]
      return bits.map(float16BitsToFloat32)
    }
    case TensorProto_DataType.INT64:
      if (raw.length > 0) return Array.from({ length: raw.length / 8 }, (_, i) => Number(view.getBigInt64(i * 8, true)))
      return t.int64Data.map(Number)
    case TensorProto_DataType.INT32:
      if (raw.length > 0) return Array.from({ length: raw.length / 4 }, (_, i) => view.getInt32(i * 4, true))
      return [...t.int32Data]
    case TensorProto_DataType.UNDEFINED:
    case TensorProto_DataType.UINT8:
    case TensorProto_DataType.INT8:
    case TensorProto_DataType.UINT16:
    case TensorProto_DataType.INT16:
    case TensorProto_DataType.STRING:
    case TensorProto_DataType.BOOL:
    case TensorProto_DataType.UINT32:
    case TensorProto_DataType.UINT64:
    case TensorProto_DataType.COMPLEX64:
    case TensorProto_DataType.COMPLEX128:
    case TensorProto_DataType.BFLOAT16:
      return undefined
    default: // a type newer than the vendored onnx.proto
      return undefined
  }
}


export function valueInfo(name: string, elemType: TensorProto_DataType, dims?: readonly (number | string)[]): ValueInfoProto {
  const tensorType = create(TypeProto_TensorSchema, { elemType })
  if (dims !== undefined) {
    tensorType.shape = create(TensorShapeProtoSchema, {
      dim: dims.map((d) =>
        create(TensorShapeProto_DimensionSchema, {
          value: typeof d === 'number' ? { case: 'dimValue', value: BigInt(d) } : { case: 'dimParam', value: d },
        }),
      ),
    })
  }
  return create(ValueInfoProtoSchema, { name, type: create(TypeProtoSchema, { value: { case: 'tensorType', value: tensorType } }) })
}

/** Element type and static dims (-1 where unknown) of a value, from graph inputs/outputs/value_info. */
export function findValueInfo(graph: GraphProto, name: string): { elemType: number; dims: number[] | undefined } | undefined {
  for (const list of [graph.input, graph.output, graph.valueInfo]) {
    const vi = list.find((v) => v.name === name)
    if (vi?.type?.value.case === 'tensorType') {
      const tt = vi.type.value.value
      const dims = tt.shape === undefined ? undefined : tt.shape.dim.map((d) => (d.value.case === 'dimValue' ? Number(d.value.value) : -1))
      return { elemType: tt.elemType, dims }
    }
  }
  const init = graph.initializer.find((t) => t.name === name)
  if (init !== undefined) return { elemType: init.dataType, dims: init.dims.map(Number) }
  return undefined
}

/** Collects every value and node name used anywhere in a graph (subgraphs included). */
export function collectNames(graph: GraphProto, into: Set<string> = new Set()): Set<string> {
  for (const v of [...graph.input, ...graph.output, ...graph.valueInfo]) into.add(v.name)
  for (const t of graph.initializer) into.add(t.name)
  for (const n of graph.node) {
    into.add(n.name)
    for (const x of [...n.input, ...n.output]) into.add(x)
    for (const a of n.attribute) {
      if (a.g !== undefined) collectNames(a.g, into)
      for (const g of a.graphs) collectNames(g, into)
    }
  }
  return into
}

/**
 * Emits nodes into a list with unique names. Values are plain names; constants become initializers of
 * the main graph (subgraphs may read outer-scope values).
 */
export class NodeEmitter {
  readonly nodes: NodeProto[] = []
  constructor(
    private readonly names: Set<string>,
    private readonly initializers: TensorProto[],
    private readonly prefix: string,
  ) {}

  fresh(hint: string): string {
    let name = `${this.prefix}/${hint}`
    for (let i = 1; this.names.has(name); i++) name = `${this.prefix}/${hint}_${i}`
    this.names.add(name)
    return name
  }

  op(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, options: { outputs?: number; domain?: string; hint?: string } = {}): string[] {
    const hint = options.hint ?? opType
    const outputs = Array.from({ length: options.outputs ?? 1 }, (_, i) => this.fresh(`${hint}_out${i}`))
    this.nodes.push(
      create(NodeProtoSchema, {
        name: this.fresh(hint),
        opType,
        domain: options.domain ?? '',
        input: [...inputs],
        output: outputs,
        attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
      }),
    )
    return outputs
  }

  /** One-output op. */
  op1(opType: string, inputs: readonly string[], attrs: Record<string, AttrValue> = {}, hint?: string): string {
    return this.op(opType, inputs, attrs, hint === undefined ? {} : { hint })[0]!
  }

  int64(values: readonly number[], hint = 'const', dims: readonly number[] = [values.length]): string {
    const name = this.fresh(hint)
    this.initializers.push(int64Tensor(name, dims, values))
    return name
  }

  float(values: ArrayLike<number>, dims: readonly number[], hint = 'const'): string {
    const name = this.fresh(hint)
    this.initializers.push(floatTensor(name, dims, values))
    return name
  }
}

export function graph(name: string, nodes: NodeProto[], inputs: ValueInfoProto[], outputs: ValueInfoProto[], initializer: TensorProto[] = []): GraphProto {
  return create(GraphProtoSchema, { name, node: nodes, input: inputs, output: outputs, initializer })
}
