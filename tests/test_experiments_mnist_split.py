"""train_one of MNIST-Split and MNIST-Split-3 on a few hundred real MNIST images for one epoch, and the registry."""

from __future__ import annotations

import json

import pytest
import torch

from app.cli import main
from training.checkpoint import load_checkpoint
from training.data.mnist import evaluation_sets, load_mnist
from training.experiments import EXPERIMENTS, METRIC_KEYS, get_train_one
from training.experiments.common import _TEST_STREAM, first_rows
from training.experiments.mnist_split import split_score
from training.oracles import load_mnist_oracle, train_mnist_oracle
from training.trainer import _EVAL_STREAM, derived_seed

N_TRAIN, N_VALID, N_TEST = 300, 200, 300


@pytest.fixture(scope="module")
def oracle_path(shared_data, tmp_path_factory):
    """A small real ResNet-18 oracle (width 4, one epoch on 500 images): fast to train, same code path."""
    path = tmp_path_factory.mktemp("oracle") / "mnist_resnet18.pt"
    train_mnist_oracle(shared_data / "mnist", path, epochs=1, width=4, max_train=500)
    return path


def test_registry():
    assert set(EXPERIMENTS) == {"mnist-split", "mnist-split-3", "mnist-svhn", "cub-captions", "spectra"}
    assert get_train_one("mnist-split").func.__name__ == "train_split"
    with pytest.raises(ValueError, match="unknown experiment"):
        get_train_one("mnist-split-4")


@pytest.mark.parametrize("experiment, supervision", [("mnist-split", 0.5), ("mnist-split-3", 0.1)])
def test_train_one_writes_files_and_metrics(shared_data, oracle_path, tmp_path, experiment, supervision):
    record = get_train_one(experiment)(
        "svae", supervision, epochs=1, data_dir=shared_data, out_dir=tmp_path, device="cpu", seed=3,
        max_train=N_TRAIN, max_valid=N_VALID, max_test=N_TEST, oracle=oracle_path, progress=False,
    )  # fmt: skip
    keys = set(METRIC_KEYS[experiment])
    for name in ("best.pt", "last.pt", "metrics.json", "metrics.jsonl", "best_metrics.json", "result.json"):
        assert (tmp_path / name).is_file(), name
    assert json.loads((tmp_path / "result.json").read_text()) == record
    assert set(record["metrics"]) == set(record["valid_metrics"]) == keys
    # accuracies are shares of the evaluated images
    for metrics, n in ((record["valid_metrics"], N_VALID), (record["metrics"], N_TEST)):
        for v in metrics.values():
            assert 0.0 <= v <= 1.0 and (v * n) == pytest.approx(round(v * n))
    assert (record["n_valid"], record["n_test"], record["epochs"], record["best_epoch"]) == (N_VALID, N_TEST, 1, 1)
    n_parts = len(keys) - 1
    paired = round(supervision * N_TRAIN)
    assert record["data"]["paired"] == paired
    # the paper's code's unpaired streams (the default): every image's strips, paired ones included
    assert record["data"]["unpaired"] == dict.fromkeys(record["data"]["unpaired"], N_TRAIN)
    assert len(record["data"]["unpaired"]) == n_parts and record["unpaired"] == "all"
    assert json.loads((tmp_path / "best_metrics.json").read_text())["metrics"] == record["valid_metrics"]
    assert record["oracle"]["width"] == 4 and record["max_train"] == N_TRAIN

    # the recorded metrics are those of the saved best checkpoint: rescoring it under the same seeds gives them back
    from models import build_model

    model = build_model("svae", experiment)
    model.load_state_dict(load_checkpoint(tmp_path / "best.pt")["model"])
    model.eval()
    mnist = load_mnist(shared_data)
    sets = evaluation_sets(mnist.x_test, mnist.y_test, n_parts)
    score = split_score(load_mnist_oracle(oracle_path))
    torch.manual_seed(derived_seed(3, 1, _EVAL_STREAM))
    assert score(model, first_rows(sets.valid, N_VALID)) == record["valid_metrics"]
    torch.manual_seed(derived_seed(3, _TEST_STREAM))
    assert score(model, first_rows(sets.test, N_TEST)) == record["metrics"]


def test_cli_train(shared_data, oracle_path, tmp_path, capsys):
    code = main(["train", "mnist-split", "--model", "vaevae", "--supervision", "0.01", "--epochs", "1",
                 "--data", str(shared_data), "--out", str(tmp_path), "--device", "cpu", "--max-train", "200",
                 "--max-valid", "100", "--max-test", "100", "--oracle", str(oracle_path)])  # fmt: skip
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "result.json").read_text())
    assert printed["model"] == "vaevae" and printed["supervision"] == 0.01 and printed["data"]["paired"] == 2


def test_cli_oracle_command_maps_to_the_training_options():
    from app.cli import build_parser

    args = build_parser().parse_args(["oracle", "--data", "d", "--epochs", "3", "--width", "32"])
    assert (args.func.__name__, args.data, args.epochs, args.width, args.out) == ("_oracle", "d", 3, 32, "data/oracles")
    defaults = build_parser().parse_args(["oracle"])
    assert (defaults.epochs, defaults.width) == (10, 64)  # the paper's recipe


def test_a_quick_run_scores_with_the_shipped_oracle(shared_data, tmp_path, monkeypatch, capsys):
    """Without --oracle and without data/oracles/ here, a quick run trains the model only and scores it with the
    oracle shipped in the package; a missing --oracle file is an error that says how to make one."""
    from training.oracles import SHIPPED_MNIST_ORACLE

    monkeypatch.chdir(tmp_path)
    argv = ["train", "mnist-split", "--model", "svae", "--epochs", "1", "--data", str(shared_data), "--out", "run",
            "--device", "cpu", "--max-train", "200", "--max-valid", "100", "--max-test", "100"]  # fmt: skip
    assert main(argv) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["oracle"]["path"] == str(SHIPPED_MNIST_ORACLE) and record["oracle"]["test_accuracy"] > 0.97
    assert not (tmp_path / "data").exists()  # no oracle was trained
    assert main([*argv, "--oracle", "missing.pt"]) == 2
    assert "msvae oracle" in capsys.readouterr().err


def test_train_cli_sets_the_data_rule_and_the_papers_code_networks(shared_data, tmp_path):
    """--unpaired rest and --paper-code-nets reach the run: the split and the model recorded in result.json."""
    import json

    from app.cli import main

    out = tmp_path / "run"
    status = main(["train", "mnist-split", "--model", "vaevae", "--supervision", "0.1", "--epochs", "1",
                   "--max-train", "200", "--max-valid", "20", "--max-test", "20", "--unpaired", "rest",
                   "--paper-code-nets", "--data", str(shared_data), "--out", str(out), "--device", "cpu"])  # fmt: skip
    record = json.loads((out / "result.json").read_text())
    assert status == 0 and record["unpaired"] == "rest"
    assert record["data"] == {"paired": 20, "unpaired": {"top": 90, "bottom": 90}}
    assert record["model_config"]["paper_code_nets"] is True
    assert record["model_config"]["parameters"] == 4_814_218  # the paper's code's VAEVAE
