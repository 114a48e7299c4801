"""The training loop shared by the generators: their optimisation arguments, EMA, the time-budgeted
warmup + cosine schedule, the loop itself and the card's `training` entry."""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch
import torch.nn as nn

from fashion_data import DATA_DESCRIPTION, load_fashion
from run_setup import command_line, governor_tick, log


class EMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float | None = None) -> None:
        d = self.decay if decay is None else decay
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach().float(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, model: nn.Module) -> None:
        model.load_state_dict(self.shadow)


def warmup_cosine(step: int, total: int, warmup: int, floor: float = 0.1, elapsed: float = 0.0,
                  budget: float | None = None) -> float:
    """Linear warmup, then cosine from 1 to `floor` over max(step progress, wall-clock progress), so a
    run stopped by its time budget still ends with a decayed learning rate."""
    if step < warmup:
        return (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    if budget:
        p = max(p, min(1.0, elapsed / budget))
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p))


def generator_args(p: argparse.ArgumentParser, *, images: int, batch: int, lr: float, warmup: int,
                   beta2: float, ema: str, max_minutes: float) -> None:
    """The optimisation knobs every generator script shares (defaults are each model's recipe)."""
    p.add_argument('--images', type=int, default=images,
                   help='training budget in images seen; optimizer steps = images / batch size')
    p.add_argument('--batch-size', type=int, default=batch)
    p.add_argument('--lr', type=float, default=lr)
    p.add_argument('--beta2', type=float, default=beta2, help='AdamW beta2 (beta1 is 0.9)')
    p.add_argument('--warmup', type=int, default=warmup, help='linear warmup steps')
    p.add_argument('--ema', type=str, default=ema,
                   help='EMA decay of the exported weights; a comma list also keeps the others in the checkpoint '
                        '(ema@<decay>) for ablations')
    p.add_argument('--max-minutes', type=float, default=max_minutes,
                   help='wall-clock safety budget: the cosine schedule runs on max(step progress, elapsed/budget) '
                        'and training stops when either is used up (the image budget binds on an idle machine)')
    p.add_argument('--skip-train', action='store_true', help='reuse the checkpoint in the run dir; export and measure only')


def ema_decays(args: argparse.Namespace) -> list[float]:
    return [float(d) for d in str(args.ema).split(',')]


def train_generator(model: nn.Module, args: argparse.Namespace, ckpt: Path, loss_fn,
                    data: tuple[torch.Tensor, torch.Tensor] | None = None) -> dict:
    """The training loop shared by the generators: AdamW (betas 0.9/beta2) with warmup + cosine to 10%
    (time-budgeted), one EMA per decay in `--ema`, gradient clipping, progress lines and periodic
    checkpoints in `ckpt`. `loss_fn(model, x0, y, g)` gives the loss of one batch of `data` (default:
    the Fashion-MNIST train images and labels; any pair of tensors indexed along dim 0 works, e.g.
    latents, token ids). With `--skip-train`, loads the checkpoint instead. Leaves the first EMA's
    weights in `model` (eval mode) and returns the run's facts: wallSeconds, images, optimizerSteps,
    plannedSteps, batchSize."""
    decays = ema_decays(args)
    if args.skip_train:
        state = torch.load(ckpt, map_location='cpu')
        model.load_state_dict(state['ema'])
        model.eval()
        return state['facts']
    batch = 32 if args.smoke else args.batch_size
    steps = 6 if args.smoke else max(1, args.images // batch)
    x, y = data if data is not None else load_fashion('train', limit=512 if args.smoke else None)
    emas = [EMA(model, d) for d in decays]
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, args.beta2), weight_decay=0.0)
    g = torch.Generator().manual_seed(args.seed)
    t0 = time.time()
    perm, pos = torch.randperm(len(x), generator=g), 0
    done, images = 0, 0
    budget = None if args.smoke else args.max_minutes * 60

    def facts() -> dict:
        return {'wallSeconds': round(time.time() - t0), 'images': images, 'optimizerSteps': done,
                'plannedSteps': steps, 'batchSize': batch}

    def save() -> None:
        state = {'ema': emas[0].shadow, 'facts': facts()}
        for e in emas[1:]:
            state[f'ema@{e.decay}'] = e.shadow
        torch.save(state, ckpt)

    for step in range(steps):
        if budget is not None and time.time() - t0 > budget:
            log(f'time budget of {args.max_minutes} min used up at step {step}/{steps}')
            break
        done = step + 1
        if pos + batch > len(x):
            perm, pos = torch.randperm(len(x), generator=g), 0
        idx = perm[pos:pos + batch]
        pos += batch
        for group in opt.param_groups:
            group['lr'] = args.lr * warmup_cosine(step, steps, args.warmup, elapsed=time.time() - t0, budget=budget)
        loss = loss_fn(model, x[idx], y[idx], g)
        governor_tick()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        for e in emas:
            e.update(model, min(e.decay, (1 + step) / (10 + step)))
        images += len(idx)
        if (step + 1) % 100 == 0 or step + 1 == steps:
            el = time.time() - t0
            log(f'step {step + 1}/{steps} loss {loss.item():.4f} lr {opt.param_groups[0]["lr"]:.2e} '
                f'{images / el:.0f} img/s threads {torch.get_num_threads()} eta {(steps - step - 1) * el / (step + 1) / 60:.1f} min')
        if (step + 1) % 1000 == 0 and not args.smoke:
            save()
    save()
    emas[0].copy_to(model)
    model.eval()
    return facts()


def training_block(args: argparse.Namespace, facts: dict, script: str, objective: str) -> dict:
    """The card's `training` entry: data, budget, what was run and the recipe in words."""
    return {'data': DATA_DESCRIPTION, **facts, 'maxMinutes': args.max_minutes, 'seed': args.seed,
            'command': command_line(script),
            'algorithm': f'{objective}, AdamW lr {args.lr} (betas 0.9/{args.beta2}, {args.warmup} warmup steps, '
                         f'cosine to 10%), grad clip 1, EMA {ema_decays(args)[0]}, bf16 autocast; EMA weights exported'}
