"""CUB Image-Captions as MMVAE prepares it: captions as word ids, images as ResNet-101 features.

Files (MMVAE's layout, under ``cub/``): ``text_trainvalclasses.txt`` (88,550 captions of 8,855 train images) and
``text_testclasses.txt`` (29,330 captions of 2,933 test images), one lowercase caption per line, ten per image, in
image order; ``resnet101_2048/{train,test}.ft``: ``torch.save`` d float tensors ``(n_images, 2048)`` (global-average
pooled ResNet-101 features). Caption i belongs to image ``i // 10``. Only ``text_testclasses.txt`` is on this
machine (``../shared/data/cub/README.md``).

Text pipeline (MMVAE ``CUBSentences``):

- Sentences: MMVAE runs nltk's ``sent_tokenize`` over the whole file. Every line here is one caption ending in a
  period with no sentence break inside (checked on the test file: no ". ", "? " or "! " within a line), so we take
  the lines as the sentences.
- Words: :func:`word_tokenize` applies the regular-expression rules of nltk's ``NLTKWordTokenizer`` (the improved
  Penn Treebank tokenizer behind ``word_tokenize``; nltk is not a dependency): final period, commas and colons
  before a non-digit, ``; @ # $ % &``, ``?``, ``!``, ``*``, brackets, backticks, ``--`` and runs of periods split
  off; clitics ``'s 'm 'd 'll 're 've n't`` split; ``cannot`` etc. split in two; double quotes become ````` and
  ``''``. Checked against nltk 3.10.4 installed aside: the same tokens on all 29,330 test captions and on 20,000
  random strings over the captions' punctuation (tests/test_data_cub.py pins cases whose tokens came from nltk).
- Vocabulary: words in order of first occurrence whose count in the *training* captions is strictly greater
  than ``min_occ = 3``, after the special tokens ``<exc>`` = 0 (out-of-vocabulary), ``<pad>`` = 1, ``<eos>`` = 2.
  The paper gives 1590 entries (train captions); the 29,330 test captions, the only ones here, give 996.
- Encoding: the first 31 words, then ``<eos>``, padded with ``<pad>`` to 32 ids; unknown words -> ``<exc>``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from training.data.mnist import EvalSet, EvalSets
from training.data.semi import SemiSupervisedData, Source, UnpairedRule, make_semi_supervised, subset

EXC, PAD, EOS = "<exc>", "<pad>", "<eos>"
SPECIAL_TOKENS = (EXC, PAD, EOS)
EXC_ID, PAD_ID, EOS_ID = 0, 1, 2
MAX_LENGTH = 32
MIN_OCC = 3
CAPTIONS_PER_IMAGE = 10
TEXT_FILES = {"train": "text_trainvalclasses.txt", "test": "text_testclasses.txt"}
FEATURE_FILES = {"train": "resnet101_2048/train.ft", "test": "resnet101_2048/test.ft"}

# The rules of nltk's NLTKWordTokenizer (the improved Penn Treebank tokenizer behind ``word_tokenize``), in order.
_STARTING_QUOTES = [
    (re.compile("([«“‘„]|[`]+)"), r" \1 "),
    (re.compile(r'^"'), "``"),
    (re.compile(r"(``)"), r" \1 "),
    (re.compile(r"([ \(\[{<])(\"|\'{2})"), r"\1 `` "),
    (re.compile(r"(?i)(?<!\w)(\')(?!(?:re|ve|ll|m|t|s|d|n)\b)(?=\w)"), r"\1 "),  # a leading quote
]
_PUNCTUATION = [
    (re.compile(r'([^\.])(\.)([\]\)}>"\'»”’ ]*+)\s*$'), r"\1 \2 \3 "),  # the final period
    (re.compile(r"([:,])([^\d])"), r" \1 \2"),
    (re.compile(r"([:,])$"), r" \1 "),
    (re.compile(r"\.{2,}"), r" \g<0> "),
    (re.compile(r"[;@#$%&]"), r" \g<0> "),
    (re.compile("[\u2012-\u2015]"), r" \g<0> "),  # figure, en and em dashes, horizontal bar
    (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$'), r"\1 \2\3 "),
    (re.compile(r"[?!]"), r" \g<0> "),
    (re.compile(r"([^'])' "), r"\1 ' "),
    (re.compile(r"[*]"), r" \g<0> "),
]
_BRACKETS = (re.compile(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> ")
_DOUBLE_DASHES = (re.compile(r"--"), r" -- ")
_ENDING_QUOTES = [
    (re.compile("([»”’])"), r" \1 "),
    (re.compile(r"''"), " '' "),
    (re.compile(r'"'), " '' "),
    (re.compile(r"\s+"), " "),
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
]
_CONTRACTIONS = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"\b(can)(not)\b",
        r"\b(d)('ye)\b",
        r"\b(gim)(me)\b",
        r"\b(gon)(na)\b",
        r"\b(got)(ta)\b",
        r"\b(lem)(me)\b",
        r"\b(more)('n)\b",
        r"\b(wan)(na)(?=\s)",
        r" ('t)(is)\b",
        r" ('t)(was)\b",
    )
]


def word_tokenize(sentence: str) -> list[str]:
    """Split one sentence into words and punctuation as nltk's ``word_tokenize`` (Treebank rules) does."""
    text = sentence
    for pattern, repl in _STARTING_QUOTES:
        text = pattern.sub(repl, text)
    for pattern, repl in _PUNCTUATION:
        text = pattern.sub(repl, text)
    text = _BRACKETS[0].sub(_BRACKETS[1], text)
    text = _DOUBLE_DASHES[0].sub(_DOUBLE_DASHES[1], text)
    text = " " + text + " "
    for pattern, repl in _ENDING_QUOTES:
        text = pattern.sub(repl, text)
    for pattern in _CONTRACTIONS:
        text = pattern.sub(r" \1 \2 ", text)
    return text.split()


def read_captions(path: str | Path) -> list[str]:
    """The non-empty lines of a caption file, stripped (one caption each)."""
    with open(path, encoding="utf-8") as f:
        return [line.strip() for line in f if line.strip()]


@dataclass
class Vocabulary:
    """Word <-> id maps (``i2w[i]`` is the word of id ``i``) and the training word counts they were built from."""

    i2w: list[str]
    counts: Counter

    def __post_init__(self) -> None:
        self.w2i = {w: i for i, w in enumerate(self.i2w)}

    def __len__(self) -> int:
        return len(self.i2w)

    def encode(self, caption: str, max_length: int = MAX_LENGTH) -> list[int]:
        """Ids of a caption: first ``max_length - 1`` words, ``<eos>``, ``<pad>`` to ``max_length``; unknown -> 0."""
        words = word_tokenize(caption)[: max_length - 1] + [EOS]
        words += [PAD] * (max_length - len(words))
        return [self.w2i.get(w, EXC_ID) for w in words]

    def encode_all(self, captions: Iterable[str], max_length: int = MAX_LENGTH) -> torch.Tensor:
        """Ids of many captions as an int64 tensor ``(N, max_length)``."""
        return torch.tensor([self.encode(c, max_length) for c in captions], dtype=torch.long).reshape(-1, max_length)

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """The words of ``ids`` up to the first ``<eos>``, ``<pad>`` left out, joined by spaces."""
        words = []
        for i in ids.tolist() if isinstance(ids, torch.Tensor) else ids:
            if i == EOS_ID:
                break
            if i != PAD_ID:
                words.append(self.i2w[i])
        return " ".join(words)


def build_vocabulary(captions: Iterable[str], min_occ: int = MIN_OCC) -> Vocabulary:
    """MMVAE's rule: special tokens at ids 0-2, then every word counted more than ``min_occ`` times, in order of
    first occurrence."""
    counts: Counter = Counter()
    for caption in captions:
        counts.update(word_tokenize(caption))  # Counter keeps first-occurrence order
    words = [w for w, n in counts.items() if n > min_occ and w not in SPECIAL_TOKENS]
    return Vocabulary(list(SPECIAL_TOKENS) + words, counts)


def caption_lengths(ids: torch.Tensor) -> torch.Tensor:
    """Number of ids up to and including the first ``<eos>`` in each row (the row length if there is none)."""
    is_eos = ids == EOS_ID
    first = torch.where(is_eos.any(-1), is_eos.int().argmax(-1) + 1, torch.full_like(ids[:, 0], ids.shape[1]))
    return first


def image_of_caption(caption_index: np.ndarray | torch.Tensor | int) -> np.ndarray | torch.Tensor | int:
    """The image row of caption row(s): ``i // 10``."""
    return caption_index // CAPTIONS_PER_IMAGE


def load_image_features(path: str | Path) -> torch.Tensor:
    """MMVAE's ``resnet101_2048/{train,test}.ft``: a torch-saved tensor ``(n_images, 2048)``, as float32 on the CPU."""
    features = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(features, torch.Tensor) or features.dim() != 2:
        raise ValueError(f"{path}: expected a 2-d tensor of image features")
    return features.float()


def cub_dir(data_dir: str | Path) -> Path:
    """``data_dir/cub`` when it exists, else ``data_dir``."""
    data_dir = Path(data_dir)
    return data_dir / "cub" if (data_dir / "cub").is_dir() else data_dir


def load_split(folder: str | Path, split: str, vocab: Vocabulary) -> tuple[Source, torch.Tensor]:
    """One split as aligned rows: the image features as a source of N rows (row i = image ``i // 10``, not copied)
    and the caption ids ``(N, 32)``."""
    folder = cub_dir(folder)
    captions = read_captions(folder / TEXT_FILES[split])
    features = load_image_features(folder / FEATURE_FILES[split])
    if len(captions) != CAPTIONS_PER_IMAGE * features.shape[0]:
        raise ValueError(f"{split}: {len(captions)} captions for {features.shape[0]} images (expected 10 each)")
    rows = image_of_caption(torch.arange(len(captions)))
    return subset(features, rows), vocab.encode_all(captions)


def load_cub(
    data_dir: str | Path,
    supervision: float,
    seed: int,
    unpaired: UnpairedRule = "all",
    max_samples: int | None = None,
) -> tuple[SemiSupervisedData, EvalSets, Vocabulary]:
    """CUB-Captions at a supervision level: 88,550 train (image, caption) rows split by
    :func:`training.data.semi.make_semi_supervised` (``max_samples`` rows drawn at random first); the vocabulary
    from the train captions; evaluation on the 29,330 test rows, captions of even-numbered test images = "test",
    odd = "valid" (both halves span all 50 test classes; the paper's code scored the whole test set and selected on
    a subset of it)."""
    folder = cub_dir(data_dir)
    vocab = build_vocabulary(read_captions(folder / TEXT_FILES["train"]))
    images, captions = load_split(folder, "train", vocab)
    train = make_semi_supervised({"image": images, "caption": captions}, supervision, seed, unpaired, max_samples)
    test_images, test_captions = load_split(folder, "test", vocab)
    rows = torch.arange(test_captions.shape[0])
    is_test = image_of_caption(rows) % 2 == 0

    def eval_set(idx: torch.Tensor) -> EvalSet:
        return EvalSet({"image": test_images.take(idx), "caption": test_captions[idx]})

    return train, EvalSets(valid=eval_set(rows[~is_test]), test=eval_set(rows[is_test])), vocab
