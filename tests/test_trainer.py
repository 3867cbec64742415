"""The semi-supervised trainer, on a tiny real two-modality autoencoder (a fixture model, not a mock)."""

from __future__ import annotations

import json
import math
import os
import socket
import time

import pytest
import torch
from torch import nn

from models.batch import LossOutput, MultimodalBatch
from training.checkpoint import load_checkpoint
from training.data.semi import SemiSupervisedData, TensorSource, make_semi_supervised
from training.trainer import steps_per_epoch, train

DIMS = {"a": 6, "b": 4}


class TinyBimodal(nn.Module):
    """Linear encoders and decoders per modality; the paired code is the mean of both codes (+ optional noise).

    Loss = mean squared reconstruction error of both modalities from the paired code, plus that of each unpaired
    modality from its own code. It records the first column of every batch it sees (the tests put row ids there).
    """

    uses_unpaired = True

    def __init__(self, k: int = 2, noise: float = 0.05) -> None:
        super().__init__()
        self.enc = nn.ModuleDict({m: nn.Linear(d, k) for m, d in DIMS.items()})
        self.dec = nn.ModuleDict({m: nn.Linear(k, d) for m, d in DIMS.items()})
        self.noise = noise
        self.seen: list[dict[str, list[float]]] = []

    def _code(self, m: str, x: torch.Tensor) -> torch.Tensor:
        z = self.enc[m](x)
        return z + self.noise * torch.randn_like(z)

    def loss(self, batch: MultimodalBatch) -> LossOutput:
        self.seen.append({f"{part}:{m}": x[:, 0].tolist() for part, d in [("p", batch.paired), ("u", batch.unpaired)]
                          for m, x in d.items()})  # fmt: skip
        terms = {}
        if batch.paired:
            z = sum(self._code(m, x) for m, x in batch.paired.items()) / len(batch.paired)
            terms["paired"] = sum(((self.dec[m](z) - x) ** 2).mean() for m, x in batch.paired.items())
        for m, x in batch.unpaired.items():
            terms[f"unpaired_{m}"] = ((self.dec[m](self._code(m, x)) - x) ** 2).mean()
        total = sum(terms.values())
        return LossOutput(total, {k: v.detach() for k, v in terms.items()})

    forward = loss


def low_rank_data(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Two views of one 2-d latent: both modalities are linear maps of the same z (plus a row id column)."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 2, generator=g)
    views = {m: z @ torch.randn(2, d - 1, generator=g) for m, d in DIMS.items()}
    ids = torch.arange(n, dtype=torch.float32)[:, None] / n
    return {m: torch.cat([ids, v], dim=1) for m, v in views.items()}


def fresh_model(noise: float = 0.05) -> TinyBimodal:
    torch.manual_seed(0)
    return TinyBimodal(noise=noise)


def run(model, data, out_dir, **kw):
    args = dict(epochs=2, batch_size=16, lr=1e-2, device="cpu", seed=1, progress=False, log_every=5)
    return train(model, data, out_dir=out_dir, **{**args, **kw})


def test_steps_per_epoch_and_batches(tmp_path):
    data = make_semi_supervised(low_rank_data(200), supervision=0.1, seed=0, unpaired="rest")
    assert data.describe() == {"paired": 20, "unpaired": {"a": 90, "b": 90}}
    assert steps_per_epoch(data, 16) == math.ceil(90 / 16)
    assert steps_per_epoch(data, 16, use_unpaired=False) == math.ceil(20 / 16)

    model = fresh_model()
    result = run(model, data, tmp_path, epochs=2)
    assert [r["steps"] for r in result.history] == [6, 6]
    assert len(model.seen) == 12
    ids = {part: {round(float(v) * 200) for v in data.unpaired[part[2]].take(torch.arange(90))[:, 0]}
           for part in ("u:a", "u:b")}  # fmt: skip
    for epoch in range(2):
        steps = model.seen[6 * epoch : 6 * (epoch + 1)]
        for part in ("u:a", "u:b"):
            # the largest parts are read exactly once per epoch, each batch holding one modality only
            got = [round(v * 200) for s in steps for v in s[part]]
            assert sorted(got) == sorted(ids[part])
        # the small paired part cycles: every step has a paired batch; 6 steps of 16 cover its 20 rows
        assert all(s["p:a"] == s["p:b"] for s in steps)
        paired = [round(v * 200) for s in steps for v in s["p:a"]]
        assert len(paired) == 16 + 4 + 16 + 4 + 16 + 4
        assert len(set(paired)) == 20


def test_paired_only_model_gets_no_unpaired_batches(tmp_path):
    data = make_semi_supervised(low_rank_data(200), supervision=0.1, seed=0, unpaired="rest")
    model = fresh_model()
    model.uses_unpaired = False
    result = run(model, data, tmp_path, epochs=1)
    assert result.history[0]["steps"] == 2
    assert all(set(s) == {"p:a", "p:b"} for s in model.seen)


def test_files_written_and_loss_falls(tmp_path):
    data = make_semi_supervised(low_rank_data(256), supervision=0.25, seed=0, unpaired="rest")
    modes = []

    def evaluate(m):
        modes.append((m.training, torch.is_grad_enabled()))
        x = data.paired["a"].take(torch.arange(data.n_paired()))
        return {"rec_a": float(((m.dec["a"](m.enc["a"](x)) - x) ** 2).mean())}

    result = run(fresh_model(), data, tmp_path, epochs=8, evaluate=evaluate)
    assert modes == [(False, False)] * 8  # evaluated in eval mode, without gradients
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == list(range(1, 9))
    history = json.loads((tmp_path / "metrics.json").read_text())
    assert history == result.history
    assert set(history[0]["loss"]) == {"total", "paired", "unpaired_a", "unpaired_b"}
    # the total is the sum of its terms, averaged over the same steps
    rec = history[-1]["loss"]
    assert rec["total"] == pytest.approx(rec["paired"] + rec["unpaired_a"] + rec["unpaired_b"], rel=1e-5)
    assert history[-1]["loss"]["total"] < 0.5 * history[0]["loss"]["total"]
    assert history[-1]["metrics"]["rec_a"] < history[0]["metrics"]["rec_a"]
    for name in ("best.pt", "last.pt", "best_metrics.json", "train_config.json"):
        assert (tmp_path / name).is_file()
    config = json.loads((tmp_path / "train_config.json").read_text())
    assert config["data"] == data.describe() and config["epochs"] == 8
    # no select_metric: best = lowest mean loss
    totals = [r["loss"]["total"] for r in history]
    assert result.best_epoch == 1 + totals.index(min(totals))


@pytest.mark.parametrize(("higher", "expected"), [(True, 2), (False, 3)])
def test_best_checkpoint_chosen_by_metric(tmp_path, higher, expected):
    data = make_semi_supervised(low_rank_data(64), supervision=0.5, seed=0, unpaired="rest")
    scripted = iter([0.5, 0.9, 0.1, 0.7])
    snapshots = []

    def evaluate(m):
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return {"acc": next(scripted)}

    result = run(fresh_model(), data, tmp_path, epochs=4, evaluate=evaluate, select_metric="acc",
                 higher_is_better=higher)  # fmt: skip
    assert result.best_epoch == expected
    assert result.best_metrics == {"acc": [0.5, 0.9, 0.1, 0.7][expected - 1]}
    best = load_checkpoint(tmp_path / "best.pt")
    assert best["epoch"] == expected
    for k, v in best["model"].items():
        assert torch.equal(v, snapshots[expected - 1][k])
    assert json.loads((tmp_path / "best_metrics.json").read_text())["epoch"] == expected


def test_patience_stops_after_epochs_without_improvement(tmp_path):
    data = make_semi_supervised(low_rank_data(64), supervision=0.5, seed=0)
    scripted = iter([0.5, 0.9, 0.1, 0.7, 0.8, 0.95])
    result = run(fresh_model(), data, tmp_path, epochs=6, evaluate=lambda m: {"acc": next(scripted)},
                 select_metric="acc", patience=2)  # fmt: skip
    assert result.best_epoch == 2 and len(result.history) == 4  # epochs 3 and 4 did not beat epoch 2


def test_time_limit_stops_after_the_epoch_that_ends_past_it(tmp_path):
    data = make_semi_supervised(low_rank_data(64), supervision=0.5, seed=0)

    def slow(_):
        time.sleep(1.0)  # each epoch ends >= 1 s after the last (its few training steps take milliseconds)
        return {"acc": 0.5}

    result = run(fresh_model(), data, tmp_path, epochs=50, evaluate=slow, select_metric="acc", time_limit_s=1.5)
    assert len(result.history) == 2  # epoch 1 ends at ~1 s (under the budget), epoch 2 at ~2 s (past it)


def test_without_save_last_no_resume_state_is_written(tmp_path):
    data = make_semi_supervised(low_rank_data(64), supervision=0.5, seed=0)
    result = run(fresh_model(), data, tmp_path, epochs=2, save_last=False)
    assert len(result.history) == 2 and (tmp_path / "best.pt").is_file()
    assert not (tmp_path / "last.pt").exists()


def test_select_metric_needs_evaluate(tmp_path):
    data = make_semi_supervised(low_rank_data(32), supervision=0.5, seed=0, unpaired="rest")
    with pytest.raises(ValueError):
        run(fresh_model(), data, tmp_path, select_metric="acc")


def test_resume_takes_the_kernel_choices_of_last_pt(tmp_path, monkeypatch):
    """A CPU layer's kernel, timed at first use, is chosen as before when a run resumes on the same machine."""
    from models.networks import timed_choice

    data = make_semi_supervised(low_rank_data(64), supervision=0.5, seed=0)
    monkeypatch.setattr(timed_choice, "_choices", {("a layer", 3): True})
    run(fresh_model(), data, tmp_path, epochs=1)
    monkeypatch.setattr(timed_choice, "_choices", {})  # a new process
    result = run(fresh_model(), data, tmp_path, epochs=2)
    assert [r["epoch"] for r in result.history] == [1, 2]
    assert timed_choice._choices == {("a layer", 3): True}


def test_resume_continues_exactly(tmp_path):
    data = make_semi_supervised(low_rank_data(128), supervision=0.2, seed=0, unpaired="rest")

    def evaluate(m):
        return {"noise_draw": float(torch.rand(()))}  # the evaluation RNG is seeded per epoch too

    straight = fresh_model()
    full = run(straight, data, tmp_path / "straight", epochs=3, evaluate=evaluate)

    resumed = fresh_model()
    run(resumed, data, tmp_path / "resumed", epochs=2, evaluate=evaluate)
    again = fresh_model()  # a new process: fresh weights, all state comes from last.pt
    result = run(again, data, tmp_path / "resumed", epochs=3, evaluate=evaluate)

    assert [r["epoch"] for r in result.history] == [1, 2, 3]
    assert len((tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()) == 3
    for a, b in zip(result.history, full.history, strict=True):
        assert a["loss"] == b["loss"] and a["metrics"] == b["metrics"]
    for k, v in straight.state_dict().items():
        assert torch.equal(v, again.state_dict()[k])
    last = load_checkpoint(tmp_path / "resumed" / "last.pt")
    steps = 3 * result.history[0]["steps"]
    assert all(int(s["step"]) == steps for s in last["optimizer"]["state"].values())
    assert result.best_epoch == full.best_epoch

    # already done: nothing more runs
    done = run(fresh_model(), data, tmp_path / "resumed", epochs=3, evaluate=evaluate)
    assert len(done.history) == 3
    # other settings refuse to resume; resume=False starts over
    with pytest.raises(ValueError, match="resume=False"):
        run(fresh_model(), data, tmp_path / "resumed", epochs=4, lr=1e-3)
    restarted = run(fresh_model(), data, tmp_path / "resumed", epochs=1, resume=False)
    assert [r["epoch"] for r in restarted.history] == [1]
    assert len(json.loads((tmp_path / "resumed" / "metrics.json").read_text())) == 1


def test_unpaired_only_and_paired_only_data(tmp_path):
    x = low_rank_data(40)
    only_unpaired = SemiSupervisedData(unpaired={"a": TensorSource(x["a"])})
    result = run(fresh_model(), only_unpaired, tmp_path / "u", epochs=1)
    assert set(result.history[0]["loss"]) == {"total", "unpaired_a"}
    only_paired = SemiSupervisedData(paired={m: TensorSource(v) for m, v in x.items()})
    result = run(fresh_model(), only_paired, tmp_path / "p", epochs=1)
    assert set(result.history[0]["loss"]) == {"total", "paired"}


def _ddp_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))  # fmt: skip
    torch.set_num_threads(1)
    model = fresh_model(noise=0.0)
    data = make_semi_supervised(low_rank_data(128), supervision=0.25, seed=0, unpaired="rest")  # 32 + 48 + 48
    result = run(model, data, out_dir, epochs=2, evaluate=lambda m: {"w": float(m.dec["a"].weight.sum())})
    torch.save({"model": model.state_dict(), "history": result.history}, f"{out_dir}/rank{rank}.pt")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_ddp_two_cpu_processes_match_one(tmp_path):
    """Two Gloo ranks share each global batch; without model noise they follow the one-process run."""
    torch.multiprocessing.start_processes(
        _ddp_worker, args=(2, _free_port(), str(tmp_path / "ddp")), nprocs=2, start_method="spawn"
    )
    results = {rank: torch.load(tmp_path / "ddp" / f"rank{rank}.pt") for rank in (0, 1)}

    single = fresh_model(noise=0.0)
    data = make_semi_supervised(low_rank_data(128), supervision=0.25, seed=0, unpaired="rest")
    reference = run(single, data, tmp_path / "one", epochs=2, evaluate=lambda m: {"w": float(m.dec["a"].weight.sum())})
    for rank in (0, 1):
        state, history = results[rank]["model"], results[rank]["history"]
        for k, v in single.state_dict().items():
            torch.testing.assert_close(state[k], v, rtol=1e-4, atol=1e-5)
        assert [r["metrics"] for r in history] == [r["metrics"] for r in results[0]["history"]]  # from rank 0
        for a, b in zip(history, reference.history, strict=True):
            assert a["loss"]["total"] == pytest.approx(b["loss"]["total"], rel=1e-4)
    assert len((tmp_path / "ddp" / "metrics.jsonl").read_text().splitlines()) == 2
    assert (tmp_path / "ddp" / "best.pt").is_file()


def test_real_svae_on_mnist_split(tmp_path, shared_data):
    """The registry's SVAE trains on real MNIST half-images: finite terms, falling loss, a metric-chosen best."""
    from models import build_model
    from training.data.mnist import load_mnist, split_halves

    mnist = load_mnist(shared_data / "mnist")
    data = make_semi_supervised(split_halves(mnist.x_train[:128]), supervision=0.5, seed=0, unpaired="rest")
    held_out = split_halves(mnist.x_test[:100])

    def evaluate(model):  # cross-generation error of the bottom half given the top half
        bottom = model.reconstruct({"top": held_out["top"]})["bottom"].reshape(held_out["bottom"].shape)
        return {"bottom_mse": float(((bottom - held_out["bottom"]) ** 2).mean())}

    torch.manual_seed(0)
    model = build_model("svae", experiment="mnist-split")
    result = run(model, data, tmp_path, epochs=2, batch_size=32, lr=1e-3, evaluate=evaluate,
                 select_metric="bottom_mse", higher_is_better=False)  # fmt: skip
    first, second = (r["loss"] for r in result.history)
    assert result.history[0]["steps"] == 2  # ceil(64 / 32): 64 paired, 32 + 32 unpaired
    assert all(math.isfinite(v) for v in first.values()) and len(first) > 1
    assert second["total"] < first["total"]
    mse = [r["metrics"]["bottom_mse"] for r in result.history]
    assert result.best_epoch == 1 + mse.index(min(mse))
    assert load_checkpoint(tmp_path / "best.pt")["epoch"] == result.best_epoch
