// The card of an int8 model, in @guidekit/onnx's card schema: the fp32 card's interface, schedule,
// architecture, training and defaults, plus `precision: 'int8'`, `derivedFrom: '<fp32 name>'` (the CLI finds
// `<name>-int8.card.json` next to `<name>.card.json` by it) and how it was made (`quantization`, with the
// fp32 file's SHA-256). Quality metrics are not copied (they belong to the fp32 weights): the int8 gate
// (`pnpm bench:int8-gate --write-card`) adds the int8 model's own, `metrics.qualityGate` and `msPerImage`.
import type { Deviation } from './measure.js'

export interface QuantizeReport {
  readonly gelu: number
  readonly dynamicQuantizeMatMul: number
  readonly qlinearConv: number
  readonly keptFloat: { readonly conv: number }
  readonly onnxVersion: string
}

export interface Int8CardInput {
  readonly fp32: Record<string, unknown>
  readonly fp32Sha256: string
  readonly report: QuantizeReport
  readonly calibration: { readonly rows: number; readonly images: string } | null
  readonly validation: Deviation & { readonly images: string }
  readonly command: string
}

export const int8Name = (fp32Name: string): string => `${fp32Name}-int8`

export function int8Card(input: Int8CardInput): Record<string, unknown> {
  const { fp32, report } = input
  const name = int8Name(String(fp32.name))
  const { metrics: _metrics, notes: _notes, ...rest } = fp32
  const onnx = fp32.onnx as Record<string, unknown>
  return {
    ...rest,
    name,
    description: `${String(fp32.description)} int8 weights (derived from ${String(fp32.name)} by tooling/quantize) for ONNX Runtime's CPU provider.`,
    precision: 'int8',
    derivedFrom: String(fp32.name),
    onnx: { ...onnx, file: `${name}.onnx`, domains: ['ai.onnx', 'com.microsoft'] },
    quantization: {
      command: input.command,
      fp32: { file: onnx.file, sha256: input.fp32Sha256 },
      weights: 's8, symmetric, one scale per output channel (max |w| / 127), zero point 0',
      activations: report.qlinearConv
        ? 'u8 per tensor: dynamic (min/max of each call) for MatMul/Gemm, static (MinMax calibration) for Conv'
        : 'u8 per tensor, dynamic: min/max of each call, computed inside DynamicQuantizeMatMul',
      operators: {
        DynamicQuantizeMatMul: report.dynamicQuantizeMatMul,
        QLinearConv: report.qlinearConv,
        Gelu: report.gelu,
        floatConv: report.keptFloat.conv,
      },
      calibration: input.calibration,
      validation: input.validation,
      runtime: 'onnxruntime-node 1.30.0 (CPU provider, graph optimization level all)',
      onnx: report.onnxVersion,
    },
  }
}
