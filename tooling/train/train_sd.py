"""fashion-sd: a tiny latent text-to-image model on Fashion-MNIST, exported exactly in the diffusers
Stable Diffusion 1.5 ONNX layout (see sd_layout.py), so guidekit's loadDiffusersPipeline reads it like a
real SD export.

    /usr/bin/python3 tooling/train/train_sd.py            # ~75 min on 2 idle cores (budget below)
    /usr/bin/python3 tooling/train/train_sd.py --smoke    # < 60 s, writes into a temp dir

Stages, each through common.train_generator (AdamW, warmup + cosine, EMA, bf16 autocast, time budget):
1. VAE (AutoencoderKL, 1x28x28 <-> 4x7x7): per image sum |x - x'| + 1e-6 * KL, as SD's VAE loss without
   its perceptual and GAN terms; scaling_factor = 1 / std of the posterior samples of the training set.
2. Tokenizer + text encoder: a CLIP BPE learned on the training captions only, then the CLIP-like
   causal transformer pre-trained to name each caption's class (or none) and brightness word (or none)
   from every position from the first <|endoftext|> on (the pooled state and the padding states the
   UNet attends to), with random tokens inserted into a third of the captions so unknown words do not
   derail it. Pre-trained and then frozen, as SD freezes CLIP: the UNet then trains on cached states
   of every training caption, and the empty prompt "" has one fixed embedding for the unconditional branch.
3. UNet (UNet2DConditionModel miniature, cross-attention to the 77 text states): epsilon prediction on
   SD's scaled_linear schedule (0.00085 -> 0.012, 1000 steps), t uniform, latents sampled from the
   posterior and scaled, captions drawn as sd_captions describes (10% ""), EMA weights exported.
Then the export, quick metrics (sd_metrics) and a card.

Budget on 2 idle cores (--threads 2): VAE 150k images (~10 min, cap 14), text 64k captions (~3 min,
cap 5), UNet 540k latents (~50 min, cap 55), metrics ~5 min; each cap stops its stage and the cosine
decay follows whichever of steps and time is further along.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import common as C
import sd_captions as S
import sd_layout as L
import sd_metrics as M
from clip_bpe import EOS, write_json, write_tokenizer
from sd_models import AutoencoderKL, ClipTextModel, UNet2DCondition, VaeDecoderExport, VaeEncoderExport

NAME = 'fashion-sd'
RECIPE = {'images': 540_000, 'batch': 128, 'lr': 4e-4, 'warmup': 200, 'beta2': 0.99, 'ema': '0.999', 'maxMinutes': 55.0}
VAE_RECIPE = {'images': 150_000, 'batch_size': 64, 'lr': 1e-3, 'warmup': 100, 'beta2': 0.99, 'ema': '0.999', 'max_minutes': 14.0}
TEXT_RECIPE = {'images': 64_000, 'batch_size': 128, 'lr': 1e-3, 'warmup': 50, 'beta2': 0.99, 'ema': '0.99', 'max_minutes': 5.0}
KL_WEIGHT = 1e-6
NUM_MERGES = 1000      # an upper bound: BPE stops once every training word is one token
OPSET = 14             # the convert script's default
SCALES = [1.5, 3.0, 5.0, 7.5]


def stage_args(args: argparse.Namespace, recipe: dict, images: int) -> argparse.Namespace:
    return argparse.Namespace(**{**vars(args), **recipe, 'images': images})


def vae_loss(vae: AutoencoderKL, x: torch.Tensor, _y: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    with C.autocast():
        mean, logvar = vae.encode(x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=g)
        rec = vae.decode(z).float()
    kl = 0.5 * (mean ** 2 + logvar.exp() - 1 - logvar).flatten(1).sum(1)
    return ((rec - x).abs().flatten(1).sum(1) + KL_WEIGHT * kl).mean()


@torch.no_grad()
def posterior(vae: AutoencoderKL, x: torch.Tensor) -> torch.Tensor:
    """[N, 8, 7, 7]: posterior mean and log-variance of every image."""
    out = []
    for i in range(0, len(x), 100):    # small batches: 500 images of 32x28x28 activations run 3x slower per image
        with C.autocast():
            out.append(torch.cat(vae.encode(x[i:i + 100]), dim=1).float())
    return torch.cat(out)


def text_loss(model: torch.nn.ModuleDict, ids: torch.Tensor, targets: torch.Tensor, g: torch.Generator,
              eos: int, fillers: torch.Tensor) -> torch.Tensor:
    ids = ids.clone()
    for i in torch.nonzero(torch.rand(len(ids), generator=g) < 1 / 3).flatten().tolist():
        end = int((ids[i] == eos).nonzero()[0])             # first <|endoftext|>
        for _ in range(int(torch.randint(1, 3, (1,), generator=g))):
            if end < 76:
                pos = int(torch.randint(1, end + 1, (1,), generator=g))
                tok = fillers[torch.randint(0, len(fillers), (1,), generator=g)]
                ids[i] = torch.cat([ids[i, :pos], tok, ids[i, pos:76]])
                end += 1
    with C.autocast():
        last, _ = model['encoder'](ids)
        cls, attr = model['class_head'](last).float(), model['attribute_head'](last).float()
    after = (ids == eos).long().cumsum(1) > 0                 # positions from the first EOS on
    tc = targets[:, 0:1].expand_as(ids)[after]
    ta = targets[:, 1:2].expand_as(ids)[after]
    return F.cross_entropy(cls[after], tc) + F.cross_entropy(attr[after], ta)


def unet_loss(unet: UNet2DCondition, stats: torch.Tensor, ya: torch.Tensor, g: torch.Generator, abar: torch.Tensor,
              table: S.CaptionTable, states: torch.Tensor, sf: float) -> torch.Tensor:
    mean, logvar = stats.chunk(2, dim=1)
    z0 = (mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=g)) * sf
    ctx = states[table.draw(ya[:, 0], ya[:, 1], g)]
    t = torch.randint(0, 1000, (len(z0),), generator=g)
    eps = torch.randn(z0.shape, generator=g)
    a = abar[t].view(-1, 1, 1, 1)
    with C.autocast():
        pred = unet(a.sqrt() * z0 + (1 - a).sqrt() * eps, t.float(), ctx)
    return F.mse_loss(pred.float(), eps)


def vae_config(vae: AutoencoderKL, sf: float) -> dict:
    """diffusers' AutoencoderKL config.json (as optimum writes into vae_encoder/ and vae_decoder/)."""
    n = len(vae.channels)
    return {'_class_name': 'AutoencoderKL', 'act_fn': 'silu', 'block_out_channels': vae.channels,
            'down_block_types': ['DownEncoderBlock2D'] * n, 'force_upcast': True, 'in_channels': 1,
            'latent_channels': vae.latent, 'latents_mean': None, 'latents_std': None, 'layers_per_block': vae.layers,
            'mid_block_add_attention': True, 'norm_num_groups': vae.groups, 'out_channels': 1, 'sample_size': 28,
            'scaling_factor': sf, 'shift_factor': None, 'up_block_types': ['UpDecoderBlock2D'] * n,
            'use_post_quant_conv': True, 'use_quant_conv': True}


def export(folder: Path, text: ClipTextModel, unet: UNet2DCondition, vae: AutoencoderKL, bpe, sf: float) -> None:
    producer = 'guidekit-fashion-sd'
    ids = torch.tensor([bpe.encode('a photo of a sneaker'), bpe.encode('')], dtype=torch.int32)
    L.export_onnx(text, (ids,), folder / 'text_encoder' / 'model.onnx', L.TEXT_ENCODER_IO, OPSET, producer)
    ctx = text(ids)[0].detach()
    L.export_onnx(unet, (torch.randn(2, 4, 7, 7), torch.tensor([981.0, 1.0]), ctx), folder / 'unet' / 'model.onnx',
                  L.UNET_IO, OPSET, producer)
    L.export_onnx(VaeEncoderExport(vae), (torch.zeros(1, 1, 28, 28),), folder / 'vae_encoder' / 'model.onnx',
                  L.VAE_ENCODER_IO, OPSET, producer)
    L.export_onnx(VaeDecoderExport(vae), (torch.zeros(1, 4, 7, 7),), folder / 'vae_decoder' / 'model.onnx',
                  L.VAE_DECODER_IO, OPSET, producer)
    for part in ('vae_encoder', 'vae_decoder'):
        write_json(folder / part / 'config.json', vae_config(vae, sf))
    L.write_scheduler(folder, 'epsilon')
    L.write_model_index(folder, ['text_encoder', 'unet', 'vae_decoder', 'vae_encoder'])
    size = sum(f.stat().st_size for f in folder.rglob('*') if f.is_file())
    C.log(f'exported {folder}: {size / 1e6:.2f} MB')


def main() -> None:
    p = C.base_args(__doc__)
    C.generator_args(p, images=RECIPE['images'], batch=RECIPE['batch'], lr=RECIPE['lr'], warmup=RECIPE['warmup'],
                     beta2=RECIPE['beta2'], ema=RECIPE['ema'], max_minutes=RECIPE['maxMinutes'])
    p.add_argument('--vae-images', type=int, default=VAE_RECIPE['images'], help='VAE training budget in images')
    p.add_argument('--text-images', type=int, default=TEXT_RECIPE['images'], help='text-encoder budget in captions')
    args = p.parse_args()
    out, run = C.setup(args, NAME)
    t_start = time.time()
    folder = out / NAME
    x, y = C.load_fashion('train', limit=512 if args.smoke else None)
    xt, yt = C.load_fashion('test', limit=300 if args.smoke else None)

    # 1. VAE
    vae = AutoencoderKL()
    C.log(f'VAE parameters: {C.count_params(vae)}')
    vae_facts = C.train_generator(vae, stage_args(args, VAE_RECIPE, args.vae_images), run / 'vae.pt', vae_loss, (x, y))
    stats = posterior(vae, x)
    mean, logvar = stats.chunk(2, dim=1)
    z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=torch.Generator().manual_seed(args.seed))
    latent_std = float(z.std())
    sf = float(f'{1 / latent_std:.5g}')
    C.log(f'latents: std {latent_std:.4f} -> scaling_factor {sf}; mean posterior std {float(torch.exp(0.5 * logvar).mean()):.4g}')

    # 2. tokenizer + text encoder
    table = S.CaptionTable()
    bpe = write_tokenizer(folder / 'tokenizer', table.texts, NUM_MERGES, 'guidekit/fashion-sd (learned on its training captions)')
    eos = bpe.vocab[EOS]
    ids = torch.tensor([bpe.encode(t) for t in table.texts])
    targets = torch.tensor(table.targets)
    words = {i for w in [s for ws in S.SYNONYMS for s in ws] + sum(S.ATTRIBUTE_WORDS.values(), []) for i in bpe.encode(w)}
    fillers = torch.tensor([i for i in range(eos - 1) if i not in words])
    text = ClipTextModel(len(bpe.vocab))
    heads = torch.nn.ModuleDict({'encoder': text, 'class_head': torch.nn.Linear(text.width, S.NO_CLASS + 1),
                                 'attribute_head': torch.nn.Linear(text.width, 3)})
    C.log(f'tokenizer: {len(bpe.vocab)} tokens, {len(table.texts)} training captions; text encoder parameters: {C.count_params(text)}')
    text_facts = C.train_generator(heads, stage_args(args, TEXT_RECIPE, args.text_images), run / 'text.pt',
                                   lambda m, i, tg, g: text_loss(m, i, tg, g, eos, fillers), (ids, targets))
    with torch.no_grad():
        states = torch.cat([text(ids[i:i + 64])[0].float() for i in range(0, len(ids), 64)])   # fp32, as exported

    # 3. UNet on cached caption states
    thresholds = S.tercile_thresholds(x, y)
    ya = torch.stack([y, S.attributes(x, y, thresholds)], dim=1)
    unet = UNet2DCondition(context=text.width)
    C.log(f'UNet parameters: {C.count_params(unet)}')
    abar = C.vp_alphas_cumprod().float()
    unet_facts = C.train_generator(unet, args, run / 'unet.pt',
                                   lambda m, st, yy, g: unet_loss(m, st, yy, g, abar, table, states, sf), (stats, ya))
    train_seconds = round(time.time() - t_start)

    export(folder, text, unet, vae, bpe, sf)

    # quick metrics
    ev = C.load_evaluator(args.smoke)
    _, feats = C.evaluator_outputs(ev, xt, batch=100)
    ref = C.feature_stats(feats)
    recon = M.vae_reconstruction(vae, ev, xt, yt, ref)
    C.log(f'VAE round trip of {len(yt)} test images: accuracy {recon["accuracy"]} (originals {recon["originalAccuracy"]}), FD {recon["frechetDistance"]}')
    gen = M.Generator(text, bpe, unet, vae, sf, 2 if args.smoke else M.STEPS)
    prompts = S.class_prompts()
    metrics = M.measure(gen, ev, ref, prompts, 2 if args.smoke else 30, SCALES, S.brightness, S.held_out_prompts)
    grid_y = C.class_batch(8)
    C.save_grid(gen.images([prompts[int(c)] for c in grid_y], metrics['bestScale'], seed=4321), 10, 8, out / f'{NAME}.grid.png')

    card = C.base_card(NAME, 'text-to-image', 'Tiny latent text-to-image model on Fashion-MNIST in the diffusers Stable '
                       'Diffusion 1.5 ONNX layout (text_encoder, unet, vae_encoder, vae_decoder, tokenizer, scheduler): a '
                       'KL autoencoder to 4x7x7 latents, a CLIP-like text encoder over a CLIP BPE tokenizer, and an '
                       'epsilon UNet with cross-attention on SD1.5\'s scaled_linear schedule; CFG with the empty prompt.')
    card['folder'] = NAME
    card['architecture'] = {
        'parameters': C.count_params(vae) + C.count_params(text) + C.count_params(unet),
        'vae': {'type': 'AutoencoderKL', 'parameters': C.count_params(vae), 'blockOutChannels': vae.channels,
                'layersPerBlock': vae.layers, 'normGroups': vae.groups, 'latent': [4, 7, 7], 'scalingFactor': sf,
                'klWeight': KL_WEIGHT, 'latentStd': round(latent_std, 4)},
        'textEncoder': {'type': 'clip-text', 'parameters': C.count_params(text), 'width': text.width, 'layers': text.depth,
                        'heads': text.heads, 'maxLength': 77, 'vocabSize': len(bpe.vocab), 'merges': len(bpe.merges),
                        'pooler': 'state at the first <|endoftext|> (argmax of the ids)'},
        'unet': {'type': 'unet2d-condition', 'parameters': C.count_params(unet), 'channels': unet.channels,
                 'layersPerBlock': 1, 'crossAttentionDim': unet.context, 'headDim': unet.head_dim, 'normGroups': unet.groups},
    }
    card['parameterization'] = 'epsilon'
    card['schedule'] = {'family': 'vp', 'betaSchedule': 'scaled_linear', 'betaStart': 0.00085, 'betaEnd': 0.012,
                        'trainSteps': 1000, 'predictionType': 'epsilon'}
    card['image'] = C.image_block()
    card['classes'] = C.CLASSES
    card['captions'] = {
        'classPrompts': prompts, 'trainTemplates': S.TRAIN_TEMPLATES, 'trainSynonyms': S.SYNONYMS,
        'heldOutTemplates': S.HELD_OUT_TEMPLATES, 'heldOutSynonyms': S.HELD_OUT_SYNONYMS,
        'attributeWords': {'dark': S.ATTRIBUTE_WORDS[S.DARK], 'bright': S.ATTRIBUTE_WORDS[S.BRIGHT]},
        'attributeTemplates': S.ATTRIBUTE_TEMPLATES,
        'attributeRule': 'brightness = mean pixel intensity in [0, 1]; below the 1/3 quantile of the image\'s class in the '
                         'training set: dark, above the 2/3 quantile: bright, otherwise no brightness word',
        'mixture': f'{S.P_EMPTY:.0%} empty prompt ""; for images with a brightness word, {S.P_ATTRIBUTE_ONLY:.0%} of the '
                   f'rest the word alone and {S.P_ATTRIBUTE_WORD:.0%} a class caption with the word; otherwise a class caption',
        'trainingCaptions': len(table.texts),
    }
    card['training'] = {
        'data': C.DATA_DESCRIPTION, 'seed': args.seed, 'command': C.command_line('train_sd.py'), 'trainSeconds': train_seconds,
        'vae': {**vae_facts, 'maxMinutes': VAE_RECIPE['max_minutes'], 'algorithm': f'sum |x - x\'| + {KL_WEIGHT} KL per image, '
                f'AdamW lr {VAE_RECIPE["lr"]}, EMA {VAE_RECIPE["ema"]}'},
        'textEncoder': {**text_facts, 'maxMinutes': TEXT_RECIPE['max_minutes'], 'algorithm': 'cross-entropy of class (11 '
                        'incl. none) and brightness word (3 incl. none) at every position from the first <|endoftext|>; '
                        f'random tokens inserted into 1/3 of the captions; AdamW lr {TEXT_RECIPE["lr"]}; then frozen'},
        'unet': C.training_block(args, unet_facts, 'train_sd.py', 'epsilon MSE, t uniform 0..999, latents sampled from '
                                 'the posterior times scaling_factor, caption mixture as in captions'),
    }
    card['metrics'] = {'source': 'quick metrics of tooling/train/train_sd.py (Python, not guidekit)', 'evaluator': 'fashion-eval',
                       'steps': gen.steps, 'sampler': M.__doc__.split('\n\n')[1].replace('\n', ' '),
                       'reference': f'Fashion-MNIST test set ({len(yt)}), fashion-eval features',
                       'vaeReconstruction': recon, **metrics}
    # what `guidekit generate --model fashion-sd` uses without flags: the trajectory of these quick metrics
    card['defaults'] = {'steps': gen.steps, 'guidance': f'cfg:scale={metrics["bestScale"]:g}', 'sampler': 'ddim',
                        'spacing': 'leading'}
    C.write_card(out / f'{NAME}.card.json', card)
    summary = ' '.join(f'cfg{r["cfgScale"]:g}:acc={r["accuracy"]:.3f},fd={r["frechetDistance"]:.2f}' for r in metrics['byScale'])
    print(f'FINAL {NAME}: {summary} negdark={metrics["negativePrompt"]["difference"]:+.4f} '
          f'paraphrase={metrics["paraphrase"]["accuracy"]:.3f} vae_acc={recon["accuracy"]:.3f} '
          f'wall={round(time.time() - t_start)}s out={folder}', flush=True)


if __name__ == '__main__':
    main()
