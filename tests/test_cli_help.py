"""``msvae --help`` lists every command of DESIGN.md, every flag says what it does, and the experiment and model
choices are the registries'."""

from __future__ import annotations

import argparse

from app.cli import build_parser
from models.registry import MODEL_NAMES
from training.experiments import EXPERIMENTS


def _commands(parser: argparse.ArgumentParser, prefix: str = "msvae") -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command's parser by its full name."""
    found = {prefix: parser}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.update(_commands(sub, f"{prefix} {name}"))
    return found


def test_every_flag_has_a_help_text() -> None:
    commands = _commands(build_parser())
    assert {"msvae serve", "msvae db upgrade", "msvae candidates import", "msvae annotate", "msvae evaluate-retrieval",
            "msvae train", "msvae reproduce", "msvae oracle"} <= set(commands)  # fmt: skip
    silent = [
        f"{name} {action.dest}"
        for name, parser in commands.items()
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction) and not action.help
    ]
    assert silent == []


def test_choices_come_from_the_registries() -> None:
    commands = _commands(build_parser())
    for name in ("msvae train", "msvae reproduce"):
        actions = {a.dest: a for a in commands[name]._actions}
        assert list(actions["experiment"].choices) == list(EXPERIMENTS)
        assert tuple(actions["model" if name.endswith("train") else "models"].choices) == MODEL_NAMES
