"""``msvae annotate`` and ``msvae evaluate-retrieval``: offline batch annotation of an MGF file with the same
ranking as the service (:mod:`app.annotation`), and the retrieval evaluation of spectra with known structures."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.annotation import (
    CandidateSet,
    annotate,
    directory_candidates,
    evaluate_retrieval,
    store_candidates,
)
from app.candidates.readers import CandidateFileError
from app.settings import Settings, get_settings
from models.featurize.mgf import Spectrum, SpectrumError, read_spectra
from models.spectra_model import SpectraModel, resolve_model_path

TSV_COLUMNS = ("title", "precursor_mz", "n_candidates", "rank", "smiles", "inchikey", "formula", "score", "error")


class CommandError(Exception):
    """A problem that ends the command with a message and exit status 1."""


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def load_model(name: str | None, settings: Settings) -> SpectraModel:
    """The model named on the command line, else the served one (``MSVAE_MODEL``, default ``default``)."""
    path = resolve_model_path(name or settings.model, settings.data_dir)
    try:
        return SpectraModel.load(path, device=settings.device)
    except FileNotFoundError as exc:
        raise CommandError(f"model {name or settings.model!r}: {exc}") from None


def read_query(path: str) -> tuple[list[Spectrum], list[SpectrumError]]:
    """The spectra of an MGF/MSP file and the ones that could not be read."""
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
def _database_candidates(settings: Settings, model: SpectraModel, ppm: float):
    """``candidates_for`` from the candidate database, by precursor mass within ``ppm``."""
    from sqlalchemy import inspect

    from app.candidates.store import CandidateStore
    from app.db import Database

    database = Database(settings.database_url)
    where = database.url.render_as_string(hide_password=True)
    try:
        if not inspect(database.engine).has_table("candidates"):
            raise CommandError(
                f"no candidate database at {where}: import molecules with `msvae candidates import FILE`, "
                "or give --candidates DIR"
            )
        with database.session() as session:
            store = CandidateStore.load(session, model.fingerprint_spec)
        if not len(store):
            _say(f"warning: the candidate database at {where} is empty")
        yield store_candidates(store, ppm)
    finally:
        database.dispose()


@contextmanager
def _candidates(args: Any, settings: Settings, model: SpectraModel, rejected_rows: list[str]):
    if args.candidates:
        try:
            yield directory_candidates(args.candidates, model.fingerprint_spec, rejected_rows)
        except CandidateFileError as exc:
            raise CommandError(str(exc)) from None
    else:
        with _database_candidates(settings, model, args.ppm) as candidates_for:
            yield candidates_for


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


def run_annotate(args: Any) -> int:
    """``msvae annotate QUERY [--candidates DIR] [--top-k] [--ppm] [--model] [--out FILE.tsv/.json]``."""
    settings = get_settings()
    try:
        spectra, read_errors = read_query(args.query)
        model = load_model(args.model, settings)
        rejected_rows: list[str] = []
        with _candidates(args, settings, model, rejected_rows) as candidates_for:
            results = annotate(model, spectra, candidates_for, args.top_k)
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
    annotated = sum("error" not in item for item in results)
    _say(f"{args.query}: annotated {annotated} of {len(spectra) + len(read_errors)} spectra with model {model.name!r}")
    if args.out and args.out.lower().endswith(".json"):
        doc = {"model": model.name, "results": results, "rejected": _reading_errors(read_errors)}
        Path(args.out).write_text(json.dumps(doc, indent=1) + "\n")
    elif args.out:
        Path(args.out).write_text(_tsv(results))
    else:
        sys.stdout.write(_tsv(results))
    return 0 if annotated else 1


def run_evaluate_retrieval(args: Any) -> int:
    """``msvae evaluate-retrieval QUERY --candidates DIR [--model M] [--out R.json]``."""
    settings = get_settings()
    out = Path(args.out) if args.out else Path(f"{Path(args.query).name.split('.')[0]}.retrieval.json")
    try:
        spectra, read_errors = read_query(args.query)
        model = load_model(args.model, settings)
        rejected_rows: list[str] = []
        candidates_for: Callable[[Spectrum], CandidateSet]
        try:
            candidates_for = directory_candidates(args.candidates, model.fingerprint_spec, rejected_rows)
        except CandidateFileError as exc:
            raise CommandError(str(exc)) from None
        evaluation = evaluate_retrieval(model, spectra, candidates_for)
    except CommandError as exc:
        _say(f"msvae evaluate-retrieval: {exc}")
        return 1
    for row in rejected_rows:
        _say(f"rejected candidate {row}")
    for s in evaluation.skipped:
        detail = f": {s['reason']}" if "reason" in s else ""
        _say(f"skipped spectrum {s['index']} (TITLE={s['title']!r}): {s['why']}{detail}")
    doc = {
        "model": model.name,
        "query": str(args.query),
        "candidates": str(args.candidates),
        **evaluation.to_dict(),
        "unreadable_spectra": _reading_errors(read_errors),
    }
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(evaluation.report.to_markdown(f"{args.query}: model {model.name}"), end="")
    print(f"report: {out}")
    return 0
