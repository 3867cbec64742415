"""Serving throughput against the in-process ceiling: spectra per second and request latency (p50, p99) of
``POST /v1/annotate`` on a real ``msvae serve`` (uvicorn, loopback) at 1 and 16 clients, beside the same
annotation called in-process (same model, same spectra, same candidates), one thread, no HTTP.

    python3 benchmarks/serve.py [--big-database-url sqlite:////tmp/msvae-big.sqlite] [--clients 1 16]

Set-ups, each request carrying 10 real MassBank spectra:
- ``massbank``: MGF uploads; candidates from a database of the MassBank structures (imported first), by
  precursor mass within 10 ppm;
- ``big`` (with ``--big-database-url``): MGF uploads against an already imported lab-sized database (the 1.9M
  MOSES molecules plus MassBank, ``benchmarks/import_candidates.py``); also the server's start time and memory;
- ``smiles``: JSON with ``--smiles-candidates`` candidate SMILES per spectrum (MOSES molecules, distinct across
  requests): sent once (cold: RDKit featurizes each) and again (warm: the fingerprint cache).
Bounded: a fixed number of requests per client, loopback only; the clients are threads of this process, on the
same cores as the server (their CPU time per request is reported). Writes benchmarks/results/serve.json
(``--result-suffix=-repeat2``: ``serve-repeat2.json``).
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from _machine import add_data_argument, save

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the project, and the tests' live-server kit

from live_server import LiveServer  # noqa: E402

from app.api.annotate import parse_json_spectra, parse_mgf  # noqa: E402
from app.candidates.default import served_fingerprint_spec  # noqa: E402
from app.candidates.importer import import_candidates  # noqa: E402
from app.db import Database  # noqa: E402
from app.db.migrate import upgrade_database  # noqa: E402
from app.scheduler import Budget  # noqa: E402
from app.service import Service  # noqa: E402
from app.settings import Settings  # noqa: E402
from models.featurize.mgf import Spectrum, read_spectra  # noqa: E402

SPECTRA_PER_REQUEST = 10


def _massbank(shared: Path, n_spectra: int) -> list[Spectrum]:
    """``n_spectra`` [M+H]+ spectra of distinct structures, with fragments below the precursor."""
    spectra, seen = [], set()
    for item in read_spectra(shared / "massbank" / "massbank-pos-ms2.mgf.gz"):
        if (
            isinstance(item, Spectrum)
            and item.smiles
            and item.smiles not in seen
            and item.adduct in (None, "[M+H]+")
            and np.count_nonzero(item.mz < item.precursor_mz - 1) >= 3
        ):
            seen.add(item.smiles)
            spectra.append(item)
            if len(spectra) == n_spectra:
                break
    return spectra


def _mgf(spectra: list[Spectrum]) -> bytes:
    blocks = []
    for s in spectra:
        peaks = "\n".join(f"{mz:.5f} {i:.3f}" for mz, i in zip(s.mz, s.intensity, strict=True))
        blocks.append(f"BEGIN IONS\nTITLE={s.title}\nPEPMASS={s.precursor_mz}\nCHARGE=1+\n{peaks}\nEND IONS\n")
    return "".join(blocks).encode()


def _batches(spectra: list[Spectrum], n: int) -> list[list[Spectrum]]:
    cycle = itertools.cycle(spectra)
    return [[next(cycle) for _ in range(SPECTRA_PER_REQUEST)] for _ in range(n)]


def _json_body(spectra: list[Spectrum], candidates: list[list[str]]) -> dict:
    return {
        "spectra": [
            {"title": s.title, "precursor_mz": s.precursor_mz, "peaks": np.column_stack([s.mz, s.intensity]).tolist(),
             "candidates": c}
            for s, c in zip(spectra, candidates, strict=True)
        ]
    }  # fmt: skip


def _percentiles(latencies: list[float], wall: float, n_requests: int) -> dict:
    lat = np.array(latencies)
    return {
        "requests": n_requests,
        "spectra": n_requests * SPECTRA_PER_REQUEST,
        "wall_s": round(wall, 3),
        "spectra_per_s": round(n_requests * SPECTRA_PER_REQUEST / wall, 1),
        "latency_p50_s": round(float(np.percentile(lat, 50)), 4),
        "latency_p99_s": round(float(np.percentile(lat, 99)), 4),
        "latency_max_s": round(float(lat.max()), 4),
    }


Send = tuple[str, object]  # ("mgf", file bytes) or ("json", body): one request


def _send(http: httpx.Client, request: Send) -> httpx.Response:
    kind, payload = request
    if kind == "mgf":
        return http.post("/v1/annotate", params={"top_k": 10}, files={"file": ("q.mgf", payload)})
    return http.post("/v1/annotate", params={"top_k": 10}, json=payload)


def _client(url: str, share: list[Send], go: Callable[[], object]) -> dict:
    """One client: its own connection, its requests one after another (after ``go`` returns); every answer must be
    200 with all 10 spectra annotated and none rejected."""
    latencies, candidates, errors = [], [], []
    with httpx.Client(base_url=url, timeout=600) as http:
        go()
        for request in share:
            start = time.perf_counter()
            response = _send(http, request)
            latencies.append(time.perf_counter() - start)
            body = response.json() if response.status_code == 200 else {}
            results = body.get("results", [])
            candidates.extend(r["n_candidates"] for r in results)
            if len(results) != SPECTRA_PER_REQUEST or body.get("rejected"):
                errors.append(f"{response.status_code}: {response.text[:300]}")
    return {"latencies": latencies, "candidates": candidates, "errors": errors}


def _http(url: str, requests: list[Send], clients: int) -> dict:
    """Send ``requests`` from ``clients`` threads at once, each its own connection; also the clients' CPU time per
    request (they share the machine's cores with the server)."""
    shares = [requests[i::clients] for i in range(clients)]
    barrier = threading.Barrier(clients + 1)
    runs: list[dict] = []
    threads = [threading.Thread(target=lambda s=share: runs.append(_client(url, s, barrier.wait))) for share in shares]
    for thread in threads:
        thread.start()
    cpu = time.process_time()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    client_cpu = time.process_time() - cpu  # this process's: every client's
    errors = [e for run in runs for e in run["errors"]]
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    latencies = [x for run in runs for x in run["latencies"]]
    candidates = [x for run in runs for x in run["candidates"]]
    return {"clients": clients, **_percentiles(latencies, wall, len(requests)),
            "client_cpu_ms_per_request": round(1e3 * client_cpu / len(requests), 2),
            "candidates_per_spectrum_mean": round(float(np.mean(candidates)), 1)}  # fmt: skip


def _in_process(service: Service, calls: list[Callable[[], object]]) -> dict:
    """The same work without HTTP: one thread, one call after another."""
    latencies = []
    start = time.perf_counter()
    for call in calls:
        t0 = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t0)
    return {"clients": 0, **_percentiles(latencies, time.perf_counter() - start, len(calls))}


def _annotate_mgf(service: Service, body: bytes) -> Callable[[], object]:
    def call() -> object:
        spectra, rejected = parse_mgf(body, service.settings, Budget(3600.0))
        results, failed = service.annotate(spectra, top_k=10, ppm=10.0)
        assert len(results) == SPECTRA_PER_REQUEST and not rejected and not failed, failed
        return results

    return call


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server(env: dict[str, str], folder: Path, name: str, workers: int) -> tuple[LiveServer, dict]:
    """A started server, with its start time (to /health answering) and its resident memory (first process)."""
    start = time.perf_counter()
    server = LiveServer(env, folder / f"{name}.log", workers=workers).start(timeout=900)
    seconds = time.perf_counter() - start
    health = httpx.get(f"{server.url}/health").json()
    return server, {"start_s": round(seconds, 1), "candidates": health["candidates"],
                    "rss_mb": round(_rss_mb(server.process.pid), 1)}  # fmt: skip


def _mgf_setup(name: str, env: dict, settings: Settings, folder: Path, spectra: list[Spectrum], args) -> dict:
    """In-process ceiling, then HTTP at each client count, for MGF uploads against the database of ``settings``."""
    print(f"[{name}] in-process", flush=True)
    t0 = time.perf_counter()
    service = Service.start(settings)
    in_process_start = time.perf_counter() - t0
    device = service.device
    bodies = [_mgf(batch) for batch in _batches(spectra, max(args.requests_per_client) * max(args.clients))]
    _annotate_mgf(service, bodies[0])()  # warm-up
    ceiling = _in_process(service, [_annotate_mgf(service, b) for b in bodies[: args.in_process_requests]])
    service.close()
    del service
    print(f"[{name}] in-process {ceiling}", flush=True)
    server, started = _server(env, folder, name, args.workers)
    print(f"[{name}] server {started}", flush=True)
    runs = []
    try:
        # warm-up over several connections at once: each worker process (the kernel hands connections to them)
        # answers its first, slower requests here rather than in the timed runs
        _http(server.url, [("mgf", bodies[0])] * (4 * args.workers), 4 * args.workers)
        for clients, per_client in zip(args.clients, args.requests_per_client, strict=True):
            sends: list[Send] = [("mgf", b) for b in bodies[: clients * per_client]]
            cpu = _cpu_seconds(server.process.pid)
            runs.append(_http(server.url, sends, clients))
            # the first server process's: with --workers N the other workers' time is not counted
            runs[-1]["server_cpu_ms_per_request"] = round(
                1e3 * (_cpu_seconds(server.process.pid) - cpu) / len(sends), 2
            )
            print(f"[{name}] http {runs[-1]}", flush=True)
    finally:
        server.stop()
    return {"device": device, "in_process_service_start_s": round(in_process_start, 1), "server": started,
            "in_process": ceiling, "http": runs}  # fmt: skip


def _smiles_setup(env: dict, settings: Settings, folder: Path, spectra: list[Spectrum], args) -> dict:
    """Candidates as SMILES in JSON: each body sent once (cold), then again (warm), 1 client; then 16 clients
    warm; the in-process ceiling warm (the service's own cache filled by a first pass)."""
    n_bodies = args.smiles_requests
    per_body = SPECTRA_PER_REQUEST * args.smiles_candidates
    with gzip.open(args.data / "molecules" / "moses" / "test.csv.gz", "rt") as stream:
        next(stream)
        pool = [line.strip() for _, line in zip(range(n_bodies * per_body), stream, strict=False)]
    bodies = []
    for r, batch in enumerate(_batches(spectra, n_bodies)):
        own = pool[r * per_body : (r + 1) * per_body]
        lists = [own[k::SPECTRA_PER_REQUEST] for k in range(SPECTRA_PER_REQUEST)]
        bodies.append(_json_body(batch, [[s.smiles, *c[:-1]] for s, c in zip(batch, lists, strict=True)]))
    server, started = _server(env, folder, "smiles", args.workers)
    try:
        cold = _http(server.url, [("json", b) for b in bodies], 1)
        print(f"[smiles] cold {cold}", flush=True)
        warm = [_http(server.url, [("json", b) for b in bodies], 1) for _ in range(3)]
        warm_1 = min(warm, key=lambda r: r["latency_p50_s"])
        print(f"[smiles] warm {warm_1}", flush=True)
        many: list[Send] = [("json", b) for b in bodies] * max(1, 16 * args.requests_per_client[-1] // len(bodies))
        warm_16 = _http(server.url, many, max(args.clients))
        print(f"[smiles] warm, {max(args.clients)} clients {warm_16}", flush=True)
    finally:
        server.stop()
    service = Service.start(settings)

    def call(body: dict) -> Callable[[], object]:
        raw = json.dumps(body).encode()

        def run() -> object:
            parsed, rejected, given = parse_json_spectra(raw, service.settings, Budget(3600.0))
            results, failed = service.annotate(parsed, top_k=10, ppm=10.0, given=given)
            assert len(results) == SPECTRA_PER_REQUEST and not failed, failed
            return results

        return run

    for body in bodies:
        call(body)()  # fills the cache
    ceiling = _in_process(service, [call(b) for b in bodies] * 3)
    service.close()
    return {"candidates_per_spectrum": args.smiles_candidates, "server": started, "cold_1_client": cold,
            "warm_1_client": warm_1, "warm_1_client_runs": warm, f"warm_{max(args.clients)}_clients": warm_16,
            "warm_in_process": ceiling,
            "cold_over_warm_p50": round(cold["latency_p50_s"] / warm_1["latency_p50_s"], 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default")
    add_data_argument(parser)
    parser.add_argument("--big-database-url", default=None, help="an imported lab-sized database (set-up 'big')")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--requests-per-client", type=int, nargs="+", default=[30, 8])
    parser.add_argument("--in-process-requests", type=int, default=30)
    parser.add_argument("--smiles-requests", type=int, default=2, help="distinct JSON bodies sent cold then warm")
    parser.add_argument("--smiles-candidates", type=int, default=200, help="candidate SMILES per spectrum")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--skip", nargs="*", default=[], choices=["massbank", "big", "smiles"])
    parser.add_argument("--result-suffix", default="", help="added to the result file's name (repeated runs)")
    args = parser.parse_args()
    load_start = os.getloadavg()
    spectra = _massbank(args.data, 200)
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'massbank.sqlite'}"
        base = {"MSVAE_MODEL": args.model, "MSVAE_DATA_DIR": str(folder), "MSVAE_DEVICE": "auto"}
        upgrade_database(url)
        database = Database(url)
        t0 = time.perf_counter()
        # with the served model's fingerprint, as `msvae candidates import` stores them (another spec would have
        # the server recompute every fingerprint from SMILES when it starts)
        spec = served_fingerprint_spec(Settings(database_url=url, model=args.model, data_dir=folder))
        with database.session() as session:
            report = import_candidates(session, args.data / "massbank" / "massbank-pos-ms2.mgf.gz",
                                       spec=spec, workers=os.cpu_count() or 1)  # fmt: skip
        database.dispose()
        print(f"MassBank structures: {report.added} in {time.perf_counter() - t0:.0f} s", flush=True)
        setups = {"massbank": url, "big": args.big_database_url}
        for name, db_url in setups.items():
            if name in args.skip or db_url is None:
                continue
            env = {**base, "MSVAE_DATABASE_URL": db_url}
            settings = Settings(database_url=db_url, model=args.model, data_dir=folder, device="auto")
            out[name] = _mgf_setup(name, env, settings, folder, spectra, args)
        if "smiles" not in args.skip:
            env = {**base, "MSVAE_DATABASE_URL": url}
            settings = Settings(database_url=url, model=args.model, data_dir=folder, device="auto")
            out["smiles"] = _smiles_setup(env, settings, folder, spectra, args)
    on_gpu = any(str(setup.get("device", "")).startswith("cuda") for setup in out.values())
    save(
        ("serve" if args.workers == 1 else f"serve-{args.workers}-workers")
        + ("-cuda" if on_gpu else "")
        + args.result_suffix,
        {
            "model": args.model,
            "spectra_per_request": SPECTRA_PER_REQUEST,
            "ppm": 10.0,
            "load_average_before": load_start,
            "load_average_after": os.getloadavg(),
            "uvicorn_workers": args.workers,
            "note": f"{os.cpu_count()} CPU cores, shared with other jobs where the load averages say so",
            "median_note": "in_process and http rows are single runs; smiles warm_1_client is the best p50 of 3",
            **out,
        },
    )


if __name__ == "__main__":
    main()
