"""``msvae annotate`` and ``msvae evaluate-retrieval``: offline batch annotation of a spectrum file with the same
ranking as the service (:mod:`app.annotation`), and the retrieval evaluation of spectra with known structures."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from app.annotation import CandidateSet
    from app.settings import Settings
    from models.featurize.mgf import Spectrum, SpectrumError
    from models.spectra_model import SpectraModel


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Add ``annotate`` and ``evaluate-retrieval`` to the ``msvae`` subcommands."""
    p = sub.add_parser("annotate", help="offline batch annotation of a spectrum file (MGF, MSP, mzML, mzXML)")
    p.add_argument("query", help="spectrum file: MGF, MSP, mzML or mzXML, plain or gzip")
    p.add_argument(
        "--candidates",
        default=None,
        help="directory of <TITLE>.tsv candidate lists (default: the candidate database by precursor mass)",
    )
    p.add_argument("--top-k", type=int, default=10, help="candidates listed per spectrum (default 10)")
    p.add_argument("--ppm", type=float, default=10.0, help="precursor mass window of the database search (default 10)")
    p.add_argument("--model", default=None, help="model directory or registered name (default MSVAE_MODEL)")
    p.add_argument("--out", default=None, help="write a .tsv or .json file (default: TSV on standard output)")
    p.set_defaults(
        func=lambda a: run_annotate(a.query, a.candidates, top_k=a.top_k, ppm=a.ppm, model=a.model, out=a.out)
    )

    p = sub.add_parser("evaluate-retrieval", help="rank the true structures of spectra with known structures")
    p.add_argument("query", help="spectrum file whose headers carry INCHIKEY= or SMILES=")
    p.add_argument("--candidates", required=True, help="directory of <TITLE>.tsv candidate lists")
    p.add_argument("--model", default=None, help="model directory or registered name (default MSVAE_MODEL)")
    p.add_argument("--out", default=None, help="JSON report (default: QUERY.retrieval.json here)")
    p.set_defaults(func=lambda a: run_evaluate_retrieval(a.query, a.candidates, model=a.model, out=a.out))

    p = sub.add_parser("evaluate-casmi2017", help="the CASMI 2017 evaluation from the contest's own files")
    p.add_argument("--data", required=True, help="the contest's files, unzipped (CASMI-solutions.csv, ...)")
    p.add_argument("--model", default=None, help="model directory or registered name (default MSVAE_MODEL)")
    p.add_argument("--out", default=None, help="JSON report (default casmi2017.retrieval.json; plot beside it)")
    p.add_argument(
        "--candidates",
        default="auto",
        choices=["auto", "official", "formula", "mass"],
        help="auto: the official lists when present, else library structures of the solution's formula",
    )
    p.add_argument("--ppm", type=float, default=10.0, help="mass window of --candidates mass (default 10)")
    p.add_argument("--library", default=None, help="folder with massbank/ and molecules/ (default MSVAE_DATA_DIR)")
    p.add_argument("--library-cache", default=None, help="library index cache (default MSVAE_DATA_DIR/library)")
    p.set_defaults(func=_evaluate_casmi2017)


def _evaluate_casmi2017(args: argparse.Namespace) -> int:
    from app.casmi2017 import run_evaluate_casmi2017

    return run_evaluate_casmi2017(args)


TSV_COLUMNS = ("title", "precursor_mz", "n_candidates", "rank", "smiles", "inchikey", "formula", "score", "error")


class CommandError(Exception):
    """A problem that ends the command with a message and exit status 1."""


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def load_model(name: str | None, settings: Settings) -> SpectraModel:
    """The model named on the command line, else the served one (``MSVAE_MODEL``, default ``default``)."""
    from models.spectra_model import SpectraModel, resolve_model_path

    path = resolve_model_path(name or settings.model, settings.data_dir)
    try:
        return SpectraModel.load(path, device=settings.device)
    except FileNotFoundError as exc:
        raise CommandError(f"model {name or settings.model!r}: {exc}") from None


def read_query(path: str) -> tuple[list[Spectrum], list[SpectrumError]]:
    """The spectra of a spectrum file and the ones that could not be read."""
    from models.featurize.mgf import SpectrumError, read_spectra

    if not Path(path).is_file():
        raise CommandError(f"{path}: no such file")
    spectra, errors = [], []
    for item in read_spectra(path):
        (errors if isinstance(item, SpectrumError) else spectra).append(item)
    if not spectra:
        reasons = "; ".join(str(e) for e in errors[:3])
        raise CommandError(f"{path}: no usable spectrum ({reasons})")
    return spectra, errors


@contextmanager
def _database_candidates(
    settings: Settings, model: SpectraModel, ppm: float
) -> Iterator[Callable[[Spectrum], CandidateSet]]:
    """``candidates_for`` from the candidate database, by precursor mass within ``ppm``."""
    from sqlalchemy import inspect

    from app.annotation import store_candidates
    from app.candidates.store import CandidateStore
    from app.db import Database

    database = Database(settings.database_url)
    where = database.url.render_as_string(hide_password=True)
    try:
        if not inspect(database.engine).has_table("candidates"):
            raise CommandError(
                f"no candidate database at {where}: `msvae db upgrade` creates one with the default candidate "
                "set, `msvae candidates import FILE` adds a library, or give --candidates DIR"
            )
        with database.session() as session:
            store = CandidateStore.load(session, model.fingerprint_spec)
        if not len(store):
            _say(f"warning: the candidate database at {where} is empty")
        yield store_candidates(store, ppm)
    finally:
        database.dispose()


@contextmanager
def _candidates(
    directory: str | None, settings: Settings, model: SpectraModel, ppm: float, rejected_rows: list[str]
) -> Iterator[Callable[[Spectrum], CandidateSet]]:
    """Candidates from ``directory``'s lists when given, else from the candidate database."""
    if directory:
        yield _directory_candidates(directory, model, rejected_rows)
    else:
        with _database_candidates(settings, model, ppm) as candidates_for:
            yield candidates_for


def _directory_candidates(
    directory: str, model: SpectraModel, rejected_rows: list[str]
) -> Callable[[Spectrum], CandidateSet]:
    from app.annotation import directory_candidates
    from app.candidates.readers import CandidateFileError

    try:
        return directory_candidates(directory, model.fingerprint_spec, rejected_rows)
    except CandidateFileError as exc:
        raise CommandError(str(exc)) from None


def _tsv(results: list[dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(TSV_COLUMNS)
    for item in results:
        base = [item["title"], item["precursor_mz"], item["n_candidates"]]
        if "error" in item:
            writer.writerow(base + ["", "", "", "", "", item["error"]["reason"]])
        for c in item["candidates"]:
            writer.writerow(base + [c["rank"], c["smiles"], c["inchikey"], c["formula"], f"{c['score']:.4f}", ""])
    return out.getvalue()


def _reading_errors(errors: list[SpectrumError]) -> list[dict[str, Any]]:
    return [e.to_dict() for e in errors]


def run_annotate(
    query: str,
    candidates: str | None = None,
    *,
    top_k: int = 10,
    ppm: float = 10.0,
    model: str | None = None,
    out: str | None = None,
) -> int:
    """``msvae annotate``: rank candidates for every spectrum of ``query`` (from the lists in the ``candidates``
    directory, else from the database within ``ppm``), write TSV or JSON to ``out`` (default: TSV on standard
    output) and report every rejection on standard error. Returns the exit status: 0, or 1 when nothing was
    annotated."""
    from app.annotation import annotate, no_candidate_note
    from app.settings import get_settings

    settings = get_settings()
    try:
        spectra, read_errors = read_query(query)
        served = load_model(model, settings)
        rejected_rows: list[str] = []
        with _candidates(candidates, settings, served, ppm, rejected_rows) as candidates_for:
            results = annotate(served, spectra, candidates_for, top_k)
        if candidates is None:
            for spectrum, item in zip(spectra, results, strict=True):
                if "error" not in item and not item["n_candidates"]:
                    item["note"] = no_candidate_note(spectrum, ppm)
    except CommandError as exc:
        _say(f"msvae annotate: {exc}")
        return 1
    for error in read_errors:
        _say(f"rejected {error}")
    for item in results:
        if "error" in item:
            e = item["error"]
            _say(f"rejected spectrum {e['index']} (TITLE={e['title']!r}): {e['reason']}")
    for row in rejected_rows:
        _say(f"rejected candidate {row}")
    for item in results:
        if "note" in item:
            _say(f"spectrum {item['title']!r}: {item['note']}")
    annotated = sum("error" not in item for item in results)
    _say(f"{query}: annotated {annotated} of {len(spectra) + len(read_errors)} spectra with model {served.name!r}")
    if out and out.lower().endswith(".json"):
        doc = {"model": served.name, "results": results, "rejected": _reading_errors(read_errors)}
        Path(out).write_text(json.dumps(doc, indent=1) + "\n")
    elif out:
        Path(out).write_text(_tsv(results))
    else:
        sys.stdout.write(_tsv(results))
    return 0 if annotated else 1


def run_evaluate_retrieval(query: str, candidates: str, *, model: str | None = None, out: str | None = None) -> int:
    """``msvae evaluate-retrieval``: rank the true structure of every spectrum of ``query`` among its list in the
    ``candidates`` directory, print the top-k table and write the JSON report ``out``. Returns the exit status."""
    from app.annotation import evaluate_retrieval
    from app.settings import get_settings

    settings = get_settings()
    report_path = Path(out) if out else Path(f"{Path(query).name.split('.')[0]}.retrieval.json")
    try:
        spectra, read_errors = read_query(query)
        served = load_model(model, settings)
        rejected_rows: list[str] = []
        candidates_for = _directory_candidates(candidates, served, rejected_rows)
        evaluation = evaluate_retrieval(served, spectra, candidates_for)
    except CommandError as exc:
        _say(f"msvae evaluate-retrieval: {exc}")
        return 1
    for row in rejected_rows:
        _say(f"rejected candidate {row}")
    for s in evaluation.skipped:
        detail = f": {s['reason']}" if "reason" in s else ""
        _say(f"skipped spectrum {s['index']} (TITLE={s['title']!r}): {s['why']}{detail}")
    doc = {
        "model": served.name,
        "query": str(query),
        "candidates": str(candidates),
        **evaluation.to_dict(),
        "unreadable_spectra": _reading_errors(read_errors),
    }
    report_path.write_text(json.dumps(doc, indent=1) + "\n")
    print(evaluation.report.to_markdown(f"{query}: model {served.name}"), end="")
    print(f"report: {report_path}")
    return 0
