"""A text progress bar for long imports: rewritten in place on a terminal, a line every few percent otherwise
(so a log file shows the progress too, without one line per update)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    """``update(done)`` redraws ``label [#####.....] done/total rate/s, eta``; ``close()`` ends the line."""

    def __init__(self, total: int, label: str = "", stream: TextIO | None = None, width: int = 30) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self._start = time.monotonic()
        self._tty = self.stream.isatty()
        self._last_percent = -1

    def update(self, done: int, extra: str = "", since: int = 0) -> None:
        """Show ``done`` of ``total``; the rate counts what was done after ``since`` (a resumed run's start)."""
        percent = min(100, 100 * done // self.total)
        if not self._tty and percent < self._last_percent + 5 and done < self.total:
            return
        self._last_percent = percent
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = (done - since) / elapsed
        eta = (self.total - done) / rate if rate > 0 else float("inf")
        filled = self.width * percent // 100
        bar = "#" * filled + "." * (self.width - filled)
        line = f"{self.label} [{bar}] {percent:3d}% {done:,}/{self.total:,} {rate:,.0f}/s eta {eta:,.0f} s {extra}"
        self.stream.write(("\r" + line) if self._tty else (line + "\n"))
        self.stream.flush()

    def close(self) -> None:
        if self._tty:
            self.stream.write("\n")
            self.stream.flush()
