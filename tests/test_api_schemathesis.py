"""Property-based fuzzing of the whole API from its OpenAPI schema (schemathesis) against a live server: no input
may produce a server error, and every answer must match the documented status codes, media types and schemas.
Slow (a few hundred requests): ``pytest -m slow tests/test_api_schemathesis.py``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from api_helpers import live_server, server_env, serving_model

pytestmark = pytest.mark.slow
API_KEY = "fuzz-key"


def test_schemathesis_finds_no_server_error_or_schema_violation(tmp_path: Path) -> None:
    program = shutil.which("schemathesis") or shutil.which("st")
    if program is None:
        pytest.skip("schemathesis is not installed (pip install -e '.[dev]')")
    env = server_env(f"sqlite:///{tmp_path / 'fuzz.sqlite'}", serving_model(tmp_path), tmp_path, API_KEY=API_KEY)
    with live_server(env, tmp_path) as server:
        done = subprocess.run(
            [
                program, "run", f"{server.url}/openapi.json", "--checks", "all",
                # Not checked: "schema-valid data must be accepted": a schema cannot say that a file must be MGF,
                # that a SMILES must parse, or that exactly one of two query parameters is needed.
                "--exclude-checks", "positive_data_acceptance",
                "--max-examples", "40", "--seed", "1", "--request-timeout", "60",
                "--header", f"X-API-Key: {API_KEY}",
            ],
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
