"""CUB captions: tokeniser, vocabulary rule and encoding on the real test captions; the feature loader and the
caption-image pairing on small files written in MMVAE's formats."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from training.data.cub import (
    EOS_ID,
    EXC_ID,
    PAD_ID,
    build_vocabulary,
    caption_lengths,
    image_of_caption,
    load_cub,
    load_image_features,
    load_split,
    read_captions,
    word_tokenize,
)


@pytest.fixture(scope="module")
def captions(shared_data):
    return read_captions(shared_data / "cub" / "text_testclasses.txt")


@pytest.fixture(scope="module")
def vocab(captions):
    return build_vocabulary(captions)


@pytest.fixture(scope="module")
def tokenized(captions):
    return [word_tokenize(c) for c in captions]


# Expected tokens are those of nltk 3.10's word_tokenize (checked with nltk installed aside; nltk is not a dependency).
@pytest.mark.parametrize(
    ("sentence", "tokens"),
    [
        (
            "this bird has a long, pointed beak and it's shiny!.",
            ["this", "bird", "has", "a", "long", ",", "pointed", "beak", "and", "it", "'s", "shiny", "!", "."],
        ),
        ("a black & white (mottled) breast.", ["a", "black", "&", "white", "(", "mottled", ")", "breast", "."]),
        ("the birds' wings and tarsus' color.", ["the", "birds", "'", "wings", "and", "tarsus", "'", "color", "."]),
        ("`a small bird.", ["`", "a", "small", "bird", "."]),
        ("grey belly`.", ["grey", "belly", "`", "."]),
        ("it cannot fly -- really...", ["it", "can", "not", "fly", "--", "really", "..."]),
        ("a bird's head,a 1,000 ft: up.", ["a", "bird", "'s", "head", ",", "a", "1,000", "ft", ":", "up", "."]),
        ('he said "hi" to me.', ["he", "said", "``", "hi", "''", "to", "me", "."]),
        ("what is this bird?.", ["what", "is", "this", "bird", "?", "."]),
        ("the 'quoted' word doesn't fit.", ["the", "'", "quoted", "'", "word", "does", "n't", "fit", "."]),
        ("wings , tail .", ["wings", ",", "tail", "."]),
    ],
)
def test_word_tokenize(sentence, tokens):
    assert word_tokenize(sentence) == tokens


@pytest.mark.full_data
def test_real_captions(captions, tokenized):
    assert len(captions) == 29330  # README: 2,933 test images x 10
    assert all(c.endswith(".") for c in captions)
    assert all(t[-1] == "." for t in tokenized)
    assert all(tok == tok.strip() and tok for t in tokenized for tok in t)


def test_vocabulary_rule(tokenized, vocab):
    counts = Counter(w for t in tokenized for w in t)
    assert vocab.i2w[:3] == ["<exc>", "<pad>", "<eos>"]
    assert [vocab.w2i[w] for w in ("<exc>", "<pad>", "<eos>")] == [EXC_ID, PAD_ID, EOS_ID]
    words = vocab.i2w[3:]
    assert all(counts[w] > 3 for w in words)
    assert sum(1 for n in counts.values() if n > 3) == len(words)  # every word counted more than 3 times is in
    first_seen = {w: i for i, w in reversed(list(enumerate(w for t in tokenized for w in t)))}
    assert words == sorted(words, key=first_seen.__getitem__)  # in order of first occurrence
    assert len(vocab) == 3 + len(words)
    assert vocab.i2w[3:8] == ["the", "medium", "sized", "bird", "has"]  # the first caption's words


def test_encoding(captions, vocab):
    ids = vocab.encode_all(captions[:200])
    assert ids.shape == (200, 32) and ids.dtype == torch.long
    for caption, row in zip(captions[:200], ids, strict=True):
        words = word_tokenize(caption)
        n = min(len(words), 31)
        assert row[n].item() == EOS_ID and (row[n + 1 :] == PAD_ID).all()
        expected = [vocab.w2i.get(w, EXC_ID) for w in words[:n]]
        assert row[:n].tolist() == expected
        assert vocab.decode(row) == " ".join(w if w in vocab.w2i else "<exc>" for w in words[:n])
    assert caption_lengths(ids).tolist() == [min(len(word_tokenize(c)), 31) + 1 for c in captions[:200]]


def test_long_captions_are_cut_to_31_words_and_eos(vocab):
    ids = vocab.encode_all(["bird " * 40 + "."])
    assert ids.shape == (1, 32)
    assert ids[0, :31].tolist() == [vocab.w2i["bird"]] * 31 and ids[0, 31].item() == EOS_ID
    assert vocab.encode("zzzz unknownword.")[:3] == [EXC_ID, EXC_ID, vocab.w2i["."]]
    assert caption_lengths(torch.full((2, 5), 7)).tolist() == [5, 5]


def test_image_of_caption():
    assert image_of_caption(torch.tensor([0, 9, 10, 29329])).tolist() == [0, 0, 1, 2932]
    assert image_of_caption(25) == 2


def write_cub(folder, captions, n_train_images: int, n_test_images: int) -> dict[str, torch.Tensor]:
    """A CUB folder in MMVAE's layout: caption files and resnet101_2048/{train,test}.ft."""
    (folder / "resnet101_2048").mkdir(parents=True)
    features = {}
    start = 0
    for split, n_images, name in (
        ("train", n_train_images, "text_trainvalclasses.txt"),
        ("test", n_test_images, "text_testclasses.txt"),
    ):
        (folder / name).write_text("\n".join(captions[start : start + 10 * n_images]) + "\n")
        start += 10 * n_images
        features[split] = torch.randn(n_images, 2048)
        torch.save(features[split], folder / "resnet101_2048" / f"{split}.ft")
    return features


def test_feature_loader_and_pairing(tmp_path, captions, vocab):
    features = write_cub(tmp_path / "cub", captions, 3, 2)
    loaded = load_image_features(tmp_path / "cub" / "resnet101_2048" / "train.ft")
    assert torch.equal(loaded, features["train"]) and loaded.dtype == torch.float32
    images, ids = load_split(tmp_path, "train", vocab)
    assert len(images) == 30 and ids.shape == (30, 32)
    rows = torch.arange(30)
    assert torch.equal(images.take(rows), features["train"][rows // 10])
    assert torch.equal(ids, vocab.encode_all(captions[:30]))
    torch.save(torch.randn(4, 2048), tmp_path / "cub" / "resnet101_2048" / "train.ft")
    with pytest.raises(ValueError):
        load_split(tmp_path, "train", vocab)  # 30 captions for 4 images


def test_load_cub(tmp_path, captions):
    features = write_cub(tmp_path / "cub", captions, 40, 6)
    train, sets, vocab = load_cub(tmp_path, supervision=0.25, seed=0)
    assert vocab.i2w[:3] == ["<exc>", "<pad>", "<eos>"]
    assert vocab.counts == Counter(w for c in captions[:400] for w in word_tokenize(c))  # train captions only
    assert train.n_paired() == 100 and train.n_unpaired("image") == train.n_unpaired("caption") == 400
    # test: captions of even test images (0, 2, 4), valid: odd ones
    assert len(sets.test) == len(sets.valid) == 30
    assert torch.equal(sets.test.data["image"][::10], features["test"][[0, 2, 4]])
    assert torch.equal(sets.valid.data["caption"][:10], vocab.encode_all(captions[410:420]))
