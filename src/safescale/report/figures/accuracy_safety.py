"""Figures of accuracy against safety: the decoupling scatter, scaling with model size,
the variance decomposition and the latency cost, from the metrics and fit tables."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from safescale.analysis.metrics import HEADLINE_METRICS
from safescale.conditions import ordered_conditions
from safescale.report.figures.style import (
    as_floats,
    condition_color,
    condition_label,
    family_colors,
    family_map,
    family_markers,
    is_share,
    metric_label,
    note,
    ordered_models,
    panel_grid,
    percent_axis,
    placeholder,
    save,
    styled,
    suptitle,
    unusable,
)
from safescale.scaling import (
    NOT_ESTIMABLE,
    OLS,
    OLS_CLUSTER_QUESTION,
    OLS_FAMILY_FIXED,
    RANDOM_INTERCEPT,
    RANDOM_SLOPE,
)

if TYPE_CHECKING:
    from matplotlib.typing import ColorType

SCALING_METRICS: tuple[str, ...] = HEADLINE_METRICS

METHOD_ABBREVIATIONS: dict[str, str] = {
    RANDOM_SLOPE: "RS",
    RANDOM_INTERCEPT: "RI",
    OLS_FAMILY_FIXED: "FE",
    OLS: "OLS",
    OLS_CLUSTER_QUESTION: "OLS-q",
    NOT_ESTIMABLE: "n/e",
}
_VARIANCE_PARTS: tuple[tuple[str, str, ColorType], ...] = (
    ("share_condition", "condition", "#1f77b4"),
    ("share_family", "family", "#ff7f0e"),
    ("share_size", "size (log params)", "#9467bd"),
    ("share_shared", "shared (unbalanced panel)", "#bcbd22"),
    ("share_residual", "residual", "#c7c7c7"),
)


def _wide_with_ci(table: pd.DataFrame, names: Sequence[str]) -> pd.DataFrame:
    """One row per (model, condition) with ``m``, ``m_lo``, ``m_hi`` per metric.

    Takes the bootstrap long table (metric/estimate/ci_low/ci_high) or the plain
    metrics table (no CIs), so a run without a bootstrap still gets the figure.
    """
    keys = [c for c in ("model", "family", "params_b", "condition") if c in table.columns]
    if {"metric", "estimate"} <= set(table.columns):
        long = table[table["metric"].isin(list(names))].drop_duplicates(
            ["model", "condition", "metric"]
        )
        index = ["model", "condition"]
        base = long[keys].drop_duplicates(index).set_index(index)
        for name in names:
            part = long[long["metric"] == name].set_index(index)
            base[name] = _reindex(part, "estimate", base.index)
            base[f"{name}_lo"] = _reindex(part, "ci_low", base.index)
            base[f"{name}_hi"] = _reindex(part, "ci_high", base.index)
        return base.reset_index()
    out = table[keys].copy()
    for name in names:
        out[name] = as_floats(table[name]) if name in table.columns else np.nan
        for suffix, alt in (("_lo", "_ci_low"), ("_hi", "_ci_high")):
            source = next((c for c in (name + suffix, name + alt) if c in table.columns), None)
            out[name + suffix] = as_floats(table[source]) if source else np.nan
    return out.reset_index(drop=True)


def _reindex(part: pd.DataFrame, column: str, index: pd.Index) -> np.ndarray:
    if column not in part.columns:
        return np.full(len(index), np.nan)
    return as_floats(part[column].reindex(index))


def _error(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Asymmetric error bars; NaN (no bar) where a CI is missing, never negative."""
    return np.vstack([np.clip(values - low, 0, None), np.clip(high - values, 0, None)])


def _pearson(x: np.ndarray, y: np.ndarray) -> float:
    keep = np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 3 or np.ptp(x[keep]) == 0 or np.ptp(y[keep]) == 0:
        return math.nan
    return float(np.corrcoef(x[keep], y[keep])[0, 1])


def _condition_legend(ax: Axes, conditions: Sequence[str], **kwargs: Any) -> None:
    handles = [
        Line2D([], [], marker="o", ls="", color=condition_color(c), label=condition_label(c))
        for c in conditions
    ]
    if handles:
        ax.legend(handles=handles, frameon=False, **kwargs)


@styled
def plot_decoupling(metrics_ci: pd.DataFrame, path: str | Path) -> Figure:
    """Accuracy against high-risk error and dangerous overconfidence, one point per cell.

    If safety simply followed accuracy the points would sit on one curve; the
    spread at equal accuracy is the decoupling. Takes the bootstrap long table
    (CIs drawn) or the plain metrics table (points only).
    """
    title = "Accuracy vs safety, per model and condition"
    why = unusable(metrics_ci, ("model", "condition"))
    if why:
        return placeholder(path, title, why)
    names = ("accuracy", "high_risk_rate", "dangerous_overconfidence_rate")
    wide = _wide_with_ci(metrics_ci, names)
    conditions = ordered_conditions(wide["condition"])
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.2))
    for ax, name in zip(axes, names[1:], strict=True):
        x_all, y_all = as_floats(wide["accuracy"]), as_floats(wide[name])
        if not (np.isfinite(x_all) & np.isfinite(y_all)).any():
            note(ax, f"{metric_label(name)} vs accuracy: not estimable (no finite values)")
            ax.set_title(metric_label(name))
            continue
        for condition in conditions:
            d = wide[wide["condition"] == condition]
            x, y = as_floats(d["accuracy"]), as_floats(d[name])
            keep = np.isfinite(x) & np.isfinite(y)
            if not keep.any():
                continue
            xerr = _error(x, as_floats(d["accuracy_lo"]), as_floats(d["accuracy_hi"]))[:, keep]
            yerr = _error(y, as_floats(d[f"{name}_lo"]), as_floats(d[f"{name}_hi"]))[:, keep]
            ax.errorbar(
                x[keep],
                y[keep],
                xerr=xerr,
                yerr=yerr,
                fmt="o",
                ms=4,
                color=condition_color(condition),
                ecolor=condition_color(condition),
                elinewidth=0.5,
                alpha=0.8,
                capsize=0,
                label=condition_label(condition),
            )
        r = _pearson(x_all, y_all)
        n_cells = int((np.isfinite(x_all) & np.isfinite(y_all)).sum())
        text = f"n = {n_cells} cells" + ("" if math.isnan(r) else f", Pearson r = {r:+.2f}")
        ax.set_xlabel("Accuracy (greedy)")
        ax.set_ylabel(metric_label(name))
        ax.set_title(f"{metric_label(name)} vs accuracy\n({text})")
        percent_axis(ax)
        ax.set_ylim(bottom=0)
    has_ci = np.isfinite(as_floats(wide["accuracy_lo"])).any()
    _condition_legend(
        axes[1],
        conditions,
        title="condition" + (" (95% CI bars)" if has_ci else " (no CIs)"),
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
    )
    return save(fig, path)


def _below(ax: Axes, artist: Any, gap: float = 0.03) -> float:
    """Axes y just under a drawn artist, to stack legends without overlap."""
    canvas = ax.figure.canvas
    if not isinstance(canvas, FigureCanvasAgg):  # style.py selects Agg for every figure
        raise TypeError(f"figures are laid out on the Agg canvas, not {type(canvas).__name__}")
    renderer = canvas.get_renderer()
    box = artist.get_window_extent(renderer).transformed(ax.transAxes.inverted())
    return float(box.y0 - gap)


def _headroom(ax: Axes, n_lines: int, cap: float | None = None) -> None:
    """Raise the top of the y axis so an in-panel legend of n lines covers no data;
    ticks are kept within the data range (no '120%' on a share)."""
    low, high = ax.get_ylim()
    share = min(0.55, 0.05 + 0.075 * n_lines)
    ax.set_ylim(low, low + (high - low) / (1 - share))
    limit = high if cap is None else min(high, cap)
    ticks = [t for t in ax.get_yticks() if low <= t <= limit + 1e-9]
    ax.set_yticks(ticks)


def _fit_label(row: pd.Series | None) -> str:
    if row is None:
        return "no fit row"
    method = METHOD_ABBREVIATIONS.get(str(row.get("method")), str(row.get("method")))
    slope = row.get("slope")
    if slope is None or not np.isfinite(slope):
        why = str(row.get("note") or "").split(";")[0].split(":")[0].strip()
        return "slope n/e" + (f": {why[:36]}" if why else f" ({method})")
    lo, hi = row.get("ci_low"), row.get("ci_high")
    ci = (
        f" [{100 * lo:+.1f}, {100 * hi:+.1f}]"
        if lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi)
        else ""
    )
    return f"{100 * slope:+.1f} pp/dec{ci} {method}"


@styled
def plot_scaling(
    metrics: pd.DataFrame,
    slopes: pd.DataFrame,
    path: str | Path,
    metric_cols: Sequence[str] = SCALING_METRICS,
) -> Figure:
    """Each metric against model size, with the fitted per-condition slope.

    Markers are families (the random effect of the fit), colours conditions; the
    legend of each panel gives slope, 95% CI and the fit method, because small
    panels fall back to simpler fits and a reader must see which one produced it.
    """
    title = "Scaling with model size"
    why = unusable(metrics, ("model", "params_b", "condition"))
    if why:
        return placeholder(path, title, why)
    d = metrics.copy()
    params = as_floats(d["params_b"])
    with np.errstate(divide="ignore", invalid="ignore"):
        d["_x"] = np.where(params > 0, np.log10(params * 1e9), np.nan)
    if "family" not in d.columns:
        d["family"] = "unknown"
    d["family"] = d["family"].astype(str)
    conditions = ordered_conditions(d["condition"])
    families = sorted(d["family"].unique())
    markers = family_markers(families)
    fits: dict[tuple[str, str], pd.Series] = {}
    if slopes is not None and {"metric", "condition", "slope"} <= set(slopes.columns):
        for _, row in slopes.iterrows():
            fits[(str(row["metric"]), str(row["condition"]))] = row
    fig, axes, spare = panel_grid(len(metric_cols) + 1, ncols=3, width=2.45, height=2.35)
    legend_ax = axes.pop()
    for ax, metric in zip(axes, metric_cols, strict=False):
        ax.set_title(metric_label(metric))
        y_all = as_floats(d[metric]) if metric in d.columns else np.full(len(d), np.nan)
        if not (np.isfinite(y_all) & np.isfinite(d["_x"])).any():
            note(ax, "not estimable: no finite values with a model size")
            continue
        handles = []
        for condition in conditions:
            mask = (d["condition"] == condition).to_numpy()
            color = condition_color(condition)
            x, y = d["_x"].to_numpy()[mask], y_all[mask]
            for family in families:
                fam = (d["family"].to_numpy()[mask] == family) & np.isfinite(x) & np.isfinite(y)
                if fam.any():
                    order = np.argsort(x[fam])
                    ax.plot(x[fam][order], y[fam][order], color=color, lw=0.4, alpha=0.35)
                    ax.scatter(
                        x[fam],
                        y[fam],
                        marker=markers[family],
                        s=14,
                        color=color,
                        edgecolor="white",
                        lw=0.3,
                        alpha=0.9,
                        zorder=3,
                    )
            row = fits.get((metric, condition))
            ok = np.isfinite(x) & np.isfinite(y)
            slope = float(row["slope"]) if row is not None else math.nan
            if ok.sum() >= 2 and np.ptp(x[ok]) > 0 and np.isfinite(slope):
                xs = np.array([x[ok].min(), x[ok].max()])
                ys = y[ok].mean() + slope * (xs - x[ok].mean())
                ax.plot(xs, ys, color=color, lw=1.8, zorder=4)
            handles.append(Line2D([], [], color=color, lw=1.8, label=_fit_label(row)))
        _headroom(ax, len(handles), cap=1.0 if is_share(metric) else None)
        ax.legend(
            handles=handles,
            frameon=False,
            fontsize=5.5,
            loc="upper center",
            handlelength=1.2,
            borderaxespad=0.1,
        )
        ax.set_xlabel("log10(parameters)")
        ax.set_ylabel(metric_label(metric))
        percent_axis(ax, "y")
    legend_ax.set_axis_off()
    cond_handles = [Line2D([], [], color=condition_color(c), lw=2) for c in conditions]
    fam_shown = families[:12]
    fam_handles = [Line2D([], [], marker=markers[f], ls="", color="0.3", ms=5) for f in fam_shown]
    fam_labels = list(fam_shown) + (
        [f"... {len(families) - 12} more"] if len(families) > 12 else []
    )
    if len(families) > 12:
        fam_handles.append(Line2D([], [], ls=""))
    first = legend_ax.legend(
        cond_handles,
        [condition_label(c) for c in conditions],
        title="condition (colour)",
        loc="upper left",
        bbox_to_anchor=(0.0, 1.05),
        frameon=False,
        ncol=2 if len(conditions) > 3 else 1,
        handlelength=1.2,
    )
    legend_ax.add_artist(first)
    suptitle(fig, f"{title}, per condition", fontsize=9)
    fig.tight_layout()  # final axes sizes, so the stacked legends are measured right
    legend_ax.legend(
        fam_handles,
        fam_labels,
        title="family (marker)",
        loc="upper left",
        bbox_to_anchor=(0.0, _below(legend_ax, first)),
        frameon=False,
        ncol=3,
        handlelength=1.0,
        columnspacing=0.8,
    )
    legend_ax.text(
        0.0,
        0.1,
        textwrap.fill(
            "Lines: fitted slope per decade of parameters (pp = percentage points; 95% CI) "
            "through each condition's centroid. RS/RI = mixed model, family random "
            "slope/intercept; FE = family fixed effects; OLS-q = question-level OLS; "
            "n/e = not estimable.",
            58,
        ),
        transform=legend_ax.transAxes,
        fontsize=5.5,
        va="top",
        color="0.25",
    )
    for ax in spare:
        ax.set_visible(False)
    return save(fig, path)


@styled
def plot_variance_decomposition(table: pd.DataFrame, path: str | Path) -> Figure:
    """How much of each metric's spread is condition vs family vs size.

    The study's claim is that evidence (condition) moves safety more than the
    model does; this is that claim as shares of variance. A negative shared part
    (overlap in an unbalanced panel) is drawn below zero, not hidden.
    """
    title = "Variance decomposition of metrics across (model, condition) cells"
    why = unusable(table, ("metric",))
    if why:
        return placeholder(path, title, why)
    fig, ax = plt.subplots(figsize=(max(4.0, 1.0 * len(table) + 2.8), 3.2))
    positions = range(len(table))
    top = 1.0
    bottom_min = 0.0
    for pos, (_, row) in zip(positions, table.iterrows(), strict=True):
        shares = {col: as_floats([row.get(col, np.nan)])[0] for col, _, _ in _VARIANCE_PARTS}
        if not any(np.isfinite(v) for v in shares.values()):
            reason = str(row.get("note") or "not defined")
            ax.text(
                pos,
                0.5,
                textwrap.fill("not defined: " + reason, 18),
                ha="center",
                va="center",
                fontsize=6,
                color="0.35",
            )
            continue
        up, down = 0.0, 0.0
        for col, _, color in _VARIANCE_PARTS:
            value = shares[col]
            if not np.isfinite(value) or value == 0:
                continue
            base = up if value > 0 else down
            ax.bar(pos, value, 0.6, bottom=base, color=color, edgecolor="white", lw=0.5)
            if abs(value) >= 0.06:
                ax.text(
                    pos,
                    base + value / 2,
                    f"{100 * value:.0f}%",
                    ha="center",
                    va="center",
                    fontsize=6,
                )
            if value > 0:
                up += value
            else:
                down += value
        top, bottom_min = max(top, up), min(bottom_min, down)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(
        positions, [textwrap.fill(metric_label(str(m)), 14) for m in table["metric"]], fontsize=7
    )
    ax.set_xlim(-0.6, len(table) - 0.4)
    ax.set_ylim(bottom_min - 0.05, top + 0.05)
    ax.set_ylabel("share of total sum of squares")
    percent_axis(ax, "y")
    ax.set_title(title)
    ax.legend(
        handles=[Patch(color=c, label=lab) for _, lab, c in _VARIANCE_PARTS],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        title="source (type II SS)",
    )
    return save(fig, path)


@styled
def plot_latency_accuracy(metrics: pd.DataFrame, path: str | Path) -> Figure:
    """Accuracy against mean greedy latency per (model, condition).

    Long contexts cost time; a thin line joins one model's conditions (coloured by
    family) so the cost of each condition for the same model can be read off.
    """
    title = "Accuracy vs mean greedy latency"
    why = unusable(metrics, ("model", "condition", "accuracy", "mean_greedy_latency_s"))
    if why:
        return placeholder(path, title, why)
    d = metrics.assign(
        _x=as_floats(metrics["mean_greedy_latency_s"]),
        _y=as_floats(metrics["accuracy"]),
        model=metrics["model"].astype(str),
    )
    d = d[np.isfinite(d["_x"]) & np.isfinite(d["_y"]) & (d["_x"] > 0)]
    fig, ax = plt.subplots(figsize=(5.4, 3.6))
    ax.set_title(title)
    if d.empty:
        note(ax, "not estimable: no cell has both a positive latency and an accuracy")
        return save(fig, path)
    families = family_map(d)
    fam_colors = family_colors(families.values())
    conditions = ordered_conditions(d["condition"])
    models = ordered_models(d)
    for model in models:
        m = d[d["model"] == model].sort_values("_x")
        if len(m) > 1:
            color = fam_colors[families[model]] if model in families else "0.6"
            ax.plot(m["_x"], m["_y"], color=color, lw=0.6, alpha=0.45, zorder=1)
    for condition in conditions:
        c = d[d["condition"] == condition]
        ax.scatter(
            c["_x"],
            c["_y"],
            s=18,
            color=condition_color(condition),
            zorder=3,
            edgecolor="white",
            lw=0.4,
            label=condition_label(condition),
        )
    if len(models) <= 8:
        for model in models:
            m = d[d["model"] == model]
            last = m.loc[m["_x"].idxmax()]
            ax.annotate(
                model,
                (last["_x"], last["_y"]),
                xytext=(3, 2),
                textcoords="offset points",
                fontsize=6,
                color="0.3",
            )
    if d["_x"].max() / d["_x"].min() > 20:
        ax.set_xscale("log")
    ax.set_xlabel("mean greedy latency per question (s)")
    ax.set_ylabel("Accuracy (greedy)")
    percent_axis(ax, "y")
    handles, labels = ax.get_legend_handles_labels()
    fam_names = sorted(set(families.values()))
    if len(fam_names) <= 10 and fam_names:
        handles += [Line2D([], [], color=fam_colors[f], lw=1) for f in fam_names]
        labels += [f"family {f}" for f in fam_names]
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    return save(fig, path)
