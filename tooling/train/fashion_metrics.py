"""The metrics of the generator cards: the evaluator network (trained, or rebuilt from the shipped
fashion-eval.onnx), its features, Frechet distance (float64, eigendecomposition square root: no scipy
here), and accuracy + Frechet distance of a generator at each CFG scale."""
from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn as nn

from fashion_data import class_batch, load_fashion, seeded_noise
from png_images import save_grid
from run_setup import PACKAGE_MODELS_DIR, log

CFG_SCALES = [1.0, 2.0, 3.0, 5.0]


class Evaluator(nn.Module):
    """Small VGG-style CNN. forward -> (logits [B,10], features [B,feature_dim])."""

    feature_dim = 256

    def __init__(self) -> None:
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                nn.MaxPool2d(2))

        self.body = nn.Sequential(block(1, 32), block(32, 64), block(64, 128))  # 28 -> 14 -> 7 -> 3
        self.fc = nn.Sequential(nn.Flatten(), nn.Dropout(0.3), nn.Linear(128 * 3 * 3, self.feature_dim),
                                nn.BatchNorm1d(self.feature_dim), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(self.feature_dim, 10))

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.fc(self.body(image))
        return self.head(features), features


class ShippedEvaluator(nn.Module):
    """fashion-eval rebuilt from its shipped ONNX file (BatchNorm folded into the convolutions by the
    export), so Python metrics use exactly the evaluator that @guidekit/eval runs; no checkpoint needed.
    forward -> (logits [B,10], features [B,256])."""

    feature_dim = 256

    def __init__(self, path: Path) -> None:
        super().__init__()
        import onnx
        from onnx import numpy_helper
        graph = onnx.load(str(path)).graph
        init = {i.name: torch.from_numpy(numpy_helper.to_array(i).copy()) for i in graph.initializer}
        convs = []
        for node in graph.node:
            if node.op_type == 'Conv':
                w, b = init[node.input[1]], init[node.input[2]]
                conv = nn.Conv2d(w.shape[1], w.shape[0], w.shape[2], padding=1)
                conv.weight.data.copy_(w)
                conv.bias.data.copy_(b)
                convs.append(conv)
        layers: list[nn.Module] = []
        for i, conv in enumerate(convs):
            layers += [conv, nn.ReLU()] + ([nn.MaxPool2d(2)] if i % 2 == 1 else [])
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(1152, 256)
        self.fc.weight.data.copy_(init['ev.fc.2.weight'])
        self.fc.bias.data.copy_(init['ev.fc.2.bias'])
        self.bn = nn.BatchNorm1d(256)
        for k in ('weight', 'bias', 'running_mean', 'running_var'):
            getattr(self.bn, k).data.copy_(init[f'ev.fc.3.{k}'])
        self.head = nn.Linear(256, 10)
        self.head.weight.data.copy_(init['ev.head.1.weight'])
        self.head.bias.data.copy_(init['ev.head.1.bias'])

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = torch.relu(self.bn(self.fc(self.body(image).flatten(1))))
        return self.head(features), features


def load_evaluator(smoke: bool) -> nn.Module:
    """The shipped fashion-eval (random weights in smoke mode, so smoke tests are hermetic)."""
    if smoke:
        return Evaluator().eval()
    return ShippedEvaluator(PACKAGE_MODELS_DIR / 'fashion-eval.onnx').eval()


@torch.no_grad()
def evaluator_outputs(ev: Evaluator, x: torch.Tensor, batch: int = 500) -> tuple[torch.Tensor, torch.Tensor]:
    logits, feats = [], []
    for i in range(0, len(x), batch):
        lo, fe = ev(x[i:i + batch].float())
        logits.append(lo)
        feats.append(fe)
    return torch.cat(logits), torch.cat(feats)


def feature_stats(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    f = feats.double()
    mu = f.mean(0)
    fc = f - mu
    return mu, fc.T @ fc / (len(f) - 1)


def _sqrtm_psd(m: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh((m + m.T) / 2)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def frechet_distance(mu1: torch.Tensor, s1: torch.Tensor, mu2: torch.Tensor, s2: torch.Tensor) -> float:
    """||mu1-mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), float64; tr((S1 S2)^(1/2)) computed as the sum of
    the square roots of the eigenvalues of S1^(1/2) S2 S1^(1/2) (symmetric PSD, so eigh is stable; no scipy here)."""
    r = _sqrtm_psd(s1)
    vals = torch.linalg.eigvalsh(r @ s2 @ r)
    tr_covmean = vals.clamp(min=0).sqrt().sum()
    return float(((mu1 - mu2) ** 2).sum() + torch.trace(s1) + torch.trace(s2) - 2 * tr_covmean)


def test_reference(ev: Evaluator, smoke: bool) -> tuple[torch.Tensor, torch.Tensor]:
    xt, _ = load_fashion('test', limit=300 if smoke else None)
    _, f = evaluator_outputs(ev, xt)
    return feature_stats(f)


METRIC_NOISE_SEED = 1234


def measure_generator(sampler, model: nn.Module, ev: Evaluator, smoke: bool, scales=CFG_SCALES,
                      steps: int = 30, on_samples=None) -> list[dict]:
    """Accuracy and Frechet distance of 100 samples per class (noise seed 1234) at each CFG scale.
    on_samples(scale, x, y) sees every batch of samples (the RL script reuses them for the reward)."""
    per_class = 2 if smoke else 100
    steps = 2 if smoke else steps
    mu_t, s_t = test_reference(ev, smoke)
    y = class_batch(per_class)
    noise = seeded_noise(len(y), METRIC_NOISE_SEED)
    rows = []
    for w in scales:
        t0 = time.time()
        x = sampler(model, y, noise, w, steps)
        if on_samples is not None:
            on_samples(w, x, y)
        logits, feats = evaluator_outputs(ev, x)
        acc = float((logits.argmax(1) == y).float().mean())
        mu, s = feature_stats(feats)
        fd = frechet_distance(mu, s, mu_t, s_t)
        rows.append({'cfgScale': w, 'accuracy': round(acc, 4), 'frechetDistance': round(fd, 3)})
        log(f'metrics cfg={w}: accuracy={acc:.4f} fd={fd:.3f} ({time.time() - t0:.0f}s)')
    return rows


def grid_for(sampler, model: nn.Module, path: Path, smoke: bool, scale: float = 3.0) -> None:
    y = class_batch(8)
    noise = seeded_noise(len(y), 4321)
    x = sampler(model, y, noise, scale, 2 if smoke else 30)
    save_grid(x, 10, 8, path)
