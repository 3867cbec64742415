"""The semi-supervised trainer shared by every model and experiment.

One optimisation step (as the paper's code, ``../shared/data/POE_VAES_PROTOCOL.md``) draws one paired batch and,
for every modality with unpaired data, one batch of that modality alone, and minimises ``model(batch).total``
(``model(batch)`` is ``model.loss(batch)``) with Adam. Each part is read through its own shuffled stream that
reshuffles whenever it is exhausted, so a small paired set cycles while the largest part is read once per epoch:
one epoch = ``ceil(max(n_paired, largest unpaired part) / batch_size)`` steps (:func:`steps_per_epoch`).

Files in ``out_dir`` (only the first process writes them):
    ``metrics.jsonl`` one JSON record per epoch (appended), ``metrics.json`` the list of them,
    ``best.pt`` + ``best_metrics.json`` the best epoch so far (by ``select_metric``, else the lowest mean loss),
    ``last.pt`` the state to resume from (not with ``save_last=False``), ``train_config.json`` the settings,
    ``tensorboard/`` when installed.

Reproducibility: the weights are initialised by the caller (call :func:`seed_everything` before building the
model). Inside, every random choice of epoch ``e`` (the shuffling and the model's own sampling) is seeded from
``(seed, e)``, and the evaluation from ``(seed, e, "eval")``; so ``last.pt`` needs no RNG state, and training two
epochs then resuming to three gives the same weights as three epochs in one go. The CPU layers whose kernel is
timed at first use (:mod:`models.networks.timed_choice`) keep their choices in ``last.pt``, so a run resumed on
the same machine uses the same kernels.

Several processes (``torchrun --nproc_per_node=K``, i.e. ``WORLD_SIZE > 1``): the process group is initialised
(NCCL on CUDA, Gloo on CPU) and the model wrapped in DistributedDataParallel. ``batch_size`` stays the GLOBAL
batch: each step's batch of every part is dealt between the ranks, so steps per epoch, the effective batch and
the learning rate are those of one process. Evaluation runs on rank 0 and its metrics are broadcast.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from models.batch import MultimodalBatch
from models.networks import timed_choice
from training.checkpoint import load_checkpoint, save_checkpoint, write_json
from training.cpu_heap import keep_freed_memory
from training.data.semi import SemiSupervisedData, Source

Evaluate = Callable[[nn.Module], dict[str, float]]

_EVAL_STREAM = 1 << 20  # seed-sequence tag of the evaluation RNG, apart from the rank tags
_SHUFFLE_STREAM = 1 << 21  # tag of the data-shuffling generators (shared by all ranks)


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA) and NumPy's global generator, e.g. before building a model."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def derived_seed(*parts: int) -> int:
    """A 63-bit seed mixed from non-negative integers (``numpy.random.SeedSequence``)."""
    return int(np.random.SeedSequence(list(parts)).generate_state(2, dtype=np.uint64)[0] >> 1)


def resolve_device(device: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"``: CUDA when available, else CPU; a bare ``"cuda"`` becomes ``cuda:<local_rank>``."""
    if str(device) == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def adam(parameters: Iterable[nn.Parameter], lr: float) -> torch.optim.Adam:
    """Adam as the trainers here use it: the fused kernel when every parameter lives on the CPU or a CUDA device
    (one pass over all parameters instead of a dozen small operations per tensor; ``benchmarks/train_step.py``)."""
    params = list(parameters)
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
    return torch.optim.Adam(params, lr=lr, fused=fused or None)


def steps_per_epoch(data: SemiSupervisedData, batch_size: int, use_unpaired: bool = True) -> int:
    """``ceil(max(n_paired, largest unpaired part) / batch_size)``: the largest part is read once per epoch."""
    sizes = [data.n_paired()] + ([len(s) for s in data.unpaired.values()] if use_unpaired else [])
    largest = max(sizes)
    if largest == 0:
        raise ValueError(f"no training samples: {data.describe()}")
    return math.ceil(largest / batch_size)


@dataclass
class TrainResult:
    """What :func:`train` returns. ``history``: one record per epoch, as in ``metrics.json``."""

    best_epoch: int | None
    best_metrics: dict[str, float]
    best_loss: dict[str, float]
    history: list[dict[str, Any]]
    out_dir: Path

    @property
    def best_path(self) -> Path:
        return self.out_dir / "best.pt"

    @property
    def last_path(self) -> Path:
        return self.out_dir / "last.pt"


@dataclass
class _Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    owns_group: bool = False  # this call initialised the process group, so it tears it down

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device_type: str) -> _Ranks:
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return _Ranks()
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return _Ranks(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")), owns)


class _IndexStream:
    """Shuffled batches of row indices of one part, reshuffled whenever exhausted; this rank's share of each."""

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, ranks: _Ranks) -> None:
        self.n, self.batch_size, self.generator, self.ranks = n, batch_size, generator, ranks
        self.perm = torch.empty(0, dtype=torch.long)
        self.pos = 0

    def next(self) -> torch.Tensor:
        if self.pos >= len(self.perm):
            self.perm = torch.randperm(self.n, generator=self.generator)
            self.pos = 0
        chunk = self.perm[self.pos : self.pos + self.batch_size]
        self.pos += self.batch_size
        # rank r takes rows r, r + world, ...; a chunk with fewer rows than ranks is shared rather than left empty
        mine = torch.arange(self.ranks.rank, max(len(chunk), self.ranks.world), self.ranks.world) % len(chunk)
        return chunk[mine]


class _Progress:
    """A progress line with the live loss terms: tqdm when installed, else a plain line on stderr."""

    def __init__(self, enabled: bool, total: int, desc: str, every: int) -> None:
        self.enabled, self.total, self.desc, self.every = enabled, total, desc, max(1, every)
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                return
            self.bar = tqdm(total=total, desc=desc, dynamic_ncols=True, file=sys.stderr)

    def update(self, step: int, terms: dict[str, float]) -> None:
        """Report that ``step`` steps are done (called every ``every`` steps and at the end)."""
        if not self.enabled:
            return
        text = " ".join(f"{k}={v:.4g}" for k, v in terms.items())
        if self.bar is not None:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix_str(text, refresh=True)
            return
        line = f"{self.desc} [{step}/{self.total}] {text}"
        if sys.stderr.isatty():
            sys.stderr.write("\r\x1b[K" + line)
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and sys.stderr.isatty():
            sys.stderr.write("\n")


def _summary_writer(log_dir: Path) -> Any:
    """A TensorBoard SummaryWriter, or None when the tensorboard package is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(log_dir))


def _score(record: dict[str, Any], select_metric: str | None, higher_is_better: bool) -> float:
    """Larger is better: the selection metric (negated when lower is better), else minus the mean loss."""
    if select_metric is None:
        return -record["loss"]["total"]
    if select_metric not in record["metrics"]:
        raise KeyError(f"select_metric {select_metric!r} not among the evaluated metrics {sorted(record['metrics'])}")
    value = record["metrics"][select_metric]
    return value if higher_is_better else -value


def _cpu_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def train(
    model: nn.Module,
    data: SemiSupervisedData,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    out_dir: str | Path,
    device: str | torch.device = "auto",
    seed: int = 0,
    evaluate: Evaluate | None = None,
    select_metric: str | None = None,
    higher_is_better: bool = True,
    resume: bool = True,
    log_every: int = 50,
    progress: bool = True,
    patience: int | None = None,
    time_limit_s: float | None = None,
    save_last: bool = True,
) -> TrainResult:
    """Train ``model`` on ``data`` for ``epochs`` epochs in total (see the module docstring).

    Args:
        model: a multimodal VAE (``model(batch)`` returns an output with ``.total`` and ``.terms``). A model whose
            ``uses_unpaired`` is False (JMVAE) is given paired batches only.
        batch_size: the global batch size of every part (paired, and each unpaired modality).
        evaluate: called after every epoch as ``evaluate(model)`` in eval mode under ``torch.no_grad()``;
            returns metrics (e.g. validation accuracies).
        select_metric: the metric that picks ``best.pt``; None picks the epoch with the lowest mean loss.
        resume: continue from ``out_dir/last.pt`` when present (its settings must match); else start afresh.
        log_every: steps between progress-line and TensorBoard updates.
        patience: stop early once this many epochs in a row have not improved on the best (None: never).
        time_limit_s: stop after the first epoch that ends this many seconds after this call began (a budget on a
            lent machine; None: never). Every epoch run is complete, so the best epoch is one of them.
        save_last: write ``last.pt`` after every epoch (what ``resume`` reads). False skips it: for networks of
            hundreds of millions of parameters its optimizer state is gigabytes a write.
    """
    if select_metric is not None and evaluate is None:
        raise ValueError("select_metric needs an evaluate function")
    ranks = _init_distributed(resolve_device(device).type)
    try:
        return _train(
            model, data, ranks, epochs=epochs, batch_size=batch_size, lr=lr, out_dir=Path(out_dir),
            device=resolve_device(device, ranks.local_rank), seed=seed, evaluate=evaluate,
            select_metric=select_metric, higher_is_better=higher_is_better, resume=resume, log_every=log_every,
            progress=progress, patience=patience, time_limit_s=time_limit_s, save_last=save_last,
        )  # fmt: skip
    finally:
        if ranks.owns_group:
            dist.destroy_process_group()


def _train(
    model: nn.Module,
    data: SemiSupervisedData,
    ranks: _Ranks,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    out_dir: Path,
    device: torch.device,
    seed: int,
    evaluate: Evaluate | None,
    select_metric: str | None,
    higher_is_better: bool,
    resume: bool,
    log_every: int,
    progress: bool,
    patience: int | None = None,
    time_limit_s: float | None = None,
    save_last: bool = True,
) -> TrainResult:
    began = time.perf_counter()
    if device.type == "cuda":
        torch.cuda.set_device(device)
    else:
        keep_freed_memory()  # a step's temporaries stay mapped for the next step (training.cpu_heap)
    model.to(device)
    optimizer = adam(model.parameters(), lr)
    use_unpaired = getattr(model, "uses_unpaired", True)
    n_steps = steps_per_epoch(data, batch_size, use_unpaired)
    config = {
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "data": data.describe(),
        "select_metric": select_metric,
        "higher_is_better": higher_is_better,
    }

    history: list[dict[str, Any]] = []
    best: dict[str, Any] | None = None
    start = 0
    last_path = out_dir / "last.pt"
    if resume and last_path.exists():
        state = load_checkpoint(last_path, map_location=device)
        if state["config"] != config:
            raise ValueError(
                f"{last_path} was trained with {state['config']}, not {config}; pass resume=False or another out_dir"
            )
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, best, start = state["history"], state["best"], state["epoch"]
        timed_choice.restore_choices(state.get("kernel_choices"))  # the same kernels as before: an exact continuation

    if ranks.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        if not history:
            for stale in ("best.pt", "best_metrics.json"):
                (out_dir / stale).unlink(missing_ok=True)
        write_json({**config, "epochs": epochs, "device": str(device), "world_size": ranks.world},
                   out_dir / "train_config.json")  # fmt: skip
        # Rewritten from the checkpoint: drops lines of an epoch that ended after the last checkpoint.
        (out_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
        write_json(history, out_dir / "metrics.json")
    writer = _summary_writer(out_dir / "tensorboard") if ranks.main else None

    net: nn.Module = model
    if ranks.world > 1:
        # Some parameters get no gradient from some batches (e.g. VAEVAE's joint encoder from unpaired data).
        net = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
        )

    for epoch in range(start + 1, epochs + 1):
        t0 = time.perf_counter()
        loss = _train_epoch(net, optimizer, data, ranks, epoch=epoch, epochs=epochs, n_steps=n_steps,
                            batch_size=batch_size, device=device, seed=seed, use_unpaired=use_unpaired,
                            writer=writer, log_every=log_every, progress=progress and ranks.main)  # fmt: skip
        train_time = time.perf_counter() - t0
        if not math.isfinite(loss["total"]):
            raise FloatingPointError(f"the mean loss of epoch {epoch} is not finite: {loss}")

        t0 = time.perf_counter()
        metrics = _evaluate(model, evaluate, ranks, seed, epoch) if evaluate is not None else {}
        record = {
            "epoch": epoch,
            "steps": n_steps,
            "time_s": round(train_time, 3),
            "eval_time_s": round(time.perf_counter() - t0, 3),
            "loss": loss,
            "metrics": metrics,
        }
        history.append(record)
        score = _score(record, select_metric, higher_is_better)
        improved = best is None or score > best["score"]
        if improved:
            best = {"epoch": epoch, "score": score, "select_metric": select_metric, "metrics": metrics, "loss": loss}

        if ranks.main:
            if improved:
                save_checkpoint({"model": _cpu_state(model), **best, "config": config}, out_dir / "best.pt")
                write_json(best, out_dir / "best_metrics.json")
            if save_last:
                save_checkpoint(
                    {"model": _cpu_state(model), "optimizer": optimizer.state_dict(), "epoch": epoch,
                     "history": history, "best": best, "config": config,
                     "kernel_choices": timed_choice.saved_choices()},
                    last_path,
                )  # fmt: skip
            with open(out_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            write_json(history, out_dir / "metrics.json")
            if writer is not None:
                for k, v in {**{f"epoch/{k}": v for k, v in loss.items()}, **metrics}.items():
                    writer.add_scalar(k if k.startswith("epoch/") else f"metrics/{k}", v, epoch)
                writer.flush()
            if progress:
                shown = ", ".join(f"{k}={v:.4g}" for k, v in metrics.items())
                sys.stderr.write(f"epoch {epoch}/{epochs}: loss {loss['total']:.4g} {shown}"
                                 f"{' (best)' if improved else ''}\n")  # fmt: skip
        if patience is not None and best is not None and epoch - best["epoch"] >= patience:
            break
        if time_limit_s is not None and _out_of_time(began, time_limit_s, ranks):
            break

    if writer is not None:
        writer.close()
    if ranks.world > 1:
        dist.barrier()  # no rank tears the group down while rank 0 still writes
    return TrainResult(
        best_epoch=best["epoch"] if best else None,
        best_metrics=best["metrics"] if best else {},
        best_loss=best["loss"] if best else {},
        history=history,
        out_dir=out_dir,
    )


def _train_epoch(
    net: nn.Module,
    optimizer: torch.optim.Optimizer,
    data: SemiSupervisedData,
    ranks: _Ranks,
    *,
    epoch: int,
    epochs: int,
    n_steps: int,
    batch_size: int,
    device: torch.device,
    seed: int,
    use_unpaired: bool,
    writer: Any,
    log_every: int,
    progress: bool,
) -> dict[str, float]:
    """One epoch of steps; returns the mean of every loss term (``total`` included) over steps and ranks."""
    torch.manual_seed(derived_seed(seed, epoch, ranks.rank))  # the model's own sampling (reparameterisation)

    def stream(part: int, source_len: int) -> _IndexStream:
        g = torch.Generator().manual_seed(derived_seed(seed, epoch, _SHUFFLE_STREAM, part))
        return _IndexStream(source_len, batch_size, g, ranks)

    paired = stream(0, data.n_paired()) if data.paired else None
    unpaired_parts: dict[str, Source] = data.unpaired if use_unpaired else {}
    unpaired = {m: stream(i + 1, len(s)) for i, (m, s) in enumerate(unpaired_parts.items())}

    net.train()
    sums: dict[str, torch.Tensor] = {}
    bar = _Progress(progress, n_steps, f"epoch {epoch}/{epochs}", log_every)
    for step in range(1, n_steps + 1):
        idx = paired.next() if paired is not None else None
        batch = MultimodalBatch(
            paired={m: s.take(idx) for m, s in data.paired.items()} if idx is not None else {},
            unpaired={m: unpaired_parts[m].take(st.next()) for m, st in unpaired.items()},
        ).to(device)
        out = net(batch)
        optimizer.zero_grad(set_to_none=True)
        out.total.backward()
        optimizer.step()

        terms = {"total": out.total.detach(), **{k: v.detach() for k, v in out.terms.items() if k != "total"}}
        for k, v in terms.items():
            sums[k] = sums[k] + v if k in sums else v.clone()
        if step % log_every == 0 or step == n_steps:
            live = {k: float(v) for k, v in terms.items()}
            bar.update(step, live)
            if writer is not None:
                for k, v in live.items():
                    writer.add_scalar(f"train/{k}", v, (epoch - 1) * n_steps + step)

    keys = sorted(sums)
    means = torch.stack([sums[k].float() for k in keys]) / n_steps
    if ranks.world > 1:
        dist.all_reduce(means)
        means /= ranks.world
    loss = dict(zip(keys, means.tolist(), strict=True))
    loss = {"total": loss.pop("total"), **loss}
    bar.close()
    return loss


def _out_of_time(began: float, limit_s: float, ranks: _Ranks) -> bool:
    """Whether ``limit_s`` seconds have passed since ``began``, by rank 0's clock (every rank stops together)."""
    box = [time.perf_counter() - began >= limit_s]
    if ranks.world > 1:
        dist.broadcast_object_list(box, src=0)
    return bool(box[0])


def _evaluate(model: nn.Module, evaluate: Evaluate, ranks: _Ranks, seed: int, epoch: int) -> dict[str, float]:
    """``evaluate(model)`` in eval mode without gradients, seeded per epoch; on rank 0, broadcast to all ranks."""
    metrics: dict[str, float] | None = None
    if ranks.main:
        model.eval()
        torch.manual_seed(derived_seed(seed, epoch, _EVAL_STREAM))
        with torch.no_grad():
            metrics = {k: float(v) for k, v in evaluate(model).items()}
        model.train()
    if ranks.world > 1:
        box = [metrics]
        dist.broadcast_object_list(box, src=0)
        metrics = box[0]
    return metrics
