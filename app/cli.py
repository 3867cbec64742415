"""The `msvae` command line (see DESIGN.md). Each subcommand imports its implementation lazily,
so `msvae --help` stays fast and a service install does not load training code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

EXPERIMENTS = ["mnist-split", "mnist-split-3", "mnist-svhn", "cub-captions", "spectra"]
MODELS = ["svae", "svae-star", "vaevae", "vaevae-a", "vaevae-star", "mmvae", "mvae", "jmvae"]


def _not_yet(name: str) -> Callable[[argparse.Namespace], int]:
    def run(_: argparse.Namespace) -> int:
        print(f"msvae {name}: not yet implemented", file=sys.stderr)
        return 2

    return run


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
    p.set_defaults(func=_not_yet("annotate"))

    p = sub.add_parser("evaluate-retrieval", help="rank the true structures of annotated spectra")
    p.add_argument("query")
    p.add_argument("--candidates", required=True)
    p.add_argument("--model", default=None)
    p.add_argument("--out", default=None)
    p.set_defaults(func=_not_yet("evaluate-retrieval"))

    p = sub.add_parser("train", help="train one model on one experiment at one supervision level")
    p.add_argument("experiment", choices=EXPERIMENTS)
    p.add_argument("--model", required=True, choices=MODELS)
    p.add_argument("--supervision", type=float, default=1.0)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--data", default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--device", default="auto")
    p.set_defaults(func=_not_yet("train"))

    p = sub.add_parser("reproduce", help="run the paper's sweep for an experiment")
    p.add_argument("experiment", choices=EXPERIMENTS)
    p.add_argument("--models", nargs="+", default=None, choices=MODELS)
    p.add_argument("--supervision-levels", nargs="+", type=float, default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.set_defaults(func=_not_yet("reproduce"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `msvae` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
