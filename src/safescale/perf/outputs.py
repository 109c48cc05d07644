"""The bench's files: per-(model, condition) and run-bound tables as CSV, and one figure.

Each file is written aside and renamed, so a crashed bench never leaves half a table.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from safescale.perf.report import TARGETS, condition_rows


def write_csv(rows: Sequence[Mapping[str, Any]], path: str | Path) -> None:
    """Rows of one shape as a CSV, complete or not at all."""
    if not rows:
        raise ValueError(f"{path}: no rows to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def plot_bench(report: Mapping[str, Any], path: str | Path) -> None:
    """Left: the strong baselines' cost over ours per condition (CPU clock); right: the
    run's inference jobs against their token bound (when the bench had a run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from safescale.report.figures.style import STYLE, condition_label, note, save

    rows = [r for r in condition_rows(report) if r["condition"] != "all"]
    run = report.get("run_bound")
    with plt.rc_context(STYLE):
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
        labels = [f"{r['model']}\n{condition_label(r['condition'])}" for r in rows]
        x = range(len(rows))
        width = 0.38
        for k, (key, name) in enumerate(
            (("strong_over_ours_cpu", "strong"), ("strong_stop_over_ours_cpu", "strong + stop"))
        ):
            left.bar([i + (k - 0.5) * width for i in x], [r[key] for r in rows], width, label=name)
        left.axhline(TARGETS["strong_over_ours_above"], color="0.3", lw=0.8, ls="--")
        left.set_xticks(list(x), labels, rotation=60, ha="right", fontsize=6)
        left.set_ylabel("baseline CPU s / our SC CPU s")
        left.set_title("Self-consistency vs llama-cpp-python prefix reuse", fontsize=8)
        left.legend(fontsize=7)
        if run:
            jobs = [r for r in run["rows"] if r["condition"] != "all"]
            y = range(len(jobs))
            right.barh([i + 0.2 for i in y], [r["job_cpu_s"] for r in jobs], 0.4, label="job")
            right.barh([i - 0.2 for i in y], [r["bound_cpu_s"] for r in jobs], 0.4, label="bound")
            right.set_yticks(
                list(y), [f"{r['model']} {condition_label(r['condition'])}" for r in jobs]
            )
            right.tick_params(axis="y", labelsize=6)
            right.invert_yaxis()  # conditions top to bottom, in the table's order
            right.set_xlabel("CPU seconds")
            total = next(r for r in run["rows"] if r["condition"] == "all")
            ratio = total["job_cpu_over_bound_cpu"]
            right.set_title(
                f"Run's inference jobs vs token bound (all: {ratio:.2f}x)"
                if math.isfinite(ratio)
                else "Run's inference jobs vs token bound",
                fontsize=8,
            )
            right.legend(fontsize=7)
        else:
            note(right, "no finished run under the bench's --results folder")
        save(fig, path)


def write_outputs(report: Mapping[str, Any], folder: str | Path) -> list[Path]:
    """conditions.csv, run_bound.csv (with a run) and bench.png under `folder`."""
    folder = Path(folder)
    written = [folder / "conditions.csv"]
    write_csv(condition_rows(report), written[0])
    if "run_bound" in report:
        written.append(folder / "run_bound.csv")
        write_csv(report["run_bound"]["rows"], written[-1])
    written.append(folder / "bench.png")
    plot_bench(report, written[-1])
    return written
