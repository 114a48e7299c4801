"""PyTorch baselines for `pnpm bench:perf`: the fashion DiT of tooling/train/train_dit.py with the weights of
the shipped ONNX file, sampled with the same Euler steps and batched CFG as guidekit, in every mode a
PyTorch user can pick on a CPU with torch 1.13 (no torch.compile):

    fp32-eager          the module as is (fp32 matmuls through the BLAS torch was built with)
    bf16-autocast       torch.autocast('cpu', dtype=torch.bfloat16) around each call (oneDNN bf16 matmuls)
    fp32-torchscript    torch.jit.trace + torch.jit.freeze
    bf16-torchscript    traced and frozen under autocast, called under autocast (the IPEX recipe without IPEX)

    /usr/bin/python3 apps/bench/src/perf/torch_dit.py --onnx fashion-dit.onnx --plan plan.json \
        --batches 8,64 --scale 3 --threads 2

Serves the caller over stdin/stdout so that guidekit and PyTorch runs can alternate in one benchmark: first
one JSON line `{ready, torch, modes, errors, check, trajectoryDiff}`, then for each input line
`run <mode> <batch>` one line `{ms}` (one trajectory, timed), until `quit`.

No checkpoint is needed (tooling/train/runs is not committed): the ONNX initializers are mapped back to the
module's parameters by exporting a probe model whose parameter k is filled with the constant 1000 + k, with
the same exporter and settings, and reading which initializer (possibly transposed by constant folding)
holds which parameter. `check` is the fp32 module's output on a fixed input, so the caller can check that
ORT and PyTorch compute the same function; `trajectoryDiff` is each mode's largest deviation from fp32
eager on the final samples of one trajectory.
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
def trajectory(model, noise: torch.Tensor, y: torch.Tensor, sigmas: list, timesteps: list, scale: float) -> torch.Tensor:
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


MODES = ('fp32-eager', 'bf16-autocast', 'fp32-torchscript', 'bf16-torchscript')


def build_mode(mode: str, model: DiT, batch: int):
    """A callable (x, t, y) -> velocity for `mode`, specialised to CFG batches of 2 * batch rows."""
    example = (torch.randn(2 * batch, 1, 28, 28), torch.full((2 * batch,), 500.0), torch.arange(2 * batch) % (C.NULL_CLASS + 1))
    if mode == 'fp32-eager':
        return model
    if mode == 'bf16-autocast':
        def autocast_call(x, t, y):
            with torch.autocast('cpu', dtype=torch.bfloat16):
                return model(x, t, y).float()
        return autocast_call
    if mode == 'fp32-torchscript':
        return torch.jit.freeze(torch.jit.trace(model, example))
    if mode == 'bf16-torchscript':
        # check_trace=False: autocast caches weight casts, so a re-trace for the check differs by construction
        with torch.autocast('cpu', dtype=torch.bfloat16):
            traced = torch.jit.freeze(torch.jit.trace(model, example, check_trace=False))

        def traced_call(x, t, y):
            with torch.autocast('cpu', dtype=torch.bfloat16):
                return traced(x, t, y).float()
        return traced_call
    raise ValueError(f'unknown mode {mode}')


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument('--onnx', required=True)
    p.add_argument('--plan', required=True, help='JSON file {sigmas, timesteps} (the guidekit plan)')
    p.add_argument('--batches', default='8,64')
    p.add_argument('--modes', default=','.join(MODES))
    p.add_argument('--scale', type=float, default=3.0)
    p.add_argument('--threads', type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    card_path = Path(str(args.onnx).replace('.onnx', '.card.json'))
    model = build(json.loads(card_path.read_text())).eval()
    info = load_from_onnx(model, args.onnx)
    plan = json.loads(Path(args.plan).read_text())
    batches = [int(b) for b in args.batches.split(',')]
    runners, errors, diff = {}, {}, {}
    with torch.no_grad():
        # Fixed check input (same formula in the TS caller): x[i] = sin(0.37 i), t = [500, 250], labels = [3, 10].
        xs = torch.sin(0.37 * torch.arange(2 * 784, dtype=torch.float64)).float().view(2, 1, 28, 28)
        check = model(xs, torch.tensor([500.0, 250.0]), torch.tensor([3, C.NULL_CLASS])).flatten()
        for b in batches:
            noise = torch.randn(b, 1, 28, 28, generator=torch.Generator().manual_seed(0))
            y = torch.arange(b) % 10
            reference = trajectory(model, noise, y, plan['sigmas'], plan['timesteps'], args.scale)
            for mode in args.modes.split(','):
                try:
                    fn = build_mode(mode, model, b)
                    out = trajectory(fn, noise, y, plan['sigmas'], plan['timesteps'], args.scale)  # also the warm-up
                    runners[(mode, b)] = (fn, noise, y)
                    diff[f'{mode}@{b}'] = float((out - reference).abs().max())
                except Exception as e:  # a mode this torch cannot build is reported, not fatal
                    errors[f'{mode}@{b}'] = f'{type(e).__name__}: {str(e).splitlines()[0][:200]}'
        print(json.dumps({'ready': True, 'torch': torch.__version__, 'threads': args.threads, 'mappedParameters': info['mapped'],
                          'modes': sorted({m for m, _ in runners}), 'errors': errors, 'check': check.tolist(), 'trajectoryDiff': diff}), flush=True)
        for line in sys.stdin:
            parts = line.split()
            if not parts or parts[0] == 'quit':
                break
            key = (parts[1], int(parts[2])) if parts[0] == 'run' and len(parts) == 3 else None
            if key not in runners:
                print(json.dumps({'error': f'unknown request {line.strip()!r}'}), flush=True)
                continue
            fn, noise, y = runners[key]
            t0 = time.perf_counter()
            trajectory(fn, noise, y, plan['sigmas'], plan['timesteps'], args.scale)
            print(json.dumps({'ms': (time.perf_counter() - t0) * 1000}), flush=True)


if __name__ == '__main__':
    main()
