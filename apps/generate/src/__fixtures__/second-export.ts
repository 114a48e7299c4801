// A second export of the shipped fashion DiT, made at test time from fashion-dit.onnx with
// @guidekit/onnx/graph: inputs `x, t, y` and output `v` (facebookresearch/DiT's names), and a timestep
// in [0, 1]: `Mul(t, 1000)` feeds what the original timestep input fed. Its card says so with roles and
// `schedule.timestepScale: 1`. The plan's timestep is then float32(sigma) and the graph computes
// float32(float32(sigma) * 1000), the value the shipped model is fed, so both sample the same images.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { NodeEmitter, collectNames, decodeModel, encodeModel } from '@guidekit/onnx/graph'
import type { GraphProto } from '@guidekit/onnx/graph'

const RENAMES = { sample: 'x', class_labels: 'y' } as const

/** Replaces every use of a value name (node inputs and outputs, graph inputs/outputs, value info). */
function rename(g: GraphProto, from: string, to: string): void {
  for (const n of g.node) {
    n.input = n.input.map((v) => (v === from ? to : v))
    n.output = n.output.map((v) => (v === from ? to : v))
  }
  for (const v of [...g.input, ...g.output, ...g.valueInfo]) if (v.name === from) v.name = to
}

/** Writes `<name>.onnx` and `<name>.card.json` into `folder`; returns the card path. */
export function writeSecondExport(options: { readonly onnxPath: string; readonly cardPath: string; readonly folder: string; readonly name: string }): string {
  const model = decodeModel(new Uint8Array(readFileSync(options.onnxPath)), options.onnxPath)
  const g = model.graph as GraphProto
  for (const [from, to] of Object.entries(RENAMES)) rename(g, from, to)
  rename(g, 'out_sample', 'v')
  // t in [0, 1] -> the train-step timestep the layers were exported with.
  const scaled = `${options.name}/timestep_x1000`
  rename(g, 'timestep', scaled)
  const input = g.input.find((v) => v.name === scaled)
  if (!input) throw new Error(`${options.onnxPath} has no input named timestep`)
  input.name = 't'
  const emitter = new NodeEmitter(collectNames(g), g.initializer, options.name)
  const thousand = emitter.float([1000], [], 'thousand')
  emitter.op('Mul', ['t', thousand], {}, { hint: 'timestep_scale' })
  const mul = emitter.nodes[0]
  if (!mul) throw new Error('no Mul node emitted')
  mul.output = [scaled]
  g.node.unshift(mul)
  writeFileSync(join(options.folder, `${options.name}.onnx`), encodeModel(model))

  const card = JSON.parse(readFileSync(options.cardPath, 'utf8')) as Record<string, unknown>
  const onnx = card.onnx as { inputs: { name: string; role?: string }[]; outputs: { name: string; role?: string }[] }
  const renamed = { ...RENAMES, timestep: 't', out_sample: 'v' } as Record<string, string>
  card.name = options.name
  card.cardVersion = 2
  card.description = `${String(card.description)} Re-exported with inputs x, t, y, output v and t in [0, 1] (a test fixture).`
  card.schedule = { ...(card.schedule as Record<string, unknown>), timestepScale: 1 }
  card.onnx = {
    ...onnx,
    file: `${options.name}.onnx`,
    inputs: onnx.inputs.map((t) => ({ ...t, name: renamed[t.name] ?? t.name })),
    outputs: onnx.outputs.map((t) => ({ ...t, name: renamed[t.name] ?? t.name })),
  }
  delete card.metrics
  const cardPath = join(options.folder, `${options.name}.card.json`)
  writeFileSync(cardPath, `${JSON.stringify(card, null, 2)}\n`)
  return cardPath
}
