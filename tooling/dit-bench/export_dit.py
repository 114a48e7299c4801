"""Export a random-weight DiT with the fashion DiT's architecture on a large token grid (for benchmarks).

Architecture as packages/models-fashion: patch 4, width 192, depth 6, 6 heads x 32, AdaLN-Zero blocks,
hand-written attention softmax(q @ k^T * scale) @ v (exports as MatMul -> Mul -> Softmax -> MatMul at
opset 17). The input is a short 1-channel video: sample [B, 1, F, 4*GH, 4*GW] -> F x GH x GW tokens,
frame-major then row-major (the layout @guidekit/draft-attention expects).

Weights are random (seeded). AdaLN-Zero's zero-initialised modulation is replaced by a small random
init, otherwise every block's gates are 0 and attention would not influence the output at all.

Usage: /usr/bin/python3 tooling/dit-bench/export_dit.py --frames 4 --grid 32 --out tooling/dit-bench/out/dit-4x32x32.onnx
The test fixture packages/draft-attention/src/__fixtures__/tiny-dit-2x6x6.onnx (real exporter output for the
matcher's tests) was made with: --frames 2 --grid 6 --width 32 --depth 2 --heads 2
"""
import argparse
import json
import math
import os

import torch
import torch.nn as nn


def timestep_embedding(t, dim):
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t[:, None].float() * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class Attention(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = width // heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x):
        B, L, C = x.shape
        qkv = self.qkv(x).reshape(B, L, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = torch.softmax(q @ k.transpose(-2, -1) * (self.head_dim ** -0.5), dim=-1)
        return self.proj((attn @ v).transpose(1, 2).reshape(B, L, C))


def modulate(x, shift, scale):
    return x * (1 + scale[:, None]) + shift[:, None]


class Block(nn.Module):
    def __init__(self, width, heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=1e-6)
        self.attn = Attention(width, heads)
        self.norm2 = nn.LayerNorm(width, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, 4 * width), nn.GELU(approximate="tanh"), nn.Linear(4 * width, width))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

    def forward(self, x, c):
        s1, sc1, g1, s2, sc2, g2 = self.ada(c).chunk(6, dim=-1)
        x = x + g1[:, None] * self.attn(modulate(self.norm1(x), s1, sc1))
        return x + g2[:, None] * self.mlp(modulate(self.norm2(x), s2, sc2))


class VideoDiT(nn.Module):
    def __init__(self, frames, grid, patch=4, width=192, depth=6, heads=6, classes=10):
        super().__init__()
        self.frames, self.grid, self.patch, self.width = frames, grid, patch, width
        self.embed = nn.Conv2d(1, width, patch, patch)
        self.pos = nn.Parameter(torch.randn(1, frames * grid * grid, width) * 0.02)
        self.t_mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.y_embed = nn.Embedding(classes + 1, width)
        self.blocks = nn.ModuleList([Block(width, heads) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.out = nn.Linear(width, patch * patch)

    def forward(self, sample, timestep, class_labels):
        B = sample.shape[0]
        F, G, P, W = self.frames, self.grid, self.patch, self.width
        image = sample.dim() == 4  # one frame: [B, 1, H, W] like the fashion DiT
        x = self.embed(sample.reshape(B * F, 1, G * P, G * P))  # [B F, W, G, G]
        x = x.flatten(2).transpose(1, 2).reshape(B, F * G * G, W) + self.pos
        c = self.t_mlp(timestep_embedding(timestep, W)) + self.y_embed(class_labels)
        for blk in self.blocks:
            x = blk(x, c)
        shift, scale = self.ada(c).chunk(2, dim=-1)
        x = self.out(modulate(self.norm(x), shift, scale))  # [B, L, P*P]
        x = x.reshape(B, F, G, G, P, P).permute(0, 1, 2, 4, 3, 5).reshape(B, 1, F, G * P, G * P)
        return x.reshape(B, 1, G * P, G * P) if image else x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--grid", type=int, default=32)
    ap.add_argument("--width", type=int, default=192)
    ap.add_argument("--depth", type=int, default=6)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.manual_seed(a.seed)
    model = VideoDiT(a.frames, a.grid, width=a.width, depth=a.depth, heads=a.heads).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
    side = a.grid * 4
    # One frame exports an image model ([B, 1, H, W], usable by the sample CLI); more frames a video model.
    sample = torch.randn(1, 1, side, side) if a.frames == 1 else torch.randn(1, 1, a.frames, side, side)
    t = torch.tensor([500.0])
    y = torch.tensor([3], dtype=torch.int64)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    torch.onnx.export(
        model, (sample, t, y), a.out, opset_version=17,
        input_names=["sample", "timestep", "class_labels"], output_names=["out_sample"],
        dynamic_axes={"sample": {0: "batch"}, "timestep": {0: "batch"}, "class_labels": {0: "batch"}, "out_sample": {0: "batch"}},
    )
    sample_shape = ["batch", 1, side, side] if a.frames == 1 else ["batch", 1, a.frames, side, side]
    # A card in @guidekit/onnx's format (random weights: the samples are noise; for speed measurements).
    card = {
        "name": os.path.basename(a.out).replace(".onnx", ""),
        "kind": "generator",
        "description": "Random-weight DiT with the fashion DiT's architecture on a larger token grid (benchmarks only).",
        "architecture": {"type": "dit", "tokenGrid": {"frames": a.frames, "height": a.grid, "width": a.grid}, "patchSize": 4,
                         "width": a.width, "depth": a.depth, "heads": a.heads, "headDim": a.width // a.heads, "prefixTokens": 0},
        "parameterization": "flow-velocity",
        "schedule": {"family": "flow", "trainSteps": 1000},
        "onnx": {
            "file": os.path.basename(a.out), "opset": 17,
            "inputs": [{"name": "sample", "dtype": "float32", "shape": sample_shape},
                       {"name": "timestep", "dtype": "float32", "shape": ["batch"]},
                       {"name": "class_labels", "dtype": "int64", "shape": ["batch"]}],
            "outputs": [{"name": "out_sample", "dtype": "float32", "shape": sample_shape}],
        },
        "image": {"channels": 1, "height": side, "width": side, "range": [-1, 1]},
        "classes": ["class%d" % i for i in range(10)],
        "nullClass": 10,
        "weights": "random (seed %d)" % a.seed,
    }
    with open(a.out.replace(".onnx", ".card.json"), "w") as f:
        json.dump(card, f, indent=2)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
