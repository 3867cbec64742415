"""Figure 11 of the paper for the CASMI evaluations: the number of challenges whose true structure is within the
top k (k = 1 ... 20), one curve per model; with several seeds the curve is the mean and the band the range.

Used by ``python -m training.spectra.casmi2016`` (``reports/casmi2016.{json,md,png}``) and by
``msvae evaluate-casmi2017`` (one curve beside its JSON report).
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from training.spectra.formula_protocol import flat_formula_metrics

BLIND = "spectrum-blind"


def plot_topk(curves: dict[str, Sequence[Sequence[float]]], path: Path, title: str, n_queries: int,
              dashed: Sequence[str] = ()) -> Path:  # fmt: skip
    """Plot top-k counts (k = 1 ... len) per label: the mean of the label's curves, with their range shaded.

    ``curves``: label -> one curve per seed; ``dashed``: labels drawn dashed (baselines).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for label, runs in curves.items():
        y = np.asarray(runs, dtype=np.float64)
        k = np.arange(1, y.shape[1] + 1)
        line = ax.plot(k, y.mean(axis=0), marker="o", markersize=3, label=label,
                       linestyle="--" if label in dashed else "-")  # fmt: skip
        if len(y) > 1:
            ax.fill_between(k, y.min(axis=0), y.max(axis=0), alpha=0.2, color=line[0].get_color())
    ax.set_xlabel("k")
    ax.set_ylabel(f"challenges with the true structure in the top k (of {n_queries})")
    ax.set_title(title, fontsize=10)
    ax.set_xticks(range(1, 21))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _machine() -> str:
    return f"{platform.system()} {platform.machine()}, torch {torch.__version__}"


def casmi2016_document(
    evaluations: dict[tuple[str, int], dict[str, dict[str, Any]]],
    *,
    runs: Path,
    command: str,
    split_counts: dict[str, int],
    library: dict[str, Any],
    supervision: float,
    eval_seconds: float,
    missing_runs: Sequence[str] = (),
) -> dict[str, Any]:
    """The JSON document: one result row per (model, seed), the spectrum-blind and random rows, and a summary per
    model (mean and range over seeds of every top-k count)."""
    results = []
    for (model, seed), ev in evaluations.items():
        run = json.loads((runs / f"{model}-s{supervision:g}-seed{seed}" / "result.json").read_text())
        report = ev["model"]
        results.append({
            "model": model, "supervision": supervision, "seed": seed,
            "metrics": {**flat_formula_metrics(report), "mean_bit_auc": report["mean_bit_auc"],
                        "mean_tanimoto": report["mean_tanimoto"]},
            "topk_counts": report["topk_counts"],
            "counts": {k: report[k] for k in ("n", "top1", "top5", "top10", "top20")},
            "best_epoch": run["best_epoch"], "epochs": run["epochs"], "train_time_s": run["train_time_s"],
            "massbank_test_nearest256_top1_rate": run["metrics"].get("nearest256_top1_rate"),
            "train_command": run["command"],
        })  # fmt: skip
    first = next(iter(evaluations.values()))
    blind, n = first["spectrum_blind"], first["model"]["n"]
    summary = []
    for model in dict.fromkeys(m for m, _ in evaluations):
        curves = np.array([ev["model"]["topk_counts"] for (m, _), ev in evaluations.items() if m == model])
        summary.append({
            "model": model, "seeds": [s for m, s in evaluations if m == model],
            "topk_mean": curves.mean(axis=0).round(2).tolist(), "topk_min": curves.min(axis=0).tolist(),
            "topk_max": curves.max(axis=0).tolist(), "topk_std": curves.std(axis=0, ddof=0).round(2).tolist(),
        })  # fmt: skip
    return {
        "experiment": "casmi2016",
        "command": command,
        "machine": _machine(),
        "queries": n,
        "query_note": "every MassBank record MSBNK-CASMI_2016-* (positive mode, [M+H]+) is one challenge spectrum",
        "protocol": first["model"]["protocol"],
        "true_added": first["model"]["true_added"],
        "n_candidates_mean": first["model"]["n_candidates_mean"],
        "median_candidates": first["model"]["median_candidates"],
        "single_candidate_queries": first["model"]["single_candidate_queries"],
        "split": split_counts,
        "library": library,
        "results": results,
        "summary": summary,
        "spectrum_blind": {"metrics": flat_formula_metrics(blind), "topk_counts": blind["topk_counts"]},
        "random": {"topk_counts": [round(x, 2) for x in first["model"]["random_topk_counts"]]},
        "eval_time_s": round(eval_seconds, 1),
        "missing_runs": list(missing_runs),
    }


def casmi2016_markdown(doc: dict[str, Any]) -> str:
    """The Markdown report of :func:`casmi2016_document`."""
    ks = (1, 5, 10, 20)
    lines = [
        "# CASMI 2016 (MassBank-hosted challenge spectra): true structure within the top k",
        "",
        f"Command: `{doc['command']}`  ",
        f"Machine: {doc['machine']}; evaluation {doc['eval_time_s']} s.  ",
        f"Queries: {doc['queries']} spectra ({doc['query_note']}); {doc['split']['casmi_structures']} structures, "
        f"all held out of training and validation ({doc['split']['casmi_structures_in_default_train']} were in the "
        f"default training split, {doc['split']['casmi_structures_in_default_val']} in validation; "
        f"{doc['split']['other_spectra_of_casmi_structures_held_out']} other MassBank spectra of these structures "
        f"left training with them). Training: {doc['split']['train_spectra']} spectra of "
        f"{doc['split']['train_structures']} structures.  ",
        f"Candidates: {doc['protocol']}; library {doc['library']['molecules']:,} molecules "
        f"(MassBank structures + MOSES), {doc['n_candidates_mean']:.1f} candidates per query on average; true "
        f"structure added for {doc['true_added']} queries.",
        "",
        "![top-k](casmi2016.png)",
        "",
        "| model | seeds | " + " | ".join(f"top {k}" for k in ks) + " |",
        "| --- | --- | " + " | ".join("---:" for _ in ks) + " |",
    ]
    for row in doc["summary"]:
        cells = [
            f"{row['topk_mean'][k - 1]:.1f} ({row['topk_min'][k - 1]}-{row['topk_max'][k - 1]})"
            if len(row["seeds"]) > 1
            else f"{row['topk_mean'][k - 1]:.0f}"
            for k in ks
        ]
        lines.append(f"| {row['model']} | {', '.join(map(str, row['seeds']))} | " + " | ".join(cells) + " |")
    blind, rnd = doc["spectrum_blind"]["topk_counts"], doc["random"]["topk_counts"]
    lines.append(f"| {BLIND} (mean training fingerprint) | - | " + " | ".join(str(blind[k - 1]) for k in ks) + " |")
    lines.append("| random (expected) | - | " + " | ".join(f"{rnd[k - 1]:.1f}" for k in ks) + " |")
    single = doc["single_candidate_queries"]
    lines += [
        "",
        f"Counts of the {doc['queries']} challenge spectra; with several seeds, mean (min-max). Ties count "
        "against the query.",
        "",
        f"{single} of the {doc['queries']} queries have a single candidate (their formula has one structure in the "
        f"library: the true one), so every method ranks them first; median {doc['median_candidates']:g} candidates "
        f"per query. Among the other {doc['queries'] - single} queries:",
        "",
        "| model | " + " | ".join(f"top {k}" for k in ks) + " |",
        "| --- | " + " | ".join("---:" for _ in ks) + " |",
    ]
    hard_rows = [(row["model"], row["topk_mean"]) for row in doc["summary"]] + [(BLIND, blind), ("random", rnd)]
    lines += [
        f"| {name} | " + " | ".join(f"{curve[k - 1] - single:.1f}" for k in ks) + " |" for name, curve in hard_rows
    ]
    lines += [
        "",
        "Per run: " + "; ".join(
            f"{r['model']} seed {r['seed']}: best epoch {r['best_epoch']}/{r['epochs']}, train "
            f"{r['train_time_s'] / 60:.0f} min, MassBank test top-1 among 256 mass-nearest "
            f"{100 * (r['massbank_test_nearest256_top1_rate'] or 0):.1f}%"
            for r in doc["results"]
        ) + ".",
        "",
        "Training commands: " + "; ".join(f"`{c}`" for c in dict.fromkeys(r["train_command"] for r in doc["results"])),
    ]  # fmt: skip
    if doc["missing_runs"]:
        lines += ["", "Runs asked for but not on disk (not trained in time): " + ", ".join(doc["missing_runs"]) + "."]
    return "\n".join(lines) + "\n"


def write_casmi2016_report(
    out_dir: Path, evaluations: dict[tuple[str, int], dict[str, dict[str, Any]]], **context: Any
) -> dict[str, Path]:
    """Write ``casmi2016.json``, ``.md`` and ``.png`` into ``out_dir``; returns their paths."""
    doc = casmi2016_document(evaluations, **context)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {ext: out_dir / f"casmi2016.{ext}" for ext in ("json", "md", "png")}
    paths["json"].write_text(json.dumps(doc, indent=1) + "\n")
    paths["md"].write_text(casmi2016_markdown(doc))
    curves: dict[str, list[list[float]]] = {}
    for (model, _), ev in evaluations.items():
        curves.setdefault(model, []).append(ev["model"]["topk_counts"])
    curves[BLIND] = [doc["spectrum_blind"]["topk_counts"]]
    curves["random"] = [doc["random"]["topk_counts"]]
    plot_topk(curves, paths["png"], "CASMI 2016 (MassBank), candidates: library structures of the formula",
              doc["queries"], dashed=(BLIND, "random"))  # fmt: skip
    return paths
