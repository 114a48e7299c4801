"""Fashion-MNIST as the training scripts use it: Debian's dataset-fashion-mnist IDX files (override the
folder with FASHION_MNIST_DIR), images scaled to [-1, 1], the class names, the null class of CFG and
the seeded noise and class batches of the metrics."""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch

DATA_DIR = Path(os.environ.get('FASHION_MNIST_DIR', '/usr/share/datasets/fashion-mnist'))
CLASSES = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot']
NULL_CLASS = 10
DATA_DESCRIPTION = 'Fashion-MNIST train (60k), Debian dataset-fashion-mnist'


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


def class_batch(per_class: int) -> torch.Tensor:
    return torch.arange(10).repeat_interleave(per_class)


def seeded_noise(n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 28, 28, generator=g)
