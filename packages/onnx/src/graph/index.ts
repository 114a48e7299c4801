// @guidekit/onnx/graph: read, edit and write ONNX graphs with protobuf-es (bindings generated from the
// ONNX 1.12 onnx.proto, see docs/decisions/0004; unknown fields survive a round trip). Runtime-free: works in Node and browsers.
import { fromBinary, toBinary } from '@bufbuild/protobuf'
import { GuidekitError } from '@guidekit/core'
import { type GraphProto, type ModelProto, ModelProtoSchema } from './onnx_pb.js'

export { type AttributeProto, AttributeProtoSchema, AttributeProto_AttributeType, type GraphProto, GraphProtoSchema, type ModelProto, ModelProtoSchema, type NodeProto, NodeProtoSchema, OperatorSetIdProtoSchema, StringStringEntryProtoSchema, type TensorProto, TensorProtoSchema, TensorProto_DataLocation, TensorProto_DataType, type ValueInfoProto, ValueInfoProtoSchema } from './onnx_pb.js'
export { NodeEmitter, attribute, collectNames, findValueInfo, floatAttribute, floatTensor, getAttribute, graph, int64Tensor, intAttribute, intsAttribute, tensorValues, valueInfo } from './builder.js'
export type { AttrValue } from './builder.js'

/**
 * Decodes the bytes of a `.onnx` file. Bytes that are not an ONNX model are `MODEL_INVALID`.
 *
 * @example
 * const model = decodeModel(new Uint8Array(readFileSync('model.onnx')))
 * model.graph?.input.map((i) => i.name)
 */
export function decodeModel(bytes: Uint8Array, where = 'the model'): ModelProto {
  let model: ModelProto
  try {
    model = fromBinary(ModelProtoSchema, bytes)
  } catch (cause) {
    throw new GuidekitError('MODEL_INVALID', `${where} is not an ONNX model (${cause instanceof Error ? cause.message : String(cause)}); pass the contents of a .onnx file.`, { cause })
  }
  if (model.graph === undefined) throw new GuidekitError('MODEL_INVALID', `${where} has no graph; pass the contents of a .onnx file.`)
  return model
}

/** Encodes a model back to `.onnx` bytes. */
export function encodeModel(model: ModelProto): Uint8Array {
  return toBinary(ModelProtoSchema, model)
}

/**
 * The number of rows of the embedding table a graph input indexes, when it can be read: the first
 * `Gather` whose indices are the input (directly, or through `Cast`/`Reshape`/`Unsqueeze`/`Identity`) and
 * whose data is an initializer of rank 2. Undefined when the graph embeds the input some other way.
 *
 * @example
 * embeddingRows(decodeModel(bytes).graph!, 'class_labels')   // 11 for fashion-dit (10 classes + null)
 */
export function embeddingRows(graph: GraphProto, input: string): number | undefined {
  const passThrough = new Set(['Cast', 'Reshape', 'Unsqueeze', 'Squeeze', 'Identity', 'Flatten'])
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]))
  const reached = new Set([input])
  for (const node of graph.node) {
    if (node.opType === 'Gather' && reached.has(node.input[1] ?? '')) {
      const table = initializers.get(node.input[0] ?? '')
      if (table && table.dims.length === 2) return Number(table.dims[0])
    }
    if (passThrough.has(node.opType) && reached.has(node.input[0] ?? '')) for (const o of node.output) reached.add(o)
  }
  return undefined
}
