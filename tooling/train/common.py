"""Shared helpers for the guidekit Fashion-MNIST training scripts.

Data loading (Debian's dataset-fashion-mnist IDX files), seeding, EMA, the evaluator network,
Frechet distance, the compressibility reward, samplers used for metrics, a PNG writer, ONNX export
and model cards. Everything runs on CPU with Debian's PyTorch (`/usr/bin/python3`).
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import random
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_MODELS_DIR = REPO_ROOT / 'packages' / 'models-fashion' / 'models'
RUNS_DIR = Path(__file__).resolve().parent / 'runs'
DATA_DIR = Path(os.environ.get('FASHION_MNIST_DIR', '/usr/share/datasets/fashion-mnist'))

CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']
NULL_CLASS = 10
CFG_SCALES = [1.0, 2.0, 3.0, 5.0]
ONNX_OPSET = 17
DATA_DESCRIPTION = 'Fashion-MNIST train (60k), Debian dataset-fashion-mnist'


# ----------------------------------------------------------------------------------------- setup

def base_args(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument('--smoke', action='store_true', help='a few steps on a few hundred images, outputs in a temp dir')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--fixed-threads', action='store_true',
                   help='always use --threads (no adaptive 1..threads governor); for a run given priority with nice')
    p.add_argument('--out', type=str, default=None, help='where to write <name>.onnx/.card.json/.grid.png '
                   '(default: packages/models-fashion/models, or a temp dir with --smoke)')
    p.add_argument('--run-dir', type=str, default=None, help='checkpoints (default: tooling/train/runs/<name>)')
    return p


def setup(args: argparse.Namespace, name: str) -> tuple[Path, Path]:
    global GOVERNOR
    torch.set_num_threads(args.threads)
    if not args.smoke and not args.fixed_threads:
        GOVERNOR = ThreadGovernor(args.threads)
    seed_everything(args.seed)
    if args.smoke:
        tmp = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix=f'guidekit-smoke-{name}-'))
        out, run = tmp, Path(args.run_dir) if args.run_dir else tmp / 'run'
    else:
        out = Path(args.out) if args.out else PACKAGE_MODELS_DIR
        run = Path(args.run_dir) if args.run_dir else RUNS_DIR / name
    out.mkdir(parents=True, exist_ok=True)
    run.mkdir(parents=True, exist_ok=True)
    log(f'{name}: out={out} run={run} smoke={args.smoke} seed={args.seed} threads={args.threads} (adaptive 1..threads when not --smoke)')
    return out, run


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


_T0 = time.time()


def log(msg: str) -> None:
    print(f'[{time.time() - _T0:7.1f}s] {msg}', flush=True)


def command_line(script: str) -> str:
    return f'/usr/bin/python3 tooling/train/{script}'


# ------------------------------------------------------------------------------------------ data

def _read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, 'rb') as f:
        raw = f.read()
    magic, = struct.unpack('>I', raw[:4])
    ndim = magic & 0xFF
    dims = struct.unpack('>' + 'I' * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion(split: str, limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Images as float32 [N,1,28,28] in [-1, 1] and labels int64 [N]."""
    prefix = 'train' if split == 'train' else 't10k'
    images = _read_idx(DATA_DIR / f'{prefix}-images-idx3-ubyte.gz')
    labels = _read_idx(DATA_DIR / f'{prefix}-labels-idx1-ubyte.gz')
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    x = torch.from_numpy(images.copy()).float().div(127.5).sub(1.0).unsqueeze(1)
    y = torch.from_numpy(labels.copy()).long()
    return x, y


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """[-1,1] float -> uint8 (N,28,28)."""
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).squeeze(1).cpu().numpy()


# -------------------------------------------------------------------------------------- training

class EMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float | None = None) -> None:
        d = self.decay if decay is None else decay
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach().float(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict(self.shadow)


def warmup_cosine(step: int, total: int, warmup: int, floor: float = 0.1, elapsed: float = 0.0,
                  budget: float | None = None) -> float:
    """Linear warmup, then cosine from 1 to `floor` over max(step progress, wall-clock progress), so a
    run stopped by its time budget still ends with a decayed learning rate."""
    if step < warmup:
        return (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    if budget:
        p = max(p, min(1.0, elapsed / budget))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p))


class ThreadGovernor:
    """Picks 1 or `max_threads` torch threads from what the *other* processes use (read from /proc).

    On a shared 2-core machine, 2 OpenMP threads next to another busy process are far slower than 1
    (every parallel region waits for the thread that lost its core: measured 27 vs ~110 img/s for the
    DiT), while on an idle machine 2 threads are ~2x faster. Checked every `interval` seconds; the
    change only reorders float reductions, so results stay statistically the same."""

    def __init__(self, max_threads: int, interval: float = 5.0) -> None:
        self.max_threads, self.interval = max_threads, interval
        self.threads = max_threads
        self.enabled = max_threads > 1 and os.path.exists('/proc/stat')
        self.ncpu = os.cpu_count() or 1
        self.last_time = time.time()
        self.last = self._snapshot() if self.enabled else None
        torch.set_num_threads(self.threads)

    @staticmethod
    def _snapshot() -> tuple[int, int, int]:
        with open('/proc/stat') as f:
            vals = [int(v) for v in f.readline().split()[1:9]]
        with open('/proc/self/stat') as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return sum(vals) - vals[3] - vals[4], int(fields[11]) + int(fields[12]), sum(vals)

    def tick(self) -> None:
        if not self.enabled or time.time() - self.last_time < self.interval:
            return
        now = self._snapshot()
        busy, own, total = (a - b for a, b in zip(now, self.last))
        self.last, self.last_time = now, time.time()
        if total <= 0:
            return
        others = max(0, busy - own) / total * self.ncpu            # cores busy with other processes
        want = 1 if others > 0.6 else self.max_threads
        if want != self.threads:
            self.threads = want
            torch.set_num_threads(want)


GOVERNOR: ThreadGovernor | None = None


def governor_tick() -> None:
    if GOVERNOR is not None:
        GOVERNOR.tick()

def generator_args(p: argparse.ArgumentParser, *, images: int, batch: int, lr: float, warmup: int,
                   beta2: float, ema: str, max_minutes: float) -> None:
    """The optimisation knobs every generator script shares (defaults are each model's recipe)."""
    p.add_argument('--images', type=int, default=images,
                   help='training budget in images seen; optimizer steps = images / batch size')
    p.add_argument('--batch-size', type=int, default=batch)
    p.add_argument('--lr', type=float, default=lr)
    p.add_argument('--beta2', type=float, default=beta2, help='AdamW beta2 (beta1 is 0.9)')
    p.add_argument('--warmup', type=int, default=warmup, help='linear warmup steps')
    p.add_argument('--ema', type=str, default=ema,
                   help='EMA decay of the exported weights; a comma list also keeps the others in the checkpoint '
                        '(ema@<decay>) for ablations')
    p.add_argument('--max-minutes', type=float, default=max_minutes,
                   help='wall-clock safety budget: the cosine schedule runs on max(step progress, elapsed/budget) '
                        'and training stops when either is used up (the image budget binds on an idle machine)')
    p.add_argument('--skip-train', action='store_true', help='reuse the checkpoint in the run dir; export and measure only')


def ema_decays(args: argparse.Namespace) -> list[float]:
    return [float(d) for d in str(args.ema).split(',')]


def train_generator(model: nn.Module, args: argparse.Namespace, ckpt: Path, loss_fn) -> dict:
    """The training loop shared by the generators: AdamW (betas 0.9/beta2) with warmup + cosine to 10%
    (time-budgeted), one EMA per decay in `--ema`, gradient clipping, progress lines and periodic
    checkpoints in `ckpt`. `loss_fn(model, x0, y, g)` gives the loss of one batch. With `--skip-train`,
    loads the checkpoint instead. Leaves the first EMA's weights in `model` (eval mode) and returns the
    run's facts: wallSeconds, images, optimizerSteps, plannedSteps, batchSize."""
    decays = ema_decays(args)
    if args.skip_train:
        state = torch.load(ckpt, map_location='cpu')
        model.load_state_dict(state['ema'])
        model.eval()
        return state['facts']
    batch = 32 if args.smoke else args.batch_size
    steps = 6 if args.smoke else max(1, args.images // batch)
    x, y = load_fashion('train', limit=512 if args.smoke else None)
    emas = [EMA(model, d) for d in decays]
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, args.beta2), weight_decay=0.0)
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    perm, pos = torch.randperm(len(x), generator=g), 0
    done, images = 0, 0
    budget = None if args.smoke else args.max_minutes * 60

    def facts() -> dict:
        return {'wallSeconds': round(time.time() - t0), 'images': images, 'optimizerSteps': done,
                'plannedSteps': steps, 'batchSize': batch}

    def save() -> None:
        state = {'ema': emas[0].shadow, 'facts': facts()}
        for e in emas[1:]:
            state[f'ema@{e.decay}'] = e.shadow
        torch.save(state, ckpt)

    for step in range(steps):
        if budget is not None and time.time() - t0 > budget:
            log(f'time budget of {args.max_minutes} min used up at step {step}/{steps}')
            break
        done = step + 1
        if pos + batch > len(x):
            perm, pos = torch.randperm(len(x), generator=g), 0
        idx = perm[pos:pos + batch]
        pos += batch
        for group in opt.param_groups:
            group['lr'] = args.lr * warmup_cosine(step, steps, args.warmup, elapsed=time.time() - t0, budget=budget)
        loss = loss_fn(model, x[idx], y[idx], g)
        governor_tick()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        for e in emas:
            e.update(model, min(e.decay, (1 + step) / (10 + step)))
        images += len(idx)
        if (step + 1) % 100 == 0 or step + 1 == steps:
            el = time.time() - t0
            log(f'step {step + 1}/{steps} loss {loss.item():.4f} lr {opt.param_groups[0]["lr"]:.2e} '
                f'{images / el:.0f} img/s threads {torch.get_num_threads()} eta {(steps - step - 1) * el / (step + 1) / 60:.1f} min')
        if (step + 1) % 1000 == 0 and not args.smoke:
            save()
    save()
    emas[0].copy_to(model)
    model.eval()
    return facts()


def training_block(args: argparse.Namespace, facts: dict, script: str, objective: str) -> dict:
    """The card's `training` entry: data, budget, what was run and the recipe in words."""
    return {'data': DATA_DESCRIPTION, **facts, 'maxMinutes': args.max_minutes, 'seed': args.seed,
            'command': command_line(script),
            'algorithm': f'{objective}, AdamW lr {args.lr} (betas 0.9/{args.beta2}, {args.warmup} warmup steps, '
                         f'cosine to 10%), grad clip 1, EMA {ema_decays(args)[0]}, bf16 autocast; EMA weights exported'}


def autocast():
    """bf16 autocast on CPU (AMX/AVX512-BF16 make it ~2x faster here); weights stay float32."""
    return torch.autocast('cpu', dtype=torch.bfloat16)


# ------------------------------------------------------------------------------------- evaluator

class Evaluator(nn.Module):
    """Small VGG-style CNN. forward -> (logits [B,10], features [B,feature_dim])."""

    feature_dim = 256

    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                nn.MaxPool2d(2))

        self.body = nn.Sequential(block(1, 32), block(32, 64), block(64, 128))  # 28 -> 14 -> 7 -> 3
        self.fc = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(128 * 3 * 3, self.feature_dim),
                                nn.BatchNorm1d(self.feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(self.feature_dim, 10))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.fc(self.body(image))
        return self.head(features), features


class ShippedEvaluator(nn.Module):
    """fashion-eval rebuilt from its shipped ONNX file (BatchNorm folded into the convolutions by the
    export), so Python metrics use exactly the evaluator that @guidekit/eval runs; no checkpoint needed.
    forward -> (logits [B,10], features [B,256])."""

    feature_dim = 256

    def __init__(self, path: Path) -> None:
        super().__init__()
        import onnx
        from onnx import numpy_helper
        graph = onnx.load(str(path)).graph
        init = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
        convs = []
        for node in graph.node:
            if node.op_type == 'Conv':
                w, b = init[node.input[1]], init[node.input[2]]
                conv = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], padding=1)
                conv.weight.data.copy_(w)
                conv.bias.data.copy_(b)
                convs.append(conv)
        layers: list[nn.Module] = []
        for i, conv in enumerate(convs):
            layers += [conv, nn.ReLU()] + ([nn.MaxPool2d(2)] if i % 2 == 1 else [])
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(1152, 256)
        self.fc.weight.data.copy_(init['ev.fc.2.weight'])
        self.fc.bias.data.copy_(init['ev.fc.2.bias'])
        self.bn = nn.BatchNorm1d(256)
        for k in ('weight', 'bias', 'running_mean', 'running_var'):
            getattr(self.bn, k).data.copy_(init[f'ev.fc.3.{k}'])
        self.head = nn.Linear(256, 10)
        self.head.weight.data.copy_(init['ev.head.1.weight'])
        self.head.bias.data.copy_(init['ev.head.1.bias'])

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.relu(self.bn(self.fc(self.body(image).flatten(1))))
        return self.head(features), features


def load_evaluator(smoke: bool) -> nn.Module:
    """The shipped fashion-eval (random weights in smoke mode, so smoke tests are hermetic)."""
    if smoke:
        return Evaluator().eval()
    return ShippedEvaluator(PACKAGE_MODELS_DIR / 'fashion-eval.onnx').eval()


@torch.no_grad()
def evaluator_outputs(ev: Evaluator, x: torch.Tensor, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    logits, feats = [], []
    for i in range(0, len(x), batch):
        lo, fe = ev(x[i:i + batch].float())
        logits.append(lo)
        feats.append(fe)
    return torch.cat(logits), torch.cat(feats)


def feature_stats(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    f = feats.double()
    mu = f.mean(0)
    fc = f - mu
    return mu, fc.T @ fc / (len(f) - 1)


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(mu1: torch.Tensor, s1: torch.Tensor, mu2: torch.Tensor, s2: torch.Tensor) -> float:
    """||mu1-mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), float64; tr((S1 S2)^(1/2)) computed as the sum of
    the square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2) (symmetric PSD, so eigh is stable; no scipy here)."""
    r = _sqrtm_psd(s1)
    vals = torch.linalg.eigvalsh(r @ s2 @ r)
    tr_covmean = vals.clamp(min=0).sqrt().sum()
    return float(((mu1 - mu2) ** 2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * tr_covmean)


# ---------------------------------------------------------------------------------------- reward

def png_bytes(img: np.ndarray) -> bytes:
    """Minimal 8-bit grayscale PNG: filter type 0 on every row, zlib level 9. Deterministic, and
    reproducible from Node with zlib.deflateSync(level 9)."""
    h, w = img.shape
    raw = b''.join(b'\x00' + img[r].tobytes() for r in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack('>I', len(data)) + tag + data + struct.pack('>I', zlib.crc32(tag + data) & 0xFFFFFFFF)

    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 0, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b''))


REWARD_NAME = 'compressibility: -(bytes of the 8-bit PNG, filter 0, zlib level 9) of the 28x28 sample'


def compressibility(x: torch.Tensor) -> torch.Tensor:
    imgs = to_uint8(x)
    return torch.tensor([-float(len(png_bytes(im))) for im in imgs])


def save_grid(x: torch.Tensor, rows: int, cols: int, path: Path, pad: int = 2) -> None:
    """Grid PNG of [rows*cols,1,28,28] images in [-1,1], row-major, 2 px white padding, upscaled 2x."""
    imgs = to_uint8(x)
    h, w = imgs.shape[1:]
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), 255, dtype=np.uint8)
    for i in range(rows):
        for j in range(cols):
            y0, x0 = pad + i * (h + pad), pad + j * (w + pad)
            grid[y0:y0 + h, x0:x0 + w] = imgs[i * cols + j]
    grid = grid.repeat(2, 0).repeat(2, 1)
    path.write_bytes(png_bytes(np.ascontiguousarray(grid)))


# ------------------------------------------------------------------------------ sampling/metrics

def class_batch(per_class: int) -> torch.Tensor:
    return torch.arange(10).repeat_interleave(per_class)


def seeded_noise(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g)


@torch.no_grad()
def guided(fn, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor, scale: float) -> torch.Tensor:
    """D = D_u + w (D_c - D_u); w = 1 asks the model once (conditional only)."""
    if scale == 1.0:
        return fn(x, t, y).float()
    out = fn(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, torch.full_like(y, NULL_CLASS)])).float()
    c, u = out.chunk(2)
    return u + scale * (c - u)


@torch.no_grad()
def sample_flow(model: nn.Module, y: torch.Tensor, noise: torch.Tensor, scale: float, steps: int = 30,
                batch: int = 250) -> torch.Tensor:
    """Euler on the rectified flow x_t = (1-t) x0 + t eps from t=1 to 0, uniform t grid (shift 1)."""
    outs = []
    sig = torch.linspace(1.0, 0.0, steps + 1)
    for i in range(0, len(y), batch):
        x, yy = noise[i:i + batch].clone(), y[i:i + batch]
        for k in range(steps):
            t = torch.full((len(yy),), float(sig[k]) * 1000.0)
            governor_tick()
            with autocast():
                v = guided(model, x, t, yy, scale)
            x = x + (sig[k + 1] - sig[k]) * v
        outs.append(x)
    return torch.cat(outs)


def vp_alphas_cumprod(beta_start: float = 0.00085, beta_end: float = 0.012, steps: int = 1000) -> torch.Tensor:
    """diffusers `scaled_linear`: betas = linspace(sqrt(b0), sqrt(b1), T)^2."""
    betas = torch.linspace(beta_start ** 0.5, beta_end ** 0.5, steps, dtype=torch.float64) ** 2
    return torch.cumprod(1 - betas, 0)


@torch.no_grad()
def sample_vp(model: nn.Module, y: torch.Tensor, noise: torch.Tensor, scale: float, steps: int = 30,
              batch: int = 250) -> torch.Tensor:
    """Deterministic DDIM (eta 0) written as Euler in sigma = sqrt((1-abar)/abar), timesteps
    linspace(999, 0, steps) rounded ("trailing"-like, starts at the last train step)."""
    abar = vp_alphas_cumprod()
    ts = torch.linspace(999, 0, steps).round().long()
    sigmas = torch.cat([((1 - abar[ts]) / abar[ts]).sqrt(), torch.zeros(1, dtype=torch.float64)]).float()
    outs = []
    for i in range(0, len(y), batch):
        yy = y[i:i + batch]
        x = noise[i:i + batch] * sigmas[0]
        for k in range(steps):
            s, s_next = sigmas[k], sigmas[k + 1]
            inp = x / (1 + s ** 2).sqrt()
            t = torch.full((len(yy),), float(ts[k]))
            governor_tick()
            with autocast():
                eps = guided(model, inp, t, yy, scale)
            x = x + (s_next - s) * eps
        outs.append(x)
    return torch.cat(outs)


def test_reference(ev: Evaluator, smoke: bool) -> tuple[torch.Tensor, torch.Tensor]:
    xt, _ = load_fashion('test', limit=300 if smoke else None)
    _, f = evaluator_outputs(ev, xt)
    return feature_stats(f)


METRIC_NOISE_SEED = 1234


def measure_generator(sampler, model: nn.Module, ev: Evaluator, smoke: bool, scales=CFG_SCALES,
                      steps: int = 30, on_samples=None) -> list[dict]:
    """Accuracy and Frechet distance of 100 samples per class (noise seed 1234) at each CFG scale.
    on_samples(scale, x, y) sees every batch of samples (the RL script reuses them for the reward)."""
    per_class = 2 if smoke else 100
    steps = 2 if smoke else steps
    mu_t, s_t = test_reference(ev, smoke)
    y = class_batch(per_class)
    noise = seeded_noise(len(y), METRIC_NOISE_SEED)
    rows = []
    for w in scales:
        t0 = time.time()
        x = sampler(model, y, noise, w, steps)
        if on_samples is not None:
            on_samples(w, x, y)
        logits, feats = evaluator_outputs(ev, x)
        acc = float((logits.argmax(1) == y).float().mean())
        mu, s = feature_stats(feats)
        fd = frechet_distance(mu, s, mu_t, s_t)
        rows.append({'cfgScale': w, 'accuracy': round(acc, 4), 'frechetDistance': round(fd, 3)})
        log(f'metrics cfg={w}: accuracy={acc:.4f} fd={fd:.3f} ({time.time() - t0:.0f}s)')
    return rows


def grid_for(sampler, model: nn.Module, path: Path, smoke: bool, scale: float = 3.0) -> None:
    y = class_batch(8)
    noise = seeded_noise(len(y), 4321)
    x = sampler(model, y, noise, scale, 2 if smoke else 30)
    save_grid(x, 10, 8, path)


# ------------------------------------------------------------------------------------ ONNX/cards

def generator_io() -> tuple[list[dict], list[dict]]:
    inputs = [
        {'name': 'sample', 'role': 'sample', 'dtype': 'float32', 'shape': ['batch', 1, 28, 28]},
        {'name': 'timestep', 'role': 'timestep', 'dtype': 'float32', 'shape': ['batch']},
        {'name': 'class_labels', 'role': 'class', 'dtype': 'int64', 'shape': ['batch']},
    ]
    outputs = [{'name': 'out_sample', 'role': 'prediction', 'dtype': 'float32', 'shape': ['batch', 1, 28, 28]}]
    return inputs, outputs


def export_generator(model: nn.Module, path: Path) -> None:
    model = model.eval().float()
    x = torch.randn(2, 1, 28, 28)
    t = torch.tensor([500.0, 10.0])
    y = torch.tensor([3, NULL_CLASS])
    torch.onnx.export(model, (x, t, y), str(path), opset_version=ONNX_OPSET,
                      input_names=['sample', 'timestep', 'class_labels'], output_names=['out_sample'],
                      dynamic_axes={'sample': {0: 'batch'}, 'timestep': {0: 'batch'},
                                    'class_labels': {0: 'batch'}, 'out_sample': {0: 'batch'}},
                      do_constant_folding=True)
    check_onnx(path)


def check_onnx(path: Path) -> None:
    import onnx
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    log(f'exported {path.name}: {path.stat().st_size / 1e6:.2f} MB, opset {m.opset_import[0].version}')


CARD_SCHEMA = REPO_ROOT / 'packages' / 'onnx' / 'model-card.schema.json'


def write_card(path: Path, card: dict) -> None:
    """Writes a model card after validating it against the one card schema (@guidekit/onnx's
    model-card.schema.json, generated from its zod schema): a card the runtime would refuse is never written."""
    import jsonschema
    jsonschema.Draft202012Validator(json.loads(CARD_SCHEMA.read_text())).validate(card)
    path.write_text(json.dumps(card, indent=2) + '\n')
    log(f'wrote {path}')


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def base_card(name: str, kind: str, description: str) -> dict:
    return {'name': name, 'cardVersion': 2, 'kind': kind, 'description': description}


def image_block() -> dict:
    return {'channels': 1, 'height': 28, 'width': 28, 'range': [-1, 1]}
