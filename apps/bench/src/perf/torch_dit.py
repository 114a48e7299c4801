"""PyTorch eager baseline for `pnpm bench:perf`: the fashion DiT of tooling/train/train_dit.py with the
weights of the shipped ONNX file, sampled with the same Euler steps and batched CFG as guidekit.

    /usr/bin/python3 apps/bench/src/perf/torch_dit.py --onnx fashion-dit.onnx --plan plan.json \
        --batch 8 --scale 3 --threads 2 --repeats 3

No checkpoint is needed (tooling/train/runs is not committed): the ONNX initializers are mapped back to the
module's parameters by exporting a probe model whose parameter k is filled with the constant 1000 + k, with
the same exporter and settings, and reading which initializer (possibly transposed by constant folding)
holds which parameter. Prints one JSON object: seconds per trajectory, per image, and the model output on a
fixed input so the caller can check that ORT and PyTorch compute the same function.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / 'tooling' / 'train'))
import common as C  # noqa: E402
from train_dit import DiT  # noqa: E402


def build(card: dict) -> DiT:
    a = card['architecture']
    return DiT(patch=a['patchSize'], width=a['width'], depth=a['depth'], heads=a['heads'], image=card['image']['height'])


def export_bytes(model: torch.nn.Module) -> bytes:
    buf = io.BytesIO()
    x = torch.randn(2, 1, 28, 28)
    t = torch.tensor([500.0, 10.0])
    y = torch.tensor([3, C.NULL_CLASS])
    torch.onnx.export(model.eval().float(), (x, t, y), buf, opset_version=C.ONNX_OPSET,
                      input_names=['sample', 'timestep', 'class_labels'], output_names=['out_sample'],
                      dynamic_axes={'sample': {0: 'batch'}, 'timestep': {0: 'batch'},
                                    'class_labels': {0: 'batch'}, 'out_sample': {0: 'batch'}},
                      do_constant_folding=True)
    return buf.getvalue()


def load_from_onnx(model: DiT, onnx_path: str) -> dict:
    params = dict(model.named_parameters())
    names = list(params)
    probe = build_like(model)
    # Parameter k is filled with 1000 + k; matrices get one marked element, -(1000 + k) at [0, 1], so a
    # transposed initializer (square ones included) shows it at [1, 0].
    with torch.no_grad():
        probe_params = dict(probe.named_parameters())
        for k, name in enumerate(names):
            probe_params[name].fill_(1000.0 + k)
            if probe_params[name].dim() == 2:
                probe_params[name][0, 1] = -(1000.0 + k)
    probe_graph = onnx.load_from_string(export_bytes(probe)).graph
    real = {i.name: numpy_helper.to_array(i) for i in onnx.load(onnx_path).graph.initializer}
    real_order = [i.name for i in onnx.load(onnx_path).graph.initializer]
    mapping = {}
    for idx, init in enumerate(probe_graph.initializer):
        arr = numpy_helper.to_array(init)
        if arr.size == 0 or arr.dtype != np.float32:
            continue
        v = float(np.abs(arr).flat[0])
        if not np.all(np.abs(arr) == v) or v < 1000 or v != math.floor(v) or int(v) - 1000 >= len(names):
            continue
        pname = names[int(v) - 1000]
        shape = tuple(params[pname].shape)
        src = init.name if init.name in real else (real_order[idx] if idx < len(real_order) else None)
        if src is None:
            continue
        value = real[src]
        transposed = arr.ndim == 2 and arr.shape[0] > 1 and arr[1, 0] < 0
        if value.ndim == 2 and transposed and value.T.shape == shape:
            mapping[pname] = torch.from_numpy(value.T.copy())
        elif value.shape == shape:
            mapping[pname] = torch.from_numpy(value.copy())
    missing = [n for n in names if n not in mapping]
    if missing:
        raise SystemExit(f'could not map ONNX initializers to parameters: {missing[:5]} ({len(missing)} missing)')
    with torch.no_grad():
        for name, value in mapping.items():
            params[name].copy_(value)
    return {'mapped': len(mapping)}


def build_like(model: DiT) -> DiT:
    return DiT(patch=model.patch, width=model.width, depth=model.depth, heads=model.heads, image=model.grid * model.patch)


@torch.no_grad()
def trajectory(model: DiT, noise: torch.Tensor, y: torch.Tensor, sigmas: list, timesteps: list, scale: float) -> torch.Tensor:
    """Euler on the flow model with batched CFG: one forward of batch 2B per step (1 forward when scale = 1)."""
    x = noise.clone()
    null = torch.full_like(y, C.NULL_CLASS)
    for i, t in enumerate(timesteps):
        tt = torch.full((len(y),), float(t))
        if scale == 1:
            v = model(x, tt, y)
        else:
            out = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([y, null]))
            c, u = out.chunk(2)
            v = u + scale * (c - u)
        x = x + (sigmas[i + 1] - sigmas[i]) * v
    return x


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--onnx', required=True)
    p.add_argument('--plan', required=True, help='JSON file {sigmas, timesteps} (the guidekit plan)')
    p.add_argument('--batch', type=int, default=8)
    p.add_argument('--scale', type=float, default=3.0)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--repeats', type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    card = json.loads(Path(args.onnx).with_suffix('.card.json').read_text()) if Path(args.onnx).with_suffix('.card.json').exists() \
        else json.loads(Path(str(args.onnx).replace('.onnx', '.card.json')).read_text())
    model = build(card).eval()
    info = load_from_onnx(model, args.onnx)
    plan = json.loads(Path(args.plan).read_text())
    # Fixed check input (same formula in the TS caller): x[i] = sin(0.37 i), t = [500, 250], labels = [3, 10].
    xs = torch.sin(0.37 * torch.arange(2 * 784, dtype=torch.float64)).float().view(2, 1, 28, 28)
    check = model(xs, torch.tensor([500.0, 250.0]), torch.tensor([3, C.NULL_CLASS])).flatten()
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(args.batch, 1, 28, 28, generator=g)
    y = torch.arange(args.batch) % 10
    trajectory(model, noise, y, plan['sigmas'], plan['timesteps'], args.scale)  # warm-up
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        trajectory(model, noise, y, plan['sigmas'], plan['timesteps'], args.scale)
        times.append(time.perf_counter() - t0)
    times.sort()
    sec = times[len(times) // 2]
    print(json.dumps({'torch': torch.__version__, 'threads': args.threads, 'batch': args.batch, 'steps': len(plan['timesteps']),
                      'scale': args.scale, 'secondsPerTrajectory': sec, 'secondsPerImage': sec / args.batch,
                      'mappedParameters': info['mapped'], 'check': check.tolist()}))


if __name__ == '__main__':
    main()
