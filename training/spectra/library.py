"""A large structure library for candidate retrieval: MassBank's structures plus the 1.9M MOSES molecules.

Building the index parses every SMILES once (RDKit, a process pool) and keeps only what candidate selection needs:
the SMILES as written, the molecular formula (RDKit's ``CalcMolFormula``) and the monoisotopic mass (the
:class:`~models.featurize.fingerprints.Molecule` convention). It is written to one ``.npz`` file beside a JSON
manifest naming the input files (size and modification time), and rebuilt when they change.

Structure keys (first InChIKey block) and fingerprints cost far more than formulas (InChI ~0.3 ms, fingerprint
~0.2 ms per molecule), and a retrieval protocol needs them only for the formulas that its queries ask for, so
they are computed per formula on first use and cached on disk, one file per (fingerprint spec, formula):
:meth:`StructureLibrary.formula_candidates` returns the distinct structures (one per first InChIKey block) of a
formula with their fingerprint bits, packed.
"""

from __future__ import annotations

import gzip
import json
import os
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rdkit import Chem
from rdkit.Chem import Descriptors, rdMolDescriptors
from rdkit.rdBase import BlockLogs

from models.featurize.adducts import ELECTRON_MASS
from models.featurize.fingerprints import (
    FingerprintSpec,
    InvalidMoleculeError,
    fingerprint_bits,
    mol_from_smiles,
    pack_bits,
    parse_fingerprint_spec,
)
from models.featurize.mgf import SpectrumError, read_spectra

MASSBANK_SOURCE = Path("massbank") / "massbank-pos-ms2.mgf.gz"
MOSES_SOURCES = tuple(Path("molecules") / "moses" / f"{name}.csv.gz" for name in ("train", "test", "test_scaffolds"))
DEFAULT_SOURCES = (MASSBANK_SOURCE, *MOSES_SOURCES)
INDEX_FILE = "library-index.npz"
MANIFEST_FILE = "library-index.json"
_CHUNK = 20_000


@dataclass(frozen=True)
class FormulaCandidates:
    """The distinct structures of one formula in the library: first InChIKey blocks (sorted), a SMILES of each,
    and fingerprint bits packed with :func:`~models.featurize.fingerprints.pack_bits`."""

    formula: str
    blocks: np.ndarray  # object array of str
    smiles: np.ndarray  # object array of str
    packed_bits: np.ndarray  # (n, ceil(n_bits / 8)) uint8

    def __len__(self) -> int:
        return len(self.blocks)


def smiles_of_source(path: Path) -> list[str]:
    """The SMILES of one library source: the distinct ``SMILES=`` headers of an MGF file (in file order) or the
    ``SMILES`` column of a one-column CSV (plain or gzip)."""
    if path.name.endswith((".mgf", ".mgf.gz")):
        seen: dict[str, None] = {}
        for item in read_spectra(path):
            if not isinstance(item, SpectrumError) and item.smiles:
                seen.setdefault(item.smiles, None)
        return list(seen)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        header = f.readline().strip().split(",")
        if header != ["SMILES"]:
            raise ValueError(f"{path}: expected a one-column CSV with header SMILES, got {header}")
        return [line.strip() for line in f if line.strip()]


def formula_and_mass(smiles: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """RDKit molecular formula and monoisotopic mass of each SMILES; ``""`` and NaN where RDKit cannot parse it."""
    formulas, masses = [], np.full(len(smiles), np.nan)
    with BlockLogs():
        for i, s in enumerate(smiles):
            try:
                mol = mol_from_smiles(s)
            except InvalidMoleculeError:
                formulas.append("")
                continue
            formulas.append(rdMolDescriptors.CalcMolFormula(mol))
            masses[i] = Descriptors.ExactMolWt(mol) + Chem.GetFormalCharge(mol) * ELECTRON_MASS
    return formulas, masses


def _lower_priority() -> None:
    """Run pool workers at niceness 10 (not lower than the parent's): the build is a background job."""
    os.nice(max(0, 10 - os.nice(0)))


def _featurize_all(smiles: list[str], workers: int) -> tuple[list[str], np.ndarray]:
    chunks = [smiles[i : i + _CHUNK] for i in range(0, len(smiles), _CHUNK)]
    if workers <= 1 or len(chunks) <= 1:
        parts = [formula_and_mass(c) for c in chunks]
    else:
        with ProcessPoolExecutor(workers, initializer=_lower_priority) as pool:
            parts = list(pool.map(formula_and_mass, chunks))
    formulas = [f for part in parts for f in part[0]]
    masses = np.concatenate([part[1] for part in parts]) if parts else np.zeros(0)
    return formulas, masses


def _file_stamp(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"path": str(path), "bytes": stat.st_size, "mtime": stat.st_mtime}


class StructureLibrary:
    """The library index: SMILES, formula and monoisotopic mass of every parsable molecule, sorted by formula (then
    source order), with a per-formula cache of structure keys and fingerprints under ``cache_dir``."""

    def __init__(self, cache_dir: Path, smiles: np.ndarray, formulas: np.ndarray, formula_of: np.ndarray,
                 masses: np.ndarray, source_of: np.ndarray, sources: list[str]):  # fmt: skip
        self.cache_dir = Path(cache_dir)
        self.smiles = smiles
        self.formulas = formulas  # sorted distinct formulas
        self.formula_of = formula_of  # index into formulas, non-decreasing
        self.masses = masses
        self.source_of = source_of
        self.sources = sources
        self._starts = np.searchsorted(formula_of, np.arange(len(formulas) + 1))

    def __len__(self) -> int:
        return len(self.smiles)

    @classmethod
    def build(cls, sources: Sequence[Path], cache_dir: str | Path, *, workers: int = 2) -> StructureLibrary:
        """Parse every source and write the index (``library-index.npz`` + ``.json``) into ``cache_dir``."""
        start = time.perf_counter()
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
        smiles: list[str] = []
        source_of: list[np.ndarray] = []
        for k, path in enumerate(sources):
            part = smiles_of_source(Path(path))
            smiles += part
            source_of.append(np.full(len(part), k, np.int8))
        formulas, masses = _featurize_all(smiles, workers)
        ok = np.array([bool(f) for f in formulas])
        distinct, formula_of = np.unique(np.array(formulas, dtype=object)[ok].astype(str), return_inverse=True)
        order = np.argsort(formula_of, kind="stable")
        smiles_arr = np.array(smiles, dtype=object)[ok][order]
        library = cls(
            cache_dir, smiles_arr, distinct.astype(object), formula_of[order].astype(np.int32), masses[ok][order],
            np.concatenate(source_of)[ok][order], [str(p) for p in sources],
        )  # fmt: skip
        np.savez(
            cache_dir / INDEX_FILE,
            smiles="\n".join(smiles_arr).encode(),
            formulas="\n".join(library.formulas).encode(),
            formula_of=library.formula_of,
            masses=library.masses,
            source_of=library.source_of,
        )
        manifest = {
            "sources": [_file_stamp(Path(p)) for p in sources],
            "molecules_read": len(smiles),
            "molecules": len(library),
            "unparsable": int((~ok).sum()),
            "formulas": len(library.formulas),
            "per_source": {str(p): int((library.source_of == k).sum()) for k, p in enumerate(sources)},
            "build_seconds": round(time.perf_counter() - start, 1),
            "index_bytes": (cache_dir / INDEX_FILE).stat().st_size,
            "workers": workers,
        }
        (cache_dir / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1) + "\n")
        return library

    @classmethod
    def load(cls, cache_dir: str | Path) -> StructureLibrary:
        """The index written by :meth:`build`."""
        cache_dir = Path(cache_dir)
        manifest = json.loads((cache_dir / MANIFEST_FILE).read_text())
        with np.load(cache_dir / INDEX_FILE) as z:
            smiles = np.array(z["smiles"].item().decode().split("\n"), dtype=object)
            formulas = np.array(z["formulas"].item().decode().split("\n"), dtype=object)
            return cls(cache_dir, smiles, formulas, z["formula_of"], z["masses"], z["source_of"],
                       [s["path"] for s in manifest["sources"]])  # fmt: skip

    @classmethod
    def open(cls, sources: Sequence[Path], cache_dir: str | Path, *, workers: int = 2) -> StructureLibrary:
        """The index in ``cache_dir`` if it was built from exactly ``sources`` as they are now, else a new build."""
        cache_dir = Path(cache_dir)
        manifest_path = cache_dir / MANIFEST_FILE
        if manifest_path.exists() and (cache_dir / INDEX_FILE).exists():
            manifest = json.loads(manifest_path.read_text())
            if manifest["sources"] == [_file_stamp(Path(p)) for p in sources]:
                return cls.load(cache_dir)
        return cls.build(sources, cache_dir, workers=workers)

    def manifest(self) -> dict[str, Any]:
        """The build manifest (sources, counts, build time, index size)."""
        return json.loads((self.cache_dir / MANIFEST_FILE).read_text())

    def rows_of_formula(self, formula: str) -> np.ndarray:
        """Index rows of every molecule with this formula (empty when the library has none)."""
        k = int(np.searchsorted(self.formulas, formula))
        if k >= len(self.formulas) or self.formulas[k] != formula:
            return np.zeros(0, dtype=np.int64)
        return np.arange(self._starts[k], self._starts[k + 1])

    def formula_candidates(self, formula: str, spec: FingerprintSpec | str) -> FormulaCandidates:
        """The distinct structures of ``formula`` (first InChIKey block; the first molecule of each block in source
        order represents it) with fingerprint bits; computed once per (spec, formula), then read from disk.
        Molecules that InChI cannot represent are left out."""
        spec = parse_fingerprint_spec(spec)
        path = self.cache_dir / "formulas" / spec.text / f"{formula}.npz"
        if path.exists():
            with np.load(path, allow_pickle=False) as z:
                return FormulaCandidates(formula, z["blocks"].astype(object), z["smiles"].astype(object),
                                         z["packed_bits"])  # fmt: skip
        blocks, smiles, mols = [], [], []
        seen: set[str] = set()
        with BlockLogs():
            for s in self.smiles[self.rows_of_formula(formula)]:
                mol = mol_from_smiles(s)
                block = Chem.MolToInchiKey(mol)[:14]
                if block and block not in seen:
                    seen.add(block)
                    blocks.append(block)
                    smiles.append(s)
                    mols.append(mol)
        order = np.argsort(np.array(blocks, dtype=str), kind="stable") if blocks else np.zeros(0, np.int64)
        bits = fingerprint_bits(mols, spec) if mols else np.zeros((0, spec.n_bits), np.uint8)
        out = FormulaCandidates(
            formula,
            np.array(blocks, dtype=object)[order],
            np.array(smiles, dtype=object)[order],
            pack_bits(bits)[order],
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, blocks=out.blocks.astype(str), smiles=out.smiles.astype(str), packed_bits=out.packed_bits)
        tmp.replace(path)
        return out


def default_sources(data_dir: str | Path) -> list[Path]:
    """MassBank's MGF and the three MOSES files under ``data_dir``; names any that is missing."""
    paths = [Path(data_dir) / p for p in DEFAULT_SOURCES]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise FileNotFoundError(f"library source files missing: {', '.join(missing)}")
    return paths


def open_library(data_dir: str | Path, cache_dir: str | Path, *, workers: int = 2) -> StructureLibrary:
    """The structure library of ``data_dir`` (MassBank + MOSES), built into ``cache_dir`` on first use."""
    return StructureLibrary.open(default_sources(data_dir), cache_dir, workers=workers)


def library_summary(library: StructureLibrary, formulas: Iterable[str] = ()) -> dict[str, Any]:
    """The manifest plus, for ``formulas``, how many index molecules each has (for reports)."""
    return {**library.manifest(), "molecules_per_formula": {f: len(library.rows_of_formula(f)) for f in formulas}}
