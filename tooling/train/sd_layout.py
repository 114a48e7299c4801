"""The Stable Diffusion 1.5 ONNX folder layout, as written by diffusers'
``scripts/convert_stable_diffusion_checkpoint_to_onnx.py`` (``OnnxStableDiffusionPipeline.save_pretrained``)
and, for the per-component ``config.json`` files, by optimum's ONNX export. Shared by
``tooling/sd-miniature/build.py`` (random-weight fixtures) and ``tooling/train/train_sd.py`` (fashion-sd).

Interfaces (names, dtypes, ranks) of the convert script:
    text_encoder/model.onnx  input_ids int32 [batch, sequence] -> last_hidden_state, pooler_output
    unet/model.onnx          sample, timestep float32 [batch], encoder_hidden_states -> out_sample
    vae_encoder/model.onnx   sample -> latent_sample (a *sample* of the posterior:
                             ``encode(x).latent_dist.sample()``, unscaled)
    vae_decoder/model.onnx   latent_sample -> sample
The convert script also makes the channels, height and width of the image tensors (and the UNet's text
sequence) dynamic. ``*_IO`` below keep only the batch dynamic besides input_ids' sequence: a model
trained at one size then states its latent and image sizes in its graph.
"""
from __future__ import annotations

from pathlib import Path

import onnx
import torch

from clip_bpe import write_json

# runwayml/stable-diffusion-v1-5 scheduler/scheduler_config.json, as shipped.
SD15_SCHEDULER = {
    "_class_name": "PNDMScheduler",
    "_diffusers_version": "0.6.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "steps_offset": 1,
    "trained_betas": None,
}

BATCH = {0: "batch"}
TEXT_ENCODER_IO = (["input_ids"], ["last_hidden_state", "pooler_output"], {"input_ids": {0: "batch", 1: "sequence"}})
UNET_IO = (["sample", "timestep", "encoder_hidden_states"], ["out_sample"], {"sample": BATCH, "timestep": BATCH, "encoder_hidden_states": BATCH})
VAE_ENCODER_IO = (["sample"], ["latent_sample"], {"sample": BATCH})
VAE_DECODER_IO = (["latent_sample"], ["sample"], {"latent_sample": BATCH})


def export_onnx(model, args, path: Path, io, opset: int, producer: str) -> None:
    """torch.onnx.export with the given (input names, output names, dynamic axes), then strips node doc
    strings (source paths of this machine) so files are small and reproducible, and runs the checker."""
    input_names, output_names, dynamic_axes = io
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, args, path.as_posix(), input_names=input_names, output_names=output_names,
                      dynamic_axes=dynamic_axes, do_constant_folding=True, opset_version=opset)
    m = onnx.load(path.as_posix())
    for node in m.graph.node:
        node.doc_string = ""
    m.producer_name = producer
    onnx.checker.check_model(m)
    onnx.save(m, path.as_posix())


def write_scheduler(folder: Path, prediction_type: str | None = None) -> None:
    """SD1.5's scheduler config; ``prediction_type`` added when given (diffusers' default is epsilon)."""
    config = dict(SD15_SCHEDULER)
    if prediction_type is not None:
        config["prediction_type"] = prediction_type
    write_json(folder / "scheduler" / "scheduler_config.json", dict(sorted(config.items())))


def write_model_index(folder: Path, components: list[str], diffusers_version: str = "0.6.0") -> None:
    """model_index.json of an OnnxStableDiffusionPipeline without a safety checker, listing the ONNX
    ``components`` (text_encoder, unet, vae_decoder, vae_encoder) as OnnxRuntimeModel."""
    index = {
        "_class_name": "OnnxStableDiffusionPipeline",
        "_diffusers_version": diffusers_version,
        "feature_extractor": [None, None],
        "requires_safety_checker": False,
        "safety_checker": [None, None],
        "scheduler": ["diffusers", "PNDMScheduler"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
    }
    for c in components:
        index[c] = ["diffusers", "OnnxRuntimeModel"]
    write_json(folder / "model_index.json", dict(sorted(index.items(), key=lambda kv: (not kv[0].startswith("_"), kv[0]))))
