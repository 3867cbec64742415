"""Property-based fuzzing (hypothesis) of the input paths of issue 13: the readers in-process, and the annotation
endpoint of a live server. Whatever comes in, the reader yields spectra and per-spectrum errors (or stops at a
limit with :class:`InputTooLarge`), and the server answers a 4xx with a reason or a 200 whose scores are all finite
numbers, never a 500. Bounded: a few hundred in-process examples and about a hundred requests."""

from __future__ import annotations

import gzip
import io
import json
import math
from pathlib import Path

import httpx
import numpy as np
import pytest
from api_helpers import live_server, server_env, serving_model
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from models.featurize.mgf import InputTooLarge, ReadLimits, Spectrum, SpectrumError, read_spectra

LIMITS = ReadLimits(max_bytes=1 << 20, max_spectra=20, max_peaks=50)
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ANY_TEXT = st.text(st.characters(categories=["L", "N", "P", "S", "Z", "C"]), max_size=30)  # "C": controls, surrogates
NUMBERS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=0, max_value=2000),
    st.integers(min_value=-(10**400), max_value=10**400),
)


def _read(data: bytes) -> list[Spectrum | SpectrumError]:
    try:
        return list(read_spectra(io.BytesIO(data), limits=LIMITS))
    except InputTooLarge:
        return []


@given(st.binary(max_size=4000))
@settings(max_examples=150, deadline=None)
def test_any_bytes_give_spectra_or_errors(data: bytes) -> None:
    for item in _read(data) + _read(gzip.compress(data)):
        assert isinstance(item, Spectrum | SpectrumError)
        if isinstance(item, Spectrum):
            assert np.isfinite(item.mz).all() and np.isfinite(item.intensity).all()


@st.composite
def mgf_texts(draw: st.DrawFn) -> str:
    blocks = []
    for i in range(draw(st.integers(1, 4))):
        title = draw(st.text(st.characters(categories=["L", "N", "P", "Zs"]), max_size=20)).strip()
        peaks = draw(st.lists(st.tuples(st.floats(1, 1000), st.floats(0, 1e6)), min_size=1, max_size=8))
        lines = [f"{mz!r} {intensity!r}" for mz, intensity in peaks]
        blocks.append("\n".join(["BEGIN IONS", f"TITLE={title}", f"PEPMASS={100 + i}", *lines, "END IONS"]))
    return "\n".join(blocks) + "\n"


@given(mgf_texts(), st.sampled_from(["\r", "\r\n", "mixed"]), st.sampled_from(["utf-8", "utf-16", "utf-16-be"]))
@settings(max_examples=80, deadline=None)
def test_line_ends_and_encodings_do_not_change_what_is_read(text: str, end: str, encoding: str) -> None:
    # UTF-16 without a byte-order mark is recognised by its zero bytes, which text mostly in the ASCII range has
    assume(encoding != "utf-16-be" or text.isascii())
    if end == "mixed":
        lines = text.split("\n")
        variant = "".join(line + ("\r", "\r\n", "\n")[i % 3] for i, line in enumerate(lines[:-1]))
    else:
        variant = text.replace("\n", end)
    expected, got = _read(text.encode()), _read(variant.encode(encoding))
    assert len(got) == len(expected)
    for a, b in zip(expected, got, strict=True):
        assert type(a) is type(b) and a.title == b.title
        if isinstance(a, Spectrum):
            np.testing.assert_array_equal(a.mz, b.mz)
            np.testing.assert_array_equal(a.intensity, b.intensity)


# --- the live server -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("fuzz")
    env = server_env(
        f"sqlite:///{folder / 'fuzz.sqlite'}", serving_model(folder), folder, MAX_CANDIDATES="20", MAX_PEAKS="200"
    )
    with live_server(env, folder) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


def _never_a_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, response.text
    body = response.json()
    if response.status_code == 200:
        for result in body["results"]:
            assert all(math.isfinite(c["score"]) for c in result["candidates"])
    else:
        assert body["detail"]


json_scalars = st.one_of(st.none(), st.booleans(), NUMBERS, ANY_TEXT)
json_values = st.recursive(json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner))
spectra_items = st.fixed_dictionaries(
    {},
    optional={
        "title": st.one_of(ANY_TEXT, NUMBERS, json_values),
        "precursor_mz": st.one_of(NUMBERS, ANY_TEXT, st.none()),
        "peaks": st.one_of(st.lists(st.lists(NUMBERS, min_size=0, max_size=3), max_size=6), json_values),
        "candidates": st.one_of(st.lists(st.sampled_from(["CCO", "c1ccccc1O", "C1CC", "", "[Xx]"]) | ANY_TEXT)),
        "adduct": st.one_of(st.sampled_from(["[M+H]+", "[M-H]-", "[M+Na]+", "junk"]), ANY_TEXT),
    },
)


@given(st.one_of(st.fixed_dictionaries({"spectra": st.lists(spectra_items, max_size=4)}), json_values))
@FUZZ
def test_any_json_body_is_4xx_or_finite_scores(client: httpx.Client, document: object) -> None:
    body = json.dumps(document, ensure_ascii=True).encode()  # lone surrogates travel as \\udXXX escapes
    _never_a_server_error(client.post("/v1/annotate", content=body, headers={"content-type": "application/json"}))


@given(st.one_of(mgf_texts().map(str.encode), st.binary(max_size=2000)), st.booleans())
@FUZZ
def test_any_upload_is_4xx_or_finite_scores(client: httpx.Client, data: bytes, compress: bool) -> None:
    upload = gzip.compress(data) if compress else data
    _never_a_server_error(client.post("/v1/annotate", files={"file": ("fuzz.mgf", upload)}))


def test_the_corpus_of_the_readers_tests_through_the_server(client: httpx.Client) -> None:
    """The reader's malformed-input corpus, every item posted as an upload."""
    corpus = Path(__file__).with_name("test_featurize_mgf.py").read_text()
    for chunk in corpus.split("BEGIN IONS")[1:]:
        _never_a_server_error(
            client.post("/v1/annotate", files={"file": ("c.mgf", ("BEGIN IONS" + chunk[:400]).encode())})
        )
