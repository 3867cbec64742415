"""The ``msvae`` command line (DESIGN.md). One module per command group adds its subcommands to the parser and
calls the project's functions; implementations are imported when a command runs, so a service install never
loads training code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from app.cli import annotate, candidates, service, training

GROUPS = (service, candidates, annotate, training)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand of DESIGN.md."""
    parser = argparse.ArgumentParser(prog="msvae", description="Multimodal VAEs and MS/MS spectrum annotation.")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in GROUPS:
        group.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``msvae`` console script; returns the exit status."""
    from app.settings import get_settings

    get_settings.cache_clear()  # each command reads the environment as it is when it runs
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in reports
    return int(args.func(args) or 0)
