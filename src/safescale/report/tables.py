"""Tables for reviewers: CSV for machines with a Markdown twin, and the summary's tables."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

import pandas as pd

from safescale import conditions as C
from safescale.analysis.metrics import HEADLINE_METRICS
from safescale.report.study import STUDY_HEADLINE


def write_table(df: pd.DataFrame, csv_path: str | Path, md: bool = True) -> None:
    """CSV for machines and a Markdown twin for reviewers."""
    csv_path = Path(csv_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(csv_path, index=False)
    if md:
        csv_path.with_suffix(".md").write_text(to_markdown(df) + "\n")


def to_markdown(df: pd.DataFrame, digits: int = 3) -> str:
    if df.empty:
        return "_(empty)_"
    cols = list(df.columns)

    def fmt(v):
        if isinstance(v, float):
            return "" if pd.isna(v) else f"{v:.{digits}f}"
        return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def present(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The wanted columns that this table has, in the wanted order."""
    return [c for c in columns if c in frame]


def _ci_cell(point: float, lo: float, hi: float) -> str:
    if pd.isna(point):
        return "n/a"
    return f"{point:.3f} [{lo:.3f}, {hi:.3f}]" if not pd.isna(lo) else f"{point:.3f}"


def table_metrics_with_ci(
    ci: pd.DataFrame, metrics: Sequence[str], skipped: Collection[tuple[str, str]] = ()
) -> pd.DataFrame:
    """Table 1: per model and condition, each headline metric with its 95% CI; a cell
    whose every question was skipped (in `skipped`) reads 'skipped', never a number."""
    sub = ci[ci.metric.isin(metrics)].copy()
    est = "estimate" if "estimate" in sub else "point"
    sub["cell"] = [
        "skipped" if (m, c) in skipped else _ci_cell(p, lo, hi)
        for m, c, p, lo, hi in zip(
            sub.model, sub.condition, sub[est], sub.ci_low, sub.ci_high, strict=True
        )
    ]
    wide = sub.pivot_table(
        index=["model", "condition"], columns="metric", values="cell", aggfunc="first"
    ).reset_index()
    return wide[["model", "condition", *[m for m in metrics if m in wide]]]


def table_condition_means(metrics: pd.DataFrame, paired: pd.DataFrame) -> pd.DataFrame:
    """Table 2: condition means over models, with paired-bootstrap p vs closed-book."""
    cols = [m for m in HEADLINE_METRICS if m in metrics]
    means = metrics.groupby("condition")[cols].mean()
    order = [c for c in C.ALL_CONDITIONS if c in means.index]
    rows = []
    mean_rows = paired[paired.kind == "condition_mean"] if "kind" in paired else paired.iloc[:0]
    for cond in order:
        answered = metrics[metrics.condition == cond]
        if "cell_status" in answered:
            answered = answered[answered["cell_status"] != "skipped"]
        row = {"condition": cond, "n_models": int(answered.model.nunique())}
        for m in cols:
            row[m] = means.loc[cond, m]
            hit = mean_rows[
                (mean_rows.metric_a == m)
                & mean_rows.label.str.endswith(f": {cond} - {C.REFERENCE_CONDITION}")
            ]
            row[f"p_{m}"] = float(hit.p_value.iloc[0]) if len(hit) else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def headline_vs_study(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per model (smallest first), the study's headline metrics in its headline conditions,
    beside this run's mean over models and the published study's mean over its 34 models
    (different models and data: for orientation only). A skipped cell reads 'skipped'."""
    answered = metrics[metrics["cell_status"] != "skipped"] if "cell_status" in metrics else metrics
    models = list(metrics.sort_values(["params_b", "model"]).model.drop_duplicates())
    cells = metrics.set_index(["model", "condition"])
    rows = []
    for metric, study in STUDY_HEADLINE.items():
        for cond, value in study.items():
            row: dict[str, object] = {"metric": metric, "condition": cond}
            for model in models:
                if (model, cond) not in cells.index or metric not in cells:
                    row[model] = None
                elif cells.loc[(model, cond)].get("cell_status") == "skipped":
                    row[model] = "skipped"
                else:
                    row[model] = float(cells.loc[(model, cond), metric])
            ours = answered.loc[answered.condition == cond, metric] if metric in answered else None
            row["mean_over_models"] = float(ours.mean()) if ours is not None and len(ours) else None
            row["study_mean_34_models"] = value
            rows.append(row)
    return pd.DataFrame(rows)
