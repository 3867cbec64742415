"""The service's start with a lab-sized candidate database: seconds from launching ``msvae serve`` to ``/health``
answering with the candidates loaded, and the server's resident memory then; the median of several starts.

    python3 benchmarks/service_start.py --database-url sqlite:////tmp/msvae-big.sqlite [--runs 3]

Each start is the real command (``python3 -m app.cli serve``: migrations, the default-set check, the model, the
candidate store, uvicorn) on a free loopback port, stopped before the next one. The database must be imported
already (``benchmarks/import_candidates.py``). Writes
benchmarks/results/service_start-<sqlite|postgresql>[<--result-suffix>].json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from _machine import save

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the project, and the tests' live-server kit

from live_server import LiveServer  # noqa: E402


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--model", default="default")
    parser.add_argument("--result-suffix", default="", help="added to the result file's name (repeated runs)")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {"MSVAE_DATABASE_URL": args.database_url, "MSVAE_DATA_DIR": tmp, "MSVAE_MODEL": args.model,
               "PYTHONPATH": str(ROOT)}  # fmt: skip
        for run in range(args.runs):
            load = os.getloadavg()
            start = time.perf_counter()
            server = LiveServer(env, Path(tmp) / f"start-{run}.log", cwd=ROOT).start(timeout=900)
            seconds = time.perf_counter() - start
            try:
                health = httpx.get(f"{server.url}/health").json()
                runs.append({"start_s": round(seconds, 2), "rss_mb": round(_rss_mb(server.process.pid), 1),
                             "candidates": health["candidates"], "load_average_before": load})  # fmt: skip
            finally:
                server.stop()
            print(runs[-1], flush=True)
    figures = {
        "database": "sqlite" if args.database_url.startswith("sqlite") else "postgresql",
        "candidates": runs[-1]["candidates"],
        "runs": runs,
        "start_s_median": statistics.median(r["start_s"] for r in runs),
        "rss_mb_median": statistics.median(r["rss_mb"] for r in runs),
        "load_average_after": os.getloadavg(),
        "note": "from launching `msvae serve` to /health answering; 2 CPU cores (see the load averages)",
    }
    print(figures, flush=True)
    save(f"service_start-{figures['database']}{args.result_suffix}", figures)


if __name__ == "__main__":
    main()
