"""The three networks of fashion-sd, each a miniature of its Stable Diffusion 1.5 counterpart:

- ``AutoencoderKL``: diffusers' AutoencoderKL topology (ResnetBlock2D down/up blocks, a mid block with one
  single-head attention, quant/post-quant 1x1 convs, a diagonal Gaussian posterior), 1x28x28 <-> 4x7x7.
- ``ClipTextModel``: CLIPTextModel (pre-LN causal transformer, quick-GELU MLP, final LayerNorm; pooler =
  the state at the first ``<|endoftext|>``, found with argmax over the ids since it has the largest id).
- ``UNet2DCondition``: UNet2DConditionModel (sinusoidal timestep embedding with cos first, ResnetBlock2D +
  transformer block with self-attention, cross-attention to the text states and a GEGLU feed-forward).

Attention is written by hand (softmax(q k^T * scale) v) so the exported graphs have the plain
MatMul -> Mul -> Softmax -> MatMul pattern. Norms compute in float32 (torch 1.13's CPU autocast would
otherwise hand them bf16 activations next to float32 weights); in the float32 ONNX export that is a no-op.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from train_unet import Norm32


class LayerNorm32(nn.LayerNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(x.float(), self.normalized_shape, self.weight, self.bias, self.eps)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-head softmax(q k^T / sqrt(d) + mask) v over [B, N, C] / [B, M, C] tensors."""
    b, n, c = q.shape
    d = c // heads
    q = q.reshape(b, n, heads, d).transpose(1, 2)
    k = k.reshape(b, -1, heads, d).transpose(1, 2)
    v = v.reshape(b, -1, heads, d).transpose(1, 2)
    logits = q @ k.transpose(-1, -2) * d ** -0.5
    if mask is not None:
        logits = logits + mask
    return (torch.softmax(logits, dim=-1) @ v).transpose(1, 2).reshape(b, n, c)


# --------------------------------------------------------------------------------------------- VAE

class ResnetBlock(nn.Module):
    """diffusers ResnetBlock2D: norm, SiLU, conv, (+ time embedding), norm, SiLU, conv, + shortcut."""

    def __init__(self, cin: int, cout: int, groups: int, temb: int | None = None) -> None:
        super().__init__()
        self.norm1, self.conv1 = Norm32(groups, cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout) if temb else None
        self.norm2, self.conv2 = Norm32(groups, cout), nn.Conv2d(cout, cout, 3, padding=1)
        self.shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        if self.time_emb_proj is not None:
            h = h + self.time_emb_proj(F.silu(emb))[:, :, None, None]
        return self.shortcut(x) + self.conv2(F.silu(self.norm2(h)))


class SpatialSelfAttention(nn.Module):
    """The VAE mid block's attention: one head over all positions, residual."""

    def __init__(self, ch: int, groups: int) -> None:
        super().__init__()
        self.group_norm = Norm32(groups, ch)
        self.to_q, self.to_k, self.to_v, self.to_out = (nn.Linear(ch, ch) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        t = self.group_norm(x).flatten(2).transpose(1, 2)
        out = self.to_out(attention(self.to_q(t), self.to_k(t), self.to_v(t), 1))
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class Downsample(nn.Module):
    """A 3x3 conv with stride 2, padded by 1 on every side. (diffusers' Downsample2D in the VAE encoder
    pads only right and bottom; torch 1.13 exports that F.pad with computed pads, which loses the static
    shapes of everything after it in the ONNX graph.)"""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour upsampling to `size` (x2 when None), then a 3x3 conv (diffusers Upsample2D)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor, size: torch.Size | None = None) -> torch.Tensor:
        x = F.interpolate(x, size=size, mode='nearest') if size is not None else F.interpolate(x, scale_factor=2.0, mode='nearest')
        return self.conv(x)


class AutoencoderKL(nn.Module):
    """encode(x) -> (mean, logvar) of the 4-channel posterior; decode(z) -> image (unbounded, ~[-1, 1])."""

    def __init__(self, channels: tuple[int, ...] = (32, 32, 64), groups: int = 8, latent: int = 4, layers: int = 1) -> None:
        super().__init__()
        self.channels, self.groups, self.latent, self.layers = list(channels), groups, latent, layers
        c_last = channels[-1]
        self.enc_conv_in = nn.Conv2d(1, channels[0], 3, padding=1)
        self.enc_down = nn.ModuleList()
        ch = channels[0]
        for i, cout in enumerate(channels):
            for _ in range(layers):
                self.enc_down.append(ResnetBlock(ch, cout, groups))
                ch = cout
            if i < len(channels) - 1:
                self.enc_down.append(Downsample(ch))
        self.enc_mid = nn.ModuleList([ResnetBlock(c_last, c_last, groups), SpatialSelfAttention(c_last, groups),
                                      ResnetBlock(c_last, c_last, groups)])
        self.enc_norm_out, self.enc_conv_out = Norm32(groups, c_last), nn.Conv2d(c_last, 2 * latent, 3, padding=1)
        self.quant_conv = nn.Conv2d(2 * latent, 2 * latent, 1)
        # Log-variance starts at -8 (posterior std ~0.02): with SD's tiny KL weight the posterior ends up
        # near-deterministic anyway, and starting there avoids blurring reconstructions while it shrinks
        # (A/B at 19.2k training images: test round-trip accuracy 0.777 vs 0.756 from a zero bias).
        nn.init.constant_(self.quant_conv.bias[latent:], -8.0)
        self.post_quant_conv = nn.Conv2d(latent, latent, 1)
        self.dec_conv_in = nn.Conv2d(latent, c_last, 3, padding=1)
        self.dec_mid = nn.ModuleList([ResnetBlock(c_last, c_last, groups), SpatialSelfAttention(c_last, groups),
                                      ResnetBlock(c_last, c_last, groups)])
        self.dec_up = nn.ModuleList()
        ch = c_last
        for i, cout in enumerate(reversed(channels)):
            for _ in range(layers + 1):
                self.dec_up.append(ResnetBlock(ch, cout, groups))
                ch = cout
            if i < len(channels) - 1:
                self.dec_up.append(Upsample(ch))
        self.dec_norm_out, self.dec_conv_out = Norm32(groups, ch), nn.Conv2d(ch, 1, 3, padding=1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.enc_conv_in(x)
        for m in self.enc_down:
            h = m(h)
        for m in self.enc_mid:
            h = m(h)
        moments = self.quant_conv(self.enc_conv_out(F.silu(self.enc_norm_out(h)))).float()
        # constant slices, not chunk(): torch exports chunk with computed sizes and the shapes get lost
        return moments[:, :self.latent], moments[:, self.latent:].clamp(-30.0, 20.0)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.dec_conv_in(self.post_quant_conv(z))
        for m in self.dec_mid:
            h = m(h)
        for m in self.dec_up:
            h = m(h)
        return self.dec_conv_out(F.silu(self.dec_norm_out(h)))


class VaeEncoderExport(nn.Module):
    """The convert script's vae_encoder: ``encode(sample).latent_dist.sample()`` (mean + std * noise,
    unscaled: the pipeline multiplies by scaling_factor)."""

    def __init__(self, vae: AutoencoderKL) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, sample: torch.Tensor) -> torch.Tensor:
        mean, logvar = self.vae.encode(sample)
        std = torch.exp(0.5 * logvar)
        return mean + std * torch.randn_like(std)


class VaeDecoderExport(nn.Module):
    def __init__(self, vae: AutoencoderKL) -> None:
        super().__init__()
        self.vae = vae

    def forward(self, latent_sample: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latent_sample)


# ------------------------------------------------------------------------------------ text encoder

class ClipLayer(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.layer_norm1, self.layer_norm2 = LayerNorm32(width), LayerNorm32(width)
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(width, width) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(width, 4 * width), nn.Linear(4 * width, width)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        a = self.layer_norm1(h)
        h = h + self.out_proj(attention(self.q_proj(a), self.k_proj(a), self.v_proj(a), self.heads, mask))
        m = self.fc1(self.layer_norm2(h))
        return h + self.fc2(m * torch.sigmoid(1.702 * m))   # CLIP's quick_gelu


class ClipTextModel(nn.Module):
    """input_ids [B, S] -> (last_hidden_state [B, S, width], pooler_output [B, width])."""

    def __init__(self, vocab_size: int, width: int = 128, layers: int = 3, heads: int = 4, positions: int = 77) -> None:
        super().__init__()
        self.width, self.depth, self.heads = width, layers, heads
        self.token_embedding = nn.Embedding(vocab_size, width)
        self.position_embedding = nn.Embedding(positions, width)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.position_embedding.weight, std=0.01)
        self.layers = nn.ModuleList([ClipLayer(width, heads) for _ in range(layers)])
        self.final_layer_norm = LayerNorm32(width)

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        ids = input_ids.to(torch.int64)
        seq = ids.shape[1]
        h = self.token_embedding(ids) + self.position_embedding(torch.arange(seq, dtype=torch.int64)[None])
        mask = torch.triu(torch.full((seq, seq), float('-inf')), diagonal=1)
        for layer in self.layers:
            h = layer(h, mask)
        last = self.final_layer_norm(h)
        pooled = last[torch.arange(last.shape[0]), ids.argmax(dim=-1)]
        return last, pooled


# ------------------------------------------------------------------------------------------- UNet

def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """diffusers get_timestep_embedding with flip_sin_to_cos=True, downscale_freq_shift=0: [cos, sin]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TransformerBlock(nn.Module):
    """Transformer2DModel with one BasicTransformerBlock: GroupNorm, linear proj_in, self-attention,
    cross-attention to the text states, GEGLU feed-forward (x4), proj_out (zero-initialised), residual."""

    def __init__(self, ch: int, context: int, head_dim: int, groups: int) -> None:
        super().__init__()
        self.heads = ch // head_dim
        self.norm, self.proj_in, self.proj_out = Norm32(groups, ch), nn.Linear(ch, ch), nn.Linear(ch, ch)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)
        self.norm1, self.norm2, self.norm3 = LayerNorm32(ch), LayerNorm32(ch), LayerNorm32(ch)
        self.attn1 = nn.ModuleList([nn.Linear(ch, ch, bias=False) for _ in range(3)] + [nn.Linear(ch, ch)])
        self.attn2 = nn.ModuleList([nn.Linear(ch, ch, bias=False), nn.Linear(context, ch, bias=False),
                                    nn.Linear(context, ch, bias=False), nn.Linear(ch, ch)])
        self.ff_in, self.ff_out = nn.Linear(ch, 8 * ch), nn.Linear(4 * ch, ch)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        t = self.proj_in(self.norm(x).flatten(2).transpose(1, 2))
        a = self.norm1(t)
        q, k, v, o = self.attn1
        t = t + o(attention(q(a), k(a), v(a), self.heads))
        a = self.norm2(t)
        q, k, v, o = self.attn2
        t = t + o(attention(q(a), k(context), v(context), self.heads))
        u, gate = self.ff_in(self.norm3(t)).chunk(2, dim=-1)
        t = t + self.ff_out(u * F.gelu(gate))
        return x + self.proj_out(t).transpose(1, 2).reshape(b, c, hh, ww)


class UNet2DCondition(nn.Module):
    """forward(sample [B,4,h,w], timestep [B] (0..999), encoder_hidden_states [B,77,context]) -> epsilon.

    Two levels (h x w, then stride-2 down), one ResnetBlock + TransformerBlock per level on the way
    down, a ResnetBlock/Transformer/ResnetBlock mid block, two of each per level on the way up with skip
    connections (diffusers' layers_per_block = 1)."""

    def __init__(self, channels: tuple[int, ...] = (64, 128), context: int = 128, head_dim: int = 32, groups: int = 8) -> None:
        super().__init__()
        self.channels, self.context, self.head_dim, self.groups = list(channels), context, head_dim, groups
        c0 = channels[0]
        temb = 4 * c0
        self.time_embedding = nn.Sequential(nn.Linear(c0, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = nn.Conv2d(4, c0, 3, padding=1)
        self.down = nn.ModuleList()
        skips, ch = [c0], c0
        for i, cout in enumerate(channels):
            self.down.append(nn.ModuleList([ResnetBlock(ch, cout, groups, temb), TransformerBlock(cout, context, head_dim, groups)]))
            ch = cout
            skips.append(ch)
            if i < len(channels) - 1:
                self.down.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        self.mid = nn.ModuleList([ResnetBlock(ch, ch, groups, temb), TransformerBlock(ch, context, head_dim, groups),
                                  ResnetBlock(ch, ch, groups, temb)])
        self.up = nn.ModuleList()
        for i, cout in reversed(list(enumerate(channels))):
            for _ in range(2):
                self.up.append(nn.ModuleList([ResnetBlock(ch + skips.pop(), cout, groups, temb),
                                              TransformerBlock(cout, context, head_dim, groups)]))
                ch = cout
            if i > 0:
                self.up.append(Upsample(ch))
        self.norm_out, self.conv_out = Norm32(groups, ch), nn.Conv2d(ch, 4, 3, padding=1)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor) -> torch.Tensor:
        emb = self.time_embedding(timestep_embedding(timestep, self.channels[0]))
        ctx = encoder_hidden_states
        h = self.conv_in(sample)
        hs = [h]
        for m in self.down:
            h = m[1](m[0](h, emb), ctx) if isinstance(m, nn.ModuleList) else m(h)
            hs.append(h)
        h = self.mid[2](self.mid[1](self.mid[0](h, emb), ctx), emb)
        for m in self.up:
            if isinstance(m, Upsample):
                h = m(h, hs[-1].shape[-2:])
            else:
                h = m[1](m[0](torch.cat([h, hs.pop()], dim=1), emb), ctx)
        return self.conv_out(F.silu(self.norm_out(h)))
