"""Which of two computations of one training layer is faster on this machine, timed once per shape.

Why: the same layer's fastest form differs between CPUs. MNIST-Split's 64 -> 128 convolution as one Winograd tile
saved ~10 ms a VAEVAE step on an AMD Zen 4 core and cost 13.6 ms on a Zen 5, where the library runs that
convolution near the core's peak; its first layer by the library (with a channels-last output) saved ~1 ms a step
on the Zen 5 and took twice the project's product alone on a Xeon (``benchmarks/README.md``). A fixed rule by CPU
kind would be wrong on the next kind; timing both forms once, at the layer's own shape, is not.

:func:`prefer` times two calls (each a forward and the backward the step needs, on random data:
:func:`forward_backward`) alternately, and keeps the answer for the process. The first call of a new shape pays
for it (16 calls of the layer: about half a second for the 64 -> 128 layer at batch 200 on one core).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence

import torch

from models.networks.cpu_matmul import cpu_info

#: The candidate is chosen where its time is at most this fraction of the incumbent's: a margin for the timing's
#: noise and for what a step adds to a layer timed alone (its operands come from memory there).
MAX_TIME_FRACTION = 0.95
#: Timed calls of each per round, after one warm-up call; two rounds, alternated.
TIMED_CALLS = 3
_choices: dict[tuple, bool] = {}


def _call_seconds(call: Callable[[], object]) -> list[float]:
    """Seconds of :data:`TIMED_CALLS` calls of ``call``, after one warm-up call."""
    times = []
    for _ in range(TIMED_CALLS + 1):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times[1:]


def prefer(key: tuple, calls: Callable[[], tuple[Callable[[], object], Callable[[], object]]]) -> bool:
    """Whether the candidate of ``calls()`` (candidate, incumbent) takes at most :data:`MAX_TIME_FRACTION` of the
    incumbent's time here (medians of two alternated rounds: a neighbour's load falls on both), timed once per
    ``key`` and thread count in a process (``calls`` runs only then). The two calls compute the same layer as a
    step does; the answer does not change the function, only how fp32 rounds it, so a choice timed this close may
    differ between processes."""
    key = (*key, torch.get_num_threads())
    if key not in _choices:
        with torch.enable_grad():
            candidate, incumbent = calls()
            first, second = [], []
            for _ in range(2):
                first += _call_seconds(candidate)
                second += _call_seconds(incumbent)
        _choices[key] = statistics.median(first) <= MAX_TIME_FRACTION * statistics.median(second)
    return _choices[key]


def _machine() -> tuple[str, ...]:
    """What a timed choice holds for: the CPU (vendor, family, model, name) and the torch version."""
    info = cpu_info()
    return (*(info.get(k, "") for k in ("vendor_id", "cpu family", "model", "model name")), torch.__version__)


def saved_choices() -> dict:
    """This process's choices and the machine they were timed on, for a training checkpoint: a run resumed from it
    on the same machine computes every layer as before (:func:`restore_choices`), so it continues exactly."""
    return {"machine": _machine(), "choices": dict(_choices)}


def restore_choices(saved: dict | None) -> None:
    """Take the choices of :func:`saved_choices` where they were timed on this machine; elsewhere time afresh."""
    if saved and tuple(saved.get("machine", ())) == _machine():
        _choices.update(saved["choices"])


def forward_backward(
    forms: tuple[Callable[..., torch.Tensor], Callable[..., torch.Tensor]],
    inputs: Sequence[torch.Tensor | None],
    wanted: Sequence[bool],
) -> tuple[Callable[[], object], Callable[[], object]]:
    """The two calls :func:`prefer` times for two forms of one layer: each form applied to random stand-ins of
    ``inputs`` (:func:`random_like`; a None input, such as a missing bias, stays None), then the gradients of the
    inputs ``wanted`` computed from an output gradient of ones laid out channels-last, as the next layer's backward
    gives it in a step (made at each form's first, untimed call)."""
    generator = torch.Generator().manual_seed(0)
    stand_ins = [
        None if t is None else random_like(t, generator).requires_grad_(w) for t, w in zip(inputs, wanted, strict=True)
    ]
    targets = [t for t, w in zip(stand_ins, wanted, strict=True) if t is not None and w]

    def call(form: Callable[..., torch.Tensor]) -> Callable[[], object]:
        grad: list[torch.Tensor] = []

        def forward_and_backward() -> object:
            y = form(*stand_ins)
            if not grad:
                grad.append(torch.ones_like(y, memory_format=torch.channels_last))
            return torch.autograd.grad(y, targets, grad[0])

        return forward_and_backward

    return call(forms[0]), call(forms[1])


def random_like(t: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Normal noise with ``t``'s shape, dtype and strides, from ``generator``: timing data that leaves training's
    random stream as it would be without the timing."""
    return torch.empty_like(t).normal_(generator=generator)
