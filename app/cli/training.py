"""``msvae train``, ``msvae reproduce`` and ``msvae oracle``: the paper's experiments. Experiment and model
choices come from the registries (:data:`training.experiments.EXPERIMENTS`, :data:`models.registry.MODEL_NAMES`)."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from typing import Any

from models.registry import MODEL_NAMES
from training.experiments import EXPERIMENTS


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``train``, ``reproduce`` and ``oracle`` to the ``msvae`` subcommands."""
    p = sub.add_parser("train", help="train one model on one experiment at one supervision level")
    p.add_argument("experiment", choices=list(EXPERIMENTS), help="the experiment (data set and networks)")
    p.add_argument("--model", required=True, choices=MODEL_NAMES, help="the model of the paper to train")
    p.add_argument(
        "--supervision", type=float, default=1.0, help="fraction of the training samples that are paired (default 1)"
    )
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the paper's, Appendix A)")
    p.add_argument(
        "--out",
        default=None,
        help="run folder for checkpoints and metrics (default runs/EXPERIMENT/MODEL_sSUPERVISION)",
    )
    p.add_argument("--bin-width", type=float, default=None, help="spectra: m/z bin width in Da (default 0.1)")
    p.add_argument(
        "--intensity",
        default=None,
        help="spectra: sqrt (default), log1p (the paper's code), log1p-relative (the paper's 0-100 scale) or linear",
    )
    _add_run_options(p)
    p.set_defaults(func=_train)

    p = sub.add_parser("reproduce", help="run the paper's sweep for an experiment and write its report")
    p.add_argument("experiment", choices=list(EXPERIMENTS), help="the experiment (data set and networks)")
    p.add_argument("--models", nargs="+", default=None, choices=MODEL_NAMES, help="default: the four of Table 1")
    p.add_argument("--supervision-levels", nargs="+", type=float, default=None, help="default: the paper's nine")
    p.add_argument("--epochs", type=int, default=None, help="default: the paper's (Appendix A)")
    p.add_argument("--out-dir", default="reports", help="where EXPERIMENT.md/.json/.png go (default reports)")
    p.add_argument(
        "--runs-dir", default="runs", help="checkpoints and per-run results; a rerun resumes from them (default runs)"
    )
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process (default 1)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    p.add_argument(
        "--stored-only",
        action="store_true",
        help="train nothing: report the runs already in --runs-dir, list the missing ones",
    )
    _add_run_options(p)
    p.set_defaults(func=_reproduce)

    p = sub.add_parser("evaluate-formula", help="MassBank retrieval among library structures of the true formula")
    p.add_argument("models", nargs="+", help="model directories (one binning and fingerprint)")
    p.add_argument("--data", default=None, help="folder with massbank/ and molecules/ (default MSVAE_DATA_DIR)")
    p.add_argument("--part", default="test", choices=["train", "val", "test"], help="split part queried")
    p.add_argument("--split", default=None, help="split JSON (default: the model's run folder split.json)")
    p.add_argument("--max-queries", type=int, default=None, help="a seeded sample of N query spectra")
    p.add_argument("--library-cache", default="runs/library", help="structure library index and cache")
    p.add_argument("--out", default=None, help="JSON report (default formula-retrieval.json)")
    p.set_defaults(func=_evaluate_formula)

    p = sub.add_parser("oracle", help="train and save the MNIST-Split ResNet-18 oracle")
    p.add_argument("--data", default=None, help="mnist.npz or a folder holding it (default MSVAE_DATA_DIR)")
    p.add_argument("--out", default="data/oracles", help="folder for mnist_resnet18.pt and its .json record")
    p.add_argument("--epochs", type=int, default=10, help="training epochs (the paper: 10)")
    p.add_argument("--width", type=int, default=64, help="channels of the first stage (the paper: 64)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--device", default=None, help="torch device (default: CUDA when available, else CPU)")
    p.add_argument("--log-every", type=int, default=100, help="print the loss every N steps (0: never)")
    p.set_defaults(func=_oracle)


def _add_run_options(p: argparse.ArgumentParser) -> None:
    """The options ``train`` and ``reproduce`` share."""
    p.add_argument("--data", default=None, help="data folder (default MSVAE_DATA_DIR)")
    p.add_argument("--device", default="auto", help="torch device; auto: CUDA when available, else CPU")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--max-train", type=int, default=None, help="keep the first N training samples (quick runs)")
    p.add_argument("--max-valid", type=int, default=None, help="score the first N validation samples per epoch")
    p.add_argument("--max-test", type=int, default=None, help="score the first N test samples (quick runs)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the paper's)")
    p.add_argument(
        "--oracle",
        default=None,
        help="MNIST-Split oracle file (default: data/oracles/mnist_resnet18.pt, else the shipped one)",
    )
    p.add_argument(
        "--unpaired",
        choices=["all", "rest"],
        default=None,
        help="where unpaired batches come from: all = every training sample, paired ones included (the paper's "
        "code; the default of the image experiments), rest = only the samples that are not paired",
    )
    p.add_argument(
        "--paper-code-nets",
        action="store_true",
        help="MNIST-Split(-3): the networks of the paper's code instead of Appendix A's tables (models/networks)",
    )
    p.add_argument(
        "--subset-terms",
        choices=["text", "code"],
        default=None,
        help="three or more modalities: eq. 29-32 as printed (text, the default) or as the paper's code computes "
        "them (code); see models/losses.py",
    )


def _data_dir(value: str | None) -> str:
    """``--data``, else ``MSVAE_DATA_DIR`` (the settings' data folder)."""
    if value is not None:
        return value
    from app.settings import get_settings

    return str(get_settings().data_dir)


def _run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The subset, oracle, learning-rate, data-rule and model options that were given (an experiment need not take
    those left out)."""
    given = {"max_train": args.max_train, "max_valid": args.max_valid, "max_test": args.max_test,
             "oracle": args.oracle, "lr": args.lr, "unpaired": args.unpaired, "subset_terms": args.subset_terms,
             "paper_code_nets": args.paper_code_nets or None}  # fmt: skip
    return {k: v for k, v in given.items() if v is not None}


def _binning(args: argparse.Namespace) -> dict[str, Any]:
    """``--bin-width``/``--intensity`` as given, checked before any data is read (raises ValueError)."""
    binning = {k: v for k, v in (("bin_width", args.bin_width), ("intensity", args.intensity)) if v is not None}
    if binning:
        from models.featurize.binning import BinningSpec

        if args.experiment != "spectra":
            raise ValueError("--bin-width and --intensity are for spectra only")
        BinningSpec(**binning)
    return binning


def _train(args: argparse.Namespace) -> int:
    from training.experiments import get_train_one
    from training.trainer import seed_everything

    try:
        binning = _binning(args)
    except ValueError as err:
        print(f"msvae train {args.experiment}: {err}", file=sys.stderr)
        return 2
    out = args.out or f"runs/{args.experiment}/{args.model}_s{args.supervision:g}"
    options = {**_run_options(args), **({"binning": binning} if binning else {})}
    seed_everything(args.seed)
    try:
        record = get_train_one(args.experiment)(
            args.model, args.supervision, epochs=args.epochs, data_dir=_data_dir(args.data), out_dir=out,
            device=args.device, seed=args.seed, **options,
        )  # fmt: skip
    except FileNotFoundError as err:
        print(f"msvae train {args.experiment}: {err}", file=sys.stderr)
        return 2
    print(json.dumps(record, indent=2))
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from importlib.util import find_spec

    from training.reproduce import reproduce

    if find_spec("matplotlib") is None:  # checked before hours of training, not when the plots are drawn
        print("msvae reproduce draws its plots with matplotlib: pip install 'msvae[reports]'", file=sys.stderr)
        return 2
    try:
        paths = reproduce(
            args.experiment, args.models, args.supervision_levels, out_dir=args.out_dir, epochs=args.epochs,
            data_dir=_data_dir(args.data), runs_dir=args.runs_dir, device=args.device, seed=args.seed,
            jobs=args.jobs, threads=args.threads, command=shlex.join(["msvae", *args.argv]),
            stored_only=args.stored_only, **_run_options(args),
        )  # fmt: skip
    except FileNotFoundError as err:
        print(f"msvae reproduce {args.experiment}: {err}", file=sys.stderr)
        return 2
    for kind, path in paths.items():
        print(f"wrote {kind}: {path}")
    return 0


def _oracle(args: argparse.Namespace) -> int:
    from pathlib import Path

    import torch

    from training.oracles import MNIST_ORACLE_FILE, train_mnist_oracle

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    _, record = train_mnist_oracle(
        _data_dir(args.data), Path(args.out) / MNIST_ORACLE_FILE, args.epochs, args.width, seed=args.seed,
        device=device, log_every=args.log_every,
    )  # fmt: skip
    print(json.dumps(record, indent=2))
    return 0


def _evaluate_formula(args: argparse.Namespace) -> int:
    from training.spectra.formula_eval import run_evaluate_formula

    args.data = _data_dir(args.data)
    return run_evaluate_formula(args)
