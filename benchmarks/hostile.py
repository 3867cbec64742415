"""Soak under hostile load (issue 13): every reproducer of the issue against a real ``msvae serve`` with the default
limits, the server's resident memory (now and peak) and ``/health`` latency while each runs; then concurrent heavy
requests with small annotations timed meanwhile; slow-body connections held open; a large legitimate request and
the memory left after it; and a normal request's ranking compared before and after the load.

    python3 benchmarks/hostile.py [--heavy 3] [--slow-connections 90] [--compare-with ../main]

``--compare-with DIR`` also serves the same normal request from the code in DIR (e.g. the main branch) and reports
whether the rankings are identical. Loopback only. Writes benchmarks/results/hostile.json.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _machine import add_data_argument, save

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the project, and the tests' live-server kit

from live_server import LiveServer  # noqa: E402

from models.featurize.mgf import Spectrum, read_spectra  # noqa: E402

MASSBANK = "massbank/massbank-pos-ms2.mgf.gz"
SMALL = {"spectra": [{"title": "small", "precursor_mz": 195.0877, "peaks": [[138.07, 100.0], [110.07, 20.0]]}]}


def _rss_mb(pid: int) -> tuple[float, float]:
    """(resident now, peak resident) of a process, MiB, from /proc."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class HealthProbe:
    """Polls ``/health`` every 0.1 s in a thread and keeps the latencies."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=60) as client:
            while not self._stop.is_set():
                start = time.perf_counter()
                client.get(f"{self.url}/health").raise_for_status()
                self.latencies.append(time.perf_counter() - start)
                self._stop.wait(0.1)

    def __enter__(self) -> HealthProbe:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        lat = np.array(self.latencies or [0.0]) * 1000
        return {"health_n": len(lat), "health_p50_ms": float(np.median(lat)), "health_max_ms": float(lat.max())}


def _json(body: str) -> dict[str, Any]:
    return {"content": body.encode(), "headers": {"content-type": "application/json"}}


def _upload(name: str, data: bytes) -> dict[str, Any]:
    return {"files": {"file": (name, data)}}


def _spectrum(title: str, peaks: str, extra: str = "") -> dict[str, Any]:
    """A JSON body of one spectrum, its parts written as raw JSON text (so they can be what json.dumps never
    writes)."""
    return _json(f'{{"spectra": [{{"title": {title}, "precursor_mz": 195.0877, "peaks": {peaks}{extra}}}]}}')


def reproducers() -> dict[str, tuple[str, Callable[[], dict[str, Any]]]]:
    """Issue 13's reproducers: name -> (path, keyword arguments of the request, built when used)."""
    mgf = b"BEGIN IONS\nTITLE=ok\nPEPMASS=195.0877\n138.07 100\n110.07 20\nEND IONS\n"
    return {
        "1 gzip of 20 MiB newlines": ("/v1/annotate", lambda: _upload("nl.gz", gzip.compress(b"\n" * (20 << 20)))),
        "1 gzip of 200k spectra": ("/v1/annotate", lambda: _upload("many.gz", gzip.compress(mgf * 200_000))),
        "1 gzip of one 256 MiB line": (
            "/v1/annotate",
            lambda: _upload("line.gz", gzip.compress(b"x" * (256 << 20), compresslevel=9)),
        ),
        "2 one 100 kB SMILES": (
            "/v1/annotate",
            lambda: _spectrum('"a"', "[[138, 5]]", ', "candidates": ["%s"]' % ("C" * 100_000)),
        ),
        "2 100,000 candidates": (
            "/v1/annotate",
            lambda: _spectrum('"a"', "[[138, 5]]", ', "candidates": ' + json.dumps(["CCO"] * 100_000)),
        ),
        "4 JSON 1,000 deep (annotate)": ("/v1/annotate", lambda: _json("[" * 1000 + "]" * 1000)),
        "4 JSON 1,000 deep (candidates)": ("/v1/candidates", lambda: _json("[" * 1000 + "]" * 1000)),
        "5 integer of 401 digits in peaks": ("/v1/annotate", lambda: _spectrum('"a"', "[[1" + "0" * 400 + ", 5]]")),
        "6 lone surrogate in a title": ("/v1/annotate", lambda: _spectrum('"a\\ud800b"', "[[138, 5]]")),
        "6 lone surrogate in a SMILES": (
            "/v1/annotate",
            lambda: _spectrum('"a"', "[[138, 5]]", ', "candidates": ["C\\ud800"]'),
        ),
        "7 two intensities of 1e308 in one bin": (
            "/v1/annotate",
            lambda: _spectrum('"a"', "[[138.0, 1e308], [138.01, 1e308]]"),
        ),
        "11 CR-only MGF": ("/v1/annotate", lambda: _upload("cr.mgf", mgf.replace(b"\n", b"\r"))),
        "11 UTF-16 MGF": ("/v1/annotate", lambda: _upload("u16.mgf", mgf.decode().encode("utf-16"))),
        "11 JSON title 1e400": ("/v1/annotate", lambda: _spectrum("1e400", "[[138, 5]]")),
    }


def _massbank_mgf(shared: Path, n: int) -> bytes:
    """The first ``n`` MassBank records as MGF text."""
    out, count = [], 0
    with gzip.open(shared / MASSBANK, "rb") as stream:
        for line in stream:
            out.append(line)
            if line.strip() == b"END IONS":
                count += 1
                if count == n:
                    break
    return b"".join(out)


def _heavy_body(spectra: list[Spectrum], pool: list[str], n_spectra: int, n_candidates: int) -> dict[str, Any]:
    items = []
    for i, s in enumerate(spectra[:n_spectra]):
        peaks = np.c_[s.mz, s.intensity].tolist()
        items.append({"title": s.title, "precursor_mz": s.precursor_mz, "peaks": peaks,
                      "candidates": pool[i : i + n_candidates]})  # fmt: skip
    return {"spectra": items}


def _slow_connections(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port))
        head = (
            "POST /v1/annotate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"spectra": [')
        socks.append(sock)
    return socks


def _answered(sock: socket.socket) -> bool:
    """Whether the server has answered (408) or closed a held connection; reads without waiting."""
    sock.setblocking(False)
    try:
        data = sock.recv(4096)
    except BlockingIOError:
        return False
    return data == b"" or data.startswith(b"HTTP/1.1 408")


def _ranking(body: dict[str, Any]) -> list[list[tuple[str, float]]]:
    return [[(c["smiles"], c["score"]) for c in r["candidates"]] for r in body["results"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--heavy", type=int, default=3, help="concurrent heavy requests")
    parser.add_argument("--slow-connections", type=int, default=90)
    parser.add_argument("--compare-with", default=None, help="a checkout whose server ranks the normal request too")
    add_data_argument(parser)
    args = parser.parse_args()
    shared = args.data
    sample = _massbank_mgf(shared, 2000)
    spectra = [s for s in read_spectra(io.BytesIO(sample)) if isinstance(s, Spectrum)]
    pool = sorted({s.smiles for s in spectra if s.smiles})
    normal = _massbank_mgf(shared, 20)
    figures: dict[str, Any] = {"reproducers": {}}

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = {"MSVAE_DATABASE_URL": f"sqlite:///{folder / 'soak.sqlite'}", "MSVAE_DATA_DIR": str(folder),
               "MSVAE_MODEL": "default", "MSVAE_DEVICE": "cpu"}  # fmt: skip
        server = LiveServer(env, folder / "server.log").start(timeout=300)
        pid = server.process.pid
        try:
            client = httpx.Client(base_url=server.url, timeout=300)
            client.post("/v1/candidates", files={"file": ("pool.mgf", sample)}).raise_for_status()
            before = client.post("/v1/annotate", files={"file": ("normal.mgf", normal)}).json()
            figures["rss_baseline_mb"] = _rss_mb(pid)[0]
            print(f"baseline RSS {figures['rss_baseline_mb']:.0f} MiB")

            for name, (path, build) in reproducers().items():
                request = build()
                with HealthProbe(server.url) as probe:
                    start = time.perf_counter()
                    response = client.post(path, **request)
                    elapsed = time.perf_counter() - start
                body = response.json()
                scores = [c["score"] for r in body.get("results", []) for c in r["candidates"]]
                reason = body.get("detail") or (body.get("rejected") or [{}])[0].get("reason", "")
                row = {"status": response.status_code, "seconds": round(elapsed, 3),
                       "finite_scores": all(isinstance(x, float) and np.isfinite(x) for x in scores),
                       "rss_mb": round(_rss_mb(pid)[0], 1), "reason": str(reason)[:160], **probe.summary()}  # fmt: skip
                figures["reproducers"][name] = row
                print(f"{name:38s} {row['status']} {row['seconds']:6.2f} s  health max {row['health_max_ms']:6.1f} ms"
                      f"  RSS {row['rss_mb']:6.0f} MiB  {row['reason'][:70]}")  # fmt: skip

            heavy_body = _heavy_body(spectra, pool, 50, 1000)
            heavy: list[tuple[int, float]] = []

            def one_heavy() -> None:
                start = time.perf_counter()
                status = httpx.post(f"{server.url}/v1/annotate", json=heavy_body, timeout=300).status_code
                heavy.append((status, time.perf_counter() - start))

            threads = [threading.Thread(target=one_heavy) for _ in range(args.heavy)]
            small = []
            with HealthProbe(server.url) as probe:
                for thread in threads:
                    thread.start()
                time.sleep(1.0)
                while any(t.is_alive() for t in threads):
                    start = time.perf_counter()
                    assert httpx.post(f"{server.url}/v1/annotate", json=SMALL, timeout=300).status_code == 200
                    small.append(time.perf_counter() - start)
                    time.sleep(0.2)
                for thread in threads:
                    thread.join()
            lat = np.array(small) * 1000
            figures["heavy_load"] = {
                "heavy_requests": args.heavy, "heavy_spectra": 50, "heavy_candidates_each": 1000,
                "heavy_status_seconds": heavy, "small_n": len(lat), "small_p50_ms": float(np.median(lat)),
                "small_p99_ms": float(np.percentile(lat, 99)), "small_max_ms": float(lat.max()), **probe.summary(),
                "rss_after_mb": _rss_mb(pid)[0],
            }  # fmt: skip
            print("heavy load:", json.dumps(figures["heavy_load"]))

            socks = _slow_connections(server.port, args.slow_connections)
            answered: set[int] = set()
            with HealthProbe(server.url) as probe:
                start = time.perf_counter()
                while time.perf_counter() - start < 90 and len(answered) < len(socks):
                    answered |= {i for i, sock in enumerate(socks) if i not in answered and _answered(sock)}
                    time.sleep(0.5)
                held = time.perf_counter() - start
            for sock in socks:
                sock.close()
            figures["slow_bodies"] = {"connections": len(socks), "answered_408_or_closed": len(answered),
                                      "seconds_until_all_closed": round(held, 1), **probe.summary()}  # fmt: skip
            print("slow bodies:", json.dumps(figures["slow_bodies"]))

            large = _massbank_mgf(shared, 1000)
            rss_before = _rss_mb(pid)[0]
            start = time.perf_counter()
            status = client.post("/v1/annotate", files={"file": ("large.mgf", large)}).status_code
            figures["large_request"] = {"spectra": 1000, "status": status, "seconds": time.perf_counter() - start,
                                        "rss_before_mb": rss_before}  # fmt: skip
            time.sleep(1.0)
            figures["large_request"]["rss_after_mb"] = _rss_mb(pid)[0]
            print("large request:", json.dumps(figures["large_request"]))

            after = client.post("/v1/annotate", files={"file": ("normal.mgf", normal)}).json()
            figures["normal_ranking_unchanged_by_load"] = _ranking(before) == _ranking(after)
            figures["rss_end_mb"], figures["rss_peak_mb"] = _rss_mb(pid)
        finally:
            client.close()
            server.stop()

        if args.compare_with:
            other = Path(args.compare_with).resolve()
            env_other = {**env, "MSVAE_DATABASE_URL": f"sqlite:///{folder / 'other.sqlite'}", "PYTHONPATH": str(other)}
            with (
                LiveServer(env_other, folder / "other.log", cwd=other) as reference,
                httpx.Client(base_url=reference.url, timeout=300) as ref,
            ):
                ref.post("/v1/candidates", files={"file": ("pool.mgf", sample)}).raise_for_status()
                theirs = ref.post("/v1/annotate", files={"file": ("normal.mgf", normal)}).json()
            figures["compared_with"] = str(other)
            figures["normal_ranking_identical_to_compared"] = _ranking(theirs) == _ranking(before)

    print(f"peak RSS {figures['rss_peak_mb']:.0f} MiB, end {figures['rss_end_mb']:.0f} MiB; ranking unchanged by the "
          f"load: {figures['normal_ranking_unchanged_by_load']}; identical to --compare-with: "
          f"{figures.get('normal_ranking_identical_to_compared')}")  # fmt: skip
    print(f"wrote {save('hostile', figures)}")


if __name__ == "__main__":
    os.environ.setdefault("MSVAE_DEVICE", "cpu")
    main()
