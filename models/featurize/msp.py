"""The MSP reader (NIST / MoNA style records: ``Name:`` first, ``Key: value`` headers, ``Num Peaks:``, peak lines,
a blank line between records); keys are mapped to the MGF names the rest of the code reads."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from models.featurize.reading import COMMENT_CHARS, EMPTY_INPUT, NO_LIMITS, BadLine, Block, ReadLimits
from models.featurize.spectrum import Spectrum, SpectrumError

# MSP keys (lower case, spaces as written) -> the MGF-style key the rest of the code reads.
_MSP_KEYS = {
    "name": "title",
    "precursormz": "pepmass",
    "precursor_mz": "pepmass",
    "precursor mz": "pepmass",
    "precursor_type": "adduct",
    "precursortype": "adduct",
    "precursor type": "adduct",
    "num peaks": "num_peaks",
    "numpeaks": "num_peaks",
}
_SMILES_IN_COMMENT = re.compile(r'"SMILES=([^"]+)"', re.IGNORECASE)


def _finish_msp(block: Block, require_precursor: bool) -> Spectrum | SpectrumError:
    expected = block.params.get("num_peaks")
    if block.error is None and expected is not None:
        try:
            n = int(expected)
        except ValueError:
            block.fail(f"Num Peaks {expected!r} is not an integer", block.header_lines.get("num_peaks", block.line))
        else:
            if n != len(block.peaks):
                last = block.peak_lines[-1] if block.peak_lines else block.header_lines.get("num_peaks", block.line)
                block.fail(f"Num Peaks says {n} but {len(block.peaks)} peaks follow (truncated?)", last)
    if "smiles" not in block.params and (m := _SMILES_IN_COMMENT.search(block.params.get("comments", ""))):
        block.params["smiles"] = m.group(1)
    return block.finish(require_precursor)


def read_msp(
    lines: Iterable[tuple[int, str | BadLine]], require_precursor: bool, limits: ReadLimits = NO_LIMITS
) -> Iterator[Spectrum | SpectrumError]:
    """Spectra and errors of MSP text lines (as :func:`~models.featurize.reading.text_lines` gives them)."""
    block: Block | None = None
    n_blocks = 0
    in_peaks = False
    for number, text in lines:
        stripped = None if isinstance(text, BadLine) else text.strip()
        if stripped is not None and stripped.lower().startswith("name:"):
            if block is not None:
                yield _finish_msp(block, require_precursor)
            if limits.max_spectra is not None and n_blocks >= limits.max_spectra:
                raise limits.too_many_spectra()
            block = Block(n_blocks, number, {}, limits)
            n_blocks += 1
            in_peaks = False
        if block is None:
            if stripped is None or (stripped and stripped[0] not in COMMENT_CHARS):
                yield SpectrumError("text before the first Name: line (not an MSP file?)", line=number)
                return
            continue
        if isinstance(text, BadLine):
            block.fail(text.reason, number)
        elif not stripped:
            if in_peaks:  # a blank line ends a record's peak list
                yield _finish_msp(block, require_precursor)
                block, in_peaks = None, False
        elif block.error is not None or stripped[0] in COMMENT_CHARS:
            pass
        elif in_peaks or stripped[0].isdigit():
            in_peaks = True
            # "mz int", "mz\tint \"annotation\"" or several "mz int;" pairs on one line
            for pair in stripped.split(";"):
                pair = pair.split('"')[0].strip()
                if not pair:
                    continue
                block.add_peak(pair, number)
        elif ":" in stripped:
            key, value = stripped.split(":", 1)
            key = key.strip().lower()
            key = _MSP_KEYS.get(key, key)
            block.params[key] = value.strip()
            block.header_lines[key] = number
            in_peaks = key == "num_peaks"
        else:
            block.fail(f"line {stripped[:60]!r} is neither 'Key: value' nor a peak", number)
    if block is not None:
        yield _finish_msp(block, require_precursor)
    if n_blocks == 0:
        yield SpectrumError(EMPTY_INPUT)
