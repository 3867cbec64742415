"""What one server process shares between its requests and its job worker: the database, the model (loaded once,
on CUDA when available), the in-memory candidate store, and the annotation of a list of spectra with per-spectrum
rejections (one code path for ``POST /v1/annotate`` and batch jobs)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch

from app.annotation import CandidateSet, annotate, candidates_from_smiles, no_candidate_note, store_candidates
from app.candidates.cache import FingerprintCache
from app.candidates.store import CandidateStore
from app.db import Database
from app.scheduler import Scheduler
from app.settings import Settings
from models.featurize.mgf import Spectrum, SpectrumError
from models.spectra_model import SpectraModel, resolve_model_path

log = logging.getLogger(__name__)
_MAX_LISTED_REJECTIONS = 5


class ModelNotServed(LookupError):
    """A request named a model this server does not serve."""


def rejection(spectrum: Spectrum, reason: str) -> dict[str, Any]:
    """The rejection (``{"index", "title", "line", "reason"}``, ``schemas.Rejection``) of ``spectrum``."""
    return SpectrumError(reason, index=spectrum.index, title=spectrum.title).to_dict()


def split_spectra(items: Iterable[Spectrum | SpectrumError]) -> tuple[list[Spectrum], list[dict[str, Any]]]:
    """(usable spectra, rejections) of a reader's output (``read_spectra`` / ``read_spectra_from_json``)."""
    spectra: list[Spectrum] = []
    rejected: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, SpectrumError):
            rejected.append(item.to_dict())
        else:
            spectra.append(item)
    return spectra, rejected


def by_index(item: dict[str, Any]) -> tuple[bool, int]:
    """Sort key of rejections: by spectrum index, those of no spectrum last."""
    return item["index"] is None, item["index"] if item["index"] is not None else 0


class Service:
    """The per-process state of the HTTP service (kept in ``app.state.service``)."""

    def __init__(self, settings: Settings, database: Database, model: SpectraModel) -> None:
        self.settings = settings
        self.database = database
        self.model = model
        self.store = CandidateStore(model.fingerprint_spec)
        # Annotation is CPU-bound (RDKit, numpy, torch): the scheduler bounds how much runs at once.
        self.scheduler = Scheduler(
            settings.light_slots, settings.heavy_slots, settings.light_seconds, settings.max_waiting
        )
        self.fingerprints = FingerprintCache(model.fingerprint_spec, settings.fingerprint_cache_size)
        self.refresh_candidates()

    @classmethod
    def start(cls, settings: Settings) -> Service:
        """Connect to the (already migrated) database, load the model onto ``settings.device`` and the candidates
        into memory."""
        path = resolve_model_path(settings.model, settings.data_dir)
        model = SpectraModel.load(path, device=settings.device)
        if model.device.type == "cpu":
            # One intra-op thread per request: requests already run side by side (one per core), a request's
            # batch is small, and on a busy machine torch's threads wait on each other (measured: 6-9x slower
            # per request with 2 threads than with 1 on 2 loaded cores).
            torch.set_num_threads(1)
        log.info("model %s (%s) loaded from %s onto %s", model.name, model.model_name, path, model.device)
        return cls(settings, Database(settings.database_url), model)

    @property
    def device(self) -> str:
        """``"cpu"`` or ``"cuda:N"``."""
        device = self.model.device
        return f"cuda:{device.index or 0}" if device.type == "cuda" else device.type

    def model_for(self, name: str | None) -> SpectraModel:
        """The served model when ``name`` is None or names it (its name or the configured ``MSVAE_MODEL``)."""
        if name is None or name in (self.model.name, self.settings.model):
            return self.model
        raise ModelNotServed(f"model {name!r} is not served here; this server serves {self.model.name!r}")

    def refresh_candidates(self, recount: bool = True) -> int:
        """Load molecules imported since the last refresh (by any process) into the in-memory store (``recount``:
        see :meth:`CandidateStore.refresh`)."""
        with self.database.session() as session:
            return self.store.refresh(session, recount)

    def annotate(
        self,
        spectra: Sequence[Spectrum],
        *,
        top_k: int,
        ppm: float,
        given: Mapping[int, Sequence[str]] | None = None,
        model: SpectraModel | None = None,
        check: Callable[[], None] | None = None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(results, rejections) of ``spectra``: results as in DESIGN.md plus each spectrum's ``index``.

        ``given`` maps a spectrum's index to its candidate SMILES; the others take the candidates of the database
        within ``ppm`` of their neutral mass (PEPMASS and ADDUCT, ``[M+H]+`` by default). A spectrum with an
        unreadable candidate SMILES, no peak left after binning or an unknown adduct is rejected with the reason.
        ``check`` runs between small steps of the work (a :class:`~app.scheduler.Budget`'s check); the caller
        holds a work slot of :attr:`scheduler`.
        """
        model = model or self.model
        rejected: list[dict[str, Any]] = []
        given_sets: dict[int, CandidateSet] = {}
        usable: list[Spectrum] = []
        for spectrum in spectra:
            smiles = given.get(spectrum.index) if given else None
            if smiles is not None:
                cache = self.fingerprints if model is self.model else None
                candidates, bad = candidates_from_smiles(smiles, model.fingerprint_spec, check=check, cache=cache)
                if bad:
                    listed = "; ".join(f"candidate {i}: {reason}" for i, reason in bad[:_MAX_LISTED_REJECTIONS])
                    more = (
                        f" (and {len(bad) - _MAX_LISTED_REJECTIONS} more)" if len(bad) > _MAX_LISTED_REJECTIONS else ""
                    )
                    rejected.append(rejection(spectrum, listed + more))
                    continue
                given_sets[spectrum.index] = candidates
            usable.append(spectrum)
        from_store = store_candidates(self.store, ppm)

        def candidates_for(spectrum: Spectrum) -> CandidateSet:
            found = given_sets.get(spectrum.index)
            return found if found is not None else from_store(spectrum)

        results = []
        for spectrum, item in zip(usable, annotate(model, usable, candidates_for, top_k, check), strict=True):
            if "error" in item:
                rejected.append(item["error"])
                continue
            if not item["n_candidates"] and spectrum.index not in given_sets:
                item["note"] = no_candidate_note(spectrum, ppm, len(self.store))
            results.append({"index": spectrum.index, **item})
        return results, sorted(rejected, key=by_index)

    def close(self) -> None:
        self.database.dispose()
