"""Captions of fashion-sd: class phrases with templates and synonyms, and a brightness attribute read
from the images themselves.

Brightness: an image's mean intensity in [0, 1] against the terciles of its class in the training set
(per class, so the word says "darker or brighter than usual for this garment" and does not stand in for
the class: trousers and sandals cover few pixels and would otherwise all be "dark"). Lower tercile =
"dark", upper = "bright", middle = no brightness word.

Captions seen in training (each draw picks one):
- 10%: "" (caption dropout: the empty prompt is the unconditional branch of classifier-free guidance,
  exactly as in Stable Diffusion, whose negative prompt defaults to "").
- 5%: the attribute alone ("dark", "a bright photo", ...) when the image has one, so that a negative
  prompt such as "dark" is an in-distribution condition.
- otherwise: a training template around a training synonym of the class, with the attribute word in
  front of the synonym half of the time when the image has one ("a photo of a dark coat").

HELD_OUT_TEMPLATES and HELD_OUT_SYNONYMS never appear in training, not even in the tokenizer's BPE
corpus; the paraphrase metric prompts with them. The held-out templates bring words never seen in
training ("image", "this is", "favourite"); the held-out synonyms are new combinations of seen words
("winter jacket", "pair of sneakers"). Unseen *forms* of seen words do not work and are not asked
for: with a BPE learned on these few captions every training word is one token, so "jackets" becomes
unrelated pieces (j, acke, ts</w>) that nothing in training ties to "jacket" (the text encoder of a short
run named the wrong class for 31 of 36 prompts with such plurals; CLIP's web-scale vocabulary has them).
"""
from __future__ import annotations

import torch

# Training synonyms per class (Fashion-MNIST order). The first is the canonical phrase of the class
# prompts "a photo of {a}" used by the metrics.
SYNONYMS = [
    ['t-shirt', 't-shirt/top', 'tee', 'top', 'short-sleeved top'],
    ['pair of trousers', 'trousers', 'trouser', 'pants', 'pair of pants'],
    ['pullover', 'sweater', 'jumper', 'knit sweater'],
    ['dress', 'summer dress', 'long dress', 'gown'],
    ['coat', 'jacket', 'winter coat', 'long coat'],
    ['sandal', 'sandals', 'summer sandal', 'flip-flop'],
    ['shirt', 'button-up shirt', 'blouse', 'collared shirt'],
    ['sneaker', 'sneakers', 'running shoe', 'trainer'],
    ['bag', 'handbag', 'purse', 'shoulder bag'],
    ['ankle boot', 'boot', 'ankle boots', 'short boot'],
]
HELD_OUT_SYNONYMS = [
    ['short-sleeved tee', 't-shirt top'],
    ['long pants', 'pair of long trousers'],
    ['knit pullover', 'winter sweater'],
    ['long summer dress', 'summer gown'],
    ['long winter coat', 'winter jacket'],
    ['summer flip-flop', 'pair of sandals'],
    ['collared blouse', 'button-up blouse'],
    ['pair of sneakers', 'running trainer'],
    ['shoulder purse', 'small handbag'],
    ['pair of ankle boots', 'short ankle boot'],
]
# Plural phrases take no article ("a photo of sneakers").
PLURAL = {'trousers', 'pants', 'sandals', 'sneakers', 'ankle boots', 'long pants'}

TRAIN_TEMPLATES = ['{x}', '{a}', 'a photo of {a}', 'a picture of {a}', 'a black and white photo of {a}',
                   'a small photo of {a}', 'a photo of the {x}', 'a close-up photo of {a}', 'a product photo of {a}',
                   '{a} on a black background']
HELD_OUT_TEMPLATES = ['an image of {a}', 'this is {a}', 'a low resolution picture of {a}',
                      'a grayscale image of the {x}', 'there is {a} in this photo', 'my favourite {x}']

DARK, BRIGHT = 1, 2
ATTRIBUTE_WORDS = {DARK: ['dark'], BRIGHT: ['bright']}
ATTRIBUTE_TEMPLATES = ['{w}', 'a {w} photo', 'something {w}']
CLASS_PROMPT = 'a photo of {a}'
NO_CLASS = 10

P_EMPTY, P_ATTRIBUTE_ONLY, P_ATTRIBUTE_WORD = 0.1, 0.05, 0.5


def fill(template: str, phrase: str, word: str = '') -> str:
    """The template around the phrase, with an optional attribute word in front of it; plural phrases
    take no article ("a photo of dark sneakers"), the others "a" or "an" ("a photo of an ankle boot")."""
    x = f'{word} {phrase}' if word else phrase
    a = x if phrase in PLURAL else ('an ' if x[0] in 'aeiou' else 'a ') + x
    return template.format(x=x, a=a)


def class_prompts() -> list[str]:
    """The metrics' prompt per class: "a photo of a t-shirt", "a photo of a pair of trousers", ..."""
    return [fill(CLASS_PROMPT, words[0]) for words in SYNONYMS]


def brightness(x: torch.Tensor) -> torch.Tensor:
    """Mean intensity in [0, 1] of images in [-1, 1], one per image."""
    return (x.float().flatten(1).mean(1) + 1) / 2


def tercile_thresholds(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """[10, 2]: the 1/3 and 2/3 quantiles of brightness per class."""
    b = brightness(x)
    return torch.stack([torch.quantile(b[y == c], torch.tensor([1 / 3, 2 / 3])) for c in range(10)])


def attributes(x: torch.Tensor, y: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """0 (middle tercile), DARK or BRIGHT per image."""
    b, t = brightness(x), thresholds[y]
    return torch.where(b < t[:, 0], DARK, torch.where(b > t[:, 1], BRIGHT, 0))


class CaptionTable:
    """Every caption training can draw, with its (class, attribute) target, and the draw itself.

    `texts[i]` is caption i; `targets[i]` = (class or NO_CLASS, attribute or 0). Index 0 is ""."""

    def __init__(self) -> None:
        self.texts: list[str] = ['']
        self.targets: list[tuple[int, int]] = [(NO_CLASS, 0)]
        self.plain: list[list[int]] = []                       # [class] -> ids without an attribute word
        self.with_word: dict[tuple[int, int], list[int]] = {}  # (class, attribute) -> ids with its word
        self.attribute_only: dict[int, list[int]] = {}
        for c, words in enumerate(SYNONYMS):
            self.plain.append([self._add(fill(t, w), c, 0) for t in TRAIN_TEMPLATES for w in words])
            for a, attr_words in ATTRIBUTE_WORDS.items():
                self.with_word[(c, a)] = [self._add(fill(t, w, aw), c, a)
                                          for t in TRAIN_TEMPLATES for w in words for aw in attr_words]
        for a, attr_words in ATTRIBUTE_WORDS.items():
            self.attribute_only[a] = [self._add(t.format(w=w), NO_CLASS, a) for t in ATTRIBUTE_TEMPLATES for w in attr_words]

    def _add(self, text: str, c: int, a: int) -> int:
        self.texts.append(text)
        self.targets.append((c, a))
        return len(self.texts) - 1

    def draw(self, y: torch.Tensor, attr: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """One caption index per image (the mixture in the module docstring), from the generator g."""
        u = torch.rand(len(y), 3, generator=g)
        pick = torch.randint(0, 1 << 30, (len(y),), generator=g)
        out = []
        for i in range(len(y)):
            c, a = int(y[i]), int(attr[i])
            if u[i, 0] < P_EMPTY:
                out.append(0)
                continue
            if a and u[i, 1] < P_ATTRIBUTE_ONLY / (1 - P_EMPTY):
                pool = self.attribute_only[a]
            elif a and u[i, 2] < P_ATTRIBUTE_WORD:
                pool = self.with_word[(c, a)]
            else:
                pool = self.plain[c]
            out.append(pool[int(pick[i]) % len(pool)])
        return torch.tensor(out)


def held_out_prompts(per_class: int) -> tuple[list[str], torch.Tensor]:
    """`per_class` held-out paraphrases per class (templates x synonyms, cycled), and their classes."""
    prompts, labels = [], []
    for c, words in enumerate(HELD_OUT_SYNONYMS):
        combos = [fill(t, w) for t in HELD_OUT_TEMPLATES for w in words]
        for k in range(per_class):
            prompts.append(combos[k % len(combos)])
            labels.append(c)
    return prompts, torch.tensor(labels)
