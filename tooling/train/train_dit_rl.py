"""fashion-dit-rl: fashion-dit fine-tuned by reward-ranked fine-tuning on compressibility.

    /usr/bin/python3 tooling/train/train_dit_rl.py          # base: the shipped fashion-dit; ~10 min + ~8 min metrics
    /usr/bin/python3 tooling/train/train_dit_rl.py --smoke  # < 60 s, random base model, writes into a temp dir

Reward: compressibility = -(bytes of the 28x28 sample encoded as an 8-bit grayscale PNG, filter 0,
zlib level 9) (common.png_bytes; PNG is deflate, so the same bytes come out of Node's zlib).

Algorithm (reward-ranked fine-tuning, a.k.a. filtered behaviour cloning / RAFT, arXiv:2304.06767):
for each round, sample `--per-class` images per class from the *current* model (CFG 3, 20 Euler
steps, fresh seeds), keep the top `--keep` fraction per class by reward, add them to a replay buffer
of all kept samples so far, and fine-tune on the buffer with the same flow-matching loss as
pretraining (label dropout 0.1, so the unconditional branch moves too). Per-class ranking keeps the
model class-conditional; the small learning rate and few steps keep it close to the base model.
"""
from __future__ import annotations

import time

import torch

import common as C
from train_dit import DiT, dit_card, flow_loss

NAME = 'fashion-dit-rl'


def main() -> None:
    p = C.base_args(__doc__)
    p.add_argument('--rounds', type=int, default=4)
    p.add_argument('--per-class', type=int, default=32)
    p.add_argument('--keep', type=float, default=0.25)
    p.add_argument('--sample-steps', type=int, default=20)
    p.add_argument('--sample-cfg', type=float, default=3.0)
    p.add_argument('--steps-per-round', type=int, default=100)
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--lr', type=float, default=2e-4)
    p.add_argument('--scales', type=str, default='3', help='CFG scales for accuracy/FD (default: only 3, the '
                   'reward scale, to fit the 2-core budget; pass 1,2,3,5 for the full curve)')
    args = p.parse_args()
    out, run = C.setup(args, NAME)
    rounds = 2 if args.smoke else args.rounds
    per_class = 4 if args.smoke else args.per_class
    sample_steps = 2 if args.smoke else args.sample_steps
    ft_steps = 3 if args.smoke else args.steps_per_round
    batch = 16 if args.smoke else args.batch_size

    base = DiT()
    if not args.smoke:
        # The base is the shipped fashion-dit: its training checkpoint (EMA weights) when this machine has it,
        # otherwise the same weights read back from the shipped fp32 ONNX file (the export is lossless).
        base_ckpt = C.RUNS_DIR / 'fashion-dit' / 'model.pt'
        if base_ckpt.exists():
            base.load_state_dict(torch.load(base_ckpt, map_location='cpu')['ema'])
        else:
            C.load_onnx_weights(base, C.PACKAGE_MODELS_DIR / 'fashion-dit.onnx')
            C.log(f'{base_ckpt} not found: base weights read from the shipped fashion-dit.onnx')
    base.eval()
    model = DiT()
    model.load_state_dict(base.state_dict())

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.99), weight_decay=0.0)
    g = torch.Generator().manual_seed(args.seed)
    buf_x, buf_y = [], []
    t0 = time.time()
    images, opt_steps, generated = 0, 0, 0
    round_log = []
    for r in range(rounds):
        model.eval()
        y = C.class_batch(per_class)
        x = C.sample_flow(model, y, C.seeded_noise(len(y), 10_000 + r), args.sample_cfg, sample_steps)
        generated += len(y)
        reward = C.compressibility(x)
        kept = []
        for c in range(10):
            idx = (y == c).nonzero().squeeze(1)
            k = max(1, int(round(len(idx) * args.keep)))
            kept.append(idx[reward[idx].argsort(descending=True)[:k]])
        kept = torch.cat(kept)
        buf_x.append(x[kept].clamp(-1, 1))
        buf_y.append(y[kept])
        bx, by = torch.cat(buf_x), torch.cat(buf_y)
        round_log.append({'round': r, 'meanReward': round(float(reward.mean()), 2),
                          'keptMeanReward': round(float(reward[kept].mean()), 2), 'buffer': len(bx)})
        C.log(f'round {r}: sampled mean reward {reward.mean():.1f}, kept {len(kept)} mean {reward[kept].mean():.1f}, '
              f'buffer {len(bx)}')
        model.train()
        for _ in range(ft_steps):
            idx = torch.randint(0, len(bx), (batch,), generator=g)
            loss = flow_loss(model, bx[idx], by[idx], g)
            C.governor_tick()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            images += batch
            opt_steps += 1
        C.log(f'round {r}: fine-tuned {ft_steps} steps, loss {loss.item():.4f}, {time.time() - t0:.0f}s')
    wall = time.time() - t0
    model.eval()
    if not args.smoke:
        torch.save({'ema': model.state_dict(), 'wall': wall, 'images': images, 'steps': opt_steps}, run / 'model.pt')

    C.export_generator(model, out / f'{NAME}.onnx')
    ev = C.load_evaluator(args.smoke)
    C.grid_for(C.sample_flow, model, out / f'{NAME}.grid.png', args.smoke)

    # Reward of base vs tuned: the same noise (metric seed), classes, sampler (30 Euler steps) and CFG 3.
    reward_scale = 3.0
    tuned_reward: dict[str, float] = {}

    def on_samples(w: float, x: torch.Tensor, _y: torch.Tensor) -> None:
        if w == reward_scale:
            tuned_reward['mean'] = float(C.compressibility(x).mean())

    scales = [float(s) for s in args.scales.split(',')]
    if reward_scale not in scales:
        scales.append(reward_scale)
    rows = C.measure_generator(C.sample_flow, model, ev, args.smoke, scales, on_samples=on_samples)
    n = 20 if args.smoke else 1000
    y = C.class_batch(n // 10)
    xb = C.sample_flow(base, y, C.seeded_noise(len(y), C.METRIC_NOISE_SEED), reward_scale, 2 if args.smoke else 30)
    base_reward = float(C.compressibility(xb).mean())
    C.log(f'reward base {base_reward:.2f} tuned {tuned_reward["mean"]:.2f}')

    card = dit_card(NAME, model, 'fashion-dit fine-tuned with reward-ranked fine-tuning (RAFT-style filtered '
                    'behaviour cloning) on PNG compressibility: the RL-fine-tuned model for RL guidance (RLG), '
                    'same architecture and interface as fashion-dit.')
    card['training'] = {
        'data': 'samples of the model itself (no dataset images); base: fashion-dit', 'baseModel': 'fashion-dit',
        'images': images, 'generatedImages': generated, 'optimizerSteps': opt_steps, 'batchSize': batch,
        'wallSeconds': round(wall), 'seed': args.seed, 'command': C.command_line('train_dit_rl.py'),
        'algorithm': f'reward-ranked fine-tuning: {rounds} rounds; each samples {per_class} images per class from the '
                     f'current model (CFG {args.sample_cfg}, {sample_steps} Euler steps), keeps the top '
                     f'{args.keep:.0%} per class by reward into a replay buffer, then {ft_steps} AdamW steps '
                     f'(lr {args.lr}, batch {batch}) of the flow-matching loss (label dropout 0.1) on the buffer',
        'rounds': round_log,
    }
    card['metrics'] = {**C.generator_metrics(rows, args.smoke, 'euler (flow), uniform t from 1 to 0'),
                       'reward': {'name': C.REWARD_NAME, 'base': round(base_reward, 2),
                                  'tuned': round(tuned_reward['mean'], 2), 'samples': n, 'cfgScale': reward_scale,
                                  'steps': 30 if not args.smoke else 2,
                                  'note': 'mean over 100 samples per class, same noise seeds for base and tuned; '
                                          'higher (fewer bytes) is better'}}
    C.write_card(out / f'{NAME}.card.json', card)
    print(f'FINAL {NAME}: rewardBase={base_reward:.2f} rewardTuned={tuned_reward["mean"]:.2f} {C.scale_summary(rows)} '
          f'wall={wall:.0f}s out={out}', flush=True)


if __name__ == '__main__':
    main()
