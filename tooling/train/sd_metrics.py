"""Quick metrics of fashion-sd in Python: latent sampling with classifier-free guidance on text
embeddings, VAE decoding, scoring with fashion-eval.

The sampler mirrors what guidekit does with the exported folder and its scheduler config: timesteps
with SD1.5's "leading" spacing and steps_offset 1 (arange(N) * (1000 // N) + 1, largest first),
sigma_t = sqrt((1 - abar_t) / abar_t), x_T = sqrt(1 + sigma_0^2) * noise, then deterministic DDIM
(eta 0), i.e. Euler in sigma on the epsilon prediction, down to sigma = 0; the UNet sees
x / sqrt(1 + sigma^2) and timestep t. CFG: eps = eps_neg + w (eps_pos - eps_neg), with the negative
branch the text encoding of the negative prompt ("" unless given), as in SD.
"""
from __future__ import annotations

import math
import time

import torch
import torch.nn as nn

import common as C

STEPS = 30


def plan(steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(timesteps [N] largest first, sigmas [N + 1] ending at 0)."""
    abar = C.vp_alphas_cumprod()
    ts = (torch.arange(steps) * (1000 // steps) + 1).flip(0)
    sig = ((1 - abar[ts]) / abar[ts]).sqrt()
    return ts, torch.cat([sig, torch.zeros(1, dtype=torch.float64)]).float()


@torch.no_grad()
def sample_latents(unet: nn.Module, pos: torch.Tensor, neg: torch.Tensor, noise: torch.Tensor, scale: float,
                   steps: int, batch: int = 150) -> torch.Tensor:
    """Latents (scaled space, as the UNet was trained) for text states pos/neg [B, 77, D] per image."""
    ts, sig = plan(steps)
    outs = []
    for i in range(0, len(noise), batch):
        p, n = pos[i:i + batch], neg[i:i + batch]
        x = noise[i:i + batch] * (1 + sig[0] ** 2).sqrt()
        b = len(x)
        for k in range(steps):
            inp = x / (1 + sig[k] ** 2).sqrt()
            t = torch.full((2 * b,), float(ts[k]))
            C.governor_tick()
            with C.autocast():
                eps = unet(torch.cat([inp, inp]), t, torch.cat([p, n])).float()
            e_pos, e_neg = eps.chunk(2)
            x = x + (sig[k + 1] - sig[k]) * (e_neg + scale * (e_pos - e_neg))
        outs.append(x)
    return torch.cat(outs)


@torch.no_grad()
def decode(vae: nn.Module, z: torch.Tensor, scaling_factor: float, batch: int = 100) -> torch.Tensor:
    return torch.cat([vae.decode(z[i:i + batch] / scaling_factor).float() for i in range(0, len(z), batch)]).clamp(-1, 1)


def wilson(k: int, n: int) -> list[float]:
    """95% Wilson score interval of a proportion k / n."""
    z = 1.959964
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(centre - half, 4), round(centre + half, 4)]


class Generator:
    """Prompts -> images through the text encoder, UNet and VAE decoder, with the metric noise seed."""

    def __init__(self, text, bpe, unet, vae, scaling_factor: float, steps: int) -> None:
        self.text, self.bpe, self.unet, self.vae = text, bpe, unet, vae
        self.scaling_factor, self.steps = scaling_factor, steps
        self.cache: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def states(self, prompts: list[str]) -> torch.Tensor:
        missing = [p for p in dict.fromkeys(prompts) if p not in self.cache]
        if missing:
            ids = torch.tensor([self.bpe.encode(p) for p in missing], dtype=torch.int32)
            last, _ = self.text(ids)
            self.cache.update(zip(missing, last.float()))
        return torch.stack([self.cache[p] for p in prompts])

    def images(self, prompts: list[str], scale: float, negative: str = '', seed: int = C.METRIC_NOISE_SEED) -> torch.Tensor:
        noise = torch.randn(len(prompts), 4, 7, 7, generator=torch.Generator().manual_seed(seed))
        z = sample_latents(self.unet, self.states(prompts), self.states([negative] * len(prompts)), noise, scale, self.steps)
        return decode(self.vae, z, self.scaling_factor)


def accuracy_row(ev: nn.Module, x: torch.Tensor, y: torch.Tensor, ref: tuple[torch.Tensor, torch.Tensor]) -> dict:
    logits, feats = C.evaluator_outputs(ev, x, batch=100)   # small batches run faster per image on CPU
    k = int((logits.argmax(1) == y).sum())
    mu, s = C.feature_stats(feats)
    return {'accuracy': round(k / len(y), 4), 'accuracy95': wilson(k, len(y)),
            'frechetDistance': round(C.frechet_distance(mu, s, *ref), 3), 'samples': len(y)}


def vae_reconstruction(vae: nn.Module, ev: nn.Module, x: torch.Tensor, y: torch.Tensor, ref) -> dict:
    """fashion-eval on the test images and on their VAE round trips (posterior mean -> decoder)."""
    with torch.no_grad():
        rec = torch.cat([vae.decode(vae.encode(x[i:i + 100])[0]).float() for i in range(0, len(x), 100)]).clamp(-1, 1)
    original = accuracy_row(ev, x, y, ref)
    row = accuracy_row(ev, rec, y, ref)
    row['originalAccuracy'] = original['accuracy']
    row['meanAbsError'] = round(float((rec - x).abs().mean()), 4)   # in the [-1, 1] pixel range
    return row


def measure(gen: Generator, ev: nn.Module, ref, prompts: list[str], per_class: int, scales: list[float],
            brightness, held_out) -> dict:
    """Accuracy/FD of the class prompts per CFG scale; at the most accurate scale, the brightness with
    negative prompt "" vs "dark" (same noise) and the accuracy of held-out paraphrases."""
    y = C.class_batch(per_class)
    rows, by_scale_images = [], {}
    for w in scales:
        t0 = time.time()
        x = gen.images([prompts[int(c)] for c in y], w)
        by_scale_images[w] = x
        rows.append({'cfgScale': w, **accuracy_row(ev, x, y, ref)})
        C.log(f'metrics cfg={w}: accuracy={rows[-1]["accuracy"]} fd={rows[-1]["frechetDistance"]} ({time.time() - t0:.0f}s)')
    best = max(rows, key=lambda r: (r['accuracy'], -r['frechetDistance']))['cfgScale']
    plain = brightness(by_scale_images[best])
    dark = brightness(gen.images([prompts[int(c)] for c in y], best, negative='dark'))
    d = dark - plain
    half = 1.959964 * float(d.std()) / math.sqrt(len(d))
    negative = {'cfgScale': best, 'prompt': 'the class prompts', 'negativePrompt': 'dark', 'samples': len(y),
                'meanBrightness': round(float(plain.mean()), 4), 'meanBrightnessNegativeDark': round(float(dark.mean()), 4),
                'difference': round(float(d.mean()), 4), 'difference95': [round(float(d.mean()) - half, 4), round(float(d.mean()) + half, 4)],
                'brightness': 'mean pixel intensity in [0, 1]; paired over the same noise'}
    C.log(f'metrics negative "dark" at cfg={best}: brightness {negative["meanBrightness"]} -> '
          f'{negative["meanBrightnessNegativeDark"]} (diff 95% {negative["difference95"]})')
    para_prompts, para_y = held_out(per_class)
    para = {'cfgScale': best, **accuracy_row(ev, gen.images(para_prompts, best), para_y, ref),
            'prompts': 'held-out templates x held-out synonyms, cycled per class'}
    C.log(f'metrics paraphrases at cfg={best}: accuracy={para["accuracy"]}')
    return {'byScale': rows, 'bestScale': best, 'negativePrompt': negative, 'paraphrase': para}
