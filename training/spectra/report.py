"""The spectra sweep and its report: SVAE, VAEVAE and the MLP baseline at several supervision levels, plus random
ranking, on the held-out TEST structures, written to ``reports/spectra.json`` and ``reports/spectra.md``.

    python -m training.spectra.report --data ../shared/data --epochs 30

Runs go through ``training.reproduce.sweep`` into ``runs/spectra/MODEL_sLEVEL/`` one after another (one torch
thread); a run whose ``result.json`` holds the same settings is read back, so an interrupted sweep resumes. The
sweep bins at 0.1 Da (the paper's 11,000 features); the shipped default model (``training.spectra.default_model``)
bins at 1 Da and has its own run directory.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from training.reproduce import machine_description, sweep
from training.spectra.default_model import MAX_VALID

MODELS = ("svae", "vaevae", "mlp")
LEVELS = (1.0, 0.5, 0.1)
PROTOCOL_TITLES = {
    "ppm10": "Candidates within 10 ppm of the precursor's neutral mass (pool of all MassBank structures)",
    "nearest256": "256 candidates: the pool structures nearest in mass (MassSpecGym-like size)",
}
_COLUMNS = ("top1_rate", "top5_rate", "top10_rate", "top20_rate", "mean_rank", "median_rank")


def build_report(records: list[dict[str, Any]], command: str, machine: str) -> dict[str, Any]:
    """``reports/spectra.json``: DESIGN.md's sweep shape (experiment, epochs, machine, results with model,
    supervision, metrics) plus the full per-protocol test reports, the random baseline and the data counts."""
    first = records[0]
    return {
        "experiment": "spectra",
        "epochs": sorted({r["epochs"] for r in records}),
        "machine": machine,
        "command": command,
        "split": first["data"]["split"],
        "data": {k: first["data"][k] for k in ("file", "sha256", "used_spectra", "used_structures", "rejected")},
        "fingerprint_spec": first["data"]["fingerprint_spec"],
        "binning": first["data"]["binning"],
        "selection": first["select_metric"] + f" (a seeded sample of {first['n_valid']} validation spectra)",
        "results": [
            {
                "model": r["model"],
                "supervision": r["supervision"],
                "metrics": r["metrics"],
                "test": r["test"],
                "best_epoch": r["best_epoch"],
                "epochs": r["epochs"],
                "network": r["network"],
                "num_parameters": r["num_parameters"],
                "semi_supervision": r["data"]["semi_supervision"],
                "train_time_s": r["train_time_s"],
                "wall_time_s": r["wall_time_s"],
            }
            for r in records
        ],
        "total_run_wall_time_s": round(sum(r["wall_time_s"] for r in records), 1),
        "random": first["random"],
        "n_test": first["n_test"],
        "paper": [],
        "paper_note": "The paper reports no numbers for this experiment: Figure 11 plots top-k counts on 112 CASMI "
        "2017 spectra (SVAE above VAEVAE); CASMI 2017 data are not available here.",
    }


def _cell(value: float | None, rate: bool) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if rate else f"{value:.1f}"


def markdown_report(report: dict[str, Any], notes: str | None = None) -> str:
    """``reports/spectra.md``: one table per candidate protocol, models x supervision levels, random below, then
    the hand-written ``notes`` (Markdown) when given."""
    counts = report["split"]
    lines = [
        "# Spectra -> fingerprints: retrieval on held-out MassBank structures",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {report['machine']}  ",
        f"Epochs: {', '.join(map(str, report['epochs']))} (reduced from the paper's 140; best epoch by "
        f"{report['selection']}).  ",
        f"Data: `{report['data']['file']}` (sha256 {report['data']['sha256'][:12]}...), "
        f"{report['data']['used_spectra']} spectra of {report['data']['used_structures']} structures; split by first "
        f"InChIKey block: train {counts['train']['spectra']} spectra / {counts['train']['structures']} structures, "
        f"validation {counts['val']['spectra']} / {counts['val']['structures']}, test {counts['test']['spectra']} / "
        f"{counts['test']['structures']}.  ",
        f"Fingerprint `{report['fingerprint_spec']}`; spectra binned at {report['binning']['bin_width']} Da over "
        f"m/z {report['binning']['min_mz']:g}-{report['binning']['max_mz']:g}, intensities "
        f"{report['binning']['intensity']}, peaks above the precursor removed.",
        "",
        "Queries: every TEST-split spectrum (one query per spectrum; a structure has about ten). Supervision is by "
        "training structure: at level s a share s of the training structures is identified (all their spectra "
        "paired with the fingerprint); the other structures' spectra are unpaired spectra and their fingerprints "
        "unpaired fingerprints. The MLP learns from the paired spectra only; random ranking is the exact "
        "expectation. Rank ties count against the query.",
        "",
    ]
    for name, title in PROTOCOL_TITLES.items():
        lines += [f"## {title}", ""]
        lines += [
            "| model | supervision | top 1 | top 5 | top 10 | top 20 | mean rank | median rank | candidates / query "
            "| bit AUC | Tanimoto | best epoch | train time |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in report["results"]:
            t = r["test"][name]
            cells = [_cell(t[c], c.endswith("rate")) for c in _COLUMNS]
            lines.append(
                f"| {r['model']} | {r['supervision']:g} | {' | '.join(cells)} | {t['n_candidates_mean']:.1f} "
                f"| {t['mean_bit_auc']:.3f} | {t['mean_tanimoto']:.3f} | {r['best_epoch']}/{r['epochs']} "
                f"| {r['train_time_s'] / 60:.0f} min |"
            )
        rnd = report["random"][name]
        cells = [_cell(rnd[c], c.endswith("rate")) for c in _COLUMNS]
        lines.append(f"| random | - | {' | '.join(cells)} | {rnd['n_candidates_mean']:.1f} | 0.500 | - | - | - |")
        true_added = report["results"][0]["test"][name]["true_added"]
        lines += ["", f"Queries: {report['n_test']}; true structure added to the candidates: {true_added}.", ""]
    lines += ["## Paper", "", report["paper_note"], ""]
    if notes:
        lines += [notes.strip(), ""]
    return "\n".join(lines)


def write_report(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``spectra.json`` and ``spectra.md`` into ``out_dir`` (with ``spectra.notes.md`` there, when present,
    appended to the Markdown)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "spectra.json", "markdown": out / "spectra.md"}
    notes = out / "spectra.notes.md"
    paths["json"].write_text(json.dumps(report, indent=1) + "\n")
    paths["markdown"].write_text(markdown_report(report, notes.read_text() if notes.is_file() else None))
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="spectra sweep and report")
    parser.add_argument("--data", default="../shared/data")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument("--levels", nargs="+", type=float, default=list(LEVELS))
    parser.add_argument("--runs", default="runs")
    parser.add_argument("--out", default="reports")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    command = "python -m training.spectra.report " + shlex.join(sys.argv[1:] if argv is None else argv)
    records = sweep(
        "spectra", args.models, args.levels, epochs=args.epochs, data_dir=args.data, runs_dir=args.runs,
        device=args.device, threads=1, max_valid=MAX_VALID,
    )  # fmt: skip
    report = build_report(records, command.strip(), machine_description(args.device, 1))
    for kind, path in write_report(report, args.out).items():
        print(f"wrote {kind}: {path}")


if __name__ == "__main__":
    main()
