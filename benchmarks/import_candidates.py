"""A lab-sized candidate database: ``msvae candidates import`` of the 1.9M MOSES molecules and MassBank's structures,
timed file by file, with molecules/s and the database's size on disk.

    python3 benchmarks/import_candidates.py --database-url sqlite:////tmp/msvae-big.sqlite [--workers 2]
    python3 benchmarks/import_candidates.py --database-url postgresql://postgres@127.0.0.1:5432/msvae_bench

Runs the real command (``python3 -m app.cli candidates import FILE``, one process pool per file) against the
given database. With ``--time-limit`` the import is interrupted (SIGTERM) once that many seconds have passed and
the figures are those of the part done; running the same command again resumes it (the first file's row says
from which record). Writes benchmarks/results/import_candidates-<sqlite|postgresql>[<--result-suffix>].json.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import sqlalchemy as sa
from _machine import add_data_argument, save

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.db import make_engine  # noqa: E402
from app.db.migrate import upgrade_database  # noqa: E402

FILES = ["molecules/moses/train.csv.gz", "molecules/moses/test.csv.gz", "molecules/moses/test_scaffolds.csv.gz",
         "massbank/massbank-pos-ms2.mgf.gz"]  # fmt: skip


def database_size(url: str) -> int:
    """Bytes on disk: the SQLite file with its WAL, or PostgreSQL's ``pg_database_size``."""
    engine = make_engine(url)
    try:
        if engine.dialect.name == "sqlite":
            path = Path(engine.url.database)
            return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())
        with engine.connect() as connection:
            return int(connection.scalar(sa.text("SELECT pg_database_size(current_database())")))
    finally:
        engine.dispose()


def count_candidates(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return int(connection.scalar(sa.text("SELECT count(*) FROM candidates")))
    finally:
        engine.dispose()


class LoadSampler(threading.Thread):
    """The 1-minute load average every ``seconds`` while the import runs (how busy the 2 cores were)."""

    def __init__(self, seconds: float = 15.0) -> None:
        super().__init__(daemon=True)
        self.seconds = seconds
        self.samples: list[float] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.seconds):
            self.samples.append(round(os.getloadavg()[0], 2))

    def summary(self) -> dict:
        self.done.set()
        values = self.samples or [round(os.getloadavg()[0], 2)]
        return {"every_s": self.seconds, "median": statistics.median(values), "max": max(values), "samples": values}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", required=True)
    add_data_argument(parser)
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--files", nargs="+", default=FILES, help="paths under --data")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds, then the import is interrupted")
    parser.add_argument("--result-suffix", default="", help="added to the result file's name (repeated runs)")
    args = parser.parse_args()
    # the project first, then what the caller's PYTHONPATH holds (a GPU machine's separately installed packages)
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "MSVAE_DATABASE_URL": args.database_url, "PYTHONPATH": pythonpath}
    upgrade_database(args.database_url)  # a new database: counted from 0 (the command would migrate it too)
    rows = []
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    sampler = LoadSampler()
    sampler.start()
    total_start = time.perf_counter()
    for name in args.files:
        before = count_candidates(args.database_url)
        start = time.perf_counter()
        command = [sys.executable, "-m", "app.cli", "candidates", "import", str(args.data / name),
                   "--workers", str(args.workers)]  # fmt: skip
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        left = None if args.time_limit is None else max(1.0, args.time_limit - (start - total_start))
        try:
            out, _ = child.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGTERM)  # the command stops its pool, keeps what it committed, says how to resume
            out, _ = child.communicate()
        seconds = time.perf_counter() - start
        after = count_candidates(args.database_url)
        found = re.search(r"added (\d+), duplicate (\d+), rejected (\d+)", out)
        row = {"file": name, "seconds": round(seconds, 1), "exit_status": child.returncode,
               "new_rows": after - before, "new_rows_per_s": round((after - before) / seconds, 1),
               "candidates_after": after}  # fmt: skip
        if found:
            added, duplicate, rejected = map(int, found.groups())
            resumed = re.search(r"resumed after record ([\d,]+)", out)
            row.update(records=added + duplicate + rejected, added=added, duplicate=duplicate, rejected=rejected,
                       records_per_s=round((added + duplicate + rejected) / seconds, 1),
                       resumed_after_record=int(resumed.group(1).replace(",", "")) if resumed else 0)  # fmt: skip
        rows.append(row)
        print(rows[-1], flush=True)
        if child.returncode != 0:
            break
    total = time.perf_counter() - total_start
    records = sum(r.get("records", r["new_rows"]) for r in rows)
    dialect = "sqlite" if args.database_url.startswith("sqlite") else "postgresql"
    size = database_size(args.database_url)
    print(f"{records:,} records in {total / 60:.1f} min ({records / total:,.0f}/s); {size / 1e9:.2f} GB on disk")
    save(
        f"import_candidates-{dialect}{args.result_suffix}",
        {
            "database": dialect,
            "workers": args.workers,
            "files": rows,
            "total_seconds": round(total, 1),
            "total_records": records,
            "records_per_s": round(records / total, 1),
            "candidates": count_candidates(args.database_url),
            "database_bytes": size,
            "time_limit_s": args.time_limit,
            "complete": all(r["exit_status"] == 0 for r in rows) and len(rows) == len(args.files),
            "started": started,
            "load_average_before": load_before,
            "load_average_1min_during": sampler.summary(),
            "load_average_at_end": os.getloadavg(),
            "note": f"{os.cpu_count()} CPU cores, shared with other jobs where the load averages say so",
        },
    )


if __name__ == "__main__":
    main()
