"""A dependency-free PNG writer (8-bit grayscale), sample grids, and the compressibility reward that
is built on it."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from fashion_data import to_uint8


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
