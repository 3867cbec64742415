"""Candidate import from SMILES lists, TSV/CSV, SDF and MGF headers, on SQLite and PostgreSQL."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from databases import database_url_fixture, migrated_database
from rdkit import Chem

from app.candidates import importer
from app.candidates.featurize import featurize_chunk
from app.candidates.importer import import_candidates, tune_for_bulk_import
from app.candidates.readers import CandidateFileError, Entry, guess_format
from app.db import Candidate, CandidateImport, Database
from models.featurize.fingerprints import InvalidMoleculeError, molecule_from_smiles, pack_bits, unpack_bits

db_url = database_url_fixture()

ETHANOL_KEY = "LFQSCWFLJHTTHZ-UHFFFAOYSA-N"
BENZENE_KEY = "UHOVQNZJYSORNB-UHFFFAOYSA-N"
CAFFEINE_KEY = "RYYVLZVUVIJVGH-UHFFFAOYSA-N"
# Monoisotopic atom masses (IUPAC): C 12 exactly, H 1.00782503207, N 14.0030740048, O 15.99491461956.
MASS = {"C": 12.0, "H": 1.00782503207, "N": 14.0030740048, "O": 15.99491461956}


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    with migrated_database(db_url) as database:
        yield database


def _rows(db: Database) -> dict[str, Candidate]:
    with db.session() as session:
        return {c.inchikey: c for c in session.scalars(sa.select(Candidate))}


SMILES_FILE = """# a comment, then a header
SMILES name
CCO ethanol
C1CC not closed

c1ccccc1 benzene
OCC ethanol written the other way
CCO
Cn1cnc2c1c(=O)n(C)c(=O)n2C caffeine
C(C)(C)(C)(C)C five bonds
"""


def test_smiles_list_counts_duplicates_and_rejects_by_line(db: Database) -> None:
    with db.session() as session:
        report = import_candidates(session, SMILES_FILE, source="test.smi", batch_size=2)
    assert report.format == "smiles"
    assert (report.added, report.duplicate) == (3, 2)
    assert [r.line for r in report.rejected] == [4, 10]
    assert "C1CC" in report.rejected[0].reason and "C(C)(C)(C)(C)C" in report.rejected[1].reason

    rows = _rows(db)
    assert set(rows) == {ETHANOL_KEY, BENZENE_KEY, CAFFEINE_KEY}
    ethanol = rows[ETHANOL_KEY]
    assert (ethanol.name, ethanol.formula, ethanol.source, ethanol.inchikey_block) == (
        "ethanol",
        "C2H6O",
        "test.smi",
        "LFQSCWFLJHTTHZ",
    )
    assert ethanol.monoisotopic_mass == pytest.approx(2 * MASS["C"] + 6 * MASS["H"] + MASS["O"], abs=1e-6)
    caffeine = rows[CAFFEINE_KEY]
    expected = 8 * MASS["C"] + 10 * MASS["H"] + 4 * MASS["N"] + 2 * MASS["O"]
    assert caffeine.monoisotopic_mass == pytest.approx(expected, abs=1e-6)
    # The packed fingerprint unpacks to the molecule's bits under the stored spec.
    bits = unpack_bits(np.frombuffer(caffeine.fingerprint, dtype=np.uint8), 2048 + 167)
    assert caffeine.fingerprint_spec == "morgan2-2048+maccs"
    assert np.array_equal(bits, molecule_from_smiles("CN1C=NC2=C1C(=O)N(C)C(=O)N2C").bits)


def test_reimport_is_idempotent(db: Database) -> None:
    with db.session() as session:
        first = import_candidates(session, SMILES_FILE)
    with db.session() as session:
        again = import_candidates(session, SMILES_FILE.encode())
    assert (again.added, again.duplicate) == (0, first.added + first.duplicate)
    assert [r.line for r in again.rejected] == [r.line for r in first.rejected]
    assert len(_rows(db)) == first.added


def test_tsv_and_csv_find_the_smiles_column_in_any_case(db: Database) -> None:
    tsv = "Name\tSMILES\tInChIKey\nethanol\tCCO\t\nnothing\t\t\nbad\tC1CC\t\n\nbenzene\tc1ccccc1\tx\n"
    with db.session() as session:
        report = import_candidates(session, tsv, filename="list.tsv")
    assert (report.format, report.added, report.duplicate) == ("tsv", 2, 0)
    assert [(r.line, "smiles" in r.reason.lower()) for r in report.rejected] == [(3, True), (4, True)]
    assert _rows(db)[BENZENE_KEY].name == "benzene"

    csv_text = 'id,smiles\n1,"Cn1cnc2c1c(=O)n(C)c(=O)n2C"\n2,CCO\n'
    with db.session() as session:
        report = import_candidates(session, csv_text)  # format guessed from the header
    assert (report.format, report.added, report.duplicate, report.rejected) == ("tsv", 1, 1, [])


def test_byte_order_mark_windows_line_ends_and_long_source_names(db: Database) -> None:
    data = "\ufeffSMILES,name\r\nCCO,ethanol\r\nC1CC,bad\r\n".encode()
    with db.session() as session:
        report = import_candidates(session, data, source="s" * 1000)
    assert (report.format, report.added, [r.line for r in report.rejected]) == ("tsv", 1, [3])
    assert _rows(db)[ETHANOL_KEY].name == "ethanol"


def test_table_without_smiles_column_is_refused_as_a_whole(db: Database) -> None:
    with pytest.raises(CandidateFileError, match="smiles"), db.session() as session:
        import_candidates(session, "name\tstructure\nx\tCCO\n", fmt="tsv")


def test_sdf_written_by_rdkit_with_a_broken_record(db: Database, tmp_path: Path) -> None:
    out = io.StringIO()
    writer = Chem.SDWriter(out)
    for smiles, name in [("CCO", "ethanol"), ("c1ccccc1", "benzene"), ("OCC", "ethanol again")]:
        mol = Chem.MolFromSmiles(smiles)
        mol.SetProp("_Name", name)
        writer.write(mol)
    writer.close()
    records = out.getvalue().split("$$$$\n")
    broken = "junk\n  no counts line\n\nM  END\n"
    text = records[0] + "$$$$\n" + broken + "$$$$\n" + "$$$$\n".join(records[1:])
    path = tmp_path / "mols.sdf.gz"
    path.write_bytes(gzip.compress(text.encode()))

    with db.session() as session:
        report = import_candidates(session, path)
    assert (report.format, report.added, report.duplicate) == ("sdf", 2, 1)
    assert len(report.rejected) == 1
    rejected = report.rejected[0]
    assert rejected.record == 2
    assert rejected.line == text.splitlines().index("junk") + 1
    assert rejected.reason.startswith("record 2:")
    assert {k: c.name for k, c in _rows(db).items()} == {ETHANOL_KEY: "ethanol", BENZENE_KEY: "benzene"}


def _massbank_head(shared_data: Path, n_spectra: int) -> str:
    """The first ``n_spectra`` blocks of the MassBank MGF, as text."""
    lines: list[str] = []
    with gzip.open(shared_data / "massbank" / "massbank-pos-ms2.mgf.gz", "rt", encoding="utf-8") as f:
        for line in f:
            lines.append(line)
            n_spectra -= line.strip() == "END IONS"
            if n_spectra == 0:
                break
    return "".join(lines)


def test_mgf_headers_of_real_massbank_spectra(db: Database, shared_data: Path) -> None:
    text = _massbank_head(shared_data, 200)
    headers = [
        dict(line.split("=", 1) for line in block.splitlines() if "=" in line) for block in text.split("END IONS")[:-1]
    ]
    assert len(headers) == 200
    with db.session() as session:
        report = import_candidates(session, text, source="massbank")
    assert report.format == "mgf" and report.rejected == []
    assert report.added + report.duplicate == 200
    rows = _rows(db)
    assert len(rows) == report.added
    # MassBank's own InChIKeys agree on the skeleton block (its stereo layers sometimes differ from RDKit's).
    assert {c.inchikey_block for c in rows.values()} == {h["INCHIKEY"][:14] for h in headers if "INCHIKEY" in h}
    assert {c.formula for c in rows.values()} <= {h["FORMULA"].strip() for h in headers}

    with db.session() as session:
        again = import_candidates(session, text)
    assert (again.added, again.duplicate) == (0, 200)


def test_mgf_spectra_without_smiles_or_broken_are_rejected_by_spectrum(db: Database) -> None:
    mgf = (
        "BEGIN IONS\nTITLE=a\nSMILES=CCO\n50 1\nEND IONS\n"
        "BEGIN IONS\nTITLE=b\n50 1\nEND IONS\n"
        "BEGIN IONS\nTITLE=c\nSMILES=c1ccccc1\n50 oops\nEND IONS\n"
        "BEGIN IONS\nTITLE=d\nSMILES=C1CC\n50 1\nEND IONS\n"
    )
    with db.session() as session:
        report = import_candidates(session, mgf)
    assert report.added == 1
    assert [(r.record, r.line) for r in report.rejected] == [(1, None), (2, 13), (3, None)]
    assert "TITLE='b'" in report.rejected[0].reason and "SMILES" in report.rejected[0].reason
    assert "C1CC" in report.rejected[2].reason


def test_binary_input_and_cut_or_corrupt_gzip_streams_are_refused(db: Database) -> None:
    with pytest.raises(CandidateFileError, match="binary"), db.session() as session:
        import_candidates(session, bytes(range(256)) * 4)
    cut = gzip.compress(SMILES_FILE.encode() * 50)[:-30]
    with pytest.raises(CandidateFileError, match="cannot read"), db.session() as session:
        import_candidates(session, cut)
    corrupt = bytearray(gzip.compress(SMILES_FILE.encode() * 50))
    corrupt[10] ^= 0xFF  # bad deflate data raises zlib.error, which is no OSError
    with pytest.raises(CandidateFileError, match="cannot read"), db.session() as session:
        import_candidates(session, bytes(corrupt))


@pytest.mark.parametrize(
    ("head", "filename", "expected"),
    [
        ("CCO ethanol\n", None, "smiles"),
        ("smiles\tname\nCCO\tx\n", None, "tsv"),
        ("ID,SMILES\n1,CCO\n", None, "tsv"),
        ("\n  RDKit          2D\n\n  3  2  0  0  0  0  0  0  0  0999 V2000\n", None, "sdf"),
        ("PEPMASS=1\nBEGIN IONS\n", None, "mgf"),
        ("CCO\n", "x.mgf.gz", "mgf"),
        ("anything", "list.csv", "tsv"),
        ("anything", "list.txt", "smiles"),
    ],
)
def test_format_guess(head: str, filename: str | None, expected: str) -> None:
    assert guess_format(head, filename) == expected


class _Interrupted(Exception):
    """Stands for a Ctrl-C or a crash part way through an import."""


def _moses_file(shared_data: Path, tmp_path: Path, n: int = 240) -> Path:
    """The first ``n`` MOSES molecules as a CSV, with an unparsable row and a repeated molecule mixed in."""
    with gzip.open(shared_data / "molecules" / "moses" / "test.csv.gz", "rt") as stream:
        lines = [line.strip() for _, line in zip(range(n + 1), stream, strict=False)]
    lines[50] = "C1CC"
    lines.insert(120, lines[30])
    path = tmp_path / "moses.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _table(db: Database) -> list[tuple]:
    columns = (Candidate.inchikey, Candidate.smiles, Candidate.name, Candidate.formula,
               Candidate.monoisotopic_mass, Candidate.fingerprint, Candidate.source)  # fmt: skip
    with db.session() as session:
        return sorted(tuple(row) for row in session.execute(sa.select(*columns)))


@pytest.mark.full_data  # MOSES molecules (../shared/data/molecules)
def test_interrupted_import_resumes_and_ends_as_an_uninterrupted_one(
    db: Database, shared_data: Path, tmp_path: Path
) -> None:
    """Featurized by a pool of 2 processes; stopped after the third chunk, then run again: same rows, same
    counts, no checkpoint left; a third run adds nothing and counts every molecule as a duplicate."""
    path = _moses_file(shared_data, tmp_path)
    with db.session() as session:
        whole = import_candidates(session, path, batch_size=40, workers=2)
    expected = _table(db)
    assert whole.added == 239 and whole.duplicate == 1 and [r.line for r in whole.rejected] == [51]
    with db.session() as session:
        session.execute(sa.delete(Candidate))

    seen: list[int] = []

    def stop_after_three(done: int, report) -> None:
        seen.append(done)
        if len(seen) == 3:
            raise _Interrupted

    with pytest.raises(_Interrupted), db.session() as session:
        import_candidates(session, path, batch_size=40, workers=2, on_progress=stop_after_three)
    assert seen == [40, 80, 120]
    with db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Candidate)) == 118  # one rejected, one repeated
        assert session.scalar(sa.select(CandidateImport.entries_done)) == 120
        resumed = import_candidates(session, path, batch_size=40, workers=2)
    assert resumed.resumed_from == 120
    assert resumed.added == whole.added - 118 and resumed.duplicate == 0 and resumed.rejected == []
    assert _table(db) == expected
    with db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(CandidateImport)) == 0
        again = import_candidates(session, path, batch_size=40)
    assert (again.added, again.duplicate, again.resumed_from) == (0, 240, 0)
    assert _table(db) == expected


@pytest.mark.full_data  # MOSES molecules (../shared/data/molecules)
def test_pool_and_single_process_store_the_same_rows(db_url: str, shared_data: Path, tmp_path: Path) -> None:
    path = _moses_file(shared_data, tmp_path, n=90)
    tables = []
    for workers in (1, 2):
        with migrated_database(db_url) as database:
            with database.session() as session:
                session.execute(sa.delete(Candidate))
                import_candidates(session, path, batch_size=25, workers=workers)
            tables.append(_table(database))
    assert len(tables[0]) == 89 and tables[0] == tables[1]


# Real structures with what the identity code must get right: charges (mass with the electrons added back),
# salts, stereo, isotopes; then a duplicate written another way, a molecule InChI cannot represent, a bad SMILES.
FEATURIZE_CASES = [
    "CN1C=NC2=C1C(=O)N(C)C(=O)N2C", "C[N+](C)(C)C", "[Na+].[Cl-]", "C[C@H](N)C(=O)O", "[13CH3]O",
    "OC(=O)c1ccccc1O", "Cn1cnc2c1c(=O)n(C)c(=O)n2C", "[*]C", "C1CC", "CC(=O)[O-]",
]  # fmt: skip


@pytest.mark.parametrize("spec", ["morgan2-2048+maccs", "maccs@keep:0014d3eeeff7fffff7fffffffffffffffffffffffc"])
def test_featurize_chunk_is_molecule_from_smiles_per_molecule(spec: str) -> None:
    """The chunk's fingerprints are made in one call; each row is still exactly what ``molecule_from_smiles``
    gives for that record (identity and packed bits), and a record it refuses is rejected with its message."""
    entries = [Entry(line, smiles=s, name=f"m{line}") for line, s in enumerate(FEATURIZE_CASES, start=1)]
    out = featurize_chunk(entries, spec)
    expected, reasons = [], {}
    for entry in entries:
        try:
            expected.append((entry, molecule_from_smiles(entry.smiles, spec)))
        except InvalidMoleculeError as exc:
            reasons[entry.line] = str(exc)
    kept = [(e, m) for i, (e, m) in enumerate(expected) if m.inchikey not in {x.inchikey for _, x in expected[:i]}]
    assert len(kept) == len(expected) - 1 and out.duplicate == 1  # caffeine twice
    assert {r.line: r.reason for r in out.rejected} == reasons and set(reasons) == {8, 9}
    assert out.inchikeys == [m.inchikey for _, m in kept]
    assert out.smiles == [m.smiles for _, m in kept]
    assert out.formulas == [m.formula for _, m in kept]
    assert out.masses == [float(m.monoisotopic_mass) for _, m in kept]
    assert out.names == [e.name for e, _ in kept]
    assert out.fingerprints == [pack_bits(m.bits).tobytes() for _, m in kept]


def test_chunks_cut_into_pieces_commit_and_resume_by_chunk(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pieces that do not divide the chunks: progress and checkpoints still come at chunk ends only, a molecule
    repeated in another piece of the same chunk is a duplicate, and an import stopped after a chunk resumes there
    and ends as the uninterrupted one."""
    monkeypatch.setattr(importer, "PIECE_SIZE", 3)
    smiles = ["C" * n for n in range(1, 17)] + ["CC"]  # alkanes; ethane again, in the chunk's last piece
    data = "\n".join(smiles) + "\n"
    seen: list[int] = []
    with db.session() as session:
        whole = import_candidates(session, data, batch_size=7, on_progress=lambda done, _: seen.append(done))
    assert seen == [7, 14, 17] and (whole.added, whole.duplicate) == (16, 1)
    expected = _table(db)
    with db.session() as session:
        session.execute(sa.delete(Candidate))

    def stop_after_one(done: int, report) -> None:
        raise _Interrupted

    with pytest.raises(_Interrupted), db.session() as session:
        import_candidates(session, data, batch_size=7, on_progress=stop_after_one)
    with db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Candidate)) == 7
        resumed = import_candidates(session, data, batch_size=7)
    assert (resumed.resumed_from, resumed.added, resumed.duplicate) == (7, 9, 1)
    assert _table(db) == expected


def test_created_at_is_stored_as_the_orm_stores_it(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows inserted through the driver carry ``created_at`` as an ORM insert would (on SQLite: the same text,
    microseconds included when they are zero), and read back timezone-aware."""
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    monkeypatch.setattr(importer, "utcnow", lambda: when)
    with db.session() as session:
        import_candidates(session, "CCO\n")
        row = {"inchikey": "X" * 27, "inchikey_block": "X" * 14, "smiles": "C", "formula": "CH4",
               "monoisotopic_mass": 16.0, "fingerprint_spec": "maccs", "fingerprint": b""}  # fmt: skip
        session.add(Candidate(**row, created_at=when))
    with db.session() as session:
        stored = session.execute(sa.text("SELECT created_at FROM candidates ORDER BY id")).scalars().all()
        assert stored[0] == stored[1]
        assert session.scalar(sa.select(Candidate.created_at).where(Candidate.inchikey == ETHANOL_KEY)) == when


def test_bulk_import_settings_apply_to_new_sqlite_connections(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'bulk.sqlite'}")
    tune_for_bulk_import(database.engine)
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA cache_size").scalar() == -262144
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"  # the engine's own, kept
    database.dispose()
