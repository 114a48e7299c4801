"""fashion-unet: class-conditional UNet, epsilon prediction on SD1.5's VP `scaled_linear` schedule.

    /usr/bin/python3 tooling/train/train_unet.py            # ~30 min train + ~8 min metrics on 2 cores
    /usr/bin/python3 tooling/train/train_unet.py --smoke    # < 60 s, writes into a temp dir

betas = linspace(sqrt(0.00085), sqrt(0.012), 1000)^2, x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps,
t uniform in 0..999; inputs named as diffusers' ONNX UNet export (`sample`, `timestep`) plus
`class_labels` (10 = null class, labels dropped with probability 0.1).
"""
from __future__ import annotations

import argparse

import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

import common as C

RECIPE = {'images': 480_000, 'batch': 64, 'lr': 4e-4, 'warmup': 200, 'beta2': 0.999, 'ema': '0.9995,0.999', 'maxMinutes': 110.0}
NAME = 'fashion-unet'


class Norm32(nn.GroupNorm):
    """GroupNorm computed in float32: torch 1.13's CPU autocast does not cast group_norm, so a bf16
    activation would meet float32 weights. (A no-op in the float32 ONNX export.)"""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x.float(), self.num_groups, self.weight, self.bias, self.eps)


def norm(ch: int) -> nn.GroupNorm:
    return Norm32(8, ch)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb: int) -> None:
        super().__init__()
        self.n1, self.c1 = norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.e = nn.Linear(emb, cout)
        self.n2, self.c2 = norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.c2.weight)
        nn.init.zeros_(self.c2.bias)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.c1(F.silu(self.n1(x))) + self.e(emb)[:, :, None, None]
        h = self.c2(F.silu(self.n2(h)))
        return self.skip(x) + h


class SelfAttention(nn.Module):
    def __init__(self, ch: int, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.n = norm(ch)
        self.qkv = nn.Conv2d(ch, 3 * ch, 1)
        self.proj = nn.Conv2d(ch, ch, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        d = c // self.heads
        qkv = self.qkv(self.n(x)).reshape(b, 3, self.heads, d, h * w)
        q, k, v = qkv[:, 0], qkv[:, 1], qkv[:, 2]                             # [B, heads, d, N]
        attn = torch.softmax(q.transpose(-1, -2) @ k * d ** -0.5, dim=-1)    # [B, heads, N, N]
        out = (v @ attn.transpose(-1, -2)).reshape(b, c, h, w)
        return x + self.proj(out)


class UNet(nn.Module):
    """forward(sample [B,1,28,28] (VP-scaled), timestep [B] in 0..999, class_labels [B]) -> epsilon."""

    def __init__(self, channels: tuple[int, ...] = (64, 128, 192), blocks: int = 2) -> None:
        super().__init__()
        self.channels, self.blocks_per_level = channels, blocks
        c0 = channels[0]
        emb = 4 * c0
        half = c0 // 2
        self.register_buffer('freqs', torch.exp(-math.log(10000) * torch.arange(half).float() / half), persistent=False)
        self.t_mlp = nn.Sequential(nn.Linear(c0, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.y_embed = nn.Embedding(11, emb)   # 0..9 classes, 10 = null
        self.conv_in = nn.Conv2d(1, c0, 3, padding=1)
        self.down = nn.ModuleList()
        skips = [c0]
        ch = c0
        for lvl, cout in enumerate(channels):
            for _ in range(blocks):
                self.down.append(ResBlock(ch, cout, emb))
                ch = cout
                skips.append(ch)
            if lvl < len(channels) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        self.mid1, self.mid_attn, self.mid2 = ResBlock(ch, ch, emb), SelfAttention(ch), ResBlock(ch, ch, emb)
        self.up = nn.ModuleList()
        for lvl, cout in reversed(list(enumerate(channels))):
            for _ in range(blocks + 1):
                self.up.append(ResBlock(ch + skips.pop(), cout, emb))
                ch = cout
            if lvl > 0:
                self.up.append(nn.Upsample(scale_factor=2, mode='nearest'))
                self.up.append(nn.Conv2d(ch, ch, 3, padding=1))
        self.out_norm = norm(ch)
        self.conv_out = nn.Conv2d(ch, 1, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, class_labels: torch.Tensor) -> torch.Tensor:
        args = timestep.float()[:, None] * self.freqs[None]
        emb = self.t_mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1)) + self.y_embed(class_labels)
        h = self.conv_in(sample)
        hs = [h]
        for m in self.down:
            h = m(h, emb) if isinstance(m, ResBlock) else m(h)
            hs.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, emb)), emb)
        for m in self.up:
            if isinstance(m, ResBlock):
                h = m(torch.cat([h, hs.pop()], dim=1), emb)
            else:
                h = m(h)
        return self.conv_out(F.silu(self.out_norm(h)))



def epsilon_loss(model: nn.Module, x0: torch.Tensor, yb: torch.Tensor, g: torch.Generator, abar: torch.Tensor) -> torch.Tensor:
    """DDPM epsilon loss on the VP schedule `abar`, uniform t in [0, 1000), 10% label dropout to the null class."""
    t = torch.randint(0, 1000, (len(x0),), generator=g)
    eps = torch.randn(x0.shape, generator=g)
    drop = torch.rand(len(x0), generator=g) < 0.1
    yb = torch.where(drop, torch.full_like(yb, C.NULL_CLASS), yb)
    a = abar[t].view(-1, 1, 1, 1)
    xt = a.sqrt() * x0 + (1 - a).sqrt() * eps
    with C.autocast():
        pred = model(xt, t.float(), yb)
    return F.mse_loss(pred.float(), eps)

def parse_args() -> argparse.Namespace:
    p = C.base_args(__doc__)
    C.generator_args(p, images=RECIPE['images'], batch=RECIPE['batch'], lr=RECIPE['lr'], warmup=RECIPE['warmup'],
                     beta2=RECIPE['beta2'], ema=RECIPE['ema'], max_minutes=RECIPE['maxMinutes'])
    p.add_argument('--channels', type=str, default='32,64,128')
    p.add_argument('--blocks', type=int, default=1)
    p.add_argument('--scales', type=str, default='1,2,3,5')
    return p.parse_args()


def main() -> None:
    args = parse_args()
    out, run = C.setup(args, NAME)
    channels = tuple(int(c) for c in args.channels.split(','))

    model = UNet(channels, args.blocks)
    C.log(f'UNet parameters: {C.count_params(model)}')
    abar = C.vp_alphas_cumprod().float()
    facts = C.train_generator(model, args, run / 'model.pt', lambda m, x0, yb, g: epsilon_loss(m, x0, yb, g, abar))

    C.export_generator(model, out / f'{NAME}.onnx')
    ev = C.load_evaluator(args.smoke)
    C.grid_for(C.sample_vp, model, out / f'{NAME}.grid.png', args.smoke)
    scales = [float(s) for s in args.scales.split(',')]
    rows = C.measure_generator(C.sample_vp, model, ev, args.smoke, scales)

    write_card(out, args, model, channels, facts, rows)
    print(f'FINAL {NAME}: {C.scale_summary(rows)} wall={facts["wallSeconds"]}s images={facts["images"]} out={out}', flush=True)


def write_card(out, args, model, channels, facts: dict, rows: list[dict]) -> None:
    """Writes fashion-unet.card.json for a trained model, its training facts and measured rows."""
    card = C.base_card(NAME, 'generator', f'Class-conditional UNet (channels {list(channels)}, {args.blocks} res '
                       'block(s) per level, self-attention at 7x7) on Fashion-MNIST, epsilon prediction on the VP '
                       'scaled_linear schedule of SD1.5, classifier-free guidance through null class 10.')
    card['architecture'] = {'type': 'unet', 'parameters': C.count_params(model), 'channels': list(channels),
                            'resBlocksPerLevel': args.blocks, 'attentionResolutions': [7],
                            'conditioning': 'timestep embedding + class embedding (11 entries, 10 = null) added '
                                            'in every res block'}
    card['parameterization'] = 'epsilon'
    card['schedule'] = {'family': 'vp', 'betaSchedule': 'scaled_linear', 'betaStart': 0.00085, 'betaEnd': 0.012,
                        'trainSteps': 1000, 'predictionType': 'epsilon',
                        'formula': 'betas = linspace(sqrt(betaStart), sqrt(betaEnd), 1000)^2; '
                                   'sample = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps; timestep input = t (0..999)'}
    C.generator_interface(card, NAME)
    card['defaults'] = {'steps': 30, 'guidance': 'cfg:scale=3', 'sampler': 'ddim', 'spacing': 'linspace'}
    card['training'] = C.training_block(args, facts, 'train_unet.py', 'epsilon MSE, t uniform 0..999, label dropout 0.1')
    card['metrics'] = C.generator_metrics(rows, args.smoke, 'ddim (eta 0) = euler in sigma = sqrt((1-abar)/abar), '
                                          'timesteps linspace(999, 0, 30) rounded, x_T = sigma_max * noise')
    C.write_card(out / f'{NAME}.card.json', card)


if __name__ == '__main__':
    main()
