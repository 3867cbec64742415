"""Featurization throughput on real MassBank data: spectra read and binned per second, fingerprints per second;
and the candidate import's RDKit work per molecule, step by step, on MOSES molecules.

    python3 benchmarks/featurize.py [--data ../shared/data/massbank/massbank-pos-ms2.mgf.gz] [--molecules 2000]
        [--moses ../shared/data/molecules/moses/train.csv.gz] [--moses-molecules 3000]

The import's figures depend on the RDKit version as much as on the CPU (the result's ``machine`` names it): to
time another one, install it into a folder (``pip install --no-deps --target DIR rdkit==X``) and run with
``PYTHONPATH=DIR``.
Writes benchmarks/results/featurize<--result-suffix>.json.
"""

from __future__ import annotations

import argparse
import itertools
import time
from pathlib import Path

from _machine import best_of, save
from rdkit import Chem, rdBase
from rdkit.Chem import rdMolDescriptors

from app.candidates.default import served_fingerprint_spec
from app.candidates.featurize import featurize_chunk
from app.candidates.readers import open_entries
from app.settings import get_settings
from models.featurize.binning import BinningSpec, featurize_spectra, featurize_spectrum
from models.featurize.fingerprints import (
    DEFAULT_FINGERPRINT_SPEC,
    InvalidMoleculeError,
    fingerprint_bits,
    mol_from_smiles,
    molecule_from_mol,
    molecule_from_smiles,
    parse_fingerprint_spec,
)
from models.featurize.mgf import Spectrum, read_spectra

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared/data"
DEFAULT_DATA = SHARED_DATA / "massbank/massbank-pos-ms2.mgf.gz"
DEFAULT_MOSES = SHARED_DATA / "molecules/moses/train.csv.gz"


def import_work_per_molecule(path: Path, n: int, repeats: int = 3) -> dict:
    """Microseconds per molecule of each RDKit step of a candidate import (``featurize_chunk``) on the first ``n``
    records of ``path``, each step the best of ``repeats``, and of the whole chunk with the fingerprint the import
    stores (the default model's, a selection of the MACCS keys) and with the library's default fingerprint."""
    served = parse_fingerprint_spec(served_fingerprint_spec(get_settings()))
    with open_entries(path) as (_, entries):
        chunk = list(itertools.islice(entries, n))
    smiles = [entry.smiles for entry in chunk]
    mols = [mol_from_smiles(text) for text in smiles]
    steps = {
        "parse and sanitize": lambda: [mol_from_smiles(text) for text in smiles],
        "identity (InChIKey, canonical SMILES, formula, mass)": lambda: [molecule_from_mol(m, None) for m in mols],
        "of which InChIKey": lambda: [Chem.MolToInchiKey(m) for m in mols],
        "morgan2-2048": lambda: fingerprint_bits(mols, "morgan2-2048"),
        "maccs": lambda: fingerprint_bits(mols, "maccs"),
        f"the default model's fingerprint ({served.text[:24]}...)": lambda: fingerprint_bits(mols, served),
        "maccs by RDKit's GetMACCSKeysFingerprint (the same bits)": lambda: [
            rdMolDescriptors.GetMACCSKeysFingerprint(m).ToBitString() for m in mols
        ],
        "featurize_chunk (all of it)": lambda: featurize_chunk(chunk, served),
        f"featurize_chunk with {DEFAULT_FINGERPRINT_SPEC}": lambda: featurize_chunk(chunk, DEFAULT_FINGERPRINT_SPEC),
    }
    per_molecule_us = {name: best_of(fn, repeats) / len(chunk) * 1e6 for name, fn in steps.items()}
    for name, us in per_molecule_us.items():
        print(f"import work, {name}: {us:,.0f} us/molecule")
    whole = per_molecule_us["featurize_chunk (all of it)"]
    print(f"import work: {1e6 / whole:,.0f} molecules/s on one core (RDKit {rdBase.rdkitVersion})")
    return {"file": str(path), "molecules": len(chunk), "spec": served.text, "per_molecule_us": per_molecule_us,
            "molecules_per_s_one_core": 1e6 / whole}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--molecules", type=int, default=2000, help="distinct SMILES to fingerprint")
    parser.add_argument("--moses", type=Path, default=DEFAULT_MOSES, help="a MOSES CSV (the import's molecules)")
    parser.add_argument("--moses-molecules", type=int, default=3000, help="its first records to time")
    parser.add_argument("--result-suffix", default="", help="added to the result file's name")
    args = parser.parse_args()
    figures: dict = {"data": str(args.data), "timing": "seconds; reading timed once, the rest best of repeats"}

    start = time.perf_counter()
    spectra = [s for s in read_spectra(args.data) if isinstance(s, Spectrum)]
    read_s = time.perf_counter() - start
    n_peaks = sum(s.n_peaks for s in spectra)
    figures["read"] = {"spectra": len(spectra), "peaks": n_peaks, "seconds": read_s}
    figures["read"]["spectra_per_s"] = len(spectra) / read_s
    print(f"read {len(spectra):,} spectra ({n_peaks:,} peaks) in {read_s:.2f} s: {len(spectra) / read_s:,.0f}/s")

    spec = BinningSpec()
    figures["binning_spec"] = spec.to_dict()
    all_sparse = best_of(lambda: featurize_spectra(spectra, spec, sparse=True), 3)
    batch = spectra[:1000]
    dense_1000 = best_of(lambda: featurize_spectra(batch, spec), 5)
    one = spectra[0]
    single = best_of(lambda: [featurize_spectrum(one, spec) for _ in range(200)], 3) / 200
    figures["binning"] = {
        "all_sparse_seconds": all_sparse,
        "all_sparse_spectra_per_s": len(spectra) / all_sparse,
        "dense_1000_seconds": dense_1000,
        "dense_spectra_per_s": 1000 / dense_1000,
        "single_spectrum_seconds": single,
    }
    print(
        f"binning: all {len(spectra):,} spectra (sparse) in {all_sparse:.3f} s: {len(spectra) / all_sparse:,.0f}/s; "
        f"dense batches of 1000: {1000 / dense_1000:,.0f}/s; one spectrum: {single * 1e6:.0f} us"
    )

    smiles = []
    for text in dict.fromkeys(s.smiles for s in spectra if s.smiles):
        if len(smiles) == args.molecules:
            break
        try:
            molecule_from_smiles(text, None)
            smiles.append(text)
        except InvalidMoleculeError:  # MassBank's few Markush ('*') SMILES have no InChIKey
            pass
    mols = [mol_from_smiles(t) for t in smiles]
    n = len(mols)
    parse_s = best_of(lambda: [mol_from_smiles(t) for t in smiles[:500]], 1) / 500
    per_spec = {}
    for fp_spec in (DEFAULT_FINGERPRINT_SPEC, "morgan2-2048", "maccs"):
        seconds = best_of(lambda fp_spec=fp_spec: fingerprint_bits(mols, fp_spec), 1)
        per_spec[fp_spec] = {"molecules": n, "seconds": seconds, "molecules_per_s": n / seconds}
        print(f"fingerprints {fp_spec}: {n / seconds:,.0f} molecules/s (RDKit Mol given)")
    full = best_of(lambda: [molecule_from_smiles(t) for t in smiles[:500]], 1) / 500
    figures["fingerprints"] = {
        "from_mol": per_spec,
        "smiles_parse_seconds": parse_s,
        "molecule_from_smiles_seconds": full,
        "molecule_from_smiles_per_s": 1 / full,
    }
    print(
        f"SMILES parse: {1 / parse_s:,.0f}/s; molecule_from_smiles (parse, InChIKey, formula, mass, "
        f"{DEFAULT_FINGERPRINT_SPEC}): {1 / full:,.0f}/s"
    )
    figures["import_work"] = import_work_per_molecule(args.moses, args.moses_molecules)
    save(f"featurize{args.result_suffix}", figures)


if __name__ == "__main__":
    main()
