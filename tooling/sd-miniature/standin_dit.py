"""Exports a random-weight stand-in with the shipped fashion DiT's architecture (tooling/train/train_dit.py's
DiT: patch 4, width 192, depth 6, 6 heads; 4.2 M parameters) and its card, for benchmarking
@guidekit/onnx before the trained model exists. Not committed: ``/usr/bin/python3 standin_dit.py OUT_DIR``.
Speed does not depend on the weights."""

import json
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tooling" / "train"))
import common as C  # noqa: E402
from train_dit import DiT, dit_card  # noqa: E402

out = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/guidekit-standin")
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
model = DiT()
for p in model.parameters():  # the real init zeroes the output layer; make the graph do real work
    if p.dim() > 1 and torch.count_nonzero(p) == 0:
        torch.nn.init.normal_(p, std=0.02)
C.export_generator(model, out / "fashion-dit-standin.onnx")
card = dit_card("fashion-dit-standin", model, "random-weight stand-in for benchmarks")
card["onnx"]["file"] = "fashion-dit-standin.onnx"
(out / "fashion-dit-standin.card.json").write_text(json.dumps(card, indent=2) + "\n")
print(out / "fashion-dit-standin.onnx")
