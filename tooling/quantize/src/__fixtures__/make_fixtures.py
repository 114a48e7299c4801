"""Random-weight fixtures with the fashion DiT and UNet architectures, for tooling/quantize tests.

    /usr/bin/python3 tooling/quantize/src/__fixtures__/make_fixtures.py

Weights are drawn at random (seed 0) instead of the zero-initialised adaLN / output layers, so the
fixtures compute a non-trivial function; the cards are the shipped cards with the sizes changed.
"""
import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[4]
sys.path.insert(0, str(ROOT / 'tooling' / 'train'))
import common as C  # noqa: E402
from train_dit import DiT  # noqa: E402
from train_unet import UNet  # noqa: E402

out = Path(__file__).resolve().parent
torch.manual_seed(0)

def randomize(m):
    with torch.no_grad():
        for p in m.parameters(): p.copy_(torch.randn_like(p) * (0.3 / max(1, p.shape[-1]) ** 0.5 if p.dim() > 1 else 0.05))
    return m


models_dir = ROOT / 'packages' / 'models-fashion' / 'models'
for name, model, base in [('tiny-dit', DiT(width=16, depth=2, heads=2), 'fashion-dit'), ('tiny-unet', UNet(channels=(8, 8, 16), blocks=1), 'fashion-unet')]:
    randomize(model)
    C.export_generator(model, out / f'{name}.onnx')
    card = json.loads((models_dir / f'{base}.card.json').read_text())
    for k in ('training', 'metrics', 'notes'): card.pop(k, None)
    card['name'] = name
    card['description'] = f'random-weight test fixture with the {base} architecture (tooling/quantize tests)'
    card['onnx']['file'] = f'{name}.onnx'
    card['architecture']['parameters'] = sum(p.numel() for p in model.parameters())
    if base == 'fashion-dit': card['architecture'].update({'width': 16, 'depth': 2, 'heads': 2, 'headDim': 8})
    else: card['architecture'].update({'channels': [8, 8, 16], 'resBlocksPerLevel': 1})
    (out / f'{name}.card.json').write_text(json.dumps(card, indent=2) + '\n')
    print(name, (out / f'{name}.onnx').stat().st_size)
