"""mzML and mzXML: the MS2 scans of files written as converters write them (psims; msconvert's mzXML), read back
with their peaks, precursor m/z and charge; MS1 scans passed over; a scan without precursor rejected by name."""

from __future__ import annotations

import gzip
import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from spectrum_files import NATIVE_ID, write_mzml, write_mzxml

from models.featurize.mgf import Spectrum, SpectrumError, read_spectra
from models.featurize.mzml import sniff_xml_format

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "query.mgf"


@pytest.fixture(scope="module")
def spectra() -> list[Spectrum]:
    return [s for s in read_spectra(EXAMPLE) if isinstance(s, Spectrum)]


@pytest.fixture(scope="module")
def mzml_file(spectra, tmp_path_factory) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # psims warns about optional sections left out
        return write_mzml(tmp_path_factory.mktemp("mzml") / "run.mzML", spectra)


def _check_ms2(read: list, spectra: list[Spectrum], titles: list[str], *, charge: int = 1, rtol: float = 0.0) -> None:
    assert [type(x) for x in read] == [Spectrum] * len(spectra) + [SpectrumError]
    for k, (got, want) in enumerate(zip(read, spectra, strict=False)):
        assert (got.index, got.title, got.precursor_mz, got.charge) == (k, titles[k], want.precursor_mz, charge)
        np.testing.assert_allclose(got.mz, want.mz, rtol=rtol)
        np.testing.assert_allclose(got.intensity, want.intensity, rtol=1e-6)  # psims writes 32-bit intensities
    orphan = read[-1]
    assert orphan.index == len(spectra) and orphan.title == titles[-1]
    assert "without a precursor" in orphan.reason and orphan.title in str(orphan)


def test_mzml_ms2_scans_are_the_spectra(spectra, mzml_file):
    read = list(read_spectra(mzml_file))
    titles = [NATIVE_ID.format(k) for k in range(2, len(spectra) + 3)]  # scan=1 is the MS1 survey scan
    _check_ms2(read, spectra, titles)  # 64-bit m/z: the same numbers


def test_mzml_gzip_bytes_and_explicit_format(spectra, mzml_file):
    data = gzip.compress(mzml_file.read_bytes())
    from_bytes = [x for x in read_spectra(io.BytesIO(data)) if isinstance(x, Spectrum)]
    assert [s.title for s in from_bytes] == [NATIVE_ID.format(k) for k in range(2, len(spectra) + 2)]
    assert len([x for x in read_spectra(mzml_file, format="mzml") if isinstance(x, Spectrum)]) == len(spectra)
    with pytest.raises(SpectrumError, match="scan=7.*without a precursor"):
        list(read_spectra(mzml_file, strict=True))


@pytest.mark.parametrize(("polarity", "precision", "compress"), [("+", 32, True), ("-", 64, False)])
def test_mzxml_as_msconvert_writes_it(spectra, tmp_path, polarity, precision, compress):
    path = write_mzxml(tmp_path / "run.mzXML", spectra, polarity=polarity, precision=precision, compress=compress)
    read = list(read_spectra(path))
    titles = [f"scan={k}" for k in range(2, len(spectra) + 3)]
    _check_ms2(read, spectra, titles, charge=1 if polarity == "+" else -1, rtol=1e-6 if precision == 32 else 0.0)


def test_a_cut_file_keeps_the_scans_before_the_cut(spectra, mzml_file):
    data = mzml_file.read_bytes()
    cut = data[: data.index(NATIVE_ID.format(4).encode()) + 200]
    read = list(read_spectra(io.BytesIO(cut)))
    assert [x.title for x in read[:-1]] == [NATIVE_ID.format(2), NATIVE_ID.format(3)]
    assert isinstance(read[-1], SpectrumError) and "not a readable mzML file after 2 MS2 scans" in read[-1].reason


def test_an_ms1_only_file_has_no_spectra(spectra, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = write_mzml(tmp_path / "ms1.mzML", [], orphan_ms2=False)
    (error,) = read_spectra(path)
    assert isinstance(error, SpectrumError) and error.reason == "no spectra: the mzML file holds no MS2 scan"


def test_sniffing_the_xml_root():
    assert sniff_xml_format(b'\xef\xbb\xbf<?xml version="1.0"?>\n<indexedmzML xmlns="...">') == "mzml"
    assert sniff_xml_format(b'<?xml version="1.0"?><mzML>') == "mzml"
    assert sniff_xml_format(b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<mzXML xmlns="...">') == "mzxml"
    assert sniff_xml_format(b"BEGIN IONS\nTITLE=<mzML>\n") is None
    assert sniff_xml_format(b'<?xml version="1.0"?><svg/>') is None
