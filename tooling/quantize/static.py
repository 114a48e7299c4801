"""Static int8 convolutions: QuantizeLinear/DequantizeLinear (QDQ) around each Conv with activation ranges
calibrated on training data, which ONNX Runtime fuses into QLinearConv (u8 activations x s8 weights,
NHWC kernels at graph optimization level 'all').

Dynamic ConvInteger (what `quantize_dynamic` emits for Conv) is not used: on onnxruntime-node 1.30 it ran
the fashion UNet 7.5x slower than float (tooling/quantize/README.md).
"""
from __future__ import annotations

import numpy as np

from graph import Graph, QuantizeError
from int8 import per_channel_s8


def conv_candidates(g: Graph) -> list:
    """Convs with constant weights that are not the first or last layer of an image model: a Conv reading a
    single input channel (the image) or writing as many channels as the image has stays float, where int8
    would cost quality for no measurable time (their MACs are a few percent)."""
    image_channels = {v.type.tensor_type.shape.dim[1].dim_value for v in g.graph.input
                      if len(v.type.tensor_type.shape.dim) == 4 and v.type.tensor_type.elem_type == 1}
    out = []
    for n in g.nodes:
        if n.op_type != 'Conv' or n.domain not in ('', 'ai.onnx'):
            continue
        w = g.const(n.input[1])
        if w is None or w.dtype != np.float32 or w.ndim != 4:
            continue
        if w.shape[1] == 1 and any(a.name == 'group' and a.i > 1 for a in n.attribute):
            continue  # depthwise: no fast int8 kernel path here
        if w.shape[1] in (1,) or w.shape[0] in image_channels:
            continue
        out.append(n)
    return out


def tensors_to_calibrate(g: Graph) -> list[str]:
    """The float tensors whose ranges static quantization needs: every candidate Conv's input and output."""
    names: list[str] = []
    for n in conv_candidates(g):
        names += [n.input[0], n.output[0]]
    return list(dict.fromkeys(names))


def _u8_params(lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Asymmetric u8 scale and zero point for [lo, hi] widened to contain 0 (so 0 is exact: padding)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0 if hi > lo else 1.0
    zp = int(np.clip(round(-lo / scale), 0, 255))
    return np.array(scale, np.float32), np.array(zp, np.uint8)


def quantize_convs_static(g: Graph, ranges: dict[str, list[float]]) -> int:
    """Conv(x, W, b) -> DQ(Q(x)) conv DQ(Wq per output channel) + DQ(int32 bias) -> Q -> DQ.

    The bias is quantized to int32 with scale x_scale * w_scale[c] (what QLinearConv expects).
    """
    count = 0
    quantized: dict[str, str] = {}  # float tensor -> its DQ(Q(.)) output, shared by convs reading it
    for node in conv_candidates(g):
        missing = [t for t in (node.input[0], node.output[0]) if t not in ranges]
        if missing:
            raise QuantizeError('INVALID_ARGUMENT', f'no calibrated range for {missing}: the ranges file does not belong to this model. Rerun the calibration (pnpm quantize does it).')
        w = g.const(node.input[1])
        xs, xz = _u8_params(*ranges[node.input[0]])
        ys, yz = _u8_params(*ranges[node.output[0]])
        new = []
        if node.input[0] not in quantized:
            s_name, z_name = g.add_init('x_scale', xs), g.add_init('x_zero', xz)
            q = g.make('QuantizeLinear', [node.input[0], s_name, z_name])
            dq = g.make('DequantizeLinear', [q.output[0], s_name, z_name])
            new += [q, dq]
            quantized[node.input[0]] = dq.output[0]
        wq, ws = per_channel_s8(w, axis=0)
        dw = g.make('DequantizeLinear', [g.add_init('w_s8', wq), g.add_init('w_scale', ws), g.add_init('w_zero', np.zeros(ws.shape, np.int8))], axis=0)
        inputs = [quantized[node.input[0]], dw.output[0]]
        new.append(dw)
        bias = g.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if bias is not None:
            bs = (xs * ws).astype(np.float32)
            bq = np.clip(np.rint(bias / bs), -2**31, 2**31 - 1).astype(np.int32)
            db = g.make('DequantizeLinear', [g.add_init('b_s32', bq), g.add_init('b_scale', bs), g.add_init('b_zero', np.zeros(bs.shape, np.int32))], axis=0)
            inputs.append(db.output[0])
            new.append(db)
        conv = g.make('Conv', inputs)
        conv.attribute.extend(node.attribute)
        ys_name, yz_name = g.add_init('y_scale', ys), g.add_init('y_zero', yz)
        qy = g.make('QuantizeLinear', [conv.output[0], ys_name, yz_name])
        dy = g.make('DequantizeLinear', [qy.output[0], ys_name, yz_name], [node.output[0]])
        g.replace([node], [*new, conv, qy, dy])
        count += 1
    g.reindex()
    return count
