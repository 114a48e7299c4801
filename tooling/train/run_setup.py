"""Run setup shared by the training scripts: common arguments, output and run folders, seeding,
timestamped log lines, the adaptive torch thread governor and bf16 autocast."""
from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE_MODELS_DIR = REPO_ROOT / 'packages' / 'models-fashion' / 'models'
RUNS_DIR = Path(__file__).resolve().parent / 'runs'


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
    # Everything the run needs at its end (the card is validated with jsonschema) is checked at its start.
    for module, package in (('onnx', 'python3-onnx'), ('jsonschema', 'python3-jsonschema')):
        try:
            __import__(module)
        except ImportError:
            raise SystemExit(f'Python module {module} is missing: apt-get install -y {package}') from None
    torch.set_num_threads(args.threads)
    if not args.smoke and not args.fixed_threads:
        start_governor(args.threads)
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


_GOVERNOR: ThreadGovernor | None = None


def start_governor(max_threads: int) -> None:
    """From now on, governor_tick() switches torch between 1 and `max_threads` threads."""
    global _GOVERNOR
    _GOVERNOR = ThreadGovernor(max_threads)


def governor_tick() -> None:
    """Call once per training or sampling step: lets the governor (if started) adjust the threads."""
    if _GOVERNOR is not None:
        _GOVERNOR.tick()


def autocast():
    """bf16 autocast on CPU (AMX/AVX512-BF16 make it ~2x faster here); weights stay float32."""
    return torch.autocast('cpu', dtype=torch.bfloat16)
