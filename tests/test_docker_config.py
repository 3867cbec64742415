"""Dockerfile and docker-compose.yml: no Docker engine runs here, so the compose file is validated by the compose
client (``docker compose config``, or Debian's ``docker-compose config``), and the commands the containers run --
the service command and its health check -- are run here exactly as written, against SQLite and, when
``MSVAE_TEST_POSTGRES_URL`` is set, PostgreSQL (the compose file's database)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from api_helpers import serving_model
from databases import database_params, scratch_database

ROOT = Path(__file__).resolve().parents[1]
PORT = 8000  # the port the containers use; the commands are run unchanged


def _dockerfile_instruction(name: str) -> list[str]:
    """The JSON (exec form) arguments of the Dockerfile's ``name`` instruction, continuation lines joined."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    lines = [line.strip() for line in text.splitlines() if line.strip().startswith(name + " ")]
    assert len(lines) == 1, f"expected one {name} in the Dockerfile"
    return json.loads(lines[0][lines[0].index("[") :])


def _compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


@pytest.fixture(scope="module")
def compose() -> dict:
    client = _compose_client()
    if client is None:
        pytest.skip("no compose client (docker compose plugin or Debian's docker-compose)")
    env = {**os.environ, "POSTGRES_PASSWORD": "secret", "MSVAE_API_KEY": "k"}
    done = subprocess.run(
        [*client, "-f", str(ROOT / "docker-compose.yml"), "config"], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_compose_file_is_valid_and_wired(compose: dict) -> None:
    api, db = compose["services"]["api"], compose["services"]["db"]
    assert db["image"].startswith("postgres:")
    assert any(str(v).startswith("pgdata:") for v in db["volumes"]) or any(
        isinstance(v, dict) and v.get("source") == "pgdata" for v in db["volumes"]
    )
    assert "pgdata" in compose["volumes"]
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    url = api["environment"]["MSVAE_DATABASE_URL"]
    assert url == "postgresql+psycopg://msvae:secret@db:5432/msvae"  # the password came from the environment
    assert api["environment"]["MSVAE_API_KEY"] == "k"
    assert db["healthcheck"]["test"][0] == "CMD-SHELL" and "pg_isready" in db["healthcheck"]["test"][1]


def test_compose_and_dockerfile_run_the_same_commands(compose: dict) -> None:
    api = compose["services"]["api"]
    assert api["command"] == _dockerfile_instruction("CMD")
    assert api["healthcheck"]["test"] == ["CMD", *_dockerfile_instruction("HEALTHCHECK")]


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("backend", database_params())
def test_the_container_commands_serve_and_pass_the_health_check(backend: str, compose: dict, tmp_path: Path) -> None:
    command = compose["services"]["api"]["command"]
    health = compose["services"]["api"]["healthcheck"]["test"][1:]
    for program in (command[0], health[0]):
        if shutil.which(program) is None:
            pytest.skip(f"{program!r} is not on PATH; the container commands are run unchanged")
    if not _port_free(PORT):
        pytest.skip(f"port {PORT} is taken on this machine; the container command is run unchanged")
    with scratch_database(backend, tmp_path) as url:
        env = {**os.environ, "MSVAE_DATABASE_URL": url, "MSVAE_MODEL": serving_model(tmp_path),
               "MSVAE_DEFAULT_CANDIDATES": "false"}  # fmt: skip
        env["MSVAE_DATA_DIR"] = str(tmp_path)
        with open(tmp_path / "serve.log", "wb") as log:
            server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
            try:
                deadline = time.monotonic() + 120
                while subprocess.run(health, capture_output=True).returncode != 0:
                    assert server.poll() is None, (tmp_path / "serve.log").read_text()
                    assert time.monotonic() < deadline, "the health check never passed"
                    time.sleep(0.5)
            finally:
                server.terminate()
                server.wait(30)
        log_text = (tmp_path / "serve.log").read_text()
        assert f"Uvicorn running on http://0.0.0.0:{PORT}" in log_text
