"""Tiny random-weight stand-ins for the Stable Diffusion 1.5 components and for guidekit's class-conditional
models. Only the *interfaces* (input/output names, dtypes, ranks, dynamic axes) are faithful; every
module is a few KB. Written by hand because Debian's PyTorch ships without transformers/diffusers.
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """diffusers' ``get_timestep_embedding`` (flip_sin_to_cos=True, downscale_freq_shift=0)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class TinyClipTextModel(nn.Module):
    """CLIPTextModel's interface: ``input_ids`` [B, S] -> (last_hidden_state [B, S, D], pooler_output [B, D]).

    One pre-LN transformer layer with CLIP's causal mask; the pooler takes the hidden state at the EOS token,
    found with ``argmax(input_ids)`` exactly like transformers' CLIP (EOS has the largest id).
    """

    def __init__(self, vocab_size: int, dim: int = 32, max_positions: int = 77, heads: int = 2):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab_size, dim)
        self.position_embedding = nn.Embedding(max_positions, dim)
        self.ln1 = nn.LayerNorm(dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.final_layer_norm = nn.LayerNorm(dim)

    def forward(self, input_ids: torch.Tensor):
        ids = input_ids.to(torch.int64)
        seq = ids.shape[1]
        pos = torch.arange(seq, dtype=torch.int64).unsqueeze(0)
        h = self.token_embedding(ids) + self.position_embedding(pos)
        mask = torch.triu(torch.full((seq, seq), float("-inf")), diagonal=1)
        a = self.ln1(h)
        h = h + self.attn(a, a, a, attn_mask=mask, need_weights=False)[0]
        h = h + self.mlp(self.ln2(h))
        last = self.final_layer_norm(h)
        pooled = last[torch.arange(last.shape[0]), ids.argmax(dim=-1)]
        return last, pooled


class TinyUNet2DCondition(nn.Module):
    """UNet2DConditionModel's interface: (sample [B,4,h,w], timestep, encoder_hidden_states [B,S,D]) -> [B,4,h,w].

    ``timestep_mode``: 'batch' (a [B] tensor, as the diffusers script and older optimum export it) or
    'scalar' (a 0-d tensor broadcast over the batch, as the newest optimum exports it).
    """

    def __init__(self, cross_dim: int = 32, channels: int = 16, timestep_mode: str = "batch"):
        super().__init__()
        self.timestep_mode = timestep_mode
        self.channels = channels
        self.time_mlp = nn.Sequential(nn.Linear(channels, channels), nn.SiLU(), nn.Linear(channels, channels))
        self.conv_in = nn.Conv2d(4, channels, 3, padding=1)
        self.norm = nn.GroupNorm(4, channels)
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.to_q = nn.Linear(channels, channels, bias=False)
        self.to_k = nn.Linear(cross_dim, channels, bias=False)
        self.to_v = nn.Linear(cross_dim, channels, bias=False)
        self.to_out = nn.Linear(channels, channels)
        self.conv_out = nn.Conv2d(channels, 4, 3, padding=1)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, encoder_hidden_states: torch.Tensor):
        b, _, h, w = sample.shape
        t = timestep.float()
        if self.timestep_mode == "scalar":
            t = t.reshape(1).expand(b)
        temb = self.time_mlp(timestep_embedding(t, self.channels))
        x = self.conv_in(sample)
        x = x + self.conv(F.silu(self.norm(x))) + temb[:, :, None, None]
        tokens = x.flatten(2).transpose(1, 2)  # [B, hw, C]
        q = self.to_q(tokens)
        k = self.to_k(encoder_hidden_states)
        v = self.to_v(encoder_hidden_states)
        attn = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(self.channels), dim=-1)
        tokens = tokens + self.to_out(attn @ v)
        x = tokens.transpose(1, 2).reshape(b, self.channels, h, w)
        return self.conv_out(F.silu(x))


class TinyVaeDecoder(nn.Module):
    """AutoencoderKL.decode's interface: latent_sample [B,4,h,w] -> sample [B,3,8h,8w] (roughly in [-1, 1])."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.post_quant_conv = nn.Conv2d(4, 4, 1)
        self.conv_in = nn.Conv2d(4, channels, 3, padding=1)
        self.ups = nn.ModuleList([nn.Conv2d(channels, channels, 3, padding=1) for _ in range(3)])
        self.conv_out = nn.Conv2d(channels, 3, 3, padding=1)

    def forward(self, latent_sample: torch.Tensor):
        x = self.conv_in(self.post_quant_conv(latent_sample))
        for conv in self.ups:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
            x = conv(F.silu(x))
        return torch.tanh(self.conv_out(F.silu(x)))


class TinyClassConditional(nn.Module):
    """The shipped fashion models' interface: (sample [B,1,28,28] f32, timestep [B] f32, class_labels [B] i64)
    -> out_sample [B,1,28,28]. A conv net with FiLM-style class and time modulation."""

    def __init__(self, num_classes: int = 11, channels: int = 8):
        super().__init__()
        self.channels = channels
        self.class_embedding = nn.Embedding(num_classes, channels)
        self.time_mlp = nn.Linear(channels, channels)
        self.conv_in = nn.Conv2d(1, channels, 3, padding=1)
        self.conv_out = nn.Conv2d(channels, 1, 3, padding=1)

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, class_labels: torch.Tensor):
        emb = self.class_embedding(class_labels) + self.time_mlp(timestep_embedding(timestep, self.channels))
        x = self.conv_in(sample) * (1 + emb[:, :, None, None])
        return self.conv_out(F.silu(x))
