"""``msvae reproduce EXPERIMENT``: the paper's sweep (models x supervision levels) and its report.

Each run is ``training.experiments.train_one`` into ``RUNS_DIR/EXPERIMENT/MODEL_sLEVEL/``; a run whose
``result.json`` already holds the same settings (epochs, seed, max_train, ...) is read back instead of trained, so
an interrupted sweep resumes (and a run stopped mid-way resumes from its ``last.pt``). Runs go one after another,
or ``jobs`` at a time in separate processes.

Report (DESIGN.md): ``OUT_DIR/EXPERIMENT.json`` = ``{"experiment", "epochs", "machine", "results": [{"model",
"supervision", "metrics"}], "paper": [...]}`` (plus the command, settings and timings), ``OUT_DIR/EXPERIMENT.md``
(our table beside the paper's numbers) and ``OUT_DIR/EXPERIMENT.png`` (one panel per metric: metric against the
supervision level on a log axis, one line per model, as the paper's Figures 6-9). A hand-written
``OUT_DIR/EXPERIMENT.notes.md``, when present, is included in the Markdown report.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from training.experiments import METRIC_KEYS, get_train_one
from training.experiments.common import RESULT_FILE
from training.paper_results import PAPER_NAMES, paper_claims, paper_results

SUPERVISION_LEVELS: tuple[float, ...] = (1.0, 0.5, 0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001)
TABLE_1_MODELS: tuple[str, ...] = ("svae", "vaevae", "vaevae-star", "mmvae")
POE_MODELS = frozenset({"svae", "svae-star", "vaevae", "vaevae-a", "vaevae-star", "mvae", "jmvae"})
# settings that must match for a stored result to be reused
_MATCH_KEYS = ("epochs", "seed", "max_train", "max_valid", "max_test", "lr")
_DEFAULTED = {"epochs", "lr"}  # None asks for the paper's value, whatever the stored run used


def run_dir(runs_dir: str | Path, experiment: str, model: str, supervision: float) -> Path:
    """``runs_dir/EXPERIMENT/MODEL_sLEVEL`` (the level as ``%g``)."""
    return Path(runs_dir) / experiment / f"{model}_s{supervision:g}"


def stored_result(path: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """``path/result.json`` when it exists and its settings equal ``settings`` (those of :data:`_MATCH_KEYS` that
    are given), else None."""
    file = path / RESULT_FILE
    if not file.exists():
        return None
    record = json.loads(file.read_text())
    same = all(record.get(k) == settings[k] for k in _MATCH_KEYS if k in settings)
    return record if same else None


def valid_history(path: Path) -> list[dict[str, Any]]:
    """The run's validation metrics after each epoch, from the trainer's ``path/metrics.jsonl``: a list of
    ``{"epoch", "steps" (optimisation steps so far), "metrics", "kl"}`` (empty when the file is missing); ``kl``
    holds the epoch's mean of every KL term of the training loss (the terms named ``.../kl``), in nats."""
    file = path / "metrics.jsonl"
    if not file.exists():
        return []
    history, steps = [], 0
    for line in file.read_text().splitlines():
        row = json.loads(line)
        steps += row.get("steps", 0)
        kl = {k: v for k, v in row.get("loss", {}).items() if k.split("/")[-1] == "kl"}
        history.append({"epoch": row["epoch"], "steps": steps, "metrics": row.get("metrics", {}), "kl": kl})
    return history


def machine_description(device: str = "cpu", threads: int = 1) -> str:
    """One line: OS, CPU count, torch version, torch threads per run and the device the runs used."""
    import torch

    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__} "
            f"({threads} thread(s) per run), device {device}")  # fmt: skip


def _run(job: dict[str, Any]) -> dict[str, Any]:
    """One run in a worker process: its own thread count, its log in the run's ``train.log``."""
    import torch

    torch.set_num_threads(job.pop("threads"))
    out_dir = Path(job["out_dir"])
    out_dir.mkdir(parents=True, exist_ok=True)
    experiment, model, supervision = job.pop("experiment"), job.pop("model_name"), job.pop("supervision")
    with open(out_dir / "train.log", "a") as log:
        sys.stderr = log
        try:
            return get_train_one(experiment)(model, supervision, **job)
        finally:
            sys.stderr = sys.__stderr__


def sweep(
    experiment: str,
    models: Sequence[str] = TABLE_1_MODELS,
    levels: Sequence[float] = SUPERVISION_LEVELS,
    *,
    epochs: int | None = None,
    data_dir: str | Path,
    runs_dir: str | Path = "runs",
    device: str = "auto",
    seed: int = 0,
    jobs: int = 1,
    threads: int = 1,
    progress: bool = True,
    stored_only: bool = False,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """Train (or read back) every (model, level) run; returns their result records, models outer, levels inner.

    ``overrides`` go to every ``train_one`` (e.g. ``max_train``, ``max_valid``, ``oracle``); those left None are
    not passed. ``jobs > 1`` trains that many runs at once in spawned processes of ``threads`` torch threads each.
    ``stored_only``: train nothing; runs without a stored result with these settings are left out of the list.
    """
    overrides = {k: v for k, v in overrides.items() if v is not None}
    get_train_one(experiment)  # fail early on an unknown or missing experiment
    todo, records = [], {}
    for model in models:
        for level in levels:
            out_dir = run_dir(runs_dir, experiment, model, level)
            settings = {**dict.fromkeys(_MATCH_KEYS), "epochs": epochs, "seed": seed, **overrides}
            settings = {k: v for k, v in settings.items() if v is not None or k not in _DEFAULTED}
            found = stored_result(out_dir, settings)
            if found is not None:
                _say(progress, f"{experiment} {model} s={level:g}: stored result in {out_dir}")
                records[model, level] = found
                continue
            todo.append({"experiment": experiment, "model_name": model, "supervision": level, "epochs": epochs,
                         "data_dir": str(data_dir), "out_dir": str(out_dir), "device": device, "seed": seed,
                         "threads": threads, **overrides})  # fmt: skip
    if stored_only:
        for job in todo:
            _say(progress, f"{experiment} {job['model_name']} s={job['supervision']:g}: no stored result, not trained")
        todo = []

    def done(record: dict[str, Any]) -> None:
        records[record["model"], record["supervision"]] = record
        metrics = " ".join(f"{k}={v:.3f}" for k, v in record["metrics"].items())
        where = f"best epoch {record['best_epoch']}/{record['epochs']}, {record['wall_time_s']:.0f} s"
        _say(progress, f"{experiment} {record['model']} s={record['supervision']:g}: {metrics} ({where})")

    if jobs <= 1:
        import torch

        torch.set_num_threads(threads)
        for job in todo:
            job = dict(job)
            job.pop("threads")
            name, level = job.pop("model_name"), job.pop("supervision")
            done(get_train_one(job.pop("experiment"))(name, level, progress=progress, **job))
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            for future in [pool.submit(_run, dict(job)) for job in todo]:
                done(future.result())
    for (model, level), record in records.items():
        record["valid_history"] = valid_history(run_dir(runs_dir, experiment, model, level))
    return [records[m, s] for m in models for s in levels if (m, s) in records]


def _say(enabled: bool, line: str) -> None:
    if enabled:
        print(line, flush=True)


def build_report(
    experiment: str,
    records: Sequence[dict[str, Any]],
    *,
    command: str,
    machine: str,
    wall_time_s: float,
    missing: Sequence[str] = (),
) -> dict[str, Any]:
    """The report of DESIGN.md: experiment, epochs, machine, results (DESIGN's metric keys), the paper's numbers;
    plus the command, the sweep's wall time, the settings of the runs, per-run details and the runs of the asked
    grid that were not on disk (``missing``, with ``--stored-only``)."""
    keys = METRIC_KEYS.get(experiment)
    results = []
    for r in records:
        metrics = {k: r["metrics"][k] for k in keys} if keys else dict(r["metrics"])
        results.append({
            "model": r["model"], "supervision": r["supervision"], "metrics": metrics,
            "valid_metrics": r.get("valid_metrics"), "best_epoch": r.get("best_epoch"),
            "train_time_s": r.get("train_time_s"), "wall_time_s": r.get("wall_time_s"), "data": r.get("data"),
            "valid_history": r.get("valid_history") or [],
        })  # fmt: skip
    epochs = sorted({r["epochs"] for r in records})
    first = records[0] if records else {}
    settings = {k: first.get(k) for k in ("max_train", "n_train", "max_valid", "n_valid", "n_test", "unpaired",
                                          "seed", "lr", "batch_size", "select_metric", "oracle", "device")}  # fmt: skip
    return {
        "experiment": experiment,
        "epochs": epochs[0] if len(epochs) == 1 else epochs,
        "machine": machine,
        "results": results,
        "paper": paper_results(experiment),
        "paper_claims": paper_claims(experiment),
        "command": command,
        "wall_time_s": round(wall_time_s, 1),
        "run_time_s_total": round(sum(r.get("wall_time_s") or 0 for r in records), 1),
        "sweep_span_s": sweep_span(records),
        "settings": settings,
        "missing_runs": list(missing),
    }


def sweep_span(records: Sequence[dict[str, Any]]) -> float | None:
    """Seconds from the first run's start to the last run's end (runs in parallel overlap), from the records'
    ``finished_at_unix`` and ``wall_time_s``; None when a record lacks them."""
    try:
        ends = [r["finished_at_unix"] for r in records]
        starts = [r["finished_at_unix"] - r["wall_time_s"] for r in records]
    except KeyError:
        return None
    return round(max(ends) - min(starts), 1) if records else None


def _paper_epochs(experiment: str) -> int | str:
    from models.networks import experiment_defaults

    try:
        return experiment_defaults(experiment)["epochs"]
    except ValueError:
        return "see Appendix A"


def _minutes(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds / 60:.1f} min"


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def markdown_report(report: dict[str, Any], plot_name: str | None, notes: str | None = None) -> str:
    """The Markdown page: how it was made, our table (all levels), ours beside the paper's numbers, the plot."""
    experiment, results = report["experiment"], report["results"]
    keys = list(METRIC_KEYS.get(experiment) or (results[0]["metrics"] if results else []))
    s = report["settings"]
    lines = [
        f"# {experiment}: our sweep beside the paper",
        "",
        f"- Command: `{report['command']}`",
        f"- Epochs: {report['epochs']} per run (the paper: {_paper_epochs(experiment)}), Adam lr {s.get('lr')}, batch "
        f"{s.get('batch_size')}; best epoch by {s.get('select_metric')}",
        f"- Training images: {s.get('n_train')} (max_train={s.get('max_train')}); validation images scored per epoch: "
        f"{s.get('n_valid')}; test images: {s.get('n_test')}; unpaired rule: {s.get('unpaired')}; seed {s.get('seed')}",
        f"- Machine: {report['machine']}",
        f"- Wall time: {_minutes(report['sweep_span_s'])} from the first run's start to the last run's end; "
        f"{_minutes(report['run_time_s_total'])} summed over the runs; {_minutes(report['wall_time_s'])} for the last "
        "command (runs already on disk are read back)",
    ]
    if report.get("missing_runs"):
        lines.append(f"- Not run (no stored result; left out): {', '.join(report['missing_runs'])}")
    if s.get("oracle"):
        o = s["oracle"]
        lines.append(f"- Oracle: {o.get('path')} (ResNet-18 width {o.get('width')}, {o.get('epochs')} epochs, "
                     f"MNIST test accuracy {_fmt(o.get('test_accuracy'))})")  # fmt: skip
    lines += ["", "## Our results (test set, best-on-validation checkpoint)", ""]
    lines += ["| model | supervision | " + " | ".join(keys) + " | best epoch | run time (s) |",
              "|---|---:|" + "---:|" * len(keys) + "---:|---:|"]  # fmt: skip
    for r in results:
        cells = " | ".join(_fmt(r["metrics"].get(k)) for k in keys)
        lines.append(f"| {r['model']} | {r['supervision']:g} | {cells} | {r['best_epoch']} | {r['wall_time_s']:.0f} |")

    lines += learning_curve_table(results, keys[0] if keys else None)
    lines += kl_table(results)

    paper = report["paper"]
    if paper:
        lines += ["", "## Beside the paper's numbers (ours / paper)", ""]
        lines += ["| model | supervision | " + " | ".join(keys) + " |", "|---|---:|" + "---:|" * len(keys)]
        ours = {(r["model"], r["supervision"]): r["metrics"] for r in results}
        for p in paper:
            mine = ours.get((p["model"], p["supervision"]), {})
            cells = " | ".join(f"{_fmt(mine.get(k)) or '--'} / {_fmt(p['metrics'].get(k))}" for k in keys)
            name = PAPER_NAMES.get(p["model"], p["model"])
            lines.append(f"| {name} | {p['supervision']:g} | {cells} |")
        lines += ["", f"Paper numbers: {paper[0]['source']} of the paper (200 epochs of 60,000 images, Appendix A)."]
    else:
        lines += ["", "The paper gives this experiment's results only as a figure, without numbers in the text; none "
                      "are copied here (no values read off figures)."]  # fmt: skip
    if report["paper_claims"]:
        lines += ["", "## What the paper states", ""] + [f"- {c}" for c in report["paper_claims"]]
    checks = ordering_checks(report)
    if checks:
        lines += ["", "## Checks on our numbers", ""] + [f"- {c}" for c in checks]
    if plot_name:
        lines += ["", f"![{experiment}: metric against supervision level]({plot_name})"]
    if notes:
        lines += ["", notes.strip()]
    return "\n".join(lines) + "\n"


def learning_curve_table(results: Sequence[dict[str, Any]], key: str | None) -> list[str]:
    """Markdown lines: the validation ``key`` after each epoch of every run (with the optimisation steps so far),
    so a reader sees whether a model was still learning when its run stopped; no lines without histories."""
    runs = [r for r in results if r.get("valid_history")]
    if key is None or not runs:
        return []
    epochs = max(len(r["valid_history"]) for r in runs)
    lines = ["", f"## Learning curves: validation `{key}` after each epoch", "",
             "| model | supervision | " + " | ".join(str(e + 1) for e in range(epochs)) + " |",
             "|---|---:|" + "---:|" * epochs]  # fmt: skip
    for r in runs:
        cells = [_fmt(h["metrics"].get(key)) for h in r["valid_history"]] + [""] * (epochs - len(r["valid_history"]))
        lines.append(f"| {r['model']} | {r['supervision']:g} | " + " | ".join(cells) + " |")
    steps = {f"{r['supervision']:g}": r["valid_history"][0]["steps"] for r in runs}
    lines += ["", "Optimisation steps per epoch, by supervision level: "
              + ", ".join(f"{level}: {n}" for level, n in steps.items()) + "."]  # fmt: skip
    return lines


def kl_table(results: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown lines: every KL term of each run's training loss, epoch by epoch (the epoch's mean, nats), so a
    reader sees whether a posterior collapsed (a KL term at 0) or stayed informative; no lines without KL terms."""
    runs = [r for r in results if any(h.get("kl") for h in r.get("valid_history") or [])]
    if not runs:
        return []
    epochs = max(len(r["valid_history"]) for r in runs)
    lines = ["", "## KL terms of the training loss, mean over each epoch (nats)", "",
             "| model | supervision | term | " + " | ".join(str(e + 1) for e in range(epochs)) + " |",
             "|---|---:|---|" + "---:|" * epochs]  # fmt: skip
    for r in runs:
        history = r["valid_history"]
        for term in dict.fromkeys(k for h in history for k in h.get("kl", {})):
            cells = [_fmt_kl(h.get("kl", {}).get(term)) for h in history] + [""] * (epochs - len(history))
            lines.append(f"| {r['model']} | {r['supervision']:g} | {term} | " + " | ".join(cells) + " |")
    return lines


def _fmt_kl(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}"


def ordering_checks(report: dict[str, Any]) -> list[str]:
    """Sentences computed from our numbers: PoE models vs MMVAE at each level, the best model at the lowest level."""
    results = report["results"]
    keys = METRIC_KEYS.get(report["experiment"]) or []
    levels = sorted({r["supervision"] for r in results}, reverse=True)
    out = []
    for key in keys:
        for which, pick in (("every", min), ("the best", max)):
            above, not_above = [], []
            for level in levels:
                at = {r["model"]: r["metrics"][key] for r in results if r["supervision"] == level}
                poe = [v for m, v in at.items() if m in POE_MODELS]
                if "mmvae" in at and poe:
                    (above if pick(poe) > at["mmvae"] else not_above).append(f"{level:g}")
            if above or not_above:
                line = f"`{key}`: {which} PoE model above MMVAE "
                line += f"at supervision {', '.join(above)}" if above else "at no supervision level"
                if not_above:
                    line += f"; not at {', '.join(not_above)}"
                out.append(line)
    if levels and keys:
        lowest = levels[-1]
        for key in keys:
            at = {r["model"]: r["metrics"][key] for r in results if r["supervision"] == lowest}
            if len(at) > 1:
                ranked = sorted(at.items(), key=lambda kv: -kv[1])
                listed = ", ".join(f"{m} {v:.3f}" for m, v in ranked)
                out.append(f"`{key}` at the lowest level ({lowest:g}): best {ranked[0][0]}; {listed}")
    return out


def plot_report(report: dict[str, Any], path: str | Path) -> Path:
    """One panel per metric: metric against the supervision level (log x axis), one line per model; the paper's
    numbers, where it gives them, as hollow markers of the model's colour."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    experiment, results = report["experiment"], report["results"]
    keys = list(METRIC_KEYS.get(experiment) or results[0]["metrics"])
    models = list(dict.fromkeys(r["model"] for r in results))
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.6), squeeze=False)
    colors = {m: f"C{i}" for i, m in enumerate(models)}
    for ax, key in zip(axes[0], keys, strict=True):
        for m in models:
            pts = sorted((r["supervision"], r["metrics"][key]) for r in results if r["model"] == m)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", color=colors[m], label=PAPER_NAMES.get(m, m))
        for p in report["paper"]:
            if p["model"] in colors:
                ax.plot([p["supervision"]], [p["metrics"][key]], "D", mfc="none", ms=9, color=colors[p["model"]])
        ax.set_xscale("log")
        if experiment.startswith("mnist"):
            ax.set_ylim(0.0, 1.0)  # accuracies and coherences are shares
        ax.set_xlabel("supervision level (share paired)")
        ax.set_title(key)
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("oracle accuracy" if experiment.startswith("mnist-split") else "metric")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if report["paper"]:
        handles.append(plt.Line2D([], [], marker="D", ls="none", mfc="none", color="gray", ms=9))
        labels.append("paper (Table 1)")
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    fig.suptitle(f"{experiment}, {report['epochs']} epoch(s) per run")
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(report: dict[str, Any], out_dir: str | Path) -> dict[str, Path]:
    """Write ``EXPERIMENT.json``, ``EXPERIMENT.png`` and ``EXPERIMENT.md`` into ``out_dir``; returns their paths."""
    from training.checkpoint import write_json

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = report["experiment"]
    paths = {"json": out_dir / f"{name}.json", "md": out_dir / f"{name}.md"}
    write_json(report, paths["json"])
    if report["results"]:
        paths["png"] = plot_report(report, out_dir / f"{name}.png")
    notes_file = out_dir / f"{name}.notes.md"
    notes = notes_file.read_text() if notes_file.exists() else None
    paths["md"].write_text(markdown_report(report, paths.get("png") and paths["png"].name, notes))
    return paths


def reproduce(
    experiment: str,
    models: Sequence[str] | None = None,
    levels: Sequence[float] | None = None,
    *,
    out_dir: str | Path = "reports",
    command: str | None = None,
    **sweep_kwargs: Any,
) -> dict[str, Path]:
    """:func:`sweep` then :func:`write_report`; ``command`` is recorded (default: this process's command line)."""
    start = time.perf_counter()
    models, levels = models or TABLE_1_MODELS, levels or SUPERVISION_LEVELS
    records = sweep(experiment, models, levels, **sweep_kwargs)
    done = {(r["model"], r["supervision"]) for r in records}
    device = records[0]["device"] if records else str(sweep_kwargs.get("device", "cpu"))
    report = build_report(
        experiment, records, command=command or " ".join(shlex.quote(a) for a in ["msvae", *sys.argv[1:]]),
        machine=machine_description(device, sweep_kwargs.get("threads", 1)), wall_time_s=time.perf_counter() - start,
        missing=[f"{m} s={s:g}" for m in models for s in levels if (m, s) not in done],
    )  # fmt: skip
    return write_report(report, out_dir)
