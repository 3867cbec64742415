"""Checkpoint files: written atomically (a crash never leaves half a file), read onto any device."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn


def atomic_write_bytes(path: Path, write: Any) -> None:
    """Call ``write(file_object)`` on a temporary file beside ``path``, then rename it over ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as f:
        write(f)
    os.replace(tmp, path)


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """``torch.save`` of ``state`` to ``path``, atomically."""
    atomic_write_bytes(Path(path), lambda f: torch.save(state, f))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A checkpoint dict written by :func:`save_checkpoint` (tensors on ``map_location``)."""
    return torch.load(path, map_location=map_location, weights_only=False)


def load_weights(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """Load the ``"model"`` weights of a trainer checkpoint (``best.pt`` or ``last.pt``) into ``model``.

    Returns the checkpoint, whose ``"epoch"`` and ``"metrics"`` say where the weights come from.
    """
    device = next(model.parameters()).device
    state = load_checkpoint(path, map_location=device)
    model.load_state_dict(state["model"])
    return state


def write_json(obj: Any, path: str | Path) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(Path(path), lambda f: f.write(json.dumps(obj, indent=2).encode() + b"\n"))
