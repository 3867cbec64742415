"""The service over HTTP: a real ``msvae serve`` (uvicorn) on loopback with a SQLite file, driven with httpx."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from api_helpers import live_server, massbank_sample, server_env, serving_model
from rdkit import Chem
from rdkit.Chem import Descriptors

from models.featurize.fingerprints import fingerprint_bits
from models.featurize.mgf import Spectrum, read_spectra, read_spectra_from_json
from models.spectra_model import SpectraModel, resolve_model_path

API_KEY = "test-key-0123"
KEY = {"X-API-Key": API_KEY}
PROTON = 1.007276466621  # CODATA 2018 proton mass, u
MAX_UPLOAD_MB = 1


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, shared_data: Path):
    folder = tmp_path_factory.mktemp("api")
    model = serving_model(folder)
    env = server_env(
        f"sqlite:///{folder / 'service.sqlite'}", model, folder, API_KEY=API_KEY, MAX_UPLOAD_MB=str(MAX_UPLOAD_MB)
    )
    sample = massbank_sample(shared_data, 12)
    with live_server(env, folder) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield client, model, sample


@pytest.fixture(scope="module")
def client(setup) -> httpx.Client:
    return setup[0]


@pytest.fixture(scope="module")
def local_model(setup) -> SpectraModel:
    """The served model, loaded here too, to recompute scores independently of the service."""
    return SpectraModel.load(resolve_model_path(setup[1]), device="cpu")


@pytest.fixture(scope="module")
def imported(setup, client: httpx.Client) -> list[Spectrum]:
    """The sample's structures imported from its MGF headers; returns the sample's spectra."""
    sample = setup[2]
    response = client.post("/v1/candidates", files={"file": ("sample.mgf", sample)}, headers=KEY)
    assert response.status_code == 200, response.text
    return [s for s in read_spectra(io.BytesIO(sample)) if isinstance(s, Spectrum)]


def _cross_entropy(probs: np.ndarray, bits: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    p = np.clip(probs.astype(np.float64), eps, 1 - eps)
    return -(bits * np.log(p) + (1 - bits) * np.log1p(-p)).sum(axis=1)


def test_health_and_models(setup, client: httpx.Client, local_model: SpectraModel) -> None:
    health = client.get("/health").json()
    assert health["status"] == "ok"
    assert health["model"] == local_model.name
    assert health["device"] == ("cuda:0" if torch.cuda.is_available() else "cpu")
    assert isinstance(health["candidates"], int)
    models = client.get("/v1/models").json()["models"]
    assert [m["name"] for m in models] == [local_model.name]
    card_path = resolve_model_path(setup[1]) / "card.json"
    assert models[0]["card"] == json.loads(card_path.read_text())
    assert models[0]["fingerprint_spec"] == local_model.fingerprint_spec.text
    assert models[0]["n_bits"] == local_model.fingerprint_spec.n_bits


def test_write_endpoints_need_the_api_key(client: httpx.Client) -> None:
    body = {"smiles": ["CCO"]}
    assert client.post("/v1/candidates", json=body).status_code == 401
    assert client.post("/v1/candidates", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.post("/v1/jobs", files={"file": ("a.mgf", b"x")}).status_code == 401
    ok = client.post("/v1/candidates", json=body, headers={"Authorization": f"Bearer {API_KEY}"})
    assert ok.status_code == 200, ok.text
    again = client.post("/v1/candidates", json=body, headers=KEY).json()
    assert (again["added"], again["duplicate"]) == (0, 1)


def test_import_reports_duplicates_and_rejections_by_position(client: httpx.Client) -> None:
    body = {"smiles": ["OCC(O)CO", "C1CC", "C(C(CO)O)O", "N N", ""], "source": "test"}
    report = client.post("/v1/candidates", json=body, headers=KEY).json()
    # glycerol once (the third item is glycerol written another way), two unreadable items, one empty
    assert report["added"] == 1 and report["duplicate"] == 1
    assert [r["line"] for r in report["rejected"]] == [2, 4, 5]
    found = client.get("/v1/candidates", params={"formula": "C3H8O3"}).json()
    assert [c["smiles"] for c in found["candidates"]] == ["OCC(O)CO"]
    assert found["candidates"][0]["source"] == "test"


def test_import_from_mgf_headers_and_lookup(client: httpx.Client, imported: list[Spectrum]) -> None:
    keys = {Chem.MolToInchiKey(Chem.MolFromSmiles(s.smiles)) for s in imported}
    again = client.post("/v1/candidates", files={"file": ("sample.mgf", b"".join(_blocks(imported)))}, headers=KEY)
    assert again.json()["added"] == 0 and again.json()["duplicate"] == len(imported)
    mol = Chem.MolFromSmiles(imported[0].smiles)
    mass = Descriptors.ExactMolWt(mol)
    by_mass = client.get("/v1/candidates", params={"mass": mass, "ppm": 1}).json()["candidates"]
    assert Chem.MolToInchiKey(mol) in {c["inchikey"] for c in by_mass}
    assert all(abs(c["monoisotopic_mass"] - mass) <= mass * 1e-6 for c in by_mass)
    assert client.get("/health").json()["candidates"] >= len(keys)


def _blocks(spectra: list[Spectrum]) -> list[bytes]:
    return [
        f"BEGIN IONS\nTITLE={s.title}\nPEPMASS={s.precursor_mz}\nSMILES={s.smiles}\n100 1\nEND IONS\n".encode()
        for s in spectra
    ]


def test_annotate_mgf_ranks_by_cross_entropy(
    setup, client: httpx.Client, imported: list[Spectrum], local_model: SpectraModel
) -> None:
    response = client.post("/v1/annotate", params={"top_k": 50}, files={"file": ("q.mgf", setup[2])})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"] == local_model.name and body["rejected"] == []
    assert [r["index"] for r in body["results"]] == list(range(len(imported)))
    probs = local_model.predict_fingerprints(imported)
    for spectrum, result, prob in zip(imported, body["results"], probs, strict=True):
        assert result["title"] == spectrum.title and result["precursor_mz"] == pytest.approx(spectrum.precursor_mz)
        scores = [c["score"] for c in result["candidates"]]
        assert scores == sorted(scores) and [c["rank"] for c in result["candidates"]] == list(range(1, len(scores) + 1))
        if result["candidates"]:
            smiles = [c["smiles"] for c in result["candidates"]]
            expected = _cross_entropy(prob[None, :], fingerprint_bits(smiles, local_model.fingerprint_spec))
            np.testing.assert_allclose(scores, expected, rtol=1e-5)
        if spectrum.adduct == "[M+H]+":
            # every imported structure within 10 ppm of M = m/z - proton is a candidate, the true one included
            mass = spectrum.precursor_mz - PROTON
            window = [
                s for s in imported if abs(Descriptors.ExactMolWt(Chem.MolFromSmiles(s.smiles)) - mass) <= mass * 1e-5
            ]
            true_block = Chem.MolToInchiKey(Chem.MolFromSmiles(spectrum.smiles))[:14]
            assert true_block in {c["inchikey"][:14] for c in result["candidates"]}
            assert result["n_candidates"] >= len({s.smiles for s in window})


def test_annotate_json_with_given_candidates(client: httpx.Client, local_model: SpectraModel) -> None:
    candidates = ["Oc1ccccc1", "Cc1ccccc1O", "Cc1ccc(O)cc1", "c1ccccc1"]
    spectrum = {"title": "phenolic", "precursor_mz": 109.0648, "peaks": [[91.05, 100], [77.04, 30]]}
    body = client.post("/v1/annotate", params={"top_k": 3}, json={"spectra": [{**spectrum, "candidates": candidates}]})
    assert body.status_code == 200, body.text
    result = body.json()["results"][0]
    assert result["n_candidates"] == 4 and len(result["candidates"]) == 3
    local = next(iter(read_spectra_from_json([spectrum])))
    expected = _cross_entropy(
        local_model.predict_fingerprints([local])[0][None, :],
        fingerprint_bits(candidates, local_model.fingerprint_spec),
    )
    best = np.argsort(expected, kind="stable")[:3]
    np.testing.assert_allclose([c["score"] for c in result["candidates"]], expected[best], rtol=1e-5)
    assert [c["formula"] for c in result["candidates"]] == [
        Chem.rdMolDescriptors.CalcMolFormula(Chem.MolFromSmiles(candidates[i])) for i in best
    ]


def test_an_import_is_seen_by_the_next_annotation(client: httpx.Client) -> None:
    caffeine = "Cn1c(=O)c2c(ncn2C)n(C)c1=O"
    mass = Descriptors.ExactMolWt(Chem.MolFromSmiles(caffeine))
    query = {"spectra": [{"title": "caffeine", "precursor_mz": mass + PROTON, "peaks": [[138.07, 100], [110.07, 20]]}]}
    before = client.post("/v1/annotate", json=query).json()["results"][0]
    assert caffeine not in {c["smiles"] for c in before["candidates"]}
    assert client.post("/v1/candidates", json={"smiles": [caffeine]}, headers=KEY).json()["added"] == 1
    after = client.post("/v1/annotate", json=query).json()["results"][0]
    assert after["n_candidates"] == before["n_candidates"] + 1
    assert caffeine in {c["smiles"] for c in after["candidates"]}


def test_a_spectrum_without_candidates_in_the_window_says_what_to_do(client: httpx.Client) -> None:
    peaks = [[100.0, 5.0], [200.0, 10.0]]
    heavy = {"title": "heavy", "precursor_mz": 1234.5678, "peaks": peaks}
    query = {"spectra": [heavy, {**heavy, "title": "given", "candidates": ["CCO"]}]}
    heavy, given = client.post("/v1/annotate", json=query, params={"ppm": 5}).json()["results"]
    assert (heavy["n_candidates"], heavy["candidates"]) == (0, [])
    assert "no candidate within 5 ppm of neutral mass 1233.5605" in heavy["note"]  # 1234.5678 - proton
    assert "msvae candidates import FILE" in heavy["note"]
    assert given["n_candidates"] == 1 and given["note"] is None  # candidates given: nothing to say


def test_bad_spectra_are_listed_and_the_others_annotated(client: httpx.Client) -> None:
    mgf = (
        b"BEGIN IONS\nTITLE=good\nPEPMASS=195.0877\n138.07 100\nEND IONS\n"
        b"BEGIN IONS\nTITLE=bad peak\nPEPMASS=195.0877\n138.07 abc\nEND IONS\n"
        b"BEGIN IONS\nTITLE=no precursor\n138.07 100\nEND IONS\n"
        b"BEGIN IONS\nTITLE=odd adduct\nPEPMASS=195.0877\nADDUCT=[M+Xx]+\n138.07 100\nEND IONS\n"
        b"BEGIN IONS\nTITLE=cut\nPEPMASS=195.0877\n138.07 100\n"
    )
    response = client.post("/v1/annotate", files={"file": ("mixed.mgf", mgf)})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["title"] for r in body["results"]] == ["good"]
    rejected = {r["index"]: r for r in body["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 4]
    assert rejected[1]["title"] == "bad peak" and rejected[1]["line"] == 9
    assert "PEPMASS" in rejected[2]["reason"]
    assert "[M+Xx]+" in rejected[3]["reason"]
    assert "END IONS" in rejected[4]["reason"] and rejected[4]["line"] == 24  # the last line


def test_given_candidates_with_an_unreadable_smiles_reject_that_spectrum(client: httpx.Client) -> None:
    good = {"title": "a", "precursor_mz": 195.0877, "peaks": [[138.07, 100]], "candidates": ["CCO"]}
    bad = {"title": "b", "precursor_mz": 195.0877, "peaks": [[138.07, 100]], "candidates": ["CCO", "C1CC"]}
    body = client.post("/v1/annotate", json={"spectra": [good, bad]}).json()
    assert [r["title"] for r in body["results"]] == ["a"]
    assert body["rejected"][0]["index"] == 1 and "candidate 1" in body["rejected"][0]["reason"]


def test_a_model_not_served_is_404(client: httpx.Client) -> None:
    spectrum = {"title": "a", "precursor_mz": 195.0877, "peaks": [[138.07, 100]]}
    response = client.post("/v1/annotate", params={"model": "nope"}, json={"spectra": [spectrum]})
    assert response.status_code == 404 and "nope" in response.json()["detail"]


def test_job_results_equal_direct_annotation(setup, client: httpx.Client, imported: list[Spectrum]) -> None:
    sample = setup[2] + b"BEGIN IONS\nTITLE=broken\nPEPMASS=x\n100 1\nEND IONS\n"
    created = client.post("/v1/jobs", params={"top_k": 5}, files={"file": ("batch.mgf", sample)}, headers=KEY)
    assert created.status_code == 202, created.text
    job = created.json()
    assert job["status"] == "queued" and job["n_spectra"] == len(imported)
    assert [r["index"] for r in job["rejected"]] == [len(imported)]
    status = _wait_for_job(client, job["id"])
    assert status["status"] == "done" and status["n_done"] == len(imported) and status["progress"] == 1.0
    results = client.get(f"/v1/jobs/{job['id']}/results").json()
    direct = client.post("/v1/annotate", params={"top_k": 5}, files={"file": ("batch.mgf", sample)}).json()
    assert results["results"] == direct["results"]
    assert results["rejected"] == direct["rejected"]
    assert client.get("/v1/jobs/not-a-job").status_code == 404


def test_mzml_and_mzxml_runs_annotate_as_their_mgf(setup, client: httpx.Client, imported, tmp_path: Path) -> None:
    """The same spectra as MS2 scans of an mzML run (``/v1/annotate``) and a gzip mzXML run (``/v1/jobs``) get the
    candidates of their MGF; the scan without precursor is a rejection that names it."""
    import gzip
    import warnings

    from spectrum_files import NATIVE_ID, write_mzml, write_mzxml

    spectra = [s for s in read_spectra(io.BytesIO(setup[2])) if isinstance(s, Spectrum)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mzml = write_mzml(tmp_path / "run.mzML", spectra, intensity_bits=64).read_bytes()
    mzxml = gzip.compress(write_mzxml(tmp_path / "run.mzXML", spectra, precision=64).read_bytes())
    from_mgf = client.post("/v1/annotate", params={"top_k": 5}, files={"file": ("run.mgf", setup[2])}).json()

    def ranked(body: dict) -> list[list[str]]:
        return [[c["inchikey"] for c in r["candidates"]] for r in body["results"]]

    direct = client.post("/v1/annotate", params={"top_k": 5}, files={"file": ("run.mzML", mzml)}).json()
    assert [r["title"] for r in direct["results"]] == [NATIVE_ID.format(k) for k in range(2, len(spectra) + 2)]
    assert ranked(direct) == ranked(from_mgf) and any(ranked(direct))
    (rejection,) = direct["rejected"]
    assert (rejection["index"], rejection["title"]) == (len(spectra), NATIVE_ID.format(len(spectra) + 2))
    assert "without a precursor" in rejection["reason"]

    job = client.post("/v1/jobs", params={"top_k": 5}, files={"file": ("run.mzXML.gz", mzxml)}, headers=KEY)
    assert job.status_code == 202, job.text
    assert _wait_for_job(client, job.json()["id"])["status"] == "done"
    results = client.get(f"/v1/jobs/{job.json()['id']}/results").json()
    assert [r["title"] for r in results["results"]] == [f"scan={k}" for k in range(2, len(spectra) + 2)]
    assert ranked(results) == ranked(from_mgf)
    assert [r["title"] for r in results["rejected"]] == [f"scan={len(spectra) + 2}"]


def _wait_for_job(client: httpx.Client, job_id: str, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/v1/jobs/{job_id}").json()
        if status["status"] in ("done", "failed"):
            return status
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} not finished: {status}")


def test_method_not_allowed_lists_every_method_of_the_path(client: httpx.Client) -> None:
    response = client.delete("/v1/candidates")
    assert response.status_code == 405 and response.headers["allow"] == "GET, POST"


def test_depiction_page_and_openapi(client: httpx.Client) -> None:
    svg = client.get("/v1/depict", params={"smiles": "c1ccccc1O"})
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert svg.text.lstrip().startswith("<?xml") and "<svg" in svg.text
    assert client.get("/v1/depict", params={"smiles": "C1CC"}).status_code == 422
    page = client.get("/")
    assert page.status_code == 200 and 'id="upload"' in page.text
    assert client.get("/static/app.js").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/health", "/v1/models", "/v1/annotate", "/v1/candidates", "/v1/jobs", "/v1/jobs/{job_id}"):
        assert path in paths
    assert set(paths["/v1/annotate"]["post"]["requestBody"]["content"]) == {"application/json", "multipart/form-data"}


# --- malformed input: each answered 4xx with a JSON message, and the server stays healthy -----------------------

_JUNK = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
_ONE = b"BEGIN IONS\nTITLE=t\nPEPMASS=200.1\n"
MALFORMED_MGF = {
    "truncated": _ONE + b"100.0 5\n120.",
    "missing END IONS": _ONE + b"100.0 5\nBEGIN IONS\nTITLE=u\n",
    "non-numeric peaks": _ONE + b"100.0 five\nEND IONS\n",
    "huge m/z": _ONE + b"1e30 5\nEND IONS\n",
    "no peaks": _ONE + b"END IONS\n",
    "negative precursor": b"BEGIN IONS\nPEPMASS=-3\n100 1\nEND IONS\n",
    "empty file": b"",
    "whitespace only": b"\n \n",
    "binary junk": _JUNK,
    "not MGF": b"hello world\nthis is text\n",
    "gzip junk": b"\x1f\x8b\x08\x00" + _JUNK[:200],
}


@pytest.mark.parametrize("name", MALFORMED_MGF)
def test_malformed_mgf_is_4xx(client: httpx.Client, name: str) -> None:
    for path, headers in (("/v1/annotate", {}), ("/v1/jobs", KEY)):
        response = client.post(path, files={"file": ("bad.mgf", MALFORMED_MGF[name])}, headers=headers)
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        assert response.json()["detail"]


JSON = {"content-type": "application/json"}
XML = {"content-type": "text/xml"}
MALFORMED_REQUESTS = {
    "text/plain body": ("POST", "/v1/annotate", {"content": b"BEGIN IONS", "headers": {"content-type": "text/plain"}}),
    "no content type": ("POST", "/v1/annotate", {"content": b"{}"}),
    "xml to candidates": ("POST", "/v1/candidates", {"content": b"<a/>", "headers": {**XML, **KEY}}),
    "json to jobs": ("POST", "/v1/jobs", {"json": {"spectra": []}, "headers": KEY}),
    "invalid JSON": ("POST", "/v1/annotate", {"content": b"{not json", "headers": JSON}),
    "JSON list": ("POST", "/v1/annotate", {"json": [1, 2]}),
    "no spectra": ("POST", "/v1/annotate", {"json": {"spectra": []}}),
    "peaks not pairs": ("POST", "/v1/annotate", {"json": {"spectra": [{"precursor_mz": 200, "peaks": [1, 2, 3]}]}}),
    "peaks strings": ("POST", "/v1/annotate", {"json": {"spectra": [{"precursor_mz": 200, "peaks": [["a", "b"]]}]}}),
    "spectrum not object": ("POST", "/v1/annotate", {"json": {"spectra": ["BEGIN IONS"]}}),
    "NaN precursor": ("POST", "/v1/annotate", {"content": b'{"spectra": [{"precursor_mz": NaN, "peaks": [[1, 2]]}]}',
                                               "headers": {"content-type": "application/json"}}),
    "invalid SMILES candidate": ("POST", "/v1/annotate", {"json": {"spectra": [
        {"precursor_mz": 200, "peaks": [[100, 1]], "candidates": ["C1CC"]}]}}),
    "candidates not a list": ("POST", "/v1/annotate", {"json": {"spectra": [
        {"precursor_mz": 200, "peaks": [[100, 1]], "candidates": "CCO"}]}}),
    "no file field": ("POST", "/v1/annotate", {"data": {"name": "x"}, "files": {"other": ("a", b"b")}}),
    "top_k 0": ("POST", "/v1/annotate?top_k=0", {"json": {"spectra": [{"precursor_mz": 200, "peaks": [[1, 2]]}]}}),
    "negative ppm": ("GET", "/v1/candidates?mass=100&ppm=-1", {}),
    "mass and formula": ("GET", "/v1/candidates?mass=100&formula=C2H6O", {}),
    "neither mass nor formula": ("GET", "/v1/candidates", {}),
    "import invalid JSON": ("POST", "/v1/candidates", {"json": {"smiles": "CCO"}, "headers": KEY}),
    "import binary": ("POST", "/v1/candidates", {"files": {"file": ("a.smi", _JUNK)}, "headers": KEY}),
    "import gzip junk": ("POST", "/v1/candidates", {"files": {"file": ("a.smi.gz", MALFORMED_MGF["gzip junk"])},
                                                   "headers": KEY}),
    "import TSV without smiles column": ("POST", "/v1/candidates", {
        "files": {"file": ("a.tsv", b"name\tmass\nx\t1\n")}, "headers": KEY}),
    "import unknown format": ("POST", "/v1/candidates?format=pdb", {"json": {"smiles": ["CCO"]}, "headers": KEY}),
    "depict invalid SMILES": ("GET", "/v1/depict?smiles=C1CC", {}),
    "unknown job": ("GET", "/v1/jobs/123/results", {}),
}  # fmt: skip


@pytest.mark.parametrize("name", MALFORMED_REQUESTS)
def test_malformed_request_is_4xx(client: httpx.Client, name: str) -> None:
    method, path, kwargs = MALFORMED_REQUESTS[name]
    response = client.request(method, path, **kwargs)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.json()["detail"]


def test_uploads_over_the_limit_are_413(client: httpx.Client) -> None:
    big = b"BEGIN IONS\n" + b"100.0 1\n" * (MAX_UPLOAD_MB * 1024 * 1024 // 8 + 10)
    declared = client.post("/v1/annotate", files={"file": ("big.mgf", big)})
    assert declared.status_code == 413 and "MSVAE_MAX_UPLOAD_MB" in declared.json()["detail"]

    def chunks():  # no Content-Length: the limit is found while the body streams in
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    streamed = client.post("/v1/annotate", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert (
        client.post("/v1/candidates", content=chunks(), headers={"content-type": "application/json", **KEY}).status_code
        == 413
    )


def test_still_healthy_after_the_bad_input(client: httpx.Client) -> None:
    assert client.get("/health").json()["status"] == "ok"
    spectrum = {"title": "a", "precursor_mz": 195.0877, "peaks": [[138.07, 100]], "candidates": ["CCO"]}
    assert client.post("/v1/annotate", json={"spectra": [spectrum]}).status_code == 200
