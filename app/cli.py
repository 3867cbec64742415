"""The `msvae` command line (see DESIGN.md). Each subcommand imports its implementation lazily,
so `msvae --help` stays fast and a service install does not load training code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXPERIMENTS = ["mnist-split", "mnist-split-3", "mnist-svhn", "cub-captions", "spectra"]
MODELS = ["svae", "svae-star", "vaevae", "vaevae-a", "vaevae-star", "mmvae", "mvae", "jmvae"]


def _db_upgrade(_: argparse.Namespace) -> int:
    from app.settings import Settings
    from migrations import current_revision, upgrade_database

    url = Settings().database_url
    upgrade_database(url)
    print(f"database at revision {current_revision(url)} (head)")
    return 0


def _candidates_import(args: argparse.Namespace) -> int:
    from app.candidates.cli import run_import

    return run_import(args.file, source=args.source)


def _serve(args: argparse.Namespace) -> int:
    from app.main import serve

    serve(args.host, args.port, args.workers)
    return 0


def _data_dir(value: str | None) -> str:
    """``--data``, else ``MSVAE_DATA_DIR`` (the settings' data folder)."""
    if value is not None:
        return value
    from app.settings import Settings

    return str(Settings().data_dir)


def _train(args: argparse.Namespace) -> int:
    import json

    from training.experiments import get_train_one
    from training.trainer import seed_everything

    out = args.out or f"runs/{args.experiment}/{args.model}_s{args.supervision:g}"
    binning = {k: v for k, v in (("bin_width", args.bin_width), ("intensity", args.intensity)) if v is not None}
    if binning:
        from models.featurize.binning import BinningSpec

        if args.experiment != "spectra":
            print(f"msvae train {args.experiment}: --bin-width and --intensity are for spectra only", file=sys.stderr)
            return 2
        try:
            BinningSpec(**binning)  # a bad setting fails here, before any data is read
        except ValueError as err:
            print(f"msvae train spectra: {err}", file=sys.stderr)
            return 2
    options = {**_quick_run_options(args), **({"binning": binning} if binning else {})}
    seed_everything(args.seed)
    try:
        record = get_train_one(args.experiment)(
            args.model, args.supervision, epochs=args.epochs, data_dir=_data_dir(args.data), out_dir=out,
            device=args.device, seed=args.seed, **options,
        )  # fmt: skip
    except (FileNotFoundError, ImportError) as err:
        print(f"msvae train {args.experiment}: {err}", file=sys.stderr)
        return 2
    print(json.dumps(record, indent=2))
    return 0


def _quick_run_options(args: argparse.Namespace) -> dict:
    """The subset, oracle and learning-rate options that were given (an experiment need not take those left out)."""
    given = {"max_train": args.max_train, "max_valid": args.max_valid, "max_test": args.max_test, "oracle": args.oracle,
             "lr": args.lr}  # fmt: skip
    return {k: v for k, v in given.items() if v is not None}


def _reproduce(args: argparse.Namespace) -> int:
    import shlex

    from training.reproduce import reproduce

    try:
        paths = reproduce(
            args.experiment, args.models, args.supervision_levels, out_dir=args.out_dir, epochs=args.epochs,
            data_dir=_data_dir(args.data), runs_dir=args.runs_dir, device=args.device, seed=args.seed,
            jobs=args.jobs, threads=args.threads, command=shlex.join(["msvae", *args.argv]),
            stored_only=args.stored_only, **_quick_run_options(args),
        )  # fmt: skip
    except (FileNotFoundError, ImportError) as err:
        print(f"msvae reproduce {args.experiment}: {err}", file=sys.stderr)
        return 2
    for kind, path in paths.items():
        print(f"wrote {kind}: {path}")
    return 0


def _oracle(args: argparse.Namespace) -> int:
    from training.oracles import main as train_oracle

    argv = ["--data", _data_dir(args.data), "--out", args.out, "--epochs", str(args.epochs), "--width",
            str(args.width), "--seed", str(args.seed)] + (["--device", args.device] if args.device else [])  # fmt: skip
    train_oracle(argv)
    return 0


def _annotate(args: argparse.Namespace) -> int:
    from app.annotate_cli import run_annotate

    return run_annotate(args)


def _evaluate_retrieval(args: argparse.Namespace) -> int:
    from app.annotate_cli import run_evaluate_retrieval

    return run_evaluate_retrieval(args)


def _evaluate_casmi2017(args: argparse.Namespace) -> int:
    from training.spectra.casmi2017 import run_evaluate_casmi2017

    return run_evaluate_casmi2017(args)


def _evaluate_formula(args: argparse.Namespace) -> int:
    from training.spectra.formula_eval import run_evaluate_formula

    args.data = _data_dir(args.data)
    return run_evaluate_formula(args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of DESIGN.md."""
    parser = argparse.ArgumentParser(prog="msvae", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the HTTP service (migrates the database first)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=_serve)

    p = sub.add_parser("db", help="database administration")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="apply Alembic migrations to MSVAE_DATABASE_URL")
    up.set_defaults(func=_db_upgrade)

    p = sub.add_parser("candidates", help="candidate molecule database")
    csub = p.add_subparsers(dest="candidates_command", required=True)
    imp = csub.add_parser("import", help="add molecules (SMILES list, TSV, SDF or MGF headers)")
    imp.add_argument("file")
    imp.add_argument("--source", default=None, help="where the molecules come from (default: the file name)")
    imp.set_defaults(func=_candidates_import)

    p = sub.add_parser("annotate", help="offline batch annotation of an MGF file")
    p.add_argument("query")
    p.add_argument("--candidates", default=None, help="directory of <TITLE>.tsv candidate lists")
    p.add_argument("--top-k", type=int, default=10)
    p.add_argument("--ppm", type=float, default=10.0)
    p.add_argument("--model", default=None)
    p.add_argument("--out", default=None, help="output .tsv or .json")
    p.set_defaults(func=_annotate)

    p = sub.add_parser("evaluate-retrieval", help="rank the true structures of annotated spectra")
    p.add_argument("query")
    p.add_argument("--candidates", required=True)
    p.add_argument("--model", default=None)
    p.add_argument("--out", default=None)
    p.set_defaults(func=_evaluate_retrieval)

    p = sub.add_parser("evaluate-casmi2017", help="the CASMI 2017 evaluation from the contest's own files")
    p.add_argument("--data", required=True, help="the contest's files, unzipped (CASMI-solutions.csv, ...)")
    p.add_argument("--model", default=None)
    p.add_argument("--out", default=None, help="JSON report (default casmi2017.retrieval.json; plot beside it)")
    p.add_argument(
        "--candidates",
        default="auto",
        choices=["auto", "official", "formula", "mass"],
        help="auto: the official lists when present, else library structures of the solution's formula",
    )
    p.add_argument("--ppm", type=float, default=10.0, help="mass window of --candidates mass")
    p.add_argument("--library", default=None, help="folder with massbank/ and molecules/ (default MSVAE_DATA_DIR)")
    p.add_argument("--library-cache", default=None, help="library index cache (default MSVAE_DATA_DIR/library)")
    p.set_defaults(func=_evaluate_casmi2017)

    p = sub.add_parser("evaluate-formula", help="MassBank retrieval among library structures of the true formula")
    p.add_argument("models", nargs="+", help="model directories (one binning and fingerprint)")
    p.add_argument("--data", default=None, help="folder with massbank/ and molecules/ (default MSVAE_DATA_DIR)")
    p.add_argument("--part", default="test", choices=["train", "val", "test"])
    p.add_argument("--split", default=None, help="split JSON (default: the model's run folder split.json)")
    p.add_argument("--max-queries", type=int, default=None, help="a seeded sample of N query spectra")
    p.add_argument("--library-cache", default="runs/library", help="structure library index and cache")
    p.add_argument("--out", default=None, help="JSON report (default formula-retrieval.json)")
    p.set_defaults(func=_evaluate_formula)

    p = sub.add_parser("train", help="train one model on one experiment at one supervision level")
    p.add_argument("experiment", choices=EXPERIMENTS)
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument("--supervision", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--data", default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-train", type=int, default=None, help="keep the first N training samples (quick runs)")
    p.add_argument("--max-valid", type=int, default=None, help="score the first N validation samples per epoch")
    p.add_argument("--max-test", type=int, default=None, help="score the first N test samples (quick runs)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the paper's)")
    p.add_argument("--oracle", default=None, help="MNIST-Split oracle file (default data/oracles/mnist_resnet18.pt)")
    p.add_argument("--bin-width", type=float, default=None, help="spectra: m/z bin width in Da (default 0.1)")
    p.add_argument("--intensity", default=None, help="spectra: sqrt (default), log1p (the paper's code) or linear")
    p.set_defaults(func=_train)

    p = sub.add_parser("reproduce", help="run the paper's sweep for an experiment")
    p.add_argument("experiment", choices=EXPERIMENTS)
    p.add_argument("--models", nargs="+", default=None, choices=MODELS, help="default: the four of Table 1")
    p.add_argument("--supervision-levels", nargs="+", type=float, default=None, help="default: the paper's nine")
    p.add_argument("--epochs", type=int, default=None, help="default: the paper's (Appendix A)")
    p.add_argument("--max-train", type=int, default=None, help="keep the first N training samples (quick runs)")
    p.add_argument("--max-valid", type=int, default=None, help="score the first N validation samples per epoch")
    p.add_argument("--max-test", type=int, default=None, help="score the first N test samples (quick runs)")
    p.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: the paper's)")
    p.add_argument("--oracle", default=None, help="MNIST-Split oracle file (default data/oracles/mnist_resnet18.pt)")
    p.add_argument("--data", default=None, help="data folder (default MSVAE_DATA_DIR)")
    p.add_argument("--out-dir", default="reports", help="where EXPERIMENT.md/.json/.png go")
    p.add_argument("--runs-dir", default="runs", help="checkpoints and per-run results (a rerun resumes from them)")
    p.add_argument("--device", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once, each in its own process")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--stored-only", action="store_true",
                   help="train nothing: report the runs already in --runs-dir, list the missing ones")  # fmt: skip
    p.set_defaults(func=_reproduce)

    p = sub.add_parser("oracle", help="train and cache the MNIST-Split ResNet-18 oracle")
    p.add_argument("--data", default=None, help="mnist.npz or a folder holding it (default MSVAE_DATA_DIR)")
    p.add_argument("--out", default="data/oracles", help="cache folder (mnist_resnet18.pt and .json)")
    p.add_argument("--epochs", type=int, default=10, help="the paper: 10")
    p.add_argument("--width", type=int, default=64, help="first-stage channels; the paper: 64")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="default: CUDA when available, else CPU")
    p.set_defaults(func=_oracle)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `msvae` console script."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in reports
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
