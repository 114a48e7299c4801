"""Builds src/__fixtures__/tiny-attn-dit.{onnx,card.json}: the shipped fashion DiT's architecture
(tooling/train/train_dit.py) shrunk to width 16, depth 2, 2 heads, random weights. It has real
MatMul -> Mul -> Softmax -> MatMul attention over the 7x7 token grid, so the app's tests can run
`--attention draft:...` end to end without the trained model.

    /usr/bin/python3 apps/generate/scripts/build-fixture.py
"""
import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / 'tooling' / 'train'))
import common as C  # noqa: E402
from train_dit import DiT, dit_card  # noqa: E402

out = HERE.parent / 'src' / '__fixtures__'
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
model = DiT(width=16, depth=2, heads=2)
for p in model.parameters():  # the real init zeroes the output layers; make every layer do work
    if p.dim() > 1 and torch.count_nonzero(p) == 0:
        torch.nn.init.normal_(p, std=0.2)
name = 'tiny-attn-dit'
C.export_generator(model, out / f'{name}.onnx')
card = dit_card(name, model, 'random-weight test fixture with the fashion DiT architecture (width 16, depth 2, 2 heads)')
card['training'] = {'note': 'random weights: a test fixture, not a trained model'}
(out / f'{name}.card.json').write_text(json.dumps(card, indent=2) + '\n')
print(out / f'{name}.onnx')
