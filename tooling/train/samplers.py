"""The samplers of the metrics and grids: classifier-free guidance through the null class, Euler on
the rectified flow and deterministic DDIM on the SD1.5 VP schedule."""
from __future__ import annotations

import torch
import torch.nn as nn

from fashion_data import NULL_CLASS
from run_setup import autocast, governor_tick


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
