"""Shared helpers for the guidekit Fashion-MNIST training scripts, in one namespace (`import common as C`).

They live in modules by responsibility; this file re-exports them:
- run_setup.py: common arguments, output and run folders, seeding, log lines, the thread governor, autocast
- fashion_data.py: the Fashion-MNIST IDX files, classes and null class, seeded noise and class batches
- training_loop.py: the generators' training loop (AdamW, warmup + cosine, EMA) and its card entry
- samplers.py: CFG, the flow (Euler) and VP (DDIM) samplers of the metrics
- fashion_metrics.py: the evaluator network, Frechet distance, per-scale accuracy and Frechet distance
- png_images.py: a dependency-free PNG writer, sample grids, the compressibility reward
- fashion_export.py: ONNX export and the model cards
Everything runs on CPU with Debian's PyTorch (`/usr/bin/python3`).
"""
from __future__ import annotations

from fashion_data import (  # noqa: F401
    CLASSES, DATA_DESCRIPTION, DATA_DIR, NULL_CLASS, class_batch, load_fashion, seeded_noise, to_uint8,
)
from fashion_export import (  # noqa: F401
    CARD_SCHEMA, ONNX_OPSET, base_card, check_onnx, count_params, export_generator, generator_interface, generator_io,
    generator_metrics, image_block, load_onnx_weights, scale_summary, write_card,
)
from fashion_metrics import (  # noqa: F401
    CFG_SCALES, METRIC_NOISE_SEED, Evaluator, ShippedEvaluator, evaluator_outputs, feature_stats, frechet_distance,
    grid_for, load_evaluator, measure_generator, test_reference,
)
from png_images import REWARD_NAME, compressibility, png_bytes, save_grid  # noqa: F401
from run_setup import (  # noqa: F401
    PACKAGE_MODELS_DIR, REPO_ROOT, RUNS_DIR, ThreadGovernor, autocast, base_args, command_line, governor_tick, log,
    seed_everything, setup, start_governor,
)
from samplers import guided, sample_flow, sample_vp, vp_alphas_cumprod  # noqa: F401
from training_loop import EMA, ema_decays, generator_args, train_generator, training_block, warmup_cosine  # noqa: F401
