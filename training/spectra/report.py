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
import re
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np

from training.reproduce import machine_description, sweep
from training.spectra.study import MAX_VALID

MODELS = ("svae", "vaevae", "mlp")
LEVELS = (1.0, 0.5, 0.1)
PROTOCOL_TITLES = {
    "ppm10": "Candidates within 10 ppm of the precursor's neutral mass (pool of all MassBank structures)",
    "nearest256": "256 candidates: the pool structures nearest in mass (MassSpecGym-like size)",
}


def build_report(records: list[dict[str, Any]], command: str, machine: str) -> dict[str, Any]:
    """``reports/spectra.json``: DESIGN.md's sweep shape (experiment, epochs, machine, results with model,
    supervision, metrics) plus the full per-protocol test reports, the seed, the bootstrap spread of the top-k rates,
    the metrics mixed with the library search where measured, the random baseline and the data counts.

    A record's ``label`` (default: its model) names its row (variants of one model differ in it); records without
    training (the library search) may come first or anywhere."""
    trained = [r for r in records if r.get("select_metric")]
    first = trained[0] if trained else records[0]
    data = first["data"]
    return {
        "experiment": "spectra",
        "epochs": sorted({r["epochs"] for r in trained}),
        "machine": machine,
        "command": command,
        "split": data.get("split"),
        "data": {k: data[k] for k in ("file", "sha256", "used_spectra", "used_structures", "rejected") if k in data},
        "fingerprint_spec": data["fingerprint_spec"],
        "binning": data["binning"],
        "selection": (first["select_metric"] + f" (a seeded sample of {first['n_valid']} validation spectra)")
        if trained
        else None,
        "results": [result_row(r) for r in records],
        "total_run_wall_time_s": round(sum(r["wall_time_s"] for r in records), 1),
        "random": first["random"],
        "n_test": first["n_test"],
        "paper": [],
        "paper_note": "The paper reports no numbers for this experiment: Figure 11 plots top-k counts on 112 CASMI "
        "2017 spectra (SVAE above VAEVAE); CASMI 2017 data are not available here.",
    }


def result_row(r: dict[str, Any]) -> dict[str, Any]:
    """One run's row of ``spectra.json``'s ``results`` from its ``result.json`` record (see :func:`read_study`)."""
    return {
        "model": r["model"],
        "label": r.get("label", r["model"]),
        "supervision": r["supervision"],
        "seed": r.get("seed", 0),
        "metrics": r["metrics"],
        "spread": r.get("spread"),
        "mixed": r.get("mixed"),
        "test": r["test"],
        "best_epoch": r["best_epoch"],
        "epochs": r["epochs"],
        "stopped_at_epoch": r.get("stopped_at_epoch"),
        "network": r["network"],
        "num_parameters": r["num_parameters"],
        "semi_supervision": r["data"].get("semi_supervision"),
        "fingerprint_spec": r["data"]["fingerprint_spec"],
        "binning": r["data"]["binning"],
        "library_molecules": r.get("library_molecules", 0),
        "lr": r.get("lr"),
        "command": r.get("command"),
        "machine": r.get("machine"),
        "float32_matmul_precision": r.get("float32_matmul_precision"),
        "note": r.get("note"),
        "train_time_s": r["train_time_s"],
        "wall_time_s": r["wall_time_s"],
    }


def _cell(value: float | None, rate: bool) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f}%" if rate else f"{value:.1f}"


def _sd(values: list[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def _rows(report: dict[str, Any], protocol: str) -> list[str]:
    """Table rows: one per (label, supervision), the top-k rates averaged over its seeds, with the spread across
    seeds and the mean bootstrap spread (over test structures); then the same runs mixed with the library search."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for r in report["results"]:
        groups.setdefault((r["label"], r["supervision"]), []).append(r)
    lines = []
    for mixed in (False, True):
        for (label, level), runs in groups.items():
            sources = [r["mixed"] for r in runs if r.get("mixed")] if mixed else runs
            if not sources:
                continue
            rates = {k: [m["metrics"][f"{protocol}_top{k}_rate"] for m in sources] for k in (1, 5, 10, 20)}
            boot = [m["spread"][protocol]["top1_rate_sd"] for m in sources if m.get("spread")]
            seed_sd, boot_sd = _sd(rates[1]), (float(np.mean(boot)) if boot else None)
            median = np.mean([r["test"][protocol]["median_rank"] for r in runs]) if not mixed else None
            name = f"{label} + library search (mixed, beyond the paper)" if mixed else label
            epochs = ", ".join(f"{r['best_epoch']}/{r.get('stopped_at_epoch') or r['epochs']}" for r in runs)
            cells = [_cell(float(np.mean(rates[k])), True) for k in (1, 5, 10, 20)]
            lines.append(
                f"| {name} | {level:g} | {', '.join(str(r['seed']) for r in runs)} | {cells[0]} "
                f"| {_cell(seed_sd, True)} | {_cell(boot_sd, True)} | {' | '.join(cells[1:])} "
                f"| {_cell(median, False)} | {epochs if not mixed and runs[0]['epochs'] else '-'} |"
            )
    return lines


def markdown_report(report: dict[str, Any], notes: str | None = None) -> str:
    """``reports/spectra.md``: one table per candidate protocol (rows: model x supervision, averaged over seeds,
    with the spread across seeds and over test structures), random below, then the hand-written ``notes``."""
    counts = report["split"]
    binning = report["binning"]
    lines = [
        "# Spectra -> fingerprints: retrieval on held-out MassBank structures",
        "",
        f"Command: `{report['command']}`  ",
        *(f"Runs added by: `{c}`  " for c in report.get("added_by", [])),
        f"Machine: {report['machine']}  ",
        *(f"Added runs also on: {m}  " for m in report.get("added_machines", []) if m != report["machine"]),
        f"Epochs: at most {', '.join(map(str, report['epochs']))}; best epoch by {report['selection']}.  ",
        f"Data: `{report['data']['file']}` (sha256 {report['data']['sha256'][:12]}...), "
        f"{report['data']['used_spectra']} spectra of {report['data']['used_structures']} structures; split by first "
        f"InChIKey block: train {counts['train']['spectra']} spectra / {counts['train']['structures']} structures, "
        f"validation {counts['val']['spectra']} / {counts['val']['structures']}, test {counts['test']['spectra']} / "
        f"{counts['test']['structures']}.  ",
        f"Fingerprint `{report['fingerprint_spec'].split('@')[0]}` ({_kept(report['fingerprint_spec'])}); spectra "
        f"binned at {binning['bin_width']} Da over m/z {binning['min_mz']:g}-{binning['max_mz']:g}, intensities "
        f"{binning['intensity']}, peaks above the precursor removed.",
        "",
        "Queries: every TEST-split spectrum (one query per spectrum; a structure has about ten). Supervision is by "
        "training structure: at level s a share s of the training structures is identified (all their spectra "
        "paired with the fingerprint); the other structures' spectra are unpaired spectra and their fingerprints "
        "unpaired fingerprints. The MLP learns from the paired spectra only, the library search searches them; "
        "random ranking is the exact expectation. Rank ties count against the query. Top-k rates are means over the "
        "seeds listed; 'sd seeds' is their standard deviation across seeds, 'sd boot' the standard deviation of "
        "top-1 over 1,000 bootstrap resamples of the test structures (mean over the seeds).",
        "",
    ]
    for name, title in PROTOCOL_TITLES.items():
        lines += [f"## {title}", ""]
        lines += [
            "| model | supervision | seeds | top 1 | sd seeds | sd boot | top 5 | top 10 | top 20 | median rank "
            "| best epoch / trained |",
            "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        lines += _rows(report, name)
        rnd = report["random"][name]
        cells = [_cell(rnd[f"top{k}_rate"], True) for k in (1, 5, 10, 20)]
        median = _cell(rnd["median_rank"], False)
        lines.append(f"| random | - | - | {cells[0]} | - | - | {' | '.join(cells[1:])} | {median} | - |")
        true_added = report["results"][0]["test"][name]["true_added"]
        lines += ["", f"Queries: {report['n_test']}; true structure added to the candidates: {true_added}.", ""]
    lines += ["## Paper", "", report["paper_note"], ""]
    if notes:
        lines += [notes.strip(), ""]
    return "\n".join(lines)


def _kept(spec_text: str) -> str:
    from models.featurize.fingerprints import parse_fingerprint_spec

    spec = parse_fingerprint_spec(spec_text)
    return f"{spec.n_bits} of {spec.full_bits} bits kept" if spec.keep else "every bit"


def _row_order(r: dict[str, Any]) -> tuple[bool, str, float]:
    """Library-search rows first, then by label, supervision descending."""
    return r["model"] != "library-search", r["label"], -r["supervision"]


def read_study(runs_dir: str | Path) -> list[dict[str, Any]]:
    """The ``result.json`` of every run folder under ``runs_dir`` (:mod:`training.spectra.study`), each labelled by
    its folder name without the ``-s<level>-seed<seed>`` tail; library-search runs first. The fingerprint
    study's runs (``fingerprint-*``, validation only) are not rows."""
    records = []
    for path in sorted(Path(runs_dir).glob("*/result.json")):
        if path.parent.name.startswith("fingerprint-"):
            continue
        record = json.loads(path.read_text())
        record["label"] = re.sub(r"-s[0-9.]+-seed[0-9]+$", "", path.parent.name)
        records.append(record)
    return sorted(records, key=_row_order)


def add_runs(report: dict[str, Any], records: list[dict[str, Any]], command: str) -> dict[str, Any]:
    """``report`` with the runs ``records`` added (a run of the same label, supervision and seed is replaced) and
    ``command`` listed under ``added_by`` (once): new study runs join a report whose older run folders are gone."""
    rows = {(r["label"], r["supervision"], r.get("seed", 0)): r for r in report["results"]}
    for record in records:
        row = result_row(record)
        rows[row["label"], row["supervision"], row["seed"]] = row
    results = sorted(rows.values(), key=_row_order)
    return {
        **report,
        "results": results,
        "total_run_wall_time_s": round(sum(r["wall_time_s"] for r in results), 1),
        "added_by": list(dict.fromkeys([*report.get("added_by", []), command])),
        "epochs": sorted({*report["epochs"], *(r["epochs"] for r in records if r.get("epochs"))}),
        "added_machines": list(
            dict.fromkeys([*report.get("added_machines", []), *(r["machine"] for r in records if r.get("machine"))])
        ),
    }


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
    parser.add_argument("--study", help="report the study runs in this folder instead (training.spectra.study)")
    parser.add_argument("--add-study", help="add the study runs in this folder to the report already in --out")
    args = parser.parse_args(argv)
    command = "python -m training.spectra.report " + shlex.join(sys.argv[1:] if argv is None else argv)
    if args.add_study:
        report = json.loads((Path(args.out) / "spectra.json").read_text())
        _write(add_runs(report, read_study(args.add_study), command.strip()), args.out)
        return
    if args.study:
        _write(build_report(read_study(args.study), command.strip(), machine_description(args.device, 1)), args.out)
        return
    records = sweep(
        "spectra", args.models, args.levels, epochs=args.epochs, data_dir=args.data, runs_dir=args.runs,
        device=args.device, threads=1, max_valid=MAX_VALID,
    )  # fmt: skip
    _write(build_report(records, command.strip(), machine_description(args.device, 1)), args.out)


def _write(report: dict[str, Any], out: str) -> None:
    for kind, path in write_report(report, out).items():
        print(f"wrote {kind}: {path}")


if __name__ == "__main__":
    main()
