"""fashion-eval: CNN classifier whose ONNX graph outputs `logits` [B,10] and `features` [B,256].

    /usr/bin/python3 tooling/train/train_eval.py            # ~5-8 min on 2 cores
    /usr/bin/python3 tooling/train/train_eval.py --smoke    # < 60 s, writes into a temp dir
"""
from __future__ import annotations

import time

import torch
import torch.nn.functional as F

import common as C

NAME = 'fashion-eval'


def augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random shift by up to 2 px (zero = -1 padding) and horizontal flip."""
    n = len(x)
    xp = F.pad(x, (2, 2, 2, 2), value=-1.0)
    dx = torch.randint(0, 5, (n,), generator=g)
    dy = torch.randint(0, 5, (n,), generator=g)
    rows = (dy[:, None] + torch.arange(28)[None]).view(n, 1, 28, 1).expand(n, 1, 28, 32)
    xp = xp.gather(2, rows)
    cols = (dx[:, None] + torch.arange(28)[None]).view(n, 1, 1, 28).expand(n, 1, 28, 28)
    out = xp.gather(3, cols)
    flip = torch.rand(n, generator=g) < 0.5
    out[flip] = out[flip].flip(-1)
    return out


class Export(torch.nn.Module):
    def __init__(self, ev: C.Evaluator) -> None:
        super().__init__()
        self.ev = ev

    def forward(self, image: torch.Tensor):
        return self.ev(image)


def main() -> None:
    p = C.base_args(__doc__)
    p.add_argument('--epochs', type=int, default=5)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--lr', type=float, default=3e-3)
    args = p.parse_args()
    out, run = C.setup(args, NAME)
    t_start = time.time()

    x, y = C.load_fashion('train', limit=512 if args.smoke else None)
    xt, yt = C.load_fashion('test', limit=256 if args.smoke else None)
    epochs = 1 if args.smoke else args.epochs
    steps_per_epoch = len(x) // args.batch_size
    total = epochs * steps_per_epoch

    model = C.Evaluator()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=total, pct_start=0.15)
    g = torch.Generator().manual_seed(args.seed)
    step, images = 0, 0
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g)
        for i in range(steps_per_epoch):
            idx = perm[i * args.batch_size:(i + 1) * args.batch_size]
            xb = augment(x[idx], g)
            with C.autocast():
                logits, _ = model(xb)
            loss = F.cross_entropy(logits.float(), y[idx], label_smoothing=0.1)
            C.governor_tick()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            images += len(idx)
            if step % 100 == 0 or step == total:
                C.log(f'epoch {epoch} step {step}/{total} loss {loss.item():.4f} '
                      f'{images / (time.time() - t_start):.0f} img/s')
        model.eval()
        logits, _ = C.evaluator_outputs(model, xt)
        C.log(f'epoch {epoch}: test accuracy {(logits.argmax(1) == yt).float().mean().item():.4f}')
    wall = time.time() - t_start

    model.eval()
    torch.save(model.state_dict(), run / 'evaluator.pt')
    logits, f_test = C.evaluator_outputs(model, xt)
    test_acc = float((logits.argmax(1) == yt).float().mean())
    per_class = [round(float((logits.argmax(1)[yt == c] == c).float().mean()), 4) for c in range(10)]
    # FD floor: 10k train images (first 10k) vs the test set, same evaluator features.
    _, f_train = C.evaluator_outputs(model, x[:10000])
    floor = C.frechet_distance(*C.feature_stats(f_train), *C.feature_stats(f_test))
    # FD of 1000 test images vs the full test set: the floor at the sample size the generators use.
    floor_1k = C.frechet_distance(*C.feature_stats(f_train[:1000]), *C.feature_stats(f_test))

    onnx_path = out / f'{NAME}.onnx'
    torch.onnx.export(Export(model).eval(), (torch.randn(2, 1, 28, 28),), str(onnx_path), opset_version=C.ONNX_OPSET,
                      input_names=['image'], output_names=['logits', 'features'],
                      dynamic_axes={'image': {0: 'batch'}, 'logits': {0: 'batch'}, 'features': {0: 'batch'}})
    C.check_onnx(onnx_path)

    card = C.base_card(NAME, 'evaluator', 'Fashion-MNIST classifier (VGG-style CNN, 3 conv blocks + 256-d '
                       'penultimate layer). Outputs class logits and the penultimate features used for class '
                       'accuracy and Frechet distance of generated images.')
    card['architecture'] = {'type': 'cnn', 'parameters': C.count_params(model),
                            'layers': 'conv32x2-pool-conv64x2-pool-conv128x2-pool-fc256-fc10 (BatchNorm, ReLU)',
                            'featureDim': C.Evaluator.feature_dim}
    card['parameterization'] = 'classifier'
    card['onnx'] = {'file': onnx_path.name, 'opset': C.ONNX_OPSET,
                    'inputs': [{'name': 'image', 'dtype': 'float32', 'shape': ['batch', 1, 28, 28]}],
                    'outputs': [{'name': 'logits', 'dtype': 'float32', 'shape': ['batch', 10]},
                                {'name': 'features', 'dtype': 'float32', 'shape': ['batch', C.Evaluator.feature_dim]}]}
    card['featureDim'] = C.Evaluator.feature_dim
    card['image'] = C.image_block()
    card['classes'] = C.CLASSES
    card['nullClass'] = None
    card['training'] = {'data': C.DATA_DESCRIPTION, 'images': images, 'epochs': epochs, 'optimizerSteps': step,
                        'batchSize': args.batch_size, 'wallSeconds': round(wall), 'seed': args.seed,
                        'command': C.command_line('train_eval.py'),
                        'algorithm': f'AdamW (lr {args.lr}, wd 5e-4, one-cycle), cross-entropy with label smoothing '
                                     '0.1, random 2-px shifts and horizontal flips, bf16 autocast'}
    card['metrics'] = {'testAccuracy': round(test_acc, 4), 'testSamples': len(xt), 'perClassAccuracy': per_class,
                       'trainTestFrechetDistance': round(floor, 3), 'trainTestFrechetDistance1k': round(floor_1k, 3),
                       'frechetNote': 'floor: evaluator features of 10k (and 1k) Fashion-MNIST train images vs the '
                                      '10k test set'}
    C.write_card(out / f'{NAME}.card.json', card)
    print(f'FINAL {NAME}: testAccuracy={test_acc:.4f} fdFloor10k={floor:.3f} fdFloor1k={floor_1k:.3f} '
          f'wall={wall:.0f}s out={out}', flush=True)


if __name__ == '__main__':
    main()
