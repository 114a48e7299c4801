"""Builds the test fixtures of @guidekit/onnx (run with Debian's python: ``/usr/bin/python3 build.py``).

1. ``sd-miniature/``: a structurally faithful miniature of a Stable Diffusion 1.5 ONNX export in the layout
   written by diffusers' ``scripts/convert_stable_diffusion_checkpoint_to_onnx.py`` (diffusers >= 0.7; the
   layout of ``runwayml/stable-diffusion-v1-5@onnx``):
     model_index.json, scheduler/scheduler_config.json, tokenizer/{vocab.json, merges.txt,
     special_tokens_map.json, tokenizer_config.json}, text_encoder/model.onnx, unet/model.onnx,
     vae_decoder/model.onnx
   with the same input/output names, dtypes, ranks and dynamic axes:
     text_encoder: input_ids int32 [batch, sequence] -> last_hidden_state f32 [batch, sequence, D],
                   pooler_output f32 [batch, D]
     unet:         sample f32 [batch, channels, height, width], timestep f32 [batch],
                   encoder_hidden_states f32 [batch, sequence, D] -> out_sample f32
     vae_decoder:  latent_sample f32 [batch, channels, height, width] -> sample f32 [batch, 3, 8h, 8w]
   Random weights, D = 32, a CLIP-format BPE vocabulary of ~700 tokens.
2. ``unet-variants/``: the same UNet weights with the other timestep conventions found in the wild:
   int64 [batch] (diffusers' script before 0.7, optimum before ~1.14) and a float32 scalar (newest optimum),
   and with float16 inputs/outputs (the script's ``--fp16``).
   ``text-encoder-int64.onnx``: the text encoder taking int64 ids (optimum / transformers.js convention).
3. ``class-conditional/``: tiny models with the interface of @guidekit/models-fashion (DiT: flow velocity;
   UNet: epsilon; an "RL-tuned" DiT; an fp16-I/O DiT), each with a model card.
4. ``golden.json``: reference token ids and model outputs computed here with PyTorch, which the TypeScript
   tests compare against.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper
import torch

from modules import TinyClassConditional, TinyClipTextModel, TinyUNet2DCondition, TinyVaeDecoder

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tooling" / "train"))  # the CLIP BPE and SD layout shared with train_sd.py
from clip_bpe import ClipBpe, write_json, write_tokenizer  # noqa: E402
from sd_layout import export_onnx, write_model_index, write_scheduler  # noqa: E402

OUT = ROOT / "packages" / "onnx" / "src" / "__fixtures__"
OPSET = 14  # the diffusers script's default

CORPUS = [
    "a photo of a cat sitting on a red sofa",
    "an astronaut riding a horse on the moon, digital art",
    "a watercolor painting of a lighthouse at sunset",
    "portrait of an old man with a beard, highly detailed, 4k",
    "a bowl of fruit on a wooden table, still life",
    "blurry, low quality, watermark, text, deformed",
    "the quick brown fox jumps over the lazy dog",
    "a castle in the mountains under a starry night sky",
    "a cat and a dog playing in the garden",
    "photo of a city street in the rain at night, neon lights",
]
NUM_MERGES = 180


def export(model, args, path: Path, input_names, output_names, dynamic_axes):
    export_onnx(model, args, path, (input_names, output_names, dynamic_axes), OPSET, "guidekit-sd-miniature")


def det_input(shape, phase: float = 0.0) -> np.ndarray:
    """Deterministic test input, reproduced in the TypeScript tests: sin(0.37 i + phase), i the flat index."""
    n = int(np.prod(shape))
    return np.sin(0.37 * np.arange(n, dtype=np.float64) + phase).astype(np.float32).reshape(shape)


def summary(a: np.ndarray) -> dict:
    a = np.asarray(a, dtype=np.float64)
    return {"shape": list(a.shape), "sum": float(a.sum()), "absSum": float(np.abs(a).sum()), "first": [float(v) for v in a.reshape(-1)[:8]]}


def scale_weights(model: torch.nn.Module, factor: float) -> None:
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(factor)


def build_tokenizer(folder: Path) -> ClipBpe:
    return write_tokenizer(folder, CORPUS, NUM_MERGES, "openai/clip-vit-large-patch14")


def to_fp16_io(src: Path, dst: Path, float_inputs, float_outputs) -> None:
    """Rewrites a float32 model so the named inputs/outputs are float16 (Cast at the edges), as an fp16
    export (``model.half()`` / onnxconverter-common with keep_io_types=False) presents itself."""
    m = onnx.load(src.as_posix())
    g = m.graph

    def to_fp16(value, edges) -> str:
        """Renames `value` to `<name>_f32` in the nodes' `edges` ("input" or "output") and declares it
        float16; returns the inner (float32) name."""
        inner = value.name + "_f32"
        for node in g.node:
            names = getattr(node, edges)
            for i, name in enumerate(names):
                if name == value.name:
                    names[i] = inner
        value.type.tensor_type.elem_type = TensorProto.FLOAT16
        return inner

    casts = []
    for inp in g.input:
        if inp.name in float_inputs:
            casts.append(helper.make_node("Cast", [inp.name], [to_fp16(inp, "input")], to=TensorProto.FLOAT))
    tail = []
    for out in g.output:
        if out.name in float_outputs:
            tail.append(helper.make_node("Cast", [to_fp16(out, "output")], [out.name], to=TensorProto.FLOAT16))
    nodes = casts + list(g.node) + tail
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    onnx.save(m, dst.as_posix())


def class_card(name: str, file: str, parameterization: str, schedule: dict, dtype: str = "float32") -> dict:
    return {
        "name": name,
        "kind": "generator",
        "architecture": {"type": "tiny-test-conv", "channels": 8, "parameters": "random"},
        "parameterization": parameterization,
        "schedule": schedule,
        "onnx": {
            "file": file,
            "opset": OPSET,
            "inputs": [
                {"name": "sample", "dtype": dtype, "shape": ["batch", 1, 28, 28]},
                {"name": "timestep", "dtype": dtype, "shape": ["batch"]},
                {"name": "class_labels", "dtype": "int64", "shape": ["batch"]},
            ],
            "outputs": [{"name": "out_sample", "dtype": dtype, "shape": ["batch", 1, 28, 28]}],
        },
        "image": {"channels": 1, "height": 28, "width": 28, "range": [-1, 1]},
        "classes": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"],
        "nullClass": 10,
        "training": {"note": "random weights: a test fixture, not a trained model"},
        "metrics": {},
    }


def build_class_conditional(golden: dict) -> None:
    folder = OUT / "class-conditional"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    axes = {"sample": {0: "batch"}, "timestep": {0: "batch"}, "class_labels": {0: "batch"}, "out_sample": {0: "batch"}}
    names = (["sample", "timestep", "class_labels"], ["out_sample"])
    x = torch.from_numpy(det_input((3, 1, 28, 28)))
    t = torch.tensor([700.0, 700.0, 700.0])
    labels = torch.tensor([3, 10, 7], dtype=torch.int64)
    flow = {"family": "flow", "trainSteps": 1000, "shift": 1.0}
    vp = {"family": "vp", "betaSchedule": "linear", "betaStart": 0.0001, "betaEnd": 0.02, "trainSteps": 1000}
    specs = [
        ("tiny-dit", 1, "flow-velocity", flow),
        ("tiny-dit-rl", 2, "flow-velocity", flow),
        ("tiny-unet", 3, "epsilon", vp),
    ]
    golden["classConditional"] = {"input": {"shape": [3, 1, 28, 28], "phase": 0.0}, "timestep": 700.0, "classLabels": [3, 10, 7]}
    for name, seed, param, schedule in specs:
        torch.manual_seed(seed)
        model = TinyClassConditional().eval()
        export(model, (x, t, labels), folder / f"{name}.onnx", *names, axes)
        write_json(folder / f"{name}.card.json", class_card(name, f"{name}.onnx", param, schedule))
        with torch.no_grad():
            out = model(x, t, labels).numpy()
        # one summary per batch item, so the tests also check that items are not mixed up in a batch
        golden["classConditional"][name] = [summary(out[i]) for i in range(out.shape[0])]
    to_fp16_io(folder / "tiny-dit.onnx", folder / "tiny-dit-fp16.onnx", {"sample", "timestep"}, {"out_sample"})
    write_json(folder / "tiny-dit-fp16.card.json", class_card("tiny-dit-fp16", "tiny-dit-fp16.onnx", "flow-velocity", flow, "float16"))


def build_sd(golden: dict) -> None:
    folder = OUT / "sd-miniature"
    if folder.exists():
        shutil.rmtree(folder)
    bpe = build_tokenizer(folder / "tokenizer")
    vocab_size = len(bpe.vocab)

    prompts = ["a photo of a cat", "An  ASTRONAUT riding a horse!", "", "zebra"]
    golden["tokenizer"] = {"vocabSize": vocab_size, "prompts": prompts, "ids": [bpe.encode(p) for p in prompts]}
    long_prompt = " ".join(["a photo of a cat"] * 30)
    golden["tokenizer"]["longPrompt"] = long_prompt
    golden["tokenizer"]["longIds"] = bpe.encode(long_prompt)

    torch.manual_seed(10)
    text = TinyClipTextModel(vocab_size).eval()
    ids = torch.tensor([bpe.encode("a photo of a cat"), bpe.encode("")], dtype=torch.int32)
    export(
        text,
        (ids,),
        folder / "text_encoder" / "model.onnx",
        ["input_ids"],
        ["last_hidden_state", "pooler_output"],
        {"input_ids": {0: "batch", 1: "sequence"}},
    )
    export(
        text,
        (ids.to(torch.int64),),
        OUT / "unet-variants" / "text-encoder-int64.onnx",
        ["input_ids"],
        ["last_hidden_state", "pooler_output"],
        {"input_ids": {0: "batch", 1: "sequence"}},
    )
    with torch.no_grad():
        last, pooled = text(ids)
    golden["textEncoder"] = {"prompts": ["a photo of a cat", ""], "lastHiddenState": summary(last.numpy()), "pooler": summary(pooled.numpy())}

    torch.manual_seed(11)
    unet = TinyUNet2DCondition().eval()
    scale_weights(unet, 0.5)
    sample = torch.from_numpy(det_input((2, 4, 8, 8)))
    timestep = torch.tensor([981.0, 981.0])
    # The UNet's inputs, outputs and dynamic axes, as the diffusers script exports them.
    unet_io = (
        ["sample", "timestep", "encoder_hidden_states"],
        ["out_sample"],
        {
            "sample": {0: "batch", 1: "channels", 2: "height", 3: "width"},
            "timestep": {0: "batch"},
            "encoder_hidden_states": {0: "batch", 1: "sequence"},
        },
    )
    export(unet, (sample, timestep, last), folder / "unet" / "model.onnx", *unet_io)
    export(unet, (sample, timestep.to(torch.int64), last), OUT / "unet-variants" / "unet-timestep-int64.onnx", *unet_io)
    # diffusers' script with --fp16: sample, timestep and encoder_hidden_states are float16, and so is out_sample
    to_fp16_io(
        folder / "unet" / "model.onnx",
        OUT / "unet-variants" / "unet-fp16.onnx",
        {"sample", "timestep", "encoder_hidden_states"},
        {"out_sample"},
    )
    unet.timestep_mode = "scalar"
    export(
        unet,
        (sample, torch.tensor(981.0), last),
        OUT / "unet-variants" / "unet-timestep-scalar.onnx",
        ["sample", "timestep", "encoder_hidden_states"],
        ["out_sample"],
        {"sample": {0: "batch", 2: "height", 3: "width"}, "encoder_hidden_states": {0: "batch", 1: "sequence"}},
    )
    unet.timestep_mode = "batch"
    with torch.no_grad():
        eps = unet(sample, timestep, last)
    golden["unet"] = {"input": {"shape": [2, 4, 8, 8], "phase": 0.0}, "timestep": 981.0, "outSample": summary(eps.numpy())}

    torch.manual_seed(12)
    vae = TinyVaeDecoder().eval()
    latents = torch.from_numpy(det_input((1, 4, 8, 8), 1.0))
    export(
        vae,
        (latents,),
        folder / "vae_decoder" / "model.onnx",
        ["latent_sample"],
        ["sample"],
        {"latent_sample": {0: "batch", 1: "channels", 2: "height", 3: "width"}},
    )
    with torch.no_grad():
        image = vae(latents)
    golden["vaeDecoder"] = {"input": {"shape": [1, 4, 8, 8], "phase": 1.0}, "sample": summary(image.numpy())}

    write_scheduler(folder)
    # As written by OnnxStableDiffusionPipeline.save_pretrained (the diffusers script) without a safety checker.
    write_model_index(folder, ["text_encoder", "unet", "vae_decoder"])


def main() -> None:
    golden: dict = {"note": "generated by tooling/sd-miniature/build.py; do not edit"}
    build_sd(golden)
    build_class_conditional(golden)
    write_json(OUT / "golden.json", golden)
    total = sum(f.stat().st_size for f in OUT.rglob("*") if f.is_file())
    print(f"fixtures written to {OUT} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
