"""A small, faithful re-implementation of OpenAI CLIP's byte-level BPE (``clip/simple_tokenizer.py``),
used to *learn* a tiny vocabulary, write it in the CLIP slow-tokenizer files of a Stable Diffusion export
(``write_tokenizer``) and produce reference token ids for the TypeScript tests. Shared by
``tooling/sd-miniature/build.py`` (test fixtures) and ``tooling/train/train_sd.py`` (fashion-sd).

Vocabulary layout follows CLIP exactly: the 256 byte symbols (``bytes_to_unicode`` order), the same 256
with the ``</w>`` end-of-word suffix, one entry per merge in merge order, then ``<|startoftext|>`` and
``<|endoftext|>`` (so, as in CLIP, the end token has the largest id, which the text encoder's pooler relies
on). Deviations from CLIP: no ftfy/html cleaning and, without the ``regex`` module, ``\\p{L}`` / ``\\p{N}``
are approximated with Python's Unicode ``[^\\W\\d_]`` / ``\\d`` (identical for the ASCII test prompts).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Dict, List, Tuple

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"

# CLIP's pattern with \p{L} -> [^\W\d_] and \p{N} -> \d.
PATTERN = re.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_+""",
    re.IGNORECASE,
)


def bytes_to_unicode() -> Dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


BYTE_ENCODER = bytes_to_unicode()


def clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def pre_tokenize(text: str) -> List[str]:
    return ["".join(BYTE_ENCODER[b] for b in tok.encode("utf-8")) for tok in PATTERN.findall(clean(text))]


def word_symbols(token: str) -> Tuple[str, ...]:
    return tuple(token[:-1]) + (token[-1] + "</w>",)


def learn_merges(corpus: List[str], num_merges: int) -> List[Tuple[str, str]]:
    words = Counter(word_symbols(t) for line in corpus for t in pre_tokenize(line))
    merges: List[Tuple[str, str]] = []
    for _ in range(num_merges):
        pairs: Counter = Counter()
        for word, freq in words.items():
            for a, b in zip(word, word[1:]):
                pairs[(a, b)] += freq
        if not pairs:
            break
        # deterministic: highest count, then lexicographic
        best = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        merges.append(best)
        merged = Counter()
        for word, freq in words.items():
            out: List[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                    out.append(word[i] + word[i + 1])
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            merged[tuple(out)] += freq
        words = merged
    return merges


def build_vocab(merges: List[Tuple[str, str]]) -> Dict[str, int]:
    symbols = list(BYTE_ENCODER.values())
    vocab = symbols + [s + "</w>" for s in symbols]
    vocab += ["".join(m) for m in merges]
    vocab += [BOS, EOS]
    return {tok: i for i, tok in enumerate(vocab)}


class ClipBpe:
    def __init__(self, vocab: Dict[str, int], merges: List[Tuple[str, str]]):
        self.vocab = vocab
        self.merges = list(merges)
        self.ranks = {m: i for i, m in enumerate(merges)}

    def bpe(self, token: str) -> List[str]:
        word = list(word_symbols(token))
        while len(word) > 1:
            pairs = [(self.ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(word, word[1:]))]
            rank, _ = min(pairs)
            if rank == 1 << 30:
                break
            first, second = self.merges[rank]
            out: List[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    out.append(first + second)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            word = out
        return word

    def encode(self, text: str, max_length: int = 77) -> List[int]:
        """CLIPTokenizer(padding='max_length', truncation=True): BOS + ids + EOS, padded with EOS."""
        ids = [self.vocab[s] for tok in pre_tokenize(text) for s in self.bpe(tok)]
        ids = [self.vocab[BOS]] + ids[: max_length - 2] + [self.vocab[EOS]]
        return ids + [self.vocab[EOS]] * (max_length - len(ids))


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_tokenizer(folder: Path, corpus: List[str], num_merges: int, name_or_path: str) -> ClipBpe:
    """Learns ``num_merges`` merges on ``corpus`` and writes CLIP's slow-tokenizer files into ``folder``:
    ``vocab.json``, ``merges.txt`` (``#version: 0.2`` header, one pair per line), and
    ``special_tokens_map.json`` / ``tokenizer_config.json`` as shipped in runwayml/stable-diffusion-v1-5
    (from openai/clip-vit-large-patch14: pad = unk = ``<|endoftext|>``, lower case, 77 tokens), with
    ``name_or_path`` saying where this vocabulary comes from."""
    merges = learn_merges(corpus, num_merges)
    vocab = build_vocab(merges)
    write_json(folder / "vocab.json", vocab)
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")

    def added(content):
        return {"__type": "AddedToken", "content": content, "lstrip": False, "normalized": True, "rstrip": False, "single_word": False}

    write_json(folder / "special_tokens_map.json", {"bos_token": added(BOS), "eos_token": added(EOS), "pad_token": EOS, "unk_token": added(EOS)})
    write_json(
        folder / "tokenizer_config.json",
        {
            "add_prefix_space": False,
            "bos_token": added(BOS),
            "do_lower_case": True,
            "eos_token": added(EOS),
            "errors": "replace",
            "model_max_length": 77,
            "name_or_path": name_or_path,
            "pad_token": EOS,
            "special_tokens_map_file": "./special_tokens_map.json",
            "tokenizer_class": "CLIPTokenizer",
            "unk_token": added(EOS),
        },
    )
    return ClipBpe(vocab, merges)
