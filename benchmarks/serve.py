"""Serving throughput over HTTP: spectra per second and request latency (p50, p99) of ``POST /v1/annotate`` on a
real ``msvae serve`` (uvicorn, loopback), for 1 and 16 concurrent clients.

    python3 benchmarks/serve.py [--model default] [--requests-per-client 8 2] [--workers 1]

Each request carries 10 MassBank spectra in JSON with 1,000 candidates each, in two set-ups:
- ``request``: the 1,000 candidate SMILES are in the request (the spectrum's own structure and 999 others drawn
  from MassBank's structures), so the server featurizes them (RDKit) on every request;
- ``database``: the candidates come from the candidate database by precursor mass (the packed in-memory matrix):
  1,000 molecules of one formula (linear chains of C8N2O2 in every atom order, all of one mass) are imported
  first, and each spectrum's precursor m/z is set to that mass as [M+H]+.
Bounded: a fixed number of requests per client, loopback only. Writes benchmarks/results/serve.json.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
from _machine import save

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the project, and the tests' live-server kit

from live_server import LiveServer  # noqa: E402

from models.featurize.mgf import Spectrum, read_spectra  # noqa: E402
from models.spectra_model import DEFAULT_MODEL_DIR, SpectraModel  # noqa: E402

SPECTRA_PER_REQUEST = 10
CANDIDATES = 1000
PROTON = 1.007276466621


def _massbank(shared: Path, n_spectra: int) -> tuple[list[Spectrum], list[str]]:
    """``n_spectra`` spectra of distinct structures, and the distinct structures of the first 20,000 records."""
    with gzip.open(shared / "massbank" / "massbank-pos-ms2.mgf.gz", "rb") as stream:
        text = b"".join(line for _, line in zip(range(600_000), stream, strict=False))
    spectra, pool, seen = [], [], set()
    for item in read_spectra(io.BytesIO(text)):
        if isinstance(item, Spectrum) and item.smiles and item.smiles not in seen:
            seen.add(item.smiles)
            pool.append(item.smiles)
            if len(spectra) < n_spectra:
                spectra.append(item)
    return spectra, pool


def _chains(n: int) -> list[str]:
    """``n`` distinct molecules of formula C8H?N2O2 as linear chains (SMILES such as ``CCOCNCCOCCNC``): every atom
    order has the same formula and mass. Orders that are reverses of each other are one molecule."""
    out: list[str] = []
    seen: set[str] = set()

    def orders(counts: dict[str, int], prefix: str) -> Iterator[str]:
        if not any(counts.values()):
            yield prefix
            return
        for atom in sorted(counts):
            if counts[atom]:
                counts[atom] -= 1
                yield from orders(counts, prefix + atom)
                counts[atom] += 1

    for chain in orders({"C": 8, "N": 2, "O": 2}, ""):
        if chain[::-1] not in seen:
            seen.add(chain)
            out.append(chain)
            if len(out) == n:
                return out
    raise ValueError(f"only {len(out)} chains")


def _requests(
    spectra: list[Spectrum], pool: list[str] | None, n: int, rng: np.random.Generator, precursor_mz: float | None
) -> list[dict]:
    """``n`` request bodies of 10 spectra; with ``pool``, 1,000 candidates each (the spectrum's own structure
    first), else none (the database's) and the precursor m/z set to ``precursor_mz``."""
    bodies = []
    for r in range(n):
        items = []
        for s in (spectra[(r * SPECTRA_PER_REQUEST + k) % len(spectra)] for k in range(SPECTRA_PER_REQUEST)):
            item = {"title": s.title, "peaks": np.column_stack([s.mz, s.intensity]).tolist()}
            if pool is not None:
                others = [x for x in rng.choice(pool, CANDIDATES + 1, replace=False) if x != s.smiles]
                item.update(precursor_mz=s.precursor_mz, adduct=s.adduct, candidates=[s.smiles, *others[:999]])
            else:  # peaks above the precursor are dropped by the binning: keep them below it
                item.update(precursor_mz=precursor_mz, peaks=[p for p in item["peaks"] if p[0] < precursor_mz])
            items.append(item)
        bodies.append({"spectra": items})
    return bodies


def _run(url: str, bodies: list[dict], clients: int, n_candidates: int = CANDIDATES) -> dict:
    """Send ``bodies`` from ``clients`` threads (each its own connection); latencies and overall throughput."""
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    shares = [bodies[i::clients] for i in range(clients)]

    def client(share: list[dict]) -> None:
        with httpx.Client(base_url=url, timeout=600) as http:
            for body in share:
                start = time.perf_counter()
                response = http.post("/v1/annotate", params={"top_k": 10}, json=body)
                elapsed = time.perf_counter() - start
                with lock:
                    latencies.append(elapsed)
                    results = response.json().get("results", []) if response.status_code == 200 else []
                    if len(results) != SPECTRA_PER_REQUEST or {r["n_candidates"] for r in results} != {n_candidates}:
                        errors.append(f"{response.status_code}: {response.text[:300]}")

    threads = [threading.Thread(target=client, args=(share,)) for share in shares]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"{len(errors)} failed requests, first: {errors[0]}")
    lat = np.array(latencies)
    return {
        "clients": clients,
        "requests": len(bodies),
        "spectra": len(bodies) * SPECTRA_PER_REQUEST,
        "wall_s": round(wall, 3),
        "spectra_per_s": round(len(bodies) * SPECTRA_PER_REQUEST / wall, 2),
        "latency_p50_s": round(float(np.percentile(lat, 50)), 3),
        "latency_p99_s": round(float(np.percentile(lat, 99)), 3),
        "latency_max_s": round(float(lat.max()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default=None, help="model to serve (default: the shipped default model)")
    parser.add_argument("--shared-data", default=str(ROOT.parent / "shared" / "data"))
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--requests-per-client", type=int, nargs="+", default=[3, 1], help="candidates in requests")
    parser.add_argument("--db-requests-per-client", type=int, nargs="+", default=[20, 4], help="from the database")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        model, untrained = args.model, False
        if model is None:
            if (DEFAULT_MODEL_DIR / "config.json").is_file():
                model = "default"
            else:  # before a trained default model ships: an untrained one of the default sizes
                SpectraModel.create("mlp", name="untrained-mlp").save(folder / "untrained")
                model, untrained = str(folder / "untrained"), True
        rng = np.random.default_rng(0)
        spectra, pool = _massbank(Path(args.shared_data), 400)
        env = {"MSVAE_DATABASE_URL": f"sqlite:///{folder / 'bench.sqlite'}", "MSVAE_MODEL": model,
               "MSVAE_DATA_DIR": str(folder), "MSVAE_DEVICE": "auto"}  # fmt: skip
        server = LiveServer(env, folder / "server.log", workers=args.workers).start(timeout=300)
        try:
            health = httpx.get(f"{server.url}/health").json()
            runs: dict[str, list[dict]] = {"request": [], "database": []}
            _run(server.url, _requests(spectra, pool, 1, rng, None), 1)  # warm-up
            for clients, per_client in zip(args.clients, args.requests_per_client, strict=True):
                bodies = _requests(spectra, pool, clients * per_client, rng, None)
                runs["request"].append(_run(server.url, bodies, clients))
                print("request", runs["request"][-1])
            imported = httpx.post(f"{server.url}/v1/candidates", json={"smiles": _chains(CANDIDATES)}, timeout=600)
            assert imported.json()["added"] == CANDIDATES, imported.text
            mass = httpx.get(f"{server.url}/v1/candidates", params={"formula": "C8H20N2O2", "limit": 1}).json()
            mz = mass["candidates"][0]["monoisotopic_mass"] + PROTON
            low = [s for s in spectra if np.count_nonzero(s.mz < mz - 1) >= 3]  # spectra with fragments below m/z
            for clients, per_client in zip(args.clients, args.db_requests_per_client, strict=True):
                bodies = _requests(low, None, clients * per_client, rng, mz)
                runs["database"].append(_run(server.url, bodies, clients))
                print("database", runs["database"][-1])
        finally:
            server.stop()
    save(
        "serve",
        {
            "model": health["model"],
            "untrained_model": untrained,
            "device": health["device"],
            "uvicorn_workers": args.workers,
            "spectra_per_request": SPECTRA_PER_REQUEST,
            "candidates_per_spectrum": CANDIDATES,
            "runs_candidates_in_request": runs["request"],
            "runs_candidates_from_database": runs["database"],
        },
    )


if __name__ == "__main__":
    main()
