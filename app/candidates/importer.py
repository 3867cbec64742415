"""Adding molecules to the candidate database (``msvae candidates import`` and ``POST /v1/candidates``).

Records are read in order and featurized in chunks (RDKit, :mod:`app.candidates.featurize`), in this process or
by a process pool using every core; each chunk's rows are inserted and committed together with a checkpoint (how
many records of this input are done), so an interrupted import, run again, resumes after the last committed chunk.
Inserting skips InChIKeys already stored, so importing anything twice adds nothing the second time.
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

from sqlalchemy import Insert, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from app.candidates.featurize import FeaturizedChunk, Rejection, featurize_chunk
from app.candidates.readers import CandidateFileError, Entry, open_entries
from app.db import Candidate, CandidateImport, utcnow
from models.featurize.fingerprints import DEFAULT_FINGERPRINT_SPEC, FingerprintSpec, parse_fingerprint_spec

BATCH_SIZE = 1000

# INSERT ... ON CONFLICT DO NOTHING, so two imports racing on one molecule count it once instead of failing.
_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}

__all__ = ["BATCH_SIZE", "ImportReport", "Rejection", "import_candidates"]


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
        batch_size: records per chunk (featurized together, inserted and committed together).
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
    make_insert = _INSERTS.get(session.get_bind().dialect.name)
    if make_insert is None:
        raise NotImplementedError("candidate import supports SQLite and PostgreSQL")
    try:
        key = _input_key(data, spec, fmt)
        checkpoint = session.get(CandidateImport, key)
        done = checkpoint.entries_done if checkpoint is not None else 0
        with open_entries(data, fmt, filename) as (found_format, entries):
            report = ImportReport(found_format, resumed_from=done)
            chunks = _chunks(itertools.islice(entries, done, None), batch_size)
            for chunk in _featurized(chunks, spec.text, workers):
                done += chunk.n_entries
                _insert(session, make_insert, chunk, report, spec, source)
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


def _chunks(entries: Iterable[Entry], size: int) -> Iterator[list[Entry]]:
    iterator = iter(entries)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk


def _featurized(chunks: Iterator[list[Entry]], spec: str, workers: int) -> Iterator[FeaturizedChunk]:
    """``featurize_chunk`` of each chunk, in order; with ``workers > 1`` by a process pool, a few chunks ahead
    (bounded, so a large file is never read into memory ahead of the inserts)."""
    head = list(itertools.islice(chunks, 2))
    if workers <= 1 or len(head) < 2:  # a single chunk is not worth starting processes for
        for chunk in itertools.chain(head, chunks):
            yield featurize_chunk(chunk, spec)
        return
    chunks = itertools.chain(head, chunks)
    # forkserver: workers fork from a clean process (not from this one, whose threads may hold locks); the
    # preload imports RDKit and the featurization code once instead of once per worker.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if "forkserver" in methods:
        context.set_forkserver_preload(["app.candidates.featurize"])
    pool = ProcessPoolExecutor(workers, mp_context=context)
    pending: deque[Future[FeaturizedChunk]] = deque()
    try:
        for chunk in chunks:
            pending.append(pool.submit(featurize_chunk, chunk, spec))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _insert(
    session: Session,
    make_insert: Any,
    chunk: FeaturizedChunk,
    report: ImportReport,
    spec: FingerprintSpec,
    source: str | None,
) -> None:
    """Insert ``chunk``'s rows, skipping InChIKeys already stored (not committed), and count into ``report``."""
    report.duplicate += chunk.duplicate
    report.rejected += chunk.rejected
    if not chunk.rows:
        return
    now = utcnow()
    rows = [{**row, "fingerprint_spec": spec.text, "source": source, "created_at": now} for row in chunk.rows]
    statement: Insert = make_insert(Candidate).on_conflict_do_nothing(index_elements=["inchikey"])
    added = len(session.execute(statement.returning(Candidate.id), rows).all())
    report.added += added
    report.duplicate += len(rows) - added
