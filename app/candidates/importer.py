"""Adding molecules to the candidate database (``msvae candidates import`` and ``POST /v1/candidates``).

Records are read in order and featurized in pieces of up to 1,000 (RDKit, :mod:`app.candidates.featurize`), in
this process or by a process pool using every core; the rows of a chunk (``batch_size`` records, 20,000 by
default) are inserted as their pieces arrive and committed together with a checkpoint (how many records of this
input are done), so an interrupted import, run again, resumes after the last committed chunk. Inserting skips
InChIKeys already stored, so importing anything twice adds nothing the second time.

Inserts go through the database driver's ``executemany`` (no ORM objects, no RETURNING): the database counts the
rows it added. Large commits matter more than anything else on the database side: each commit writes every index
page it touched (SQLite's WAL), and with four indexes of random keys a commit of 1,000 rows rewrites about 4,000
pages: with 0.4M rows stored, inserting cost ~220 us a row at 1,000 rows a commit, ~40 us at 20,000 with a
256 MiB page cache (:func:`tune_for_bulk_import`, which ``msvae candidates import`` sets on its own connections).
"""

from __future__ import annotations

import hashlib
import itertools
import multiprocessing
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from os import PathLike
from typing import Any

from sqlalchemy import Engine, delete, event
from sqlalchemy.orm import Session

from app.candidates.featurize import FeaturizedChunk, Rejection, featurize_chunk
from app.candidates.readers import CandidateFileError, Entry, open_entries
from app.db import Candidate, CandidateImport, utcnow
from models.featurize.fingerprints import DEFAULT_FINGERPRINT_SPEC, FingerprintSpec, parse_fingerprint_spec

BATCH_SIZE = 20_000  # records per commit (and per checkpoint)
PIECE_SIZE = 1_000  # records featurized together (by one worker process)
_SQLITE_BULK_PRAGMAS = (
    "PRAGMA cache_size=-262144",  # KiB: 256 MiB, allocated as pages are read (the default is 2 MiB)
    # WAL: a commit is appended without waiting for the disk; the database stays consistent, and an import cut by
    # a power loss resumes from an earlier checkpoint
    "PRAGMA synchronous=NORMAL",
)

_COLUMNS = ("inchikey", "inchikey_block", "smiles", "name", "formula", "monoisotopic_mass", "fingerprint",
            "fingerprint_spec", "source", "created_at")  # fmt: skip
_MARKS = {"sqlite": "?", "postgresql": "%s"}  # the drivers' parameter styles (sqlite3, psycopg)

__all__ = ["BATCH_SIZE", "ImportReport", "Rejection", "import_candidates", "tune_for_bulk_import"]


@dataclass
class ImportReport:
    """What an import did: molecules added, duplicates skipped (already in the database or earlier in the
    file, by InChIKey), and the rejected records. ``resumed_from``: records skipped because an interrupted
    import of the same input had committed them already (they are not counted again)."""

    format: str
    added: int = 0
    duplicate: int = 0
    rejected: list[Rejection] = field(default_factory=list)
    resumed_from: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "added": self.added,
            "duplicate": self.duplicate,
            "rejected": [r.to_dict() for r in self.rejected],
            "resumed_from": self.resumed_from,
        }


def import_candidates(
    session: Session,
    data: str | bytes | PathLike[str],
    fmt: str | None = None,
    *,
    filename: str | None = None,
    source: str | None = None,
    spec: FingerprintSpec | str = DEFAULT_FINGERPRINT_SPEC,
    batch_size: int = BATCH_SIZE,
    workers: int = 1,
    on_progress: Callable[[int, ImportReport], None] | None = None,
) -> ImportReport:
    """Add the molecules of ``data`` to the candidate table, with fingerprint, InChIKey, formula and mass.

    Args:
        data: a path (plain or gzip), or the content itself as ``bytes`` or ``str``.
        fmt: "smiles", "tsv", "sdf" or "mgf"; None guesses from ``filename`` / the path, else the content.
        filename: the name of an uploaded file, only used to guess the format.
        source: stored with each new molecule (e.g. the file or database it came from).
        spec: the fingerprint to store (the served model's).
        batch_size: records per chunk (inserted and committed together, with the checkpoint); a chunk is
            featurized in pieces of up to ``PIECE_SIZE`` records.
        workers: processes featurizing chunks (1: this process, no pool).
        on_progress: called after each committed chunk with the number of records of the input done so far
            (including those of an interrupted earlier run) and the report so far.

    Molecules already present (same InChIKey) are counted as duplicates. An import that stops part way (an
    interruption, a crash, a database error) keeps its committed chunks; importing the same input again (same
    content and spec) resumes after them.

    Raises:
        CandidateFileError: the input as a whole is unreadable (binary, no ``smiles`` column, unknown format,
            a corrupt gzip stream).
    """
    spec = parse_fingerprint_spec(spec)
    dialect = session.get_bind().dialect
    if dialect.name not in _MARKS:
        raise NotImplementedError("candidate import supports SQLite and PostgreSQL")
    insert = _Inserter(session, spec, source)
    try:
        key = _input_key(data, spec, fmt)
        checkpoint = session.get(CandidateImport, key)
        done = checkpoint.entries_done if checkpoint is not None else 0
        with open_entries(data, fmt, filename) as (found_format, entries):
            report = ImportReport(found_format, resumed_from=done)
            pieces = _pieces(itertools.islice(entries, done, None), batch_size, min(batch_size, PIECE_SIZE))
            for piece, ends_chunk in _featurized(pieces, spec.text, workers):
                done += piece.n_entries
                insert(piece, report)
                if ends_chunk:
                    session.merge(CandidateImport(key=key, entries_done=done, source=source, updated_at=utcnow()))
                    session.commit()  # the rows and the checkpoint together: a resumed import starts exactly here
                    if on_progress is not None:
                        on_progress(done, report)
        session.execute(delete(CandidateImport).where(CandidateImport.key == key))
        session.commit()
    except (OSError, EOFError, zlib.error) as exc:  # an unreadable file, a corrupt or cut gzip stream
        # Chunks before the failure stay committed; importing the repaired file again adds the rest.
        raise CandidateFileError(f"cannot read the input: {exc}") from exc
    return report


def tune_for_bulk_import(engine: Engine) -> None:
    """Give every new SQLite connection of ``engine`` a large page cache and ``synchronous=NORMAL``, for an engine
    that only imports, as the CLI's (the settings stay with a connection while it is pooled). Nothing for other
    databases."""
    if engine.dialect.name != "sqlite":
        return

    def configure(dbapi_connection: Any, _record: Any) -> None:
        for pragma in _SQLITE_BULK_PRAGMAS:
            dbapi_connection.execute(pragma)

    event.listen(engine, "connect", configure)


def _input_key(data: str | bytes | PathLike[str], spec: FingerprintSpec, fmt: str | None) -> str:
    """sha256 of the input's content (as stored: gzip stays compressed), the spec and the format asked for."""
    digest = hashlib.sha256(f"{spec.text}\0{fmt or ''}\0".encode())
    if isinstance(data, PathLike):
        with open(data, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    else:
        digest.update(data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data)
    return digest.hexdigest()


def _pieces(entries: Iterable[Entry], chunk_size: int, piece_size: int) -> Iterator[tuple[list[Entry], bool]]:
    """``(piece, ends_chunk)``: the entries in chunks of ``chunk_size``, each cut into pieces of up to
    ``piece_size``; ``ends_chunk`` marks a chunk's last piece."""
    iterator = iter(entries)
    while chunk := list(itertools.islice(iterator, chunk_size)):
        for start in range(0, len(chunk), piece_size):
            yield chunk[start : start + piece_size], start + piece_size >= len(chunk)


def _featurized(
    pieces: Iterator[tuple[list[Entry], bool]], spec: str, workers: int
) -> Iterator[tuple[FeaturizedChunk, bool]]:
    """``(featurize_chunk(piece), ends_chunk)`` of each piece, in order; with ``workers > 1`` by a process pool,
    a few pieces ahead (bounded, so a large file is never read into memory ahead of the inserts)."""
    head = list(itertools.islice(pieces, 2))
    if workers <= 1 or len(head) < 2:  # a single piece is not worth starting processes for
        for piece, ends_chunk in itertools.chain(head, pieces):
            yield featurize_chunk(piece, spec), ends_chunk
        return
    pieces = itertools.chain(head, pieces)
    # forkserver: workers fork from a clean process (not from this one, whose threads may hold locks); the
    # preload imports RDKit and the featurization code once instead of once per worker.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if "forkserver" in methods:
        context.set_forkserver_preload(["app.candidates.featurize"])
    pool = ProcessPoolExecutor(workers, mp_context=context)
    pending: deque[tuple[Future[FeaturizedChunk], bool]] = deque()
    try:
        for piece, ends_chunk in pieces:
            pending.append((pool.submit(featurize_chunk, piece, spec), ends_chunk))
            # enough pieces queued that the workers keep going while this process inserts and commits a chunk
            if len(pending) > 4 * workers:
                future, ends = pending.popleft()
                yield future.result(), ends
        while pending:
            future, ends = pending.popleft()
            yield future.result(), ends
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Inserter:
    """Inserts featurized pieces into the candidate table of ``session``'s transaction (not committed), skipping
    InChIKeys already stored (``ON CONFLICT DO NOTHING``, so two imports racing on one molecule count it once
    instead of failing), and counts what was added and what the database refused as a duplicate.

    Through the driver's ``executemany`` on the session's own connection (same transaction as the checkpoint);
    ``created_at`` goes through the column type's bind processing, so rows are stored as the ORM stores them.
    """

    def __init__(self, session: Session, spec: FingerprintSpec, source: str | None) -> None:
        dialect = session.get_bind().dialect
        self.session = session
        self.spec = spec.text
        self.source = source
        mark = _MARKS[dialect.name]
        self.sql = (
            f"INSERT INTO {Candidate.__tablename__} ({', '.join(_COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(_COLUMNS))}) ON CONFLICT (inchikey) DO NOTHING"
        )
        created_at = Candidate.__table__.c.created_at.type.dialect_impl(dialect)
        self.time = created_at.bind_processor(dialect) or (lambda value: value)  # as SQLAlchemy binds it

    def _raw(self) -> Any:
        return self.session.connection().connection.driver_connection

    def __call__(self, piece: FeaturizedChunk, report: ImportReport) -> None:
        report.duplicate += piece.duplicate
        report.rejected += piece.rejected
        if not len(piece):
            return
        now = self.time(utcnow())
        rows = [
            (key, key[:14], smiles, name, formula, mass, fingerprint, self.spec, self.source, now)
            for key, smiles, name, formula, mass, fingerprint in zip(
                piece.inchikeys, piece.smiles, piece.names, piece.formulas, piece.masses, piece.fingerprints,
                strict=True,
            )
        ]  # fmt: skip
        cursor = self._raw().cursor()
        try:
            cursor.executemany(self.sql, rows)
            added = cursor.rowcount  # summed over the rows by both drivers; a skipped conflict counts 0
        finally:
            cursor.close()
        report.added += added
        report.duplicate += len(rows) - added
