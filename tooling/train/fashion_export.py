"""ONNX export of the generators and the model cards, validated against @guidekit/onnx's card schema."""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn

from fashion_data import CLASSES, NULL_CLASS
from run_setup import REPO_ROOT, log

ONNX_OPSET = 17


def generator_io() -> tuple[list[dict], list[dict]]:
    inputs = [
        {'name': 'sample', 'role': 'sample', 'dtype': 'float32', 'shape': ['batch', 1, 28, 28]},
        {'name': 'timestep', 'role': 'timestep', 'dtype': 'float32', 'shape': ['batch']},
        {'name': 'class_labels', 'role': 'class', 'dtype': 'int64', 'shape': ['batch']},
    ]
    outputs = [{'name': 'out_sample', 'role': 'prediction', 'dtype': 'float32', 'shape': ['batch', 1, 28, 28]}]
    return inputs, outputs


def export_generator(model: nn.Module, path: Path) -> None:
    model = model.eval().float()
    x = torch.randn(2, 1, 28, 28)
    t = torch.tensor([500.0, 10.0])
    y = torch.tensor([3, NULL_CLASS])
    torch.onnx.export(model, (x, t, y), str(path), opset_version=ONNX_OPSET,
                      input_names=['sample', 'timestep', 'class_labels'], output_names=['out_sample'],
                      dynamic_axes={'sample': {0: 'batch'}, 'timestep': {0: 'batch'},
                                    'class_labels': {0: 'batch'}, 'out_sample': {0: 'batch'}},
                      do_constant_folding=True)
    check_onnx(path)


def load_onnx_weights(model: nn.Module, path: Path) -> None:
    """The inverse of export_generator: loads the weights of an exported generator back into `model` (same
    architecture), so a shipped ONNX file can seed further training when its checkpoint is gone. Parameters keep
    their names in the export except the Linear weights that constant folding turned into transposed `MatMul`
    initializers; those are matched in graph order against the model's remaining parameters, shapes checked."""
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(str(path)).graph
    inits = {i.name: i for i in graph.initializer}
    state = model.state_dict()
    loaded: dict[str, torch.Tensor] = {}
    for name in state:
        if name in inits:
            loaded[name] = torch.from_numpy(numpy_helper.to_array(inits[name]).copy())
    folded = [n.input[1] for n in graph.node if n.op_type == 'MatMul' and n.input[1] in inits
              and n.input[1] not in state]
    missing = [k for k, v in state.items() if k not in loaded and v.dim() == 2]
    if len(folded) != len(missing):
        raise SystemExit(f'{path}: {len(folded)} folded MatMul weights for {len(missing)} parameters; not this model')
    for name, init in zip(missing, folded):
        loaded[name] = torch.from_numpy(numpy_helper.to_array(inits[init]).T.copy())
    unmatched = [k for k, v in state.items() if k not in loaded or loaded[k].shape != v.shape]
    if unmatched:
        raise SystemExit(f'{path}: no weights of the right shape for {", ".join(unmatched[:5])}; not this model')
    model.load_state_dict(loaded, strict=False)  # non-persistent buffers (positional tables) stay as built


def check_onnx(path: Path) -> None:
    import onnx
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    log(f'exported {path.name}: {path.stat().st_size / 1e6:.2f} MB, opset {m.opset_import[0].version}')


CARD_SCHEMA = REPO_ROOT / 'packages' / 'onnx' / 'model-card.schema.json'


def write_card(path: Path, card: dict) -> None:
    """Writes a model card after validating it against the one card schema (@guidekit/onnx's
    model-card.schema.json, generated from its zod schema): a card the runtime would refuse is never written."""
    import jsonschema
    jsonschema.Draft202012Validator(json.loads(CARD_SCHEMA.read_text())).validate(card)
    path.write_text(json.dumps(card, indent=2) + '\n')
    log(f'wrote {path}')


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def base_card(name: str, kind: str, description: str) -> dict:
    return {'name': name, 'cardVersion': 2, 'kind': kind, 'description': description}


def image_block() -> dict:
    return {'channels': 1, 'height': 28, 'width': 28, 'range': [-1, 1]}


def generator_interface(card: dict, name: str) -> None:
    """Adds what every Fashion-MNIST generator card declares the same way: the ONNX file and its
    inputs/outputs, the image format, the class names and the null class."""
    inputs, outputs = generator_io()
    card['onnx'] = {'file': f'{name}.onnx', 'opset': ONNX_OPSET, 'inputs': inputs, 'outputs': outputs}
    card['image'] = image_block()
    card['classes'] = CLASSES
    card['nullClass'] = NULL_CLASS


def generator_metrics(rows: list[dict], smoke: bool, sampler: str) -> dict:
    """The card's `metrics` entry for the rows of measure_generator (`sampler` says how it sampled)."""
    return {'evaluator': 'fashion-eval', 'samples': 1000 if not smoke else 20, 'steps': 30 if not smoke else 2,
            'sampler': sampler, 'reference': 'Fashion-MNIST test set (10k), fashion-eval features', 'byScale': rows}


def scale_summary(rows: list[dict]) -> str:
    """The rows of measure_generator in one `FINAL` line: `cfg<w>:acc=...,fd=...` per scale."""
    return ' '.join(f'cfg{r["cfgScale"]:g}:acc={r["accuracy"]:.3f},fd={r["frechetDistance"]:.2f}' for r in rows)
