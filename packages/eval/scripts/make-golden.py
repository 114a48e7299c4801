# Golden vectors for @guidekit/eval from tooling/train/common.py (the training code's own definitions).
# Run: /usr/bin/python3 packages/eval/scripts/make-golden.py (needs Debian's python3-torch)
import json, sys, base64
from pathlib import Path
import numpy as np, torch
ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / 'tooling' / 'train'))
import common as C
torch.manual_seed(0)
# Reward: 12 images: scaled noise (out of range values), smooth blobs, exact half-steps.
imgs = []
imgs.append(torch.randn(4, 1, 28, 28) * 1.5)
yy, xx = torch.meshgrid(torch.arange(28.), torch.arange(28.), indexing='ij')
for k in range(4):
    blob = torch.exp(-((yy - 14) ** 2 + (xx - 10 - 2 * k) ** 2) / (20 + 15 * k)) * 2.2 - 1.1
    imgs.append(blob[None, None])
half = (torch.randint(0, 256, (4, 1, 28, 28)).float() + 0.5) / 127.5 - 1  # values that land on .5 after the affine map
imgs.append(half)
x = torch.cat(imgs).float()
rew = C.compressibility(x)
u8 = C.to_uint8(x)
# FD: two random feature sets, dim 8.
g = torch.Generator().manual_seed(1)
a = torch.randn(60, 8, generator=g) @ torch.randn(8, 8, generator=g) + 0.5
b = torch.randn(40, 8, generator=g) * 0.7 + torch.linspace(-1, 1, 8)
mua, sa = C.feature_stats(a); mub, sb = C.feature_stats(b)
fd = C.frechet_distance(mua, sa, mub, sb)
out = {
  'source': 'tooling/train/common.py (compressibility, to_uint8, feature_stats, frechet_distance), torch ' + torch.__version__,
  'reward': {'shape': list(x.shape), 'imagesFloat32Base64': base64.b64encode(x.numpy().astype('<f4').tobytes()).decode(),
             'uint8Base64': base64.b64encode(u8.tobytes()).decode(), 'compressibility': rew.tolist()},
  'frechet': {'a': a.tolist(), 'b': b.tolist(), 'meanA': mua.tolist(), 'covarianceA': sa.flatten().tolist(), 'distance': fd},
}
json.dump(out, open(ROOT / 'packages' / 'eval' / 'src' / '__fixtures__' / 'golden.json', 'w'))
print(rew.tolist(), fd)
