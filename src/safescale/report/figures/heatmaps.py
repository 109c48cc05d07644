"""Model x condition heatmaps (one metric, or the AURC of a gate) with values written
in, so a reader can find any one cell of the panel; missing cells show as n/a."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from safescale.conditions import ordered_conditions
from safescale.report.figures.style import (
    RISK_LABELS,
    SIGNAL_LABELS,
    as_floats,
    condition_label,
    family_colors,
    family_map,
    is_share,
    metric_label,
    ordered_models,
    placeholder,
    save,
    styled,
    unusable,
)


def _draw_heatmap(
    ax: Axes,
    grid: pd.DataFrame,
    cmap: str,
    cbar_label: str,
    percent: bool,
    families: Mapping[str, str],
    skipped: pd.DataFrame | None = None,
) -> None:
    """Annotated model x condition grid; missing cells grey with 'n/a', or 'skipped' where
    `skipped` (same shape, bool) says no question of the cell was put to the model."""
    values = grid.to_numpy(dtype=float) * (100.0 if percent else 1.0)
    finite = np.isfinite(values)
    vmin = float(np.nanmin(values)) if finite.any() else 0.0
    vmax = float(np.nanmax(values)) if finite.any() else 1.0
    if vmax <= vmin:
        vmax = vmin + 1.0
    colormap = plt.get_cmap(cmap).with_extremes(bad="0.9")
    image = ax.imshow(
        np.ma.masked_invalid(values), cmap=colormap, vmin=vmin, vmax=vmax, aspect="auto"
    )
    n_rows, n_cols = values.shape
    size = 7 if n_rows <= 20 else 5.5
    for i in range(n_rows):
        for j in range(n_cols):
            v = values[i, j]
            if not np.isfinite(v):
                text = "skipped" if skipped is not None and skipped.iat[i, j] else "n/a"
                ax.text(j, i, text, ha="center", va="center", fontsize=size, color="0.45")
                continue
            dark = (v - vmin) / (vmax - vmin) > 0.6
            text = f"{v:.1f}" if percent else f"{v:.3g}"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                fontsize=size,
                color="white" if dark else "black",
            )
    ax.set_xticks(
        range(n_cols), [condition_label(c) for c in grid.columns], rotation=30, ha="right"
    )
    ax.set_yticks(range(n_rows), list(grid.index))
    colors = family_colors(families.values())
    for tick, model in zip(ax.get_yticklabels(), grid.index, strict=True):
        if model in families:
            tick.set_color(colors[families[model]])
    shown = sorted({families[m] for m in grid.index if m in families})
    if 0 < len(shown) <= 12:
        ax.set_ylabel("model (colour = family)")
        ax.legend(
            handles=[Patch(color=colors[f], label=f) for f in shown],
            loc="upper center",
            bbox_to_anchor=(0.5, 0.0),
            borderaxespad=6,  # in font sizes: clears the rotated condition labels
            ncol=min(len(shown), 6),
            frameon=False,
            title="family",
        )
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(length=0)
    plt.colorbar(image, ax=ax, label=cbar_label, fraction=0.05, pad=0.02)


def _heatmap_size(n_models: int, n_conditions: int) -> tuple[float, float]:
    """Cells of a readable size, within a page, never smaller than a legible minimum."""
    width = min(9.0, max(4.8, 2.6 + 0.85 * n_conditions))
    height = min(11.0, max(3.0, 1.9 + 0.26 * n_models))
    return width, height


def _higher_is_better(metric: str) -> bool:
    return "accuracy" in metric or metric == "robust_correctness"


@styled
def plot_heatmap(metrics: pd.DataFrame, path: str | Path, metric: str = "high_risk_rate") -> Figure:
    """Model x condition grid of one metric, values written in.

    Lets a reader find any one cell of the panel; rows run from the smallest
    model, model names are coloured by family.
    """
    title = f"{metric_label(metric)} by model and condition"
    why = unusable(metrics, ("model", "condition", metric))
    if why:
        return placeholder(path, title, why)
    models = ordered_models(metrics)
    conditions = ordered_conditions(metrics["condition"])
    frame = metrics.assign(_v=as_floats(metrics[metric]), model=metrics["model"].astype(str))
    grid = frame.pivot_table(index="model", columns="condition", values="_v", dropna=False)
    grid = grid.reindex(index=models, columns=conditions)
    skipped = None
    if "cell_status" in metrics:
        flags = frame.assign(_s=(metrics["cell_status"] == "skipped").astype(float))
        skipped = flags.pivot_table(index="model", columns="condition", values="_s")
        skipped = skipped.reindex(index=models, columns=conditions).fillna(0).astype(bool)
    percent = is_share(metric)
    fig, ax = plt.subplots(figsize=_heatmap_size(len(models), len(conditions)))
    _draw_heatmap(
        ax,
        grid,
        "YlGn" if _higher_is_better(metric) else "OrRd",
        metric_label(metric) + (" (%)" if percent else ""),
        percent,
        family_map(metrics),
        skipped,
    )
    if not np.isfinite(grid.to_numpy(dtype=float)).any():
        title += "\n(all cells not estimable: NaN)"
    ax.set_title(title)
    return save(fig, path)


@styled
def plot_aurc_heatmap(
    gate_tab: pd.DataFrame,
    path: str | Path,
    signal: str = "sc_confidence",
    risk: str = "high_risk",
) -> Figure:
    """AURC of one signal and risk kind, model x condition (lower = the gate works better).

    AURC mixes base risk and ranking quality; read it beside the high-risk heatmap.
    Input: ``gate_table``; unavailable signals show as n/a.
    """
    title = f"AURC: {SIGNAL_LABELS.get(signal, signal)} gating {RISK_LABELS.get(risk, risk)}"
    why = unusable(gate_tab, ("model", "condition", "signal", "risk_kind", "aurc"))
    if why:
        return placeholder(path, title, why)
    d = gate_tab[(gate_tab["signal"] == signal) & (gate_tab["risk_kind"] == risk)]
    if d.empty:
        return placeholder(path, title, f"no rows for signal {signal!r} and risk {risk!r}")
    d = d.assign(model=d["model"].astype(str), _v=as_floats(d["aurc"]))
    if "available" in d.columns:
        d.loc[~d["available"].astype(bool), "_v"] = np.nan
    models = ordered_models(d)
    conditions = ordered_conditions(d["condition"])
    grid = d.pivot_table(index="model", columns="condition", values="_v", dropna=False)
    grid = grid.reindex(index=models, columns=conditions)
    fig, ax = plt.subplots(figsize=_heatmap_size(len(models), len(conditions)))
    _draw_heatmap(ax, grid, "OrRd", "AURC (%)", True, family_map(d))
    if not np.isfinite(grid.to_numpy(dtype=float)).any():
        title += "\n(signal not available in any cell)"
    ax.set_title(title)
    return save(fig, path)
