"""Reading spectra: the real MassBank file (checked against pyteomics and against the raw text), a corpus of
malformed MGF inputs with the index, TITLE and line of each error, MSP, and the API's JSON form."""

from __future__ import annotations

import gzip
import io
import itertools
import pickle

import numpy as np
import pytest
from pyteomics import mgf as pyteomics_mgf

from models.featurize.mgf import Spectrum, SpectrumError, read_spectra, read_spectra_from_json

MASSBANK = "massbank/massbank-pos-ms2.mgf.gz"


def _split(items):
    good = [x for x in items if isinstance(x, Spectrum)]
    bad = [x for x in items if isinstance(x, SpectrumError)]
    return good, bad


# --- the real file ---------------------------------------------------------------------------------------------


def test_massbank_first_spectra_match_pyteomics(shared_data):
    path = shared_data / MASSBANK
    ours = list(itertools.islice(read_spectra(path), 400))
    with gzip.open(path, "rt") as fh:
        theirs = list(itertools.islice(pyteomics_mgf.read(fh, use_index=False, convert_arrays=1), 400))
    assert all(isinstance(s, Spectrum) for s in ours)
    assert [s.index for s in ours] == list(range(400))
    for s, t in zip(ours, theirs, strict=True):
        assert s.title == t["params"]["title"]
        assert s.precursor_mz == t["params"]["pepmass"][0]
        assert s.charge == 1
        np.testing.assert_array_equal(s.mz, t["m/z array"])
        np.testing.assert_array_equal(s.intensity, t["intensity array"])
        for key in ("smiles", "inchikey", "formula", "adduct", "instrument_type", "license"):
            assert s.params.get(key) == t["params"].get(key)
        assert s.smiles and s.formula


def test_massbank_first_spectrum_against_raw_text(shared_data):
    with gzip.open(shared_data / MASSBANK, "rt") as fh:
        raw = fh.read(20_000).split("END IONS")[0].splitlines()
    headers = dict(line.split("=", 1) for line in raw if "=" in line)
    peaks = np.array([[float(x) for x in line.split()] for line in raw if line[:1].isdigit()])
    s = next(read_spectra(shared_data / MASSBANK))
    assert s.title == headers["TITLE"]
    assert s.precursor_mz == float(headers["PEPMASS"])
    assert (s.smiles, s.inchikey, s.adduct) == (headers["SMILES"], headers["INCHIKEY"], headers["ADDUCT"])
    np.testing.assert_array_equal(np.c_[s.mz, s.intensity], peaks)
    assert s.mz.dtype == np.float64 and s.intensity.dtype == np.float64


# --- malformed input ------------------------------------------------------------------------------------------

GOOD = "BEGIN IONS\nTITLE={t}\nPEPMASS=300.1\nCHARGE=1+\n100.0 10\n150.5 20\nEND IONS\n"


def _corpus() -> tuple[str, list[tuple[int, str, int, str]]]:
    """An MGF text of good spectra around one of each bad case, and (index, title, line, reason part) per error."""
    blocks = [
        GOOD.format(t="good0"),
        "BEGIN IONS\nTITLE=letters\nPEPMASS=300.1\n100.0 10\n100.5 abc\nEND IONS\n",
        GOOD.format(t="good2"),
        "BEGIN IONS\nTITLE=nopeaks\nPEPMASS=300.1\nEND IONS\n",
        "BEGIN IONS\nTITLE=nopepmass\n100.0 10\nEND IONS\n",
        "BEGIN IONS\nTITLE=badpepmass\nPEPMASS=three hundred\n100.0 10\nEND IONS\n",
        "BEGIN IONS\nTITLE=negative\nPEPMASS=300.1\n100.0 10\n-5.0 10\nEND IONS\n",
        "BEGIN IONS\nTITLE=huge\nPEPMASS=300.1\n100.0 10\n1e12 10\nEND IONS\n",
        "BEGIN IONS\nTITLE=binary\nPEPMASS=300.1\n100.0 10\n\x00\x01\x02\xff\xfe\n101.0 10\nEND IONS\n",
        GOOD.format(t="good9"),
        "BEGIN IONS\nTITLE=noend\nPEPMASS=300.1\n100.0 10\n",
        GOOD.format(t="good11"),
        "BEGIN IONS\nTITLE=nanint\nPEPMASS=300.1\n100.0 nan\nEND IONS\n",
        "BEGIN IONS\nTITLE=truncated\nPEPMASS=300.1\n100.0 10\n101.0",
    ]
    text = "".join(blocks)
    starts = np.cumsum([0] + [b.count("\n") for b in blocks])  # lines before each block
    expected = [
        (1, "letters", starts[1] + 5, "not 'm/z intensity'"),
        (3, "nopeaks", starts[3] + 1, "no peaks"),
        (4, "nopepmass", starts[4] + 1, "no precursor m/z"),
        (5, "badpepmass", starts[5] + 3, "not a number"),
        (6, "negative", starts[6] + 5, "peak 1: m/z -5"),
        (7, "huge", starts[7] + 5, "peak 1: m/z 1e+12"),
        (8, "binary", starts[8] + 5, "binary data"),
        (10, "noend", starts[11] + 1, "no END IONS"),
        (12, "nanint", starts[12] + 4, "intensity nan"),
        (13, "truncated", starts[13] + 5, "input ends before END IONS"),
    ]
    return text, expected


@pytest.mark.parametrize("form", ["path", "gzip", "bytes", "text"])
def test_malformed_corpus_errors_name_spectrum_and_line(tmp_path, form):
    text, expected = _corpus()
    data = text.encode("latin-1")
    if form == "path":
        (tmp_path / "q.mgf").write_bytes(data)
        source = tmp_path / "q.mgf"
    elif form == "gzip":
        (tmp_path / "q.mgf.gz").write_bytes(gzip.compress(data))
        source = str(tmp_path / "q.mgf.gz")
    elif form == "bytes":
        source = io.BytesIO(data)
    else:
        source = io.StringIO(text)
    good, bad = _split(list(read_spectra(source)))
    assert [(s.index, s.title) for s in good] == [(0, "good0"), (2, "good2"), (9, "good9"), (11, "good11")]
    for s in good:
        np.testing.assert_array_equal(s.mz, [100.0, 150.5])
        np.testing.assert_array_equal(s.intensity, [10.0, 20.0])
        assert s.precursor_mz == 300.1
    assert [(e.index, e.title, e.line) for e in bad] == [(i, t, line) for i, t, line, _ in expected]
    for err, (index, title, line, reason) in zip(bad, expected, strict=True):
        assert reason in err.reason
        message = str(err)
        assert f"spectrum {index}" in message and title in message and f"line {line}" in message


def test_errors_pickle_with_their_fields():
    err = SpectrumError("no peaks", index=3, title="x", line=12)
    back = pickle.loads(pickle.dumps(err))
    assert (back.reason, back.index, back.title, back.line, str(back)) == ("no peaks", 3, "x", 12, str(err))
    assert back.to_dict() == {"index": 3, "title": "x", "line": 12, "reason": "no peaks"}


def test_strict_raises_the_first_error():
    text, expected = _corpus()
    reader = read_spectra(io.StringIO(text), strict=True)
    assert next(reader).title == "good0"
    with pytest.raises(SpectrumError) as info:
        next(reader)
    assert (info.value.index, info.value.title, info.value.line) == expected[0][:3]


@pytest.mark.parametrize(
    ("content", "reason", "line"),
    [
        (b"", "no spectra: the input is empty", None),
        (b"\n\n  \n", "no spectra: the input is empty", None),
        (b"smiles,name\nCCO,ethanol\n", "no BEGIN IONS line", 1),
        (bytes(range(256)) * 20, "no BEGIN IONS line", 1),
    ],
)
def test_inputs_without_spectra(content, reason, line):
    items = list(read_spectra(io.BytesIO(content)))
    assert len(items) == 1 and isinstance(items[0], SpectrumError)
    assert reason in items[0].reason and items[0].line == line and items[0].index is None
    with pytest.raises(SpectrumError, match="no spectra"):
        list(read_spectra(io.BytesIO(content), strict=True))


def test_stray_text_between_spectra_is_reported_and_neighbours_kept():
    text = GOOD.format(t="a") + "garbage here\nmore garbage\n" + GOOD.format(t="b") + "END IONS\n"
    good, bad = _split(list(read_spectra(io.StringIO(text))))
    assert [s.title for s in good] == ["a", "b"]
    assert [(e.index, e.line) for e in bad] == [(None, 8), (None, 17)]  # 7 lines per block
    assert "garbage here" in bad[0].reason


def test_file_wide_headers_apply_to_each_spectrum():
    text = "CHARGE=2+\nINSTRUMENT_TYPE=QTOF\n" + GOOD.format(t="a").replace("CHARGE=1+\n", "") + GOOD.format(t="b")
    a, b = read_spectra(io.StringIO(text))
    assert (a.charge, a.params["instrument_type"]) == (2, "QTOF")
    assert (b.charge, b.params["instrument_type"]) == (1, "QTOF")  # its own CHARGE wins


def test_cut_gzip_stream_keeps_what_came_before():
    data = gzip.compress("".join(GOOD.format(t=f"s{i}") for i in range(2000)).encode())
    items = list(read_spectra(io.BytesIO(data[: len(data) // 2])))
    good, bad = _split(items)
    assert len(good) > 100 and [s.index for s in good] == list(range(len(good)))
    assert isinstance(items[-1], SpectrumError) and "cannot read the input" in items[-1].reason


def test_corrupt_deflate_data_is_a_rejection_not_a_crash():
    data = bytearray(gzip.compress("".join(GOOD.format(t=f"s{i}") for i in range(200)).encode()))
    data[10] ^= 0xFF  # the first deflate block header: zlib.error, not OSError
    (err,) = read_spectra(io.BytesIO(bytes(data)))
    assert isinstance(err, SpectrumError) and "cannot read the input" in err.reason and err.line == 1


def test_bad_charge_and_comments():
    text = "# a comment\nBEGIN IONS\nTITLE=c\nPEPMASS=300.1 1234.5\nCHARGE=abc\n100 1\nEND IONS\n"
    (err,) = read_spectra(io.StringIO(text))
    assert isinstance(err, SpectrumError) and err.line == 5 and "CHARGE" in err.reason
    (s,) = read_spectra(io.StringIO(text.replace("abc", "2-")))
    assert (s.charge, s.precursor_mz) == (-2, 300.1)


def test_precursor_optional_when_asked():
    text = "BEGIN IONS\nTITLE=x\nSMILES=CCO\n100 1\nEND IONS\n"
    (s,) = read_spectra(io.StringIO(text), require_precursor=False)
    assert s.precursor_mz is None and s.smiles == "CCO"


# --- MSP ------------------------------------------------------------------------------------------------------

MSP = """Name: caffeine
Precursor_type: [M+H]+
PrecursorMZ: 195.0877
Comments: "SMILES=CN1C=NC2=C1C(=O)N(C(=O)N2C)C" "origin=test"
Num Peaks: 3
138.0662 100 "annotation"
110.0713 20; 195.0877 50;

Name: short
PrecursorMZ: 100.5
Num Peaks: 3
50.1 10
60.2 20

Name: third
PrecursorMZ: 200
Num Peaks: 1
150 7
"""


def test_msp_records(tmp_path):
    (tmp_path / "lib.msp").write_text(MSP)
    items = list(read_spectra(tmp_path / "lib.msp"))
    assert [type(x).__name__ for x in items] == ["Spectrum", "SpectrumError", "Spectrum"]
    caffeine, short, third = items
    assert (caffeine.title, caffeine.precursor_mz, caffeine.adduct) == ("caffeine", 195.0877, "[M+H]+")
    assert caffeine.smiles == "CN1C=NC2=C1C(=O)N(C(=O)N2C)C"
    np.testing.assert_array_equal(caffeine.mz, [138.0662, 110.0713, 195.0877])
    np.testing.assert_array_equal(caffeine.intensity, [100, 20, 50])
    assert (short.index, short.title, short.line) == (1, "short", 13) and "Num Peaks says 3" in short.reason
    assert (third.index, third.n_peaks) == (2, 1)
    assert [type(x) for x in read_spectra(io.StringIO(MSP))] == [type(x) for x in items]  # content sniffing


# --- JSON -----------------------------------------------------------------------------------------------------


def test_json_spectra_share_the_validation():
    items = [
        {"title": "ok", "precursor_mz": 300.1, "peaks": [[100.0, 10], [150.5, 20]], "smiles": "CCO", "candidates": []},
        {"title": "empty", "precursor_mz": 300.1, "peaks": []},
        {"title": "noprec", "peaks": [[100.0, 10]]},
        {"title": "badprec", "precursor_mz": "abc", "peaks": [[100.0, 10]]},
        {"title": "ragged", "precursor_mz": 300.1, "peaks": [[100.0, 10], [5]]},
        {"title": "neg", "precursor_mz": 300.1, "peaks": [[100.0, 10], [-1, 3]]},
        "not an object",
    ]
    out = list(read_spectra_from_json(items))
    ok = out[0]
    assert isinstance(ok, Spectrum) and ok.smiles == "CCO" and ok.precursor_mz == 300.1
    np.testing.assert_array_equal(ok.mz, [100.0, 150.5])
    errors = out[1:]
    assert all(isinstance(e, SpectrumError) and e.line is None for e in errors)
    assert [(e.index, e.title) for e in errors] == [
        (1, "empty"),
        (2, "noprec"),
        (3, "badprec"),
        (4, "ragged"),
        (5, "neg"),
        (6, None),
    ]
    # the same reasons as for MGF input: one validation function
    mgf_errors = [
        e
        for e in read_spectra(io.StringIO("".join(_corpus()[0])))
        if isinstance(e, SpectrumError) and e.title in ("nopeaks", "nopepmass", "negative")
    ]
    assert [e.reason for e in errors[:2]] == [mgf_errors[0].reason, mgf_errors[1].reason]
    assert errors[4].reason == mgf_errors[2].reason.replace("-5", "-1")
    assert "not a number" in errors[2].reason
    assert list(read_spectra_from_json([]))[0].reason == "no spectra: the list is empty"
