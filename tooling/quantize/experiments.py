"""The alternatives measured against the shipped recipe (tooling/quantize/README.md), as reproducible graphs.

    /usr/bin/python3 tooling/quantize/experiments.py packages/models-fashion/models/fashion-dit.onnx --out /tmp/variants
    pnpm quantize:tune --variants /tmp/variants        # times every variant against the first (fp32)

Writes one ONNX file per variant, numbered in the order of the README's table: fp32, Gelu only,
DynamicQuantizeMatMul only, the recipe, the recipe with attention as MultiHeadAttention, MatMulNBits
(bits 8, accuracy level 4) and the adaLN LayerNorm with broadcast scale/bias. For a model with Conv layers
(the UNet): fp32 and dynamic ConvInteger (static QDQ needs calibration: compare with `pnpm quantize`'s
output instead). None of these but the recipe is shipped.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fusions import _other, fuse_tanh_gelu  # noqa: E402
from graph import MS_DOMAIN, Graph  # noqa: E402
from int8 import _bias_after, per_channel_s8, quantize_weight_matmuls  # noqa: E402


def _perm(n) -> list[int] | None:
    return next((list(a.ints) for a in n.attribute if a.name == 'perm'), None) if n is not None and n.op_type == 'Transpose' else None


def attention_to_mha(g: Graph) -> int:
    """Gather(Transpose(Reshape(qkv, [b, n, 3, h, d]))) -> q k^T * s -> Softmax -> @ v -> Transpose -> Reshape
    becomes Split(qkv) -> com.microsoft MultiHeadAttention(q, k, v, num_heads=h, scale=s)."""
    count = 0
    for sm in [n for n in g.nodes if n.op_type == 'Softmax']:
        scaled = g.src(sm, 0)
        qk = next((g.producer[i] for i in scaled.input if i in g.producer and g.producer[i].op_type == 'MatMul'), None) if scaled is not None and scaled.op_type == 'Mul' else None
        pv = g.only_consumer(sm.output[0])
        back = g.only_consumer(pv.output[0]) if pv is not None and pv.op_type == 'MatMul' else None
        merge = g.only_consumer(back.output[0]) if _perm(back) == [0, 2, 1, 3] else None
        if qk is None or merge is None or merge.op_type != 'Reshape':
            continue
        kt = g.src(qk, 1)
        gathers = [g.src(qk, 0), g.src(kt, 0) if _perm(kt) == [0, 1, 3, 2] else None, g.src(pv, 1)]
        split = g.producer.get(gathers[0].input[0]) if all(x is not None and x.op_type == 'Gather' for x in gathers) else None
        reshape = g.src(split, 0) if _perm(split) == [2, 0, 3, 1, 4] else None
        concat = g.producer.get(reshape.input[1]) if reshape is not None else None
        if concat is None or concat.op_type != 'Concat':
            continue
        heads, d = (int(g.const(i).reshape(-1)[0]) for i in concat.input[3:5])
        scale = g.scalar(_other(scaled, qk.output[0]))
        width = heads * d
        sizes = g.add_init('qkv_split', np.array([width] * 3, dtype=np.int64))
        qkv = g.make('Split', [reshape.input[0], sizes], 3, axis=-1)
        mha = g.make('MultiHeadAttention', list(qkv.output), [merge.output[0]], domain=MS_DOMAIN, num_heads=heads, scale=float(scale))
        g.replace([reshape, split, *gathers, kt, qk, scaled, sm, pv, back, merge], [qkv, mha])
        g.reindex()
        count += 1
    return count


def matmul_nbits8(g: Graph, block: int = 64) -> int:
    """Constant-weight MatMul (+ bias) -> com.microsoft MatMulNBits bits=8, accuracy_level 4 (int8 A per block)."""
    count = 0
    for node in [n for n in g.nodes if n.op_type == 'MatMul']:
        w = g.const(node.input[1])
        if w is None or w.ndim != 2:
            continue
        k, n = w.shape
        nb = -(-k // block)
        padded = np.zeros((nb * block, n), np.float32)
        padded[:k] = w
        blocks = padded.T.reshape(n, nb, block)
        amax = np.abs(blocks).max(axis=2)
        scale = np.where(amax > 0, amax / 127, 1).astype(np.float32)
        q = (np.clip(np.rint(blocks / scale[:, :, None]), -127, 127) + 128).astype(np.uint8)  # zero point 128
        bias = _bias_after(g, node.output[0], n)
        inputs = [node.input[0], g.add_init('nbits_w', q), g.add_init('nbits_scale', scale.reshape(-1))]
        if bias:
            inputs += ['', '', g.add_init('nbits_bias', g.const(bias[1]).reshape(-1).astype(np.float32))]
        out = bias[0].output[0] if bias else node.output[0]
        g.replace([node] + ([bias[0]] if bias else []), [g.make('MatMulNBits', inputs, [out], domain=MS_DOMAIN, K=k, N=n, bits=8, block_size=block, accuracy_level=4)])
        g.reindex()
        count += 1
    return count


def adaln_layernorm(g: Graph) -> int:
    """LayerNorm(x) * m + s (m, s: [b, 1, width]) -> LayerNormalization(x, m, s, axis=2) (ORT broadcasts)."""
    count = 0
    for ln in [n for n in g.nodes if n.op_type == 'LayerNormalization']:
        mul = g.only_consumer(ln.output[0])
        add = g.only_consumer(mul.output[0]) if mul is not None and mul.op_type == 'Mul' else None
        if add is None or add.op_type != 'Add' or g.rank(ln.input[0]) != 3:
            continue
        m, s = _other(mul, ln.output[0]), _other(add, mul.output[0])
        if g.rank(m) != 3 or g.rank(s) != 3:
            continue
        eps = next((a.f for a in ln.attribute if a.name == 'epsilon'), 1e-5)
        g.replace([ln, mul, add], [g.make('LayerNormalization', [ln.input[0], m, s], [add.output[0]], axis=2, epsilon=eps)])
        g.reindex()
        count += 1
    return count


def conv_integer(g: Graph) -> int:
    """Conv -> DynamicQuantizeLinear + ConvInteger + Cast + Mul(scales) + Add(bias), what quantize_dynamic emits
    (here with s8 per-channel weights)."""
    count = 0
    for node in [n for n in g.nodes if n.op_type == 'Conv']:
        w = g.const(node.input[1])
        if w is None:
            continue
        q, scale = per_channel_s8(w, axis=0)
        dq = g.make('DynamicQuantizeLinear', [node.input[0]], 3)
        conv = g.make('ConvInteger', [dq.output[0], g.add_init('w_s8', q), dq.output[2]])
        conv.attribute.extend(node.attribute)
        cast = g.make('Cast', [conv.output[0]], to=1)
        s = g.make('Mul', [dq.output[1], g.add_init('w_scale', scale.reshape(1, -1, 1, 1))])
        bias = g.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        mul = g.make('Mul', [cast.output[0], s.output[0]], 1 if bias is not None else [node.output[0]])
        extra = [g.make('Add', [mul.output[0], g.add_init('bias', bias.reshape(1, -1, 1, 1))], [node.output[0]])] if bias is not None else []
        g.replace([node], [dq, conv, cast, s, mul, *extra])
        g.reindex()
        count += 1
    return count


DIT_VARIANTS = {
    '0-fp32': [],
    '1-gelu': [fuse_tanh_gelu],
    '2-dqmatmul': [quantize_weight_matmuls],
    '3-recipe': [fuse_tanh_gelu, quantize_weight_matmuls],
    '4-recipe-mha': [fuse_tanh_gelu, attention_to_mha, quantize_weight_matmuls],
    '5-nbits8-block64': [fuse_tanh_gelu, matmul_nbits8],
    '6-recipe-adaln-layernorm': [fuse_tanh_gelu, adaln_layernorm, quantize_weight_matmuls],
}
CONV_VARIANTS = {'0-fp32': [], '1-convinteger': [conv_integer, quantize_weight_matmuls]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('model')
    p.add_argument('--out', required=True)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    has_conv_layers = sum(n.op_type == 'Conv' for n in onnx.load(args.model).graph.node) > 1
    for name, passes in (CONV_VARIANTS if has_conv_layers else DIT_VARIANTS).items():
        model = onnx.load(args.model)
        g = Graph(model)
        counts = [f'{f.__name__} {f(g)}' for f in passes]
        g.finish()
        onnx.checker.check_model(model)
        onnx.save(model, out / f'{name}.onnx')
        print(f'{name}: {", ".join(counts) or "unchanged"}')


if __name__ == '__main__':
    main()
