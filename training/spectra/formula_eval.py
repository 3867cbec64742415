"""The formula protocol for a trained model directory on MassBank (``msvae evaluate-formula MODEL ...``).

Queries: the spectra of one part of the model's split (by default its run folder's ``split.json``, else the
project's default split by structure); candidates: every library structure of the query's formula
(:mod:`training.spectra.formula_protocol`); the spectrum-blind baseline ranks against the mean fingerprint of the
split's training structures. Each model gives a row in the layout of ``reports/spectra.json``'s ``results[]``
(``model``, ``supervision``, ``metrics.formula_top1_rate`` ...).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from models.spectra_model import SpectraModel
from training.spectra.data import SpectraData, load_spectra_data
from training.spectra.dataset import Split, read_split
from training.spectra.formula_protocol import CandidateSets, FormulaQuery, evaluate_formula, flat_formula_metrics
from training.spectra.library import StructureLibrary

LIST_KEYS = ("topk_counts", "random_topk_counts")


def formula_queries(data: SpectraData, rows: np.ndarray) -> list[FormulaQuery]:
    """The formula-protocol queries of the records ``rows`` (formula and structure from each record)."""
    return [FormulaQuery(data.records[i].formula, data.records[i].inchikey_block, data.records[i].smiles) for i in rows]


def mean_training_fingerprint(data: SpectraData, split: Split) -> np.ndarray:
    """Mean fingerprint bits of the training structures (one per structure): the spectrum-blind prediction."""
    structures = np.unique(data.structure[split.train])
    return data.structures.bits[structures].mean(axis=0)


def model_split_file(model_dir: Path) -> Path | None:
    """The split a model was trained with: ``split.json`` of its run folder (the model directory's parent)."""
    path = Path(model_dir).parent / "split.json"
    return path if path.is_file() else None


def evaluate_formula_rows(
    model: SpectraModel, data: SpectraData, split: Split, rows: np.ndarray, library: StructureLibrary
) -> dict[str, dict[str, Any]]:
    """:func:`~training.spectra.formula_protocol.evaluate_formula` for ``model`` on the records ``rows``."""
    if model.binning != data.binning or model.fingerprint_spec != data.fingerprint_spec:
        raise ValueError(f"model {model.name}: its binning or fingerprint differs from the evaluation data's")
    probs = model.predict_features(data.features[rows])
    candidates = CandidateSets(library, data.fingerprint_spec)
    return evaluate_formula(probs, formula_queries(data, rows), candidates, mean_training_fingerprint(data, split))


def evaluate_model_dirs(
    model_dirs: Sequence[str | Path],
    data_dir: str | Path,
    library: StructureLibrary,
    *,
    part: str = "test",
    split_file: str | Path | None = None,
    max_queries: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Formula-protocol rows for model directories that share binning and fingerprint (one data load).

    Args:
        split_file: the split to take ``part`` from; default the first model's run-folder ``split.json``, else the
            default split by structure.
        max_queries: a seeded random sample of that many query spectra (default all of the part).

    Returns ``{"results": [row per model], "spectrum_blind": row, "queries", "split", ...}``; rows as in
    ``reports/spectra.json`` plus the full reports.
    """
    models = [SpectraModel.load(d, device="cpu") for d in model_dirs]
    data = load_spectra_data(data_dir, binning=models[0].binning, fingerprint_spec=models[0].fingerprint_spec)
    split_path = Path(split_file) if split_file else model_split_file(Path(model_dirs[0]))
    split = read_split(split_path, data.records) if split_path else data.split
    rows = split.part(part)
    if max_queries is not None and max_queries < len(rows):
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_queries, replace=False))
    results, blind = [], None
    for model_dir, model in zip(model_dirs, models, strict=True):
        ev = evaluate_formula_rows(model, data, split, rows, library)
        blind = ev["spectrum_blind"]
        results.append({
            "model": model.model_name, "name": model.name, "path": str(model_dir),
            "supervision": model.card.get("supervision", {}).get("level"),
            "metrics": {**flat_formula_metrics(ev["model"]), "formula_true_added": ev["model"]["true_added"]},
            "formula": {k: v for k, v in ev["model"].items() if k not in LIST_KEYS},
            "formula_topk_counts": ev["model"]["topk_counts"],
        })  # fmt: skip
    assert blind is not None
    return {
        "protocol": blind["protocol"].split(";")[0],
        "queries": int(len(rows)),
        "query_structures": int(len(np.unique(data.structure[rows]))),
        "part": part,
        "split": str(split_path) if split_path else "default split by first InChIKey block, seed 0",
        "library": library.manifest(),
        "results": results,
        "spectrum_blind": {
            "model": "spectrum-blind",
            "supervision": None,
            "metrics": flat_formula_metrics(blind),
            "formula_topk_counts": blind["topk_counts"],
        },  # fmt: skip
        "random": {"formula_topk_counts": [round(x, 2) for x in blind["random_topk_counts"]]},
    }


def run_evaluate_formula(args: Any) -> int:
    """``msvae evaluate-formula MODEL_DIR ... [--data D] [--part test] [--split F] [--out R.json]``."""
    import shlex
    import sys

    from training.spectra.library import open_library

    try:
        library = open_library(args.data, args.library_cache)
        doc = evaluate_model_dirs(args.models, args.data, library, part=args.part, split_file=args.split,
                                  max_queries=args.max_queries)  # fmt: skip
    except (FileNotFoundError, ValueError) as exc:
        print(f"msvae evaluate-formula: {exc}", file=sys.stderr)
        return 1
    doc = {"command": "msvae " + shlex.join(getattr(args, "argv", [])), **doc}
    out = Path(args.out or "formula-retrieval.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"{doc['queries']} queries ({doc['query_structures']} structures, {doc['part']}); {doc['protocol']}")
    for row in [*doc["results"], doc["spectrum_blind"]]:
        m, name = row["metrics"], row.get("name", row["model"])
        top1, top10 = 100 * m["formula_top1_rate"], 100 * m["formula_top10_rate"]
        print(f"{name}: top-1 {top1:.1f}%, top-10 {top10:.1f}%, candidates/query {m['formula_n_candidates_mean']:.1f}")
    print(f"report: {out}")
    return 0
