"""Figures of the confidence signals a gate would use: SC confidence by outcome,
reliability diagrams, greedy-to-SC transitions and risk-coverage curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from safescale.analysis.labeling import DEFAULT_OVERCONFIDENCE_THRESHOLD
from safescale.analysis.metrics import (
    calibration_errors,
    per_question_values,
    reliability_bins,
)
from safescale.conditions import ordered_conditions
from safescale.report.figures.style import (
    RISK_LABELS,
    SIGNAL_LABELS,
    as_floats,
    condition_color,
    condition_label,
    listed_colors,
    missing_columns,
    note,
    panel_grid,
    percent_axis,
    placeholder,
    save,
    styled,
    suptitle,
    unusable,
)

if TYPE_CHECKING:
    from matplotlib.typing import ColorType

OUTCOME_CLASSES: tuple[str, ...] = ("correct", "wrong", "high-risk", "NULL")
OUTCOME_COLORS: dict[str, ColorType] = {
    "correct": "#4daf4a",
    "wrong": "#ff9f40",
    "high-risk": "#d62728",
    "NULL": "#9e9e9e",
}
TRANSITIONS: tuple[str, ...] = (
    "correct → correct",
    "wrong → correct",
    "correct → wrong",
    "wrong → wrong",
    "→ NULL",
)
TRANSITION_COLORS: dict[str, ColorType] = {
    "correct → correct": "#2e7d32",
    "wrong → correct": "#9ccc65",
    "correct → wrong": "#ef6c00",
    "wrong → wrong": "#b71c1c",
    "→ NULL": "#bdbdbd",
}


def _outcome_class(tidy: pd.DataFrame) -> pd.Series:
    """The SC majority's outcome: the answer the SC confidence is a confidence in."""
    null = (
        as_floats(tidy["sc_null"]) == 1
        if "sc_null" in tidy
        else tidy["sc_majority"].isna().to_numpy()
    )
    correct = as_floats(tidy["sc_correct"]) == 1
    high = as_floats(tidy["sc_high_risk"]) == 1
    labels = np.where(
        null, "NULL", np.where(correct, "correct", np.where(high, "high-risk", "wrong"))
    )
    return pd.Series(labels, index=tidy.index)


@styled
def plot_confidence_by_outcome(tidy: pd.DataFrame, path: str | Path) -> Figure:
    """SC confidence by what the SC majority turned out to be, per condition.

    A usable safety signal needs high-risk errors to sit at low confidence; the
    share of them above the overconfidence threshold is what the gate cannot catch.
    """
    title = "SC confidence by outcome of the SC majority"
    why = unusable(tidy, ("condition", "sc_confidence", "sc_correct", "sc_high_risk"))
    if why or ("sc_null" not in tidy and "sc_majority" not in tidy):
        return placeholder(path, title, why or "input table lacks sc_null / sc_majority")
    frame = tidy.assign(_outcome=_outcome_class(tidy), _conf=as_floats(tidy["sc_confidence"]))
    conditions = ordered_conditions(frame["condition"])
    fig, axes, _ = panel_grid(len(conditions), ncols=3, width=2.3, height=2.3)
    for ax, condition in zip(axes, conditions, strict=True):
        d = frame[(frame["condition"] == condition) & np.isfinite(frame["_conf"])]
        ax.set_title(condition_label(condition), color=condition_color(condition))
        if d.empty:
            note(ax, "no SC samples: confidence not defined")
            continue
        labels = []
        for pos, outcome in enumerate(OUTCOME_CLASSES):
            values = d.loc[d["_outcome"] == outcome, "_conf"].to_numpy()
            labels.append(f"{outcome}\nn={values.size}")
            if values.size == 0:
                continue
            box = ax.boxplot(
                [values],
                positions=[pos],
                widths=0.6,
                patch_artist=True,
                showfliers=False,
                medianprops={"color": "black", "lw": 1},
            )
            box["boxes"][0].set_facecolor(OUTCOME_COLORS[outcome])
            box["boxes"][0].set_alpha(0.8)
            jitter = np.random.default_rng(pos).uniform(-0.18, 0.18, values.size)
            ax.scatter(pos + jitter, values, s=2, color="0.2", alpha=0.25, lw=0, zorder=3)
        ax.axhline(DEFAULT_OVERCONFIDENCE_THRESHOLD, color="0.4", ls="--", lw=0.7)
        ax.set_xticks(range(len(OUTCOME_CLASSES)), labels, fontsize=6.5)
        ax.set_xlim(-0.6, len(OUTCOME_CLASSES) - 0.4)
        ax.set_ylim(-0.03, 1.05)
    for i, ax in enumerate(axes):
        if i % 3 == 0:
            ax.set_ylabel("SC confidence")
    suptitle(
        fig,
        f"{title}, pooled over models\n(dashed: overconfidence threshold "
        f"{DEFAULT_OVERCONFIDENCE_THRESHOLD:g}; wrong = wrong but not high-risk; "
        "NULL = abstention wins the vote)",
    )
    return save(fig, path)


@styled
def plot_reliability(tidy: pd.DataFrame, path: str | Path) -> Figure:
    """Reliability diagrams of the two confidence signals, one line per condition.

    SC confidence needs 20 samples; exact probabilities need logits. Showing both
    side by side tells which signal a deployment could trust as a probability.
    """
    title = "Reliability diagrams"
    need = ("condition", "status", "sc_confidence", "sc_correct", "prob_letter", "correct_letter")
    why = unusable(tidy, need)
    if why:
        return placeholder(path, title, why)
    tidy = tidy.copy()
    for column in missing_columns(tidy, [f"prob_{x}" for x in "ABCDE"]):
        tidy[column] = np.nan
    for column in missing_columns(tidy, ("greedy_correct",)):
        tidy[column] = np.nan
    try:
        values = per_question_values(tidy)
    except KeyError as exc:
        return placeholder(path, title, f"input table lacks a column the metrics need: {exc}")
    values["condition"] = tidy["condition"].astype(str).to_numpy()
    conditions = ordered_conditions(values["condition"])
    signals = (
        ("sc_confidence", "sc_correct", "SC confidence (majority letter)"),
        ("prob_top", "prob_correct", "Exact probability of argmax letter"),
    )
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 4.6))
    for ax, (conf_col, hit_col, name) in zip(axes, signals, strict=True):
        ax.set_title(name)
        drawn = 0
        for condition in conditions:
            d = values[values["condition"] == condition]
            bins = reliability_bins(d[conf_col].to_numpy(), d[hit_col].to_numpy())
            bins = bins[bins["count"] > 0]
            if bins.empty:
                continue
            ece, _ = calibration_errors(d[conf_col].to_numpy(), d[hit_col].to_numpy())
            color = condition_color(condition)
            n = int(bins["count"].sum())
            ax.plot(
                bins["mean_confidence"],
                bins["accuracy"],
                "-",
                color=color,
                lw=1,
                label=f"{condition_label(condition)} (ECE {ece:.2f}, n={n})",
            )
            ax.scatter(
                bins["mean_confidence"],
                bins["accuracy"],
                s=8 + 60 * bins["count"] / bins["count"].max(),
                color=color,
                edgecolor="white",
                lw=0.4,
                zorder=3,
            )
            drawn += 1
        if not drawn:
            what = "exact probabilities" if conf_col == "prob_top" else "SC samples"
            note(ax, f"not estimable: no {what} in this panel")
            continue
        ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=0.8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("mean confidence in bin")
        ax.set_ylabel("accuracy in bin")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False, fontsize=6, ncol=1)
    suptitle(fig, f"{title} (10 equal-width bins; marker area ~ questions in bin)")
    return save(fig, path)


def _transition(tidy: pd.DataFrame) -> pd.Series:
    """Greedy outcome -> SC-majority outcome; a NULL majority is its own class."""
    greedy = as_floats(tidy["greedy_correct"]) == 1
    sc = as_floats(tidy["sc_correct"]) == 1
    null = (
        as_floats(tidy["sc_null"]) == 1
        if "sc_null" in tidy
        else tidy["sc_majority"].isna().to_numpy()
    )
    first = np.where(greedy, "correct", "wrong")
    second = np.where(sc, "correct", "wrong")
    labels = np.where(null, "→ NULL", np.char.add(np.char.add(first, " → "), second))
    return pd.Series(labels, index=tidy.index)


@styled
def plot_sc_transitions(tidy: pd.DataFrame, path: str | Path) -> Figure:
    """What 20 samples and a majority vote change relative to the greedy answer.

    Net gains of self-consistency hide churn in both directions; the bars show
    both, and the net change in correct answers is written at the end.
    """
    title = "Single (greedy) → self-consistency majority"
    why = unusable(tidy, ("condition", "greedy_correct", "sc_correct"))
    if why or ("sc_null" not in tidy and "sc_majority" not in tidy):
        return placeholder(path, title, why or "input table lacks sc_null / sc_majority")
    frame = tidy.assign(_t=_transition(tidy))
    conditions = ordered_conditions(frame["condition"])
    counts = (
        frame.groupby(["condition", "_t"]).size().unstack("_t").reindex(index=conditions)
    ).reindex(columns=list(TRANSITIONS), fill_value=0)
    counts = counts.fillna(0).astype(int)
    fig, ax = plt.subplots(figsize=(7.0, 1.5 + 0.42 * len(conditions)))
    ypos = np.arange(len(conditions))[::-1]
    total_max = max(int(counts.sum(axis=1).max()), 1)
    for name in TRANSITIONS:
        left = counts.loc[:, list(TRANSITIONS)[: TRANSITIONS.index(name)]].sum(axis=1).to_numpy()
        width = counts[name].to_numpy()
        ax.barh(ypos, width, left=left, height=0.65, color=TRANSITION_COLORS[name], label=name)
        for y, lft, w in zip(ypos, left, width, strict=True):
            if w >= 0.035 * total_max:
                dark = name in ("correct → correct", "wrong → wrong")
                ax.text(
                    lft + w / 2,
                    y,
                    str(int(w)),
                    ha="center",
                    va="center",
                    fontsize=6.5,
                    color="white" if dark else "black",
                )
    for y, condition in zip(ypos, conditions, strict=True):
        d = frame[frame["condition"] == condition]
        net = int(
            (as_floats(d["sc_correct"]) == 1).sum() - (as_floats(d["greedy_correct"]) == 1).sum()
        )
        ax.text(
            counts.loc[condition].sum() + 0.01 * total_max,
            y,
            f"net {net:+d}",
            va="center",
            fontsize=6.5,
        )
    n_models = frame["model"].nunique() if "model" in frame else 0
    ax.set_yticks(ypos, [condition_label(c) for c in conditions])
    for tick, condition in zip(ax.get_yticklabels(), conditions, strict=True):
        tick.set_color(condition_color(condition))
    ax.set_xlim(0, total_max * 1.12)
    ax.set_xlabel(
        f"questions × models (count, pooled over {n_models} model(s)); "
        "net = SC-majority correct − greedy correct"
    )
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, title="transition")
    return save(fig, path)


def _model_colors(models: Sequence[str]) -> dict[str, ColorType]:
    """Distinct colours for up to 10 lines, a continuous map beyond."""
    if len(models) <= 10:
        palette = listed_colors("tab10")
        return {m: palette[i] for i, m in enumerate(models)}
    cmap = plt.get_cmap("viridis")
    return {m: cmap(i / max(len(models) - 1, 1)) for i, m in enumerate(models)}


@styled
def plot_risk_coverage(
    curves: pd.DataFrame,
    path: str | Path,
    signal: str = "sc_confidence",
    risk: str = "high_risk",
) -> Figure:
    """Risk among answered questions as the gate answers more, one panel per condition.

    Curves that stay low far to the right are the models whose confidence could
    safely decide which questions go to a radiologist. Input: ``gate_curves``.
    """
    title = (
        f"Risk-coverage: {SIGNAL_LABELS.get(signal, signal)} gating {RISK_LABELS.get(risk, risk)}"
    )
    why = unusable(curves, ("model", "condition", "signal", "risk_kind", "coverage", "risk"))
    if why:
        return placeholder(path, title, why)
    d = curves[(curves["signal"] == signal) & (curves["risk_kind"] == risk)]
    if d.empty:
        return placeholder(
            path,
            title,
            f"no curve for signal {signal!r} and risk {risk!r} (signal not available in any cell)",
        )
    conditions = ordered_conditions(d["condition"])
    models = sorted(d["model"].astype(str).unique())
    colors = _model_colors(models)
    fig, axes, _ = panel_grid(len(conditions), ncols=3, width=2.3, height=2.2)
    ymax = (
        float(np.nanmax(as_floats(d["risk"]))) if np.isfinite(as_floats(d["risk"])).any() else 1.0
    )
    for ax, condition in zip(axes, conditions, strict=True):
        c = d[d["condition"] == condition]
        ax.set_title(condition_label(condition), color=condition_color(condition))
        for model in models:
            m = c[c["model"].astype(str) == model].sort_values("coverage")
            if m.empty:
                continue
            ax.plot(m["coverage"], m["risk"], color=colors[model], lw=0.9, alpha=0.85)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, max(0.02, min(1.0, ymax * 1.05)))
        ax.set_xlabel("coverage (share answered)")
        percent_axis(ax)
    axes[0].set_ylabel(RISK_LABELS.get(risk, risk) + "\namong answered")
    if len(models) <= 12:
        handles = [Line2D([], [], color=colors[m], lw=1.2, label=m) for m in models]
        axes[-1].legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            frameon=False,
            title="model",
        )
    else:
        axes[-1].text(
            1.03,
            1.0,
            f"{len(models)} models,\ncoloured in name order",
            transform=axes[-1].transAxes,
            va="top",
            fontsize=6,
        )
    suptitle(fig, title, fontsize=9)
    return save(fig, path)
