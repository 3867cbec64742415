"""The supervision split and the semi-supervised data container."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.data.semi import (
    FunctionSource,
    SemiSupervisedData,
    TensorSource,
    make_semi_supervised,
    split_supervision,
    subset,
)


@pytest.mark.parametrize(
    ("n", "supervision", "n_paired"),
    [(1000, 0.1, 100), (1000, 0.001, 1), (1000, 0.0001, 1), (1000, 0.0, 0), (60000, 0.002, 120)],
)
@pytest.mark.parametrize("modalities", [("top", "bottom"), ("top", "middle", "bottom")])
def test_split_rest_counts_even_disjoint_cover(n, supervision, n_paired, modalities):
    paired, unpaired = split_supervision(n, supervision, modalities, seed=3, unpaired="rest")
    assert len(paired) == n_paired
    sizes = [len(unpaired[m]) for m in modalities]
    assert sum(sizes) == n - n_paired
    assert max(sizes) - min(sizes) <= 1
    everything = np.concatenate([paired, *unpaired.values()])
    assert len(np.unique(everything)) == n  # disjoint and covering 0..n-1
    assert everything.min() >= 0 and everything.max() == n - 1


def test_split_deterministic_and_seed_dependent():
    a = split_supervision(500, 0.2, ["x", "y"], seed=7)
    b = split_supervision(500, 0.2, ["x", "y"], seed=7)
    c = split_supervision(500, 0.2, ["x", "y"], seed=8)
    assert np.array_equal(a[0], b[0]) and all(np.array_equal(a[1][m], b[1][m]) for m in "xy")
    assert not np.array_equal(a[0], c[0])


def test_split_all_is_the_papers_code_and_the_default():
    paired, unpaired = split_supervision(100, 0.1, ["x", "y"], seed=0)
    assert len(paired) == 10
    assert all(np.array_equal(unpaired[m], np.arange(100)) for m in "xy")
    assert np.array_equal(paired, split_supervision(100, 0.1, ["x", "y"], seed=0, unpaired="rest")[0])


@pytest.mark.parametrize("rule", ["all", "rest"])
def test_full_supervision_still_has_unpaired_streams(rule):
    """At supervision 1 "rest" leaves no sample over; both rules then draw the unpaired streams from all samples,
    so VAEVAE (whose paired loss has no prior term) still gets its unimodal ELBOs."""
    paired, unpaired = split_supervision(50, 1.0, ["x", "y"], seed=0, unpaired=rule)
    assert np.array_equal(paired, np.arange(50))
    assert all(np.array_equal(unpaired[m], np.arange(50)) for m in "xy")


def test_split_rejects_bad_arguments():
    with pytest.raises(ValueError):
        split_supervision(10, 1.5, ["x", "y"], seed=0)
    with pytest.raises(ValueError):
        split_supervision(10, 0.5, ["x", "y"], seed=0, unpaired="some")


def test_make_semi_supervised_keeps_rows_aligned():
    n = 200
    ids = torch.arange(n, dtype=torch.float32)
    data = make_semi_supervised({"a": ids[:, None].repeat(1, 3), "b": -ids}, supervision=0.25, seed=1, unpaired="rest")
    assert data.n_paired() == 50
    assert data.describe() == {"paired": 50, "unpaired": {"a": 75, "b": 75}}
    rows = torch.arange(data.n_paired())
    a, b = data.paired["a"].take(rows), data.paired["b"].take(rows)
    assert torch.equal(a[:, 0], -b)  # row i of each modality is the same object
    seen = torch.cat(
        [a[:, 0], data.unpaired["a"].take(torch.arange(75))[:, 0], -data.unpaired["b"].take(torch.arange(75))]
    )
    assert len(seen.unique()) == n


def test_full_and_zero_supervision_parts():
    x = torch.randn(20, 2)
    full = make_semi_supervised({"a": x, "b": x}, 1.0, seed=0)
    assert full.describe() == {"paired": 20, "unpaired": {"a": 20, "b": 20}}
    none = make_semi_supervised({"a": x, "b": x}, 0.0, seed=0, unpaired="rest")
    assert none.paired == {} and none.n_paired() == 0 and none.describe()["unpaired"] == {"a": 10, "b": 10}
    assert make_semi_supervised({"a": x, "b": x}, 0.0, seed=0).describe()["unpaired"] == {"a": 20, "b": 20}


def test_sources_take_rows():
    t = torch.arange(10) * 10
    assert torch.equal(TensorSource(t).take(torch.tensor([1, 3])), torch.tensor([10, 30]))
    sub = TensorSource(t, index=np.array([9, 8, 7]))
    assert len(sub) == 3 and torch.equal(sub.take(torch.tensor([0, 2])), torch.tensor([90, 70]))
    fn = FunctionSource(5, lambda idx: idx.float() ** 2)
    nested = subset(fn, [4, 2])
    assert len(nested) == 2 and torch.equal(nested.take(torch.tensor([0, 1])), torch.tensor([16.0, 4.0]))


def test_paired_sources_must_align():
    with pytest.raises(ValueError):
        SemiSupervisedData(paired={"a": TensorSource(torch.zeros(3)), "b": TensorSource(torch.zeros(4))})


@pytest.mark.parametrize("rule", ["all", "rest"])
def test_max_samples_cuts_before_the_split(rule):
    """A quick run keeps ``max_samples`` objects at random, then splits them: the supervision level and the
    unpaired rule hold for the kept objects, and every part draws from those objects only."""
    ids = torch.arange(200, dtype=torch.float32)
    data = make_semi_supervised({"a": ids, "b": -ids}, 0.5, seed=4, unpaired=rule, max_samples=50)
    assert (data.n_objects, data.n_available, data.n_paired()) == (50, 200, 25)
    assert data.describe()["unpaired"] == ({"a": 50, "b": 50} if rule == "all" else {"a": 13, "b": 12})
    seen = [data.paired["a"].take(torch.arange(25)), -data.paired["b"].take(torch.arange(25))]
    seen += [sign * data.unpaired[m].take(torch.arange(data.n_unpaired(m))) for m, sign in (("a", 1), ("b", -1))]
    assert len(torch.cat(seen).unique()) == 50
