"""int8 weight rewrites for ONNX Runtime's CPU kernels: u8 activations x s8 weights, the AVX512-VNNI path.

Weights are quantized symmetrically per output channel: s[n] = max_k |W[k, n]| / 127, Wq = round(W / s)
in [-127, 127], zero point 0 (Jacob et al., arXiv:1712.05877, with per-channel scales as in
Krishnamoorthi, arXiv:1806.08342). Activations are quantized at run time, asymmetric u8, by the kernels.
"""
from __future__ import annotations

import numpy as np

from graph import MS_DOMAIN, Graph


def per_channel_s8(w: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """(Wq int8, scale float32 per index of `axis`); an all-zero channel gets scale 1 (it stays zero)."""
    w = w.astype(np.float32)
    reduce = tuple(i for i in range(w.ndim) if i != axis)
    amax = np.abs(w).max(axis=reduce)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale


def _bias_after(g: Graph, out: str, n: int) -> tuple[object, str] | None:
    """(Add node, bias name) if `out` feeds only an Add with a constant of N values (shape [N] or [1.., N])."""
    add = g.only_consumer(out)
    if add is None or add.op_type != 'Add' or len(add.input) != 2:
        return None
    other = add.input[1] if add.input[0] == out else add.input[0]
    b = g.const(other)
    if b is None or b.size != n or b.shape[-1] != n or b.dtype != np.float32:
        return None
    return add, other


def quantize_weight_matmuls(g: Graph, skip: set[int] = frozenset()) -> int:
    """MatMul(A, W) (+ Add(bias)) and Gemm(A, W^T, bias) with constant W ->
    com.microsoft DynamicQuantizeMatMul(A, Wq, s, '', bias).

    DynamicQuantizeMatMul quantizes A to u8 with one scale and zero point for the whole tensor, runs the
    prepacked u8 x s8 GEMM and rescales to float, with the bias added in the GEMM's output stage.
    `skip` holds indices (in graph order among the candidates) kept in float.
    """
    count, index = 0, 0
    for node in list(g.nodes):
        w = None
        if node.op_type == 'MatMul' and node.domain in ('', 'ai.onnx'):
            w = g.const(node.input[1])
            if w is None or w.ndim != 2 or w.dtype != np.float32:
                continue
            bias = _bias_after(g, node.output[0], w.shape[1])
            remove = [node] + ([bias[0]] if bias else [])
            out = bias[0].output[0] if bias else node.output[0]
            bias_value = g.const(bias[1]).reshape(-1) if bias else None
        elif node.op_type == 'Gemm' and node.domain in ('', 'ai.onnx'):
            attrs = {a.name: a for a in node.attribute}
            w = g.const(node.input[1])
            if w is None or w.ndim != 2 or w.dtype != np.float32 or attrs.get('transA') and attrs['transA'].i:
                continue
            if attrs.get('transB') and attrs['transB'].i:
                w = w.T
            alpha = attrs['alpha'].f if 'alpha' in attrs else 1.0
            beta = attrs['beta'].f if 'beta' in attrs else 1.0
            w = w * alpha
            c = g.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
            if len(node.input) > 2 and node.input[2] and (c is None or c.size != w.shape[1]):
                continue  # a non-constant or 2-D C stays a float Gemm
            bias_value = (c.reshape(-1) * beta).astype(np.float32) if c is not None else None
            remove, out = [node], node.output[0]
        else:
            continue
        index += 1
        if index - 1 in skip:
            continue
        q, scale = per_channel_s8(w, axis=1)
        inputs = [node.input[0], g.add_init('w_s8', q), g.add_init('w_scale', scale), '']
        if bias_value is not None:
            inputs.append(g.add_init('bias', bias_value.astype(np.float32)))
        g.replace(remove, [g.make('DynamicQuantizeMatMul', inputs, [out], domain=MS_DOMAIN)])
        g.reindex()
        count += 1
    return count

