"""Figures of where the errors sit: Lorenz curves of high-risk errors over questions
and majority-vote ensembles against their best member."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from safescale.analysis.worstcase import (
    DEFAULT_FRACTION,
    gini,
    high_risk_counts,
    lorenz_curve,
    top_share,
)
from safescale.conditions import ordered_conditions
from safescale.report.figures.style import (
    as_floats,
    condition_color,
    condition_label,
    note,
    percent_axis,
    placeholder,
    save,
    styled,
    suptitle,
    unusable,
)


@styled
def plot_ensembles(ensemble_table: pd.DataFrame, metrics: pd.DataFrame, path: str | Path) -> Figure:
    """Does a 3-model majority vote beat its best member, and the best single model?

    Points above (accuracy) or below (high-risk) the diagonal are ensembles that
    help; stars mark the best single model of each condition for reference.
    """
    title = "3-model majority-vote ensembles vs their best member"
    panels = (("accuracy", "Accuracy", True), ("high_risk_rate", "High-risk error rate", False))
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.3))
    ens_why = unusable(ensemble_table, ("condition", "accuracy", "best_member_accuracy"))
    met_ok = not unusable(metrics, ("condition", "accuracy", "high_risk_rate"))
    conditions = ordered_conditions(
        [
            *([] if ens_why else ensemble_table["condition"]),
            *(metrics["condition"] if met_ok else []),
        ]
    )
    better_share: dict[str, list[str]] = {c: [] for c in conditions}
    for ax, (metric, name, higher) in zip(axes, panels, strict=True):
        where = "above" if higher else "below"
        ax.set_title(f"{name}\n{where} diagonal = ensemble better", fontsize=8)
        if ens_why:
            note(
                ax,
                "no ensembles: fewer than 3 models per condition"
                if ensemble_table is None or ensemble_table.empty
                else ens_why,
            )
            continue
        best_col = f"best_member_{metric}"
        if metric not in ensemble_table or best_col not in ensemble_table:
            note(ax, f"ensemble table lacks {metric}")
            continue
        lows, highs = [], []
        for condition in conditions:
            d = ensemble_table[ensemble_table["condition"] == condition]
            x, y = as_floats(d[best_col]), as_floats(d[metric])
            keep = np.isfinite(x) & np.isfinite(y)
            color = condition_color(condition)
            if keep.any():
                ax.scatter(x[keep], y[keep], s=9, color=color, alpha=0.45, lw=0)
                lows.append(min(x[keep].min(), y[keep].min()))
                highs.append(max(x[keep].max(), y[keep].max()))
                better = (y[keep] > x[keep]) if higher else (y[keep] < x[keep])
                short = "acc." if higher else "HR"
                better_share[condition].append(f"{short} {100 * better.mean():.0f}%")
            if met_ok:
                m = metrics[metrics["condition"] == condition]
                acc, val = as_floats(m["accuracy"]), as_floats(m[metric])
                if np.isfinite(acc).any():
                    best = val[np.nanargmax(acc)] if metric != "accuracy" else np.nanmax(acc)
                    if np.isfinite(best):
                        ax.scatter(
                            [best],
                            [best],
                            marker="*",
                            s=80,
                            color=color,
                            edgecolor="black",
                            lw=0.5,
                            zorder=4,
                        )
                        lows.append(best)
                        highs.append(best)
        if not lows:
            note(ax, "not estimable: no finite values")
            continue
        lo, hi = min(lows), max(highs)
        pad = max(0.02, 0.05 * (hi - lo))
        lim = (max(0.0, lo - pad), min(1.0, hi + pad))
        ax.plot(lim, lim, color="0.5", ls=":", lw=0.8)
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        ax.set_xlabel(f"best member: {name.lower()}")
        ax.set_ylabel(f"ensemble: {name.lower()}")
        percent_axis(ax)
    if conditions:
        n_combos = {} if ens_why else ensemble_table.groupby("condition").size().to_dict()
        handles = []
        for c in conditions:
            label = condition_label(c)
            if better_share[c]:
                label += f"\n  {n_combos.get(c, 0)} ensembles; better: " + ", ".join(
                    better_share[c]
                )
            handles.append(Line2D([], [], marker="o", ls="", color=condition_color(c), label=label))
        handles.append(
            Line2D(
                [],
                [],
                marker="*",
                ls="",
                color="0.6",
                mec="black",
                ms=9,
                label="best single model\n(by accuracy)",
            )
        )
        axes[1].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    suptitle(fig, title, fontsize=9)
    return save(fig, path)


@styled
def plot_lorenz(tidy: pd.DataFrame, path: str | Path) -> Figure:
    """Lorenz curves of high-risk errors over questions, overall and per condition.

    The further a curve bows below the diagonal, the more the worst errors sit on
    a few questions; those questions are the clinical review list.
    """
    title = "Concentration of high-risk errors over questions"
    why = unusable(tidy, ("question_id", "condition", "greedy_high_risk"))
    if why:
        return placeholder(path, title, why)
    frame = tidy.assign(greedy_high_risk=as_floats(tidy["greedy_high_risk"]))
    frame["greedy_high_risk"] = frame["greedy_high_risk"].fillna(0)
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    groups = [("all cells", frame, "black", 2.0)] + [
        (condition_label(c), frame[frame["condition"] == c], condition_color(c), 1.1)
        for c in ordered_conditions(frame["condition"])
    ]
    drawn = 0
    for name, d, color, lw in groups:
        counts = high_risk_counts(d)["n_high_risk"].to_numpy()
        if counts.sum() == 0:
            ax.plot([], [], color=color, lw=lw, label=f"{name}: no high-risk errors")
            continue
        curve = lorenz_curve(counts)
        share = top_share(counts, DEFAULT_FRACTION)
        ax.plot(
            curve["question_share"],
            curve["error_share"],
            color=color,
            lw=lw,
            label=f"{name}: Gini {gini(counts):.2f}, "
            f"worst {100 * DEFAULT_FRACTION:.0f}% hold {100 * share:.0f}%",
        )
        drawn += 1
    ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=0.8, label="equal spread")
    ax.axvline(1 - DEFAULT_FRACTION, color="0.7", lw=0.6, ls="--")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel("cumulative share of questions (fewest errors first)")
    ax.set_ylabel("cumulative share of high-risk errors")
    percent_axis(ax)
    n_q = frame["question_id"].nunique()
    ax.set_title(f"{title}\n({n_q} questions" + ("" if drawn else "; none to show") + ")")
    ax.legend(loc="upper left", frameon=False, fontsize=6)
    return save(fig, path)
