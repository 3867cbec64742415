"""The project's default candidate set (``data/massbank-structures.tsv.gz``: the 4,177 distinct structures of the
MassBank data the shipped model was trained on, each with the accession and license of its first record; written
by ``python3 -m training.default_candidates``). A new, empty candidate database gets it when the service starts,
so a fresh ``msvae serve`` ranks real structures; ``MSVAE_DEFAULT_CANDIDATES=false`` leaves the database empty."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from app.candidates.importer import ImportReport, import_candidates
from app.db import Candidate, Database
from app.settings import Settings
from models.featurize.fingerprints import DEFAULT_FINGERPRINT_SPEC
from models.spectra_model import resolve_model_path

DEFAULT_CANDIDATES = Path(__file__).resolve().parent / "data" / "massbank-structures.tsv.gz"
DEFAULT_SOURCE = "msvae default set (MassBank structures)"


def served_fingerprint_spec(settings: Settings) -> str:
    """The fingerprint spec of the model ``settings`` serve (from its directory's ``config.json``), else the
    library default: the fingerprint imported molecules are stored with."""
    try:
        config = resolve_model_path(settings.model, settings.data_dir) / "config.json"
        return json.loads(config.read_text())["fingerprint_spec"]
    except (FileNotFoundError, KeyError, ValueError):
        return DEFAULT_FINGERPRINT_SPEC


def load_default_candidates(settings: Settings) -> ImportReport | None:
    """Import the default set into the (migrated) database of ``settings`` when its candidate table is empty and
    ``settings.default_candidates`` is on; returns the import report, or None when nothing was done."""
    if not settings.default_candidates:
        return None
    database = Database(settings.database_url)
    try:
        with database.session() as session:
            if session.scalar(select(Candidate.id).limit(1)) is not None:
                return None
            return import_candidates(
                session, DEFAULT_CANDIDATES, "tsv", source=DEFAULT_SOURCE, spec=served_fingerprint_spec(settings)
            )
    finally:
        database.dispose()
