"""Test kit: mzML and mzXML files of real spectra written as instruments' converters write them.

- :func:`write_mzml` uses psims (the writer behind several converters; PSI-MS controlled vocabulary, zlib-compressed
  64-bit arrays, an index) and ProteoWizard's native ids (``controllerType=0 controllerNumber=1 scan=N``). Each
  run opens with an MS1 survey scan, as an instrument's file does, and may end with an MS2 scan without precursor.
- :func:`write_mzxml` writes mzXML 3.2 as ProteoWizard msconvert does (``<scan>`` with ``msLevel``, ``polarity``,
  ``<precursorMz precursorCharge=...>``, ``<peaks>`` base64 of network-order m/z-intensity pairs, optionally zlib).
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from models.featurize.mgf import Spectrum

NATIVE_ID = "controllerType=0 controllerNumber=1 scan={}"


def write_mzml(path: Path, spectra: Sequence[Spectrum], *, orphan_ms2: bool = True, intensity_bits: int = 32) -> Path:
    """An mzML run: one MS1 scan (scan=1), then each spectrum as an MS2 scan with its precursor m/z and charge
    (scan=2, 3, ...), then (``orphan_ms2``) an MS2 scan without precursor. m/z are 64-bit floats, intensities
    ``intensity_bits`` (32, as converters and psims write them by default, or 64)."""
    from psims.mzml.writer import MzMLWriter

    with MzMLWriter(open(path, "wb"), close=True) as out:
        out.controlled_vocabularies()
        out.file_description(["MS1 spectrum", "MSn spectrum", "centroid spectrum"])
        out.software_list([{"id": "psims-writer", "version": "1.4.0", "params": ["python-psims"]}])
        source = out.Source(1, ["electrospray ionization", "electrospray inlet"])
        analyzer = out.Analyzer(2, ["orbitrap"])
        detector = out.Detector(3, ["inductive detector"])
        config = out.InstrumentConfiguration("IC1", [source, analyzer, detector], params=["Q Exactive"])
        out.instrument_configuration_list([config])
        method = out.ProcessingMethod(order=1, software_reference="psims-writer", params=["Conversion to mzML"])
        out.data_processing_list([out.DataProcessing([method], id="DP1")])
        with out.run(id="run1", instrument_configuration="IC1"), out.spectrum_list(count=len(spectra) + 2):
            survey = np.array([s.precursor_mz for s in spectra], dtype=np.float64)
            out.write_spectrum(
                np.sort(survey), np.full(len(survey), 1e6), id=NATIVE_ID.format(1),
                params=[{"ms level": 1}, "MS1 spectrum", "positive scan"], scan_start_time=0.5,
            )  # fmt: skip
            encoding = {"m/z array": np.float64, "intensity array": np.float64 if intensity_bits == 64 else np.float32}
            for k, spectrum in enumerate(spectra, start=2):
                activation = ["beam-type collision-induced dissociation", {"collision energy": 30.0}]
                precursor = {"mz": spectrum.precursor_mz, "charge": spectrum.charge or 1, "intensity": 1e6,
                             "scan_id": NATIVE_ID.format(1), "activation": activation}  # fmt: skip
                out.write_spectrum(
                    spectrum.mz, spectrum.intensity, id=NATIVE_ID.format(k),
                    params=[{"ms level": 2}, "MSn spectrum", "positive scan"], scan_start_time=0.5 + k / 10,
                    encoding=encoding, precursor_information=precursor,
                )  # fmt: skip
            if orphan_ms2:
                out.write_spectrum(
                    np.array([60.0, 91.05]), np.array([10.0, 100.0]), id=NATIVE_ID.format(len(spectra) + 2),
                    params=[{"ms level": 2}, "MSn spectrum", "positive scan"],
                )  # fmt: skip
    return path


def _peaks(mz: np.ndarray, intensity: np.ndarray, precision: int, compress: bool) -> tuple[str, int]:
    pairs = np.column_stack([mz, intensity]).astype(">f8" if precision == 64 else ">f4").tobytes()
    raw = zlib.compress(pairs) if compress else pairs
    return base64.b64encode(raw).decode(), len(raw) if compress else 0


def write_mzxml(
    path: Path, spectra: Sequence[Spectrum], *, polarity: str = "+", precision: int = 32, compress: bool = True
) -> Path:
    """An mzXML 3.2 run like msconvert's: an MS1 scan (num 1), each spectrum as an MS2 scan (num 2, 3, ...), then an
    MS2 scan without ``precursorMz``."""
    scans = []
    survey = np.sort(np.array([s.precursor_mz for s in spectra]))
    items = [(1, survey, np.full(len(survey), 1e6), None, None)]
    items += [(k, s.mz, s.intensity, s.precursor_mz, s.charge or 1) for k, s in enumerate(spectra, start=2)]
    items.append((len(spectra) + 2, np.array([60.0, 91.05]), np.array([10.0, 100.0]), None, None))
    for num, mz, intensity, precursor, charge in items:
        level = 1 if num == 1 else 2
        data, length = _peaks(mz, intensity, precision, compress)
        precursor_xml = (
            f'\n      <precursorMz precursorScanNum="1" precursorIntensity="1000000" precursorCharge="{charge}" '
            f'activationMethod="HCD">{float(precursor)}</precursorMz>'
            if precursor is not None
            else ""
        )
        scans.append(
            f'    <scan num="{num}" scanType="Full" centroided="1" msLevel="{level}" peaksCount="{len(mz)}" '
            f'polarity="{polarity}" retentionTime="PT{num * 6.0}S" collisionEnergy="30" lowMz="{float(min(mz))}" '
            f'highMz="{float(max(mz))}" basePeakMz="{float(mz[np.argmax(intensity)])}" '
            f'basePeakIntensity="{float(max(intensity))}" totIonCurrent="{float(sum(intensity))}">{precursor_xml}\n'
            f'      <peaks compressionType="{"zlib" if compress else "none"}" compressedLen="{length}" '
            f'precision="{precision}" byteOrder="network" contentType="m/z-int">{data}</peaks>\n'
            f"    </scan>"
        )
    body = "\n".join(scans)
    path.write_text(
        '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
        '<mzXML xmlns="http://sashimi.sourceforge.net/schema_revision/mzXML_3.2" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="http://sashimi.sourceforge.net/schema_revision/mzXML_3.2 '
        'http://sashimi.sourceforge.net/schema_revision/mzXML_3.2/mzXML_idx_3.2.xsd">\n'
        f'  <msRun scanCount="{len(items)}" startTime="PT6S" endTime="PT{len(items) * 6.0}S">\n'
        '    <parentFile fileName="file:///data/run.raw" fileType="RAWData" '
        'fileSha1="0000000000000000000000000000000000000000"/>\n'
        '    <msInstrument msInstrumentID="1">\n'
        '      <msManufacturer category="msManufacturer" value="Thermo Scientific"/>\n'
        '      <msModel category="msModel" value="Q Exactive"/>\n'
        "    </msInstrument>\n"
        '    <dataProcessing centroided="1">\n'
        '      <software type="conversion" name="ProteoWizard software" version="3.0.20"/>\n'
        "    </dataProcessing>\n"
        f"{body}\n"
        "  </msRun>\n"
        "</mzXML>\n",
        encoding="iso-8859-1",
    )
    return path
