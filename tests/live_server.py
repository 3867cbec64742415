"""A ``msvae serve`` subprocess on a free loopback port, for the tests and the serving benchmark (real uvicorn,
real sockets)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """``python -m app.cli serve`` with ``env`` (added to this process's environment), logging to ``log_path``.

    ``start`` returns once ``/health`` answers; ``kill`` is SIGKILL (a crash), ``stop`` a clean shutdown.
    """

    def __init__(
        self,
        env: dict[str, str],
        log_path: str | Path,
        *,
        port: int | None = None,
        workers: int = 1,
        cwd: str | Path | None = None,
    ) -> None:
        self.env = {**os.environ, **env}
        self.cwd = cwd  # the checkout whose code runs (``python -m`` imports from the working directory first)
        self.log_path = Path(log_path)
        self.port = port or free_port()
        self.workers = workers
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout: float = 120.0) -> LiveServer:
        command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--workers", str(self.workers)]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 -- closed in stop/kill
        self.process = subprocess.Popen(command, env=self.env, cwd=self.cwd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"the server did not answer /health within {timeout:g} s:\n{self.log_tail()}")

    def log_tail(self, n_chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-n_chars:] if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: the server gets no chance to clean up (as in a crash or an OOM kill)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)
        self._close_log()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM and wait (SIGKILL after ``timeout``)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)
        self._close_log()

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
