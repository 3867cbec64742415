"""Hostile but legal clients against a live server (issue 13): each reproducer gets a 4xx naming its reason or
limit (or a 200 with finite scores), never a 500; slow bodies time out; a client that goes away stops its work; a
small request is answered while a heavy one runs. Figures (latency, memory) are measured by
``benchmarks/hostile.py``, not asserted here."""

from __future__ import annotations

import gzip
import json
import math
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_helpers import live_server, massbank_sample, server_env, serving_model

TIMEOUT_SECONDS = 8
LIMITS = {
    "MAX_UPLOAD_MB": "5",
    "MAX_DECOMPRESSED_MB": "2",
    "MAX_SPECTRA_PER_REQUEST": "50",
    "MAX_PEAKS": "1000",
    "MAX_CANDIDATES": "100",
    "MAX_SMILES_LENGTH": "600",
    "REQUEST_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
}
SPECTRUM = {"title": "ok", "precursor_mz": 195.0877, "peaks": [[138.07, 100.0], [110.07, 20.0]]}
MGF = b"BEGIN IONS\nTITLE=ok\nPEPMASS=195.0877\n138.07 100\n110.07 20\nEND IONS\n"


def _chain(k: int) -> str:
    """A distinct long-chain SMILES for each k < 5,000."""
    return "C" * (250 + k % 300) + "N" * (1 + k // 300)  # 251-566 characters: under MAX_SMILES_LENGTH


# 50 spectra with 100 distinct SMILES of 250-566 atoms each: far more RDKit work than the time budget allows, and
# no two alike, so the service's fingerprint cache cannot shortcut it
HEAVY = {
    "spectra": [
        {**SPECTRUM, "title": f"heavy {i}", "candidates": [_chain(100 * i + j) for j in range(100)]} for i in range(50)
    ]
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    folder = tmp_path_factory.mktemp("hostile")
    env = server_env(f"sqlite:///{folder / 'hostile.sqlite'}", serving_model(folder), folder, **LIMITS)
    with live_server(env, folder) as live, httpx.Client(base_url=live.url, timeout=60) as client:
        sample = massbank_sample(shared_data, 12)
        assert client.post("/v1/candidates", files={"file": ("s.mgf", sample)}).status_code == 200
        yield live, client


@pytest.fixture(scope="module")
def client(server) -> httpx.Client:
    return server[1]


def _refused(response: httpx.Response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    text = json.dumps(body)
    for word in words:
        assert word in text, text
    return body


def _finite_scores(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    for result in response.json()["results"]:
        assert all(isinstance(c["score"], float) and math.isfinite(c["score"]) for c in result["candidates"])


def test_gzip_bombs_stop_at_the_decompressed_limit(client: httpx.Client) -> None:
    newlines = gzip.compress(b"\n" * (20 << 20))
    _refused(client.post("/v1/annotate", files={"file": ("nl.gz", newlines)}), 413, "MSVAE_MAX_DECOMPRESSED_MB")
    one_line = gzip.compress(b"x" * (256 << 20), compresslevel=1)
    _refused(client.post("/v1/annotate", files={"file": ("line.gz", one_line)}), 413, "MSVAE_MAX_DECOMPRESSED_MB")
    many = gzip.compress(MGF * 200_000)
    body = _refused(
        client.post("/v1/annotate", files={"file": ("many.gz", many)}), 413, "MSVAE_MAX_SPECTRA_PER_REQUEST"
    )
    assert "/v1/jobs" in body["detail"]
    assert client.post("/v1/jobs", files={"file": ("many.gz", many)}).status_code == 413  # decompressed: 12 MiB


def test_long_and_many_candidate_smiles_are_refused_per_spectrum(client: httpx.Client) -> None:
    long = {"spectra": [{**SPECTRUM, "candidates": ["C" * 100_000]}, SPECTRUM]}
    body = client.post("/v1/annotate", json=long).json()
    assert [r["index"] for r in body["results"]] == [1]
    assert "MSVAE_MAX_SMILES_LENGTH" in body["rejected"][0]["reason"]
    many = {"spectra": [{**SPECTRUM, "candidates": ["CCO"] * 100_000}]}
    _refused(client.post("/v1/annotate", json=many), 422, "MSVAE_MAX_CANDIDATES")
    imported = client.post("/v1/candidates", json={"smiles": ["C" * 100_000, "CCO"]}).json()
    assert "MSVAE_MAX_SMILES_LENGTH" in imported["rejected"][0]["reason"]


@pytest.mark.parametrize("path", ["/v1/annotate", "/v1/candidates"])
def test_deep_json_is_refused_by_its_depth(client: httpx.Client, path: str) -> None:
    deep = ("[" * 1000 + "]" * 1000).encode()
    _refused(client.post(path, content=deep, headers={"content-type": "application/json"}), 422, "MSVAE_MAX_JSON_DEPTH")


@pytest.mark.parametrize(
    ("body", "status", "word"),
    [
        ('{"spectra": [{"title": "a", "precursor_mz": 195.08, "peaks": [[1' + "0" * 400 + ", 5]]}]}", 422, "double"),
        ('{"spectra": [{"title": 1e400, "precursor_mz": 195.08, "peaks": [[138, 5]]}]}', 400, "1e400"),
        ('{"spectra": [{"title": "a", "precursor_mz": NaN, "peaks": [[138, 5]]}]}', 400, "NaN"),
        ('{"spectra": [{"title": "a\\ud800b", "precursor_mz": 195.08, "peaks": [[138, 5]]}]}', 400, "surrogate"),
        ('{"spectra": [{"title": "a", "precursor_mz": 195.08, "peaks": [[138, 5]], "candidates": ["C\\udc00"]}]}',
         400, "surrogate"),
        ('{"spectra": [{"title": "a", "precursor_mz": 195.08, "peaks": [[138.0, 1e308], [138.01, 1e308]]}]}',
         422, "finite"),
        ('{"spectra": [{"title": "a", "precursor_mz": 195.08, "peaks": [[138, 5]], "candidates": ["C\\u0000C"]}]}',
         422, "candidate 0"),
    ],
)  # fmt: skip
def test_json_reproducers_are_4xx_with_the_reason(client: httpx.Client, body: str, status: int, word: str) -> None:
    response = client.post("/v1/annotate", content=body.encode(), headers={"content-type": "application/json"})
    _refused(response, status, word)
    assert client.get("/health").status_code == 200  # the keep-alive connection still serves the next request


def test_control_characters_in_a_title_come_back_escaped(client: httpx.Client) -> None:
    response = client.post("/v1/annotate", json={"spectra": [{**SPECTRUM, "title": "a\x00b\x1b[31m\u202e"}]})
    _finite_scores(response)
    assert response.json()["results"][0]["title"] == "a\x00b\x1b[31m\u202e"


@pytest.mark.parametrize(
    "data",
    [
        MGF.replace(b"\n", b"\r"),
        MGF.replace(b"\n", b"\r\n"),
        b"BEGIN IONS\rTITLE=ok\r\nPEPMASS=195.0877\n138.07 100\r110.07 20\nEND IONS",
        MGF.decode().encode("utf-16"),
        MGF.decode().encode("utf-16-le"),
        gzip.compress(MGF.replace(b"\n", b"\r")),
    ],
    ids=["cr", "crlf", "mixed", "utf-16", "utf-16-le-no-bom", "gzip-cr"],
)
def test_line_endings_and_encodings_are_read(client: httpx.Client, data: bytes) -> None:
    response = client.post("/v1/annotate", files={"file": ("q.mgf", data)})
    _finite_scores(response)
    assert [r["title"] for r in response.json()["results"]] == ["ok"]


def test_too_many_peaks_reject_that_spectrum(client: httpx.Client) -> None:
    peaks = "".join(f"{50 + i * 0.01:.2f} 1\n" for i in range(1001))
    mgf = MGF + f"BEGIN IONS\nTITLE=crowded\nPEPMASS=195.0877\n{peaks}END IONS\n".encode()
    body = client.post("/v1/annotate", files={"file": ("q.mgf", mgf)}).json()
    assert [r["title"] for r in body["results"]] == ["ok"]
    assert body["rejected"][0]["title"] == "crowded" and "MSVAE_MAX_PEAKS" in body["rejected"][0]["reason"]


def _read_response(sock: socket.socket) -> str:
    """One whole HTTP response (headers and the body their content-length announces), however TCP splits it."""
    data = b""
    while b"\r\n\r\n" not in data and (chunk := sock.recv(4096)):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
    while length and len(body) < int(length.group(1)) and (chunk := sock.recv(4096)):
        body += chunk
    return (head + b"\r\n\r\n" + body).decode()


def test_a_slow_body_gets_408_within_the_budget(server) -> None:
    live, _ = server
    with socket.create_connection(("127.0.0.1", live.port), timeout=TIMEOUT_SECONDS + 20) as sock:
        head = "POST /v1/annotate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
        sock.sendall(head.encode() + b'{"spectra": [')
        answer = _read_response(sock)
    assert answer.startswith("HTTP/1.1 408"), answer
    assert "MSVAE_REQUEST_TIMEOUT_SECONDS" in answer


def test_work_over_the_budget_is_refused_and_small_requests_pass_it(client: httpx.Client) -> None:
    heavy: dict[str, Any] = {}

    def send_heavy() -> None:
        heavy["r"] = client.post("/v1/annotate", json=HEAVY)
        heavy["done"] = time.monotonic()

    thread = threading.Thread(target=send_heavy)
    thread.start()
    time.sleep(1.0)  # the heavy request is at work (it needs far longer than the budget)
    small = httpx.post(f"{client.base_url}/v1/annotate", json={"spectra": [SPECTRUM]}, timeout=60)
    small_done = time.monotonic()
    health = httpx.get(f"{client.base_url}/health", timeout=60)
    thread.join()
    _finite_scores(small)
    # the small request was answered while the heavy one was still at work, not after it
    assert health.status_code == 200 and small_done < heavy["done"]
    _refused(heavy["r"], 413, "MSVAE_REQUEST_TIMEOUT_SECONDS", "/v1/jobs")


def test_a_client_that_goes_away_stops_its_work(server) -> None:
    live, client = server
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{live.url}/v1/annotate", json=HEAVY, timeout=1.5)
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while "the client disconnected" not in live.log_tail(20_000) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "POST /v1/annotate: the client disconnected; its work was stopped" in live.log_tail(20_000)
    assert client.get("/health").status_code == 200
