"""Ablation of the fashion-dit recipe at a fixed image budget: batch size, learning rate, AdamW beta2, EMA.

    /usr/bin/python3 tooling/train/ablate_dit.py                 # 3 recipes x 100k images, ~45 min on 2 cores
    /usr/bin/python3 tooling/train/ablate_dit.py --images 20000  # a quicker, noisier look
    /usr/bin/python3 tooling/train/ablate_dit.py --recipes 0 --shipped   # one recipe, and the shipped run's two EMAs

Every recipe trains the same DiT on the same number of images (so the same compute), keeping EMAs of
decay 0.999 and 0.9995 side by side; each EMA is sampled at CFG 3 (1000 images, 100 per class,
30 Euler steps, noise seed 1234) and scored with the shipped fashion-eval (accuracy, Frechet distance to
the test set). Results are cached per recipe in tooling/train/runs/ablate-dit/results.json (delete it to
re-run) and printed as a Markdown table for packages/models-fashion/README.md.
"""
from __future__ import annotations

import argparse
import json

import torch

import common as C
from train_dit import DiT, flow_loss

RECIPES = {
    'old (b128, lr 8e-4, beta2 0.99)': {'batch': 128, 'lr': 8e-4, 'beta2': 0.99, 'warmup': 300},
    'b64, lr 6e-4, beta2 0.999': {'batch': 64, 'lr': 6e-4, 'beta2': 0.999, 'warmup': 200},
    'b32, lr 4e-4, beta2 0.999': {'batch': 32, 'lr': 4e-4, 'beta2': 0.999, 'warmup': 200},
}
DECAYS = '0.999,0.9995'


def measure_emas(model: torch.nn.Module, state: dict, ev) -> list[dict]:
    """CFG 3 accuracy and FD of each EMA kept in a checkpoint ('ema' plus 'ema@<decay>' entries)."""
    rows = []
    for key, shadow in state.items():
        if key != 'ema' and not key.startswith('ema@'):
            continue
        decay = float(key[4:]) if key.startswith('ema@') else None
        model.load_state_dict(shadow)
        [m] = C.measure_generator(C.sample_flow, model.eval(), ev, False, [3.0])
        rows.append({'ema': decay, 'accuracy': m['accuracy'], 'frechetDistance': m['frechetDistance']})
    # the exported 'ema' is the decay not listed as ema@<decay>
    listed = {r['ema'] for r in rows if r['ema'] is not None}
    for r in rows:
        if r['ema'] is None:
            r['ema'] = next(float(d) for d in DECAYS.split(',') if float(d) not in listed)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--images', type=int, default=100_000)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--recipes', type=str, default=','.join(str(i) for i in range(len(RECIPES))),
                   help='comma list of recipe indices to train and measure (0 = old, 1 = shipped, 2 = b32)')
    p.add_argument('--shipped', action='store_true',
                   help="also measure both EMAs of the shipped run's checkpoint (runs/fashion-dit/model.pt)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    C.start_governor(args.threads)
    root = C.RUNS_DIR / 'ablate-dit'
    root.mkdir(parents=True, exist_ok=True)
    cache = root / 'results.json'
    results = json.loads(cache.read_text()) if cache.exists() else {}
    ev = C.load_evaluator(False)
    chosen = [list(RECIPES)[int(i)] for i in args.recipes.split(',') if i != '']
    model = DiT()
    if args.shipped and (C.RUNS_DIR / 'fashion-dit' / 'model.pt').exists():
        state = torch.load(C.RUNS_DIR / 'fashion-dit' / 'model.pt', map_location='cpu')
        key = f'shipped: b64, lr 6e-4, beta2 0.999 @ {state["facts"]["images"]}'
        if key not in results:
            results[key] = {'recipe': RECIPES['b64, lr 6e-4, beta2 0.999'], 'facts': state['facts'],
                            'byEma': measure_emas(model, state, ev)}
            cache.write_text(json.dumps(results, indent=2) + '\n')
    for name in chosen:
        r = RECIPES[name]
        key = f'{name} @ {args.images}'
        if key in results:
            continue
        C.seed_everything(0)
        run_args = argparse.Namespace(smoke=False, skip_train=False, seed=0, images=args.images, batch_size=r['batch'],
                                      lr=r['lr'], beta2=r['beta2'], warmup=r['warmup'], ema=DECAYS, max_minutes=1e9)
        model = DiT()
        ckpt = root / f'{list(RECIPES).index(name)}-{args.images}.pt'
        if ckpt.exists():  # trained before (e.g. interrupted while measuring): measure only
            facts = torch.load(ckpt, map_location='cpu')['facts']
        else:
            facts = C.train_generator(model, run_args, ckpt, flow_loss)
        results[key] = {'recipe': r, 'facts': facts, 'byEma': measure_emas(model, torch.load(ckpt, map_location='cpu'), ev)}
        cache.write_text(json.dumps(results, indent=2) + '\n')
    print('| recipe | images | steps | EMA 0.999 acc / FD | EMA 0.9995 acc / FD |')
    print('|---|---|---|---|---|')
    for key, res in results.items():
        by = {e['ema']: e for e in res['byEma']}
        cells = ' | '.join(f'{100 * by[d]["accuracy"]:.1f}% / {by[d]["frechetDistance"]:.2f}' for d in (0.999, 0.9995))
        print(f'| {key.split(" @ ")[0]} | {res["facts"]["images"]} | {res["facts"]["optimizerSteps"]} | {cells} |')


if __name__ == '__main__':
    main()
