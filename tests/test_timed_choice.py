"""The timed choice between two computations of a layer: the faster one is kept, timed once per key."""

from __future__ import annotations

import time

import pytest
import torch

from models.networks import timed_choice


def _sleeping(seconds: float, calls: list[float]):
    def call() -> None:
        calls.append(seconds)
        time.sleep(seconds)

    return call


@pytest.mark.parametrize("candidate_faster", [True, False])
def test_prefer_keeps_the_faster_call_and_times_each_key_once(monkeypatch, candidate_faster: bool) -> None:
    monkeypatch.setattr(timed_choice, "_choices", {})
    made, calls = [], []

    def make_calls():
        made.append(1)
        fast, slow = _sleeping(0.001, calls), _sleeping(0.02, calls)
        return (fast, slow) if candidate_faster else (slow, fast)

    assert timed_choice.prefer(("layer", 1), make_calls) is candidate_faster
    assert len(calls) == 2 * 2 * (timed_choice.TIMED_CALLS + 1)  # two rounds of each: a warm-up, the timed calls
    assert timed_choice.prefer(("layer", 1), make_calls) is candidate_faster
    assert len(made) == 1 and len(calls) == 4 * (timed_choice.TIMED_CALLS + 1)
    timed_choice.prefer(("layer", 2), make_calls)  # another key is timed again
    assert len(made) == 2


def test_random_like_keeps_the_layout_and_the_global_random_stream() -> None:
    x = torch.randn(3, 7, 5, 4).permute(0, 3, 1, 2)  # channels-last
    state = torch.get_rng_state()
    noise = timed_choice.random_like(x, torch.Generator().manual_seed(0))
    assert noise.stride() == x.stride() and noise.std() > 0.5
    assert torch.equal(torch.get_rng_state(), state)


def test_saved_choices_come_back_on_the_same_machine_only(monkeypatch) -> None:
    monkeypatch.setattr(timed_choice, "_choices", {("layer", 1, 1): True})
    saved = timed_choice.saved_choices()
    monkeypatch.setattr(timed_choice, "_choices", {})
    timed_choice.restore_choices({**saved, "machine": ("AnotherVendor", "1", "2", "a CPU", torch.__version__)})
    assert timed_choice._choices == {}  # timed on another machine: time afresh
    timed_choice.restore_choices(saved)
    assert timed_choice._choices == {("layer", 1, 1): True}
    timed_choice.restore_choices(None)  # a checkpoint from before the choices were saved
    assert timed_choice._choices == {("layer", 1, 1): True}


def test_forward_backward_gives_the_wanted_gradients_of_random_stand_ins() -> None:
    x, weight = torch.randn(2, 3, 6, 6), torch.randn(4, 3, 3, 3)
    state = torch.get_rng_state()
    seen = []

    def conv(xr, wr, br):
        seen.append((xr.requires_grad, wr.requires_grad, br))
        return torch.nn.functional.conv2d(xr, wr, br)

    first, second = timed_choice.forward_backward((conv, conv), (x, weight, None), (False, True, True))
    grads = first()
    assert torch.equal(torch.get_rng_state(), state)
    assert seen == [(False, True, None)] and len(grads) == 1 and grads[0].shape == weight.shape
    assert torch.equal(second()[0], grads[0])  # the same stand-ins and output gradient for both forms
