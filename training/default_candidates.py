"""The default candidate set that a new database starts with: every distinct structure (first InChIKey block) of
the MassBank file the shipped model was trained on, as a TSV (``smiles``, ``inchikey``, ``name`` = the MassBank
accession of its first record, ``license`` = that record's license), gzip-compressed::

    python3 -m training.default_candidates --data ../shared/data

Structures whose SMILES RDKit cannot read are left out (they could not be ranked anyway).
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

from models.featurize.fingerprints import InvalidMoleculeError, molecule_from_smiles
from models.featurize.mgf import Spectrum, read_spectra

MASSBANK_FILE = Path("massbank") / "massbank-pos-ms2.mgf.gz"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "app" / "candidates" / "data" / "massbank-structures.tsv.gz"
HEADER = (
    "# The distinct structures of MassBank (github.com/MassBank/MassBank-data, commit 13484d41), positive-mode MS2\n"
)


def write_default_candidates(massbank: str | Path, out: str | Path) -> tuple[int, int]:
    """Write the structures of ``massbank`` (an MGF with SMILES/INCHIKEY/LICENSE headers) to ``out``; returns
    (structures written, structures left out because RDKit cannot read their SMILES)."""
    blocks: dict[str, str | None] = {}  # SMILES -> first InChIKey block (None: unreadable)
    seen: set[str] = set()
    rows: list[str] = []
    for item in read_spectra(massbank):
        if not isinstance(item, Spectrum) or item.params["smiles"] in blocks:
            continue
        smiles = item.params["smiles"]
        try:
            molecule = molecule_from_smiles(smiles, spec=None)
        except InvalidMoleculeError:
            blocks[smiles] = None
            continue
        blocks[smiles] = molecule.inchikey_block
        if molecule.inchikey_block not in seen:
            seen.add(molecule.inchikey_block)
            rows.append("\t".join((smiles, molecule.inchikey, item.title, item.params["license"])))
    unreadable = sum(block is None for block in blocks.values())
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(out, "wb", mtime=0) as stream:
        text = HEADER + "# one row per first InChIKey block; name: the accession of its first record\n"
        text += "smiles\tinchikey\tname\tlicense\n" + "".join(row + "\n" for row in rows)
        stream.write(text.encode())
    return len(rows), unreadable


def main(argv: list[str] | None = None) -> None:
    """``python3 -m training.default_candidates``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="data folder holding massbank/massbank-pos-ms2.mgf.gz")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output .tsv.gz (default: the shipped one)")
    args = parser.parse_args(argv)
    written, unreadable = write_default_candidates(Path(args.data) / MASSBANK_FILE, args.out)
    print(f"{args.out}: {written} structures ({unreadable} unreadable SMILES left out)")


if __name__ == "__main__":
    main()
