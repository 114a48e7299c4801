"""int8 rewrite of a guidekit generator's ONNX graph for ONNX Runtime's CPU provider.

    /usr/bin/python3 tooling/quantize/quantize.py fashion-dit.onnx --out fashion-dit-int8.onnx
    /usr/bin/python3 tooling/quantize/quantize.py fashion-unet.onnx --instrument calib.onnx   # tensors to calibrate
    /usr/bin/python3 tooling/quantize/quantize.py fashion-unet.onnx --ranges ranges.json --out fashion-unet-int8.onnx

`pnpm quantize <model.onnx>` runs these steps (calibration on Fashion-MNIST training images, validation in
onnxruntime-node, the card); call this script directly only to inspect a rewrite.

The recipe (every rewrite matches graph structure and constants, never names):
1. tanh GELU -> com.microsoft Gelu (fusions.py; the erf GELU, within 4.7e-4 of the tanh form);
2. every MatMul / Gemm with a constant weight -> com.microsoft DynamicQuantizeMatMul, s8 weights per output
   channel, u8 activations quantized at run time (int8.py);
3. every Conv but the first and last -> QDQ with calibrated u8 activation ranges and s8 per-channel weights,
   which ONNX Runtime fuses into QLinearConv (static.py). Needs --ranges.
The result passes onnx.checker. Prints one JSON report on stdout; errors are `error CODE: message` on
stderr with exit status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fusions import fuse_tanh_gelu  # noqa: E402
from graph import Graph, QuantizeError  # noqa: E402
from int8 import quantize_weight_matmuls  # noqa: E402
from static import conv_candidates, quantize_convs_static, tensors_to_calibrate  # noqa: E402

QUANTIZED_OPS = {'DynamicQuantizeMatMul', 'MatMulInteger', 'QLinearConv', 'ConvInteger', 'QLinearMatMul', 'MatMulNBits',
                 'QuantizeLinear', 'DynamicQuantizeLinear', 'QAttention', 'QGemm'}


def load(path: str) -> onnx.ModelProto:
    p = Path(path)
    if not p.is_file():
        raise QuantizeError('MODEL_NOT_FOUND', f'{path} does not exist. Pass the fp32 .onnx file of a guidekit generator (e.g. packages/models-fashion/models/fashion-dit.onnx).')
    try:
        model = onnx.load(str(p))
        onnx.checker.check_model(model)
    except QuantizeError:
        raise
    except Exception as e:  # onnx raises DecodeError, ValidationError, ... for a file that is not a valid model
        raise QuantizeError('MODEL_INVALID', f'{path} is not a valid ONNX model ({type(e).__name__}: {str(e).strip()[:300]}). Re-export it from the training script.') from e
    found = sorted({n.op_type for n in model.graph.node} & QUANTIZED_OPS)
    if found:
        raise QuantizeError('UNSUPPORTED', f'{path} is already quantized (it has {", ".join(found)}). Quantize the fp32 model it was made from.')
    return model


def instrument(model: onnx.ModelProto, out: str) -> dict:
    """Writes `model` with the tensors static quantization needs as extra graph outputs."""
    g = Graph(model)
    names = tensors_to_calibrate(g)
    existing = {o.name for o in model.graph.output}
    for name in names:
        if name not in existing:
            model.graph.output.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    if names:
        onnx.save(model, out)
    return {'instrumented': out if names else None, 'tensors': names}


def quantize(model: onnx.ModelProto, ranges: dict | None) -> tuple[onnx.ModelProto, dict]:
    g = Graph(model)
    before = sum(int(np.prod(t.dims)) * (4 if t.data_type == onnx.TensorProto.FLOAT else 1) for t in model.graph.initializer)
    needs = tensors_to_calibrate(g)
    if needs and ranges is None:
        raise QuantizeError('INVALID_ARGUMENT', f'this model has {len(conv_candidates(g))} Conv layers to quantize statically, which needs calibrated activation ranges (--ranges). Run `pnpm quantize <model.onnx>`, which calibrates on Fashion-MNIST training images.')
    report = {'gelu': fuse_tanh_gelu(g)}
    report['qlinearConv'] = quantize_convs_static(g, ranges) if needs else 0
    report['dynamicQuantizeMatMul'] = quantize_weight_matmuls(g)
    if report['dynamicQuantizeMatMul'] + report['qlinearConv'] == 0:
        raise QuantizeError('UNSUPPORTED', 'the graph has no MatMul, Gemm or Conv with constant float weights: nothing to quantize.')
    g.finish()
    onnx.checker.check_model(model)
    report['floatOps'] = sorted({n.op_type for n in model.graph.node if n.op_type in ('MatMul', 'Gemm', 'Conv')})
    report['keptFloat'] = {'conv': sum(1 for n in model.graph.node if n.op_type == 'Conv' and n.domain in ('', 'ai.onnx') and g.const(n.input[1]) is not None)}
    report['onnxVersion'] = onnx.__version__
    report['initializerBytes'] = {'before': before, 'after': sum(len(t.raw_data) or int(np.prod(t.dims)) * 4 for t in model.graph.initializer)}
    return model, report


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('model', help='fp32 ONNX file of a guidekit generator')
    p.add_argument('--out', help='where to write the int8 model')
    p.add_argument('--ranges', help='JSON {tensor: [min, max]} from calibration (models with Conv layers)')
    p.add_argument('--instrument', metavar='FILE', help='write the model with the tensors to calibrate as outputs instead')
    args = p.parse_args(argv)
    try:
        model = load(args.model)
        if args.instrument:
            print(json.dumps(instrument(model, args.instrument)))
            return 0
        if not args.out:
            raise QuantizeError('INVALID_ARGUMENT', '--out is required: where to write the int8 model.')
        ranges = None
        if args.ranges:
            try:
                ranges = json.loads(Path(args.ranges).read_text())
            except (OSError, ValueError) as e:
                raise QuantizeError('INVALID_ARGUMENT', f'--ranges {args.ranges} is not a readable JSON file: {e}.') from e
        model, report = quantize(model, ranges)
        onnx.save(model, args.out)
        print(json.dumps({'input': args.model, 'output': args.out, **report}))
        return 0
    except QuantizeError as e:
        print(f'error {e.code}: {e}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
