"""fashion-dit: class-conditional DiT trained with rectified-flow matching (velocity prediction, as SD3).

    /usr/bin/python3 tooling/train/train_dit.py             # ~40 min train + ~8 min metrics on 2 cores
    /usr/bin/python3 tooling/train/train_dit.py --smoke     # < 60 s, writes into a temp dir

x_t = (1 - t) x0 + t noise, target v = noise - x0, t ~ logit-normal(0, 1); the ONNX input `timestep`
is t * 1000. Class 10 is the null class (labels dropped with probability 0.1) for classifier-free
guidance. Attention is written by hand, softmax(q @ k^T * scale) @ v, so the exported graph has the
plain MatMul -> Mul -> Softmax -> MatMul pattern that DraftAttention rewrites.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import common as C

# The shipped recipe (see the ablation table in packages/models-fashion/README.md).
RECIPE = {'images': 640_000, 'batch': 64, 'lr': 6e-4, 'warmup': 200, 'beta2': 0.999, 'ema': '0.9995,0.999', 'maxMinutes': 150.0}
NAME = 'fashion-dit'


def sincos_2d(dim: int, h: int, w: int) -> torch.Tensor:
    """Fixed 2D sin-cos position embedding [h*w, dim], tokens in row-major (y, x) order (as DiT/MAE)."""
    def one_d(d: int, pos: np.ndarray) -> np.ndarray:
        omega = 1.0 / 10000 ** (np.arange(d // 2, dtype=np.float64) / (d / 2))
        out = np.einsum('m,d->md', pos.reshape(-1), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)
    gy, gx = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64), indexing='ij')
    emb = np.concatenate([one_d(dim // 2, gy), one_d(dim // 2, gx)], axis=1)
    return torch.from_numpy(emb).float()


class TimestepEmbedder(nn.Module):
    def __init__(self, width: int, freq_dim: int = 256) -> None:
        super().__init__()
        half = freq_dim // 2
        self.register_buffer('freqs', torch.exp(-math.log(10000) * torch.arange(half).float() / half), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(freq_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        args = t.float()[:, None] * self.freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class Attention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, width // heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]                                   # [B, heads, N, headDim]
        attn = torch.softmax(q @ k.transpose(-1, -2) * self.scale, dim=-1)  # MatMul -> Mul -> Softmax
        out = (attn @ v).transpose(1, 2).reshape(b, n, c)                   # -> MatMul
        return self.proj(out)


class PlainLayerNorm(nn.Module):
    """LayerNorm without learned affine. torch 1.13's opset-17 export of nn.LayerNorm(elementwise_affine=False)
    emits a LayerNormalization node with an empty scale input (invalid ONNX), so pass constant ones/zeros."""

    def __init__(self, width: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.width, self.eps = width, eps
        self.register_buffer('one', torch.ones(width), persistent=False)
        self.register_buffer('zero', torch.zeros(width), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x, (self.width,), self.one, self.zero, self.eps)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None]) + shift[:, None]


class Block(nn.Module):
    def __init__(self, width: int, heads: int, mlp_ratio: int = 4) -> None:
        super().__init__()
        self.norm1 = PlainLayerNorm(width)
        self.attn = Attention(width, heads)
        self.norm2 = PlainLayerNorm(width)
        self.mlp = nn.Sequential(nn.Linear(width, width * mlp_ratio), nn.GELU(approximate='tanh'),
                                 nn.Linear(width * mlp_ratio, width))
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        nn.init.zeros_(self.ada[1].weight)   # adaLN-Zero: every block starts as the identity
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        s1, sc1, g1, s2, sc2, g2 = self.ada(c).chunk(6, dim=-1)
        x = x + g1[:, None] * self.attn(modulate(self.norm1(x), s1, sc1))
        return x + g2[:, None] * self.mlp(modulate(self.norm2(x), s2, sc2))


class DiT(nn.Module):
    """forward(sample [B,1,28,28], timestep [B] = t*1000, class_labels [B] int64) -> velocity [B,1,28,28]."""

    def __init__(self, patch: int = 4, width: int = 192, depth: int = 6, heads: int = 6, image: int = 28) -> None:
        super().__init__()
        self.patch, self.width, self.depth, self.heads = patch, width, depth, heads
        self.grid = image // patch
        self.embed = nn.Conv2d(1, width, patch, stride=patch)
        self.register_buffer('pos', sincos_2d(width, self.grid, self.grid)[None], persistent=False)
        self.t_embed = TimestepEmbedder(width)
        self.y_embed = nn.Embedding(11, width)   # 0..9 classes, 10 = null
        nn.init.normal_(self.y_embed.weight, std=0.02)
        self.blocks = nn.ModuleList([Block(width, heads) for _ in range(depth)])
        self.norm = PlainLayerNorm(width)
        self.final_ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))
        self.out = nn.Linear(width, patch * patch)
        for m in (self.final_ada[1], self.out):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, class_labels: torch.Tensor) -> torch.Tensor:
        b = sample.shape[0]
        x = self.embed(sample).flatten(2).transpose(1, 2) + self.pos           # [B, 49, width]
        c = self.t_embed(timestep) + self.y_embed(class_labels)
        for blk in self.blocks:
            x = blk(x, c)
        shift, scale = self.final_ada(c).chunk(2, dim=-1)
        x = self.out(modulate(self.norm(x), shift, scale))                     # [B, 49, p*p]
        g, p = self.grid, self.patch
        x = x.reshape(b, g, g, p, p).permute(0, 1, 3, 2, 4).reshape(b, 1, g * p, g * p)
        return x


def flow_loss(model: nn.Module, x0: torch.Tensor, y: torch.Tensor, g: torch.Generator,
              label_dropout: float = 0.1, weights: torch.Tensor | None = None) -> torch.Tensor:
    n = len(x0)
    t = torch.sigmoid(torch.randn(n, generator=g))                     # logit-normal(0, 1)
    noise = torch.randn(x0.shape, generator=g)
    drop = torch.rand(n, generator=g) < label_dropout
    y = torch.where(drop, torch.full_like(y, C.NULL_CLASS), y)
    tt = t.view(n, 1, 1, 1)
    xt = (1 - tt) * x0 + tt * noise
    with C.autocast():
        v = model(xt, t * 1000.0, y)
    per = ((v.float() - (noise - x0)) ** 2).mean(dim=(1, 2, 3))
    return per.mean() if weights is None else (per * weights).sum() / weights.sum()


def dit_card(name: str, model: DiT, description: str) -> dict:
    card = C.base_card(name, 'generator', description)
    card['architecture'] = {
        'type': 'dit', 'parameters': C.count_params(model), 'patchSize': model.patch, 'width': model.width,
        'depth': model.depth, 'heads': model.heads, 'headDim': model.width // model.heads,
        'tokenGrid': {'frames': 1, 'height': model.grid, 'width': model.grid}, 'prefixTokens': 0,
        'tokenOrder': 'row-major (height, width)', 'mlpRatio': 4,
        'conditioning': 'adaLN-Zero on timestep embedding + class embedding (11 entries, 10 = null)',
        'positionEmbedding': 'fixed 2D sin-cos',
        'attention': 'softmax(q @ k^T * headDim^-0.5) @ v per block, [batch, heads, tokens, headDim]: '
                     'MatMul -> Mul -> Softmax -> MatMul in the ONNX graph',
    }
    card['parameterization'] = 'flow-velocity'
    card['schedule'] = {'family': 'flow', 'trainSteps': 1000, 'shift': 1.0, 'timestepScale': 1000,
                        'formula': 'x_t = (1 - t) x0 + t noise, v = noise - x0, timestep input = t * 1000'}
    C.generator_interface(card, name)
    card['defaults'] = {'steps': 30, 'guidance': 'cfg:scale=3', 'sampler': 'euler'}
    return card


def main() -> None:
    p = C.base_args(__doc__)
    C.generator_args(p, images=RECIPE['images'], batch=RECIPE['batch'], lr=RECIPE['lr'], warmup=RECIPE['warmup'],
                     beta2=RECIPE['beta2'], ema=RECIPE['ema'], max_minutes=RECIPE['maxMinutes'])
    p.add_argument('--scales', type=str, default='1,1.5,2,3,5')
    args = p.parse_args()
    out, run = C.setup(args, NAME)

    model = DiT()
    C.log(f'DiT parameters: {C.count_params(model)}')
    facts = C.train_generator(model, args, run / 'model.pt', flow_loss)

    C.export_generator(model, out / f'{NAME}.onnx')
    ev = C.load_evaluator(args.smoke)
    C.grid_for(C.sample_flow, model, out / f'{NAME}.grid.png', args.smoke)
    scales = [float(s) for s in args.scales.split(',')]
    rows = C.measure_generator(C.sample_flow, model, ev, args.smoke, scales)

    card = dit_card(NAME, model, 'Class-conditional DiT (patch 4, width 192, depth 6, 6 heads of 32) on '
                    'Fashion-MNIST, rectified-flow matching with velocity prediction (as SD3), classifier-free '
                    'guidance through null class 10.')
    card['training'] = C.training_block(args, facts, 'train_dit.py',
                                        'flow matching, t ~ logit-normal(0,1), label dropout 0.1')
    card['metrics'] = C.generator_metrics(rows, args.smoke, 'euler (flow), uniform t from 1 to 0')
    C.write_card(out / f'{NAME}.card.json', card)
    print(f'FINAL {NAME}: {C.scale_summary(rows)} wall={facts["wallSeconds"]}s images={facts["images"]} out={out}', flush=True)


if __name__ == '__main__':
    main()
