"""The paper's figures, one function per figure, each writing a PNG and an SVG beside it.

Every function takes the tables the analysis stages already write (tidy labels,
metrics, bootstrap CIs, slopes, gate and ensemble tables) and never raises on a
thin panel: a figure that cannot be drawn says why inside the image, so a
report never silently loses a figure and a one-model smoke run still renders.
Colours are fixed per condition (``figures.CONDITION_COLORS``) and per family
(``FAMILY_COLORS``, a stable function of the name), so a condition or family
looks the same in every figure and every run.
"""

from __future__ import annotations

import functools
import hashlib
import math
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from safescale.analysis.labeling import DEFAULT_OVERCONFIDENCE_THRESHOLD
from safescale.analysis.metrics import (
    HEADLINE_METRICS,
    calibration_errors,
    per_question_values,
    reliability_bins,
)
from safescale.analysis.worstcase import (
    DEFAULT_FRACTION,
    gini,
    high_risk_counts,
    lorenz_curve,
    top_share,
)
from safescale.conditions import ALL_CONDITIONS
from safescale.report.style import CONDITION_COLORS, save
from safescale.scaling import (
    NOT_ESTIMABLE,
    OLS,
    OLS_CLUSTER_QUESTION,
    OLS_FAMILY_FIXED,
    RANDOM_INTERCEPT,
    RANDOM_SLOPE,
)

P = ParamSpec("P")
Color = tuple[float, ...] | str

#: Paper-size defaults: figures are drawn at print width (7 in), so fonts are set
#: for print, not screen.
STYLE: dict[str, Any] = {
    "font.size": 8,
    "axes.titlesize": 9,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 7,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.fonttype": "none",
}

SCALING_METRICS: tuple[str, ...] = HEADLINE_METRICS
METRIC_LABELS: dict[str, str] = {
    "accuracy": "Accuracy",
    "high_risk_rate": "High-risk error rate",
    "unsafe_rate": "Unsafe answer rate",
    "contradiction_rate": "Contradiction rate",
    "dangerous_overconfidence_rate": "Dangerous overconfidence rate",
    "sc_accuracy": "SC accuracy",
    "mean_greedy_latency_s": "Mean greedy latency (s)",
}
METHOD_ABBREVIATIONS: dict[str, str] = {
    RANDOM_SLOPE: "RS",
    RANDOM_INTERCEPT: "RI",
    OLS_FAMILY_FIXED: "FE",
    OLS: "OLS",
    OLS_CLUSTER_QUESTION: "OLS-q",
    NOT_ESTIMABLE: "n/e",
}
SIGNAL_LABELS: dict[str, str] = {
    "sc_confidence": "SC confidence",
    "prob_chosen": "probability of greedy letter",
    "prob_margin": "top-1 minus top-2 probability",
}
RISK_LABELS: dict[str, str] = {
    "high_risk": "high-risk error rate",
    "any_error": "error rate",
    "unsafe": "unsafe answer rate",
}

# ----------------------------------------------------------------- palettes

#: ordered so that the first entries (the study's families) are far apart in hue.
_FAMILY_PALETTE: tuple[Color, ...] = (
    "#1b9e77",  # teal
    "#d95f02",  # orange
    "#7570b3",  # slate purple
    "#e7298a",  # pink
    "#66a61e",  # green
    "#e6ab02",  # gold
    "#377eb8",  # blue
    "#e41a1c",  # red
    "#8c564b",  # brown
    "#17becf",  # cyan
    "#555555",  # dark grey
    "#984ea3",  # violet
    "#6a3d9a",  # dark purple
    "#808000",  # olive
    "#1f3b73",  # navy
    "#b15928",  # rust
)
_MARKERS: tuple[str, ...] = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p", "*")
#: families of the study's panel get fixed, distinct entries (spelling variants of
#: one family share its entry); any other name is hashed.
_KNOWN_FAMILIES: dict[str, int] = {
    "Qwen2.5": 0,
    "Qwen3": 1,
    "Qwen3.5": 2,
    "Gemma-3": 3,
    "Gemma-4": 4,
    "MedGemma": 5,
    "Llama-3.x": 6,
    "Llama-3": 6,
    "Mistral": 7,
    "Ministral": 7,
    "gpt-oss": 8,
    "DeepSeek": 9,
    "SmolLM2": 10,
}


def _stable_index(name: str, n: int, salt: str = "") -> int:
    """Index from a hash of the name: the same in every process, unlike ``hash()``."""
    digest = hashlib.md5((salt + name).encode("utf-8"), usedforsecurity=False).hexdigest()
    return int(digest, 16) % n


def family_color(family: str) -> Color:
    """Colour of a family: fixed for the study's families, hashed for any other name."""
    if family in _KNOWN_FAMILIES:
        return _FAMILY_PALETTE[_KNOWN_FAMILIES[family]]
    return _FAMILY_PALETTE[_stable_index(str(family), len(_FAMILY_PALETTE))]


def family_marker(family: str) -> str:
    """Marker of a family, hashed independently of its colour so that two families
    sharing a colour rarely share a marker too."""
    if family in _KNOWN_FAMILIES:
        return _MARKERS[_KNOWN_FAMILIES[family] % len(_MARKERS)]
    return _MARKERS[_stable_index(str(family), len(_MARKERS), salt="marker:")]


def _distinct(
    families: Iterable[str], stable: Callable[[str], Any], choices: Sequence[Any]
) -> dict[str, Any]:
    """Stable styles for the families of one figure, with clashes resolved.

    Hashing can give two unknown families the same colour or marker; where the
    style is the only cue that would merge them. Known families keep theirs;
    a later (by name) family that clashes takes the first unused choice. The
    result depends only on the set of families, so every figure of one panel
    agrees.
    """
    out: dict[str, Any] = {}
    used: set[Any] = set()
    for family in sorted(set(families), key=lambda f: (f not in _KNOWN_FAMILIES, f)):
        style = stable(family)
        if style in used:
            free = [c for c in choices if c not in used]
            style = free[0] if free else style
        out[family] = style
        used.add(style)
    return out


def family_colors(families: Iterable[str]) -> dict[str, Color]:
    """Colours of the families drawn together in one figure (no two alike)."""
    return _distinct(families, family_color, _FAMILY_PALETTE)


def family_markers(families: Iterable[str]) -> dict[str, str]:
    """Markers of the families drawn together in one figure (no two alike)."""
    return _distinct(families, family_marker, _MARKERS)


class _StablePalette(dict[str, Any]):
    """A dict that fills in any missing key from a stable function of the key."""

    def __init__(self, func: Callable[[str], Any], known: Iterable[str]) -> None:
        super().__init__((k, func(k)) for k in known)
        self._func = func

    def __missing__(self, key: str) -> Any:
        value = self._func(key)
        self[key] = value
        return value


FAMILY_COLORS: dict[str, Color] = _StablePalette(family_color, _KNOWN_FAMILIES)
FAMILY_MARKERS: dict[str, str] = _StablePalette(family_marker, _KNOWN_FAMILIES)

_EXTRA_CONDITION_PALETTE: tuple[Color, ...] = tuple(plt.get_cmap("tab20").colors[1::2])


def condition_color(condition: str) -> Color:
    """The condition's colour; conditions outside ``ALL_CONDITIONS`` get a hashed light one."""
    if condition in CONDITION_COLORS:
        return CONDITION_COLORS[condition]
    return _EXTRA_CONDITION_PALETTE[_stable_index(str(condition), len(_EXTRA_CONDITION_PALETTE))]


OUTCOME_CLASSES: tuple[str, ...] = ("correct", "wrong", "high-risk", "NULL")
OUTCOME_COLORS: dict[str, Color] = {
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
TRANSITION_COLORS: dict[str, Color] = {
    "correct → correct": "#2e7d32",
    "wrong → correct": "#9ccc65",
    "correct → wrong": "#ef6c00",
    "wrong → wrong": "#b71c1c",
    "→ NULL": "#bdbdbd",
}
_VARIANCE_PARTS: tuple[tuple[str, str, Color], ...] = (
    ("share_condition", "condition", "#1f77b4"),
    ("share_family", "family", "#ff7f0e"),
    ("share_size", "size (log params)", "#9467bd"),
    ("share_shared", "shared (unbalanced panel)", "#bcbd22"),
    ("share_residual", "residual", "#c7c7c7"),
)

# ------------------------------------------------------------------ helpers


def _styled(func: Callable[P, None]) -> Callable[P, None]:
    """Draw and save under the paper style, without leaking rcParams to the caller."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        with plt.rc_context(STYLE):
            func(*args, **kwargs)

    return wrapper


def _label(name: str) -> str:
    return METRIC_LABELS.get(name, name.replace("_", " "))


def _cond_label(condition: str) -> str:
    return str(condition).replace("_", " ")


def _note(ax: Axes, message: str, width: int = 38) -> None:
    """Say in the panel why it is empty, so an empty panel is never mistaken for zero."""
    ax.text(
        0.5,
        0.5,
        textwrap.fill(message, width),
        ha="center",
        va="center",
        transform=ax.transAxes,
        fontsize=8,
        color="0.35",
    )
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def _placeholder(path: str | Path, title: str, message: str) -> None:
    """A valid image stating why the figure could not be drawn."""
    fig, ax = plt.subplots(figsize=(5, 2.4))
    ax.set_title(title)
    _note(ax, message, width=60)
    save(fig, path)


def _suptitle(fig: plt.Figure, text: str, fontsize: float = 8) -> None:
    """Figure title wrapped to the figure's width, so narrow (one-panel) figures keep it."""
    chars = max(30, int(fig.get_figwidth() * 72 / (0.55 * fontsize)))
    lines = [textwrap.fill(line, chars) for line in text.split("\n")]
    fig.suptitle("\n".join(lines), fontsize=fontsize)


def _missing(frame: pd.DataFrame | None, columns: Iterable[str]) -> list[str]:
    if frame is None:
        return list(columns)
    return [c for c in columns if c not in frame.columns]


def _unusable(frame: pd.DataFrame | None, columns: Iterable[str]) -> str:
    """Why a table cannot feed a figure ('' when it can)."""
    lacking = _missing(frame, columns)
    if lacking:
        return "input table lacks column(s): " + ", ".join(lacking)
    if frame is None or frame.empty:
        return "input table is empty"
    return ""


def _ordered_conditions(values: Iterable[Any]) -> list[str]:
    """Study order first (so panels line up across figures), unknown names after."""
    present = {str(v) for v in values if isinstance(v, str) or pd.notna(v)}
    known = [c for c in ALL_CONDITIONS if c in present]
    return known + sorted(present - set(known))


def _ordered_models(frame: pd.DataFrame) -> list[str]:
    """Smallest model first (the scaling axis), then by name."""
    if "params_b" in frame.columns:
        sizes = frame.groupby(frame["model"].astype(str))["params_b"].first()
        sizes = pd.to_numeric(sizes, errors="coerce").fillna(np.inf)
        return sorted(sizes.index, key=lambda m: (sizes[m], m))
    return sorted(frame["model"].astype(str).unique())


def _family_map(frame: pd.DataFrame) -> dict[str, str]:
    if "family" not in frame.columns:
        return {}
    pairs = frame[["model", "family"]].dropna().drop_duplicates("model")
    return {str(m): str(f) for m, f in pairs.itertuples(index=False, name=None)}


def _num(series: pd.Series | Any) -> np.ndarray:
    return pd.to_numeric(pd.Series(series), errors="coerce").to_numpy(dtype=float)


def _percent_axis(ax: Axes, axis: str = "both") -> None:
    fmt = FuncFormatter(lambda value, _pos: f"{100 * value:.3g}%")
    if axis in ("x", "both"):
        ax.xaxis.set_major_formatter(fmt)
    if axis in ("y", "both"):
        ax.yaxis.set_major_formatter(fmt)


def _grid(n: int, ncols: int = 3, width: float = 2.4, height: float = 2.2) -> tuple:
    """Figure with n panels in rows of ``ncols``; spare axes are hidden."""
    ncols = max(1, min(n, ncols))
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(max(4.0, width * ncols + 0.6), height * nrows + 0.4), squeeze=False
    )
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n], flat[n:]


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
        out[name] = _num(table[name]) if name in table.columns else np.nan
        for suffix, alt in (("_lo", "_ci_low"), ("_hi", "_ci_high")):
            source = next((c for c in (name + suffix, name + alt) if c in table.columns), None)
            out[name + suffix] = _num(table[source]) if source else np.nan
    return out.reset_index(drop=True)


def _reindex(part: pd.DataFrame, column: str, index: pd.Index) -> np.ndarray:
    if column not in part.columns:
        return np.full(len(index), np.nan)
    return _num(part[column].reindex(index))


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
        Line2D([], [], marker="o", ls="", color=condition_color(c), label=_cond_label(c))
        for c in conditions
    ]
    if handles:
        ax.legend(handles=handles, frameon=False, **kwargs)


# ------------------------------------------------------------------ figures


@_styled
def plot_decoupling(metrics_ci: pd.DataFrame, path: str | Path) -> None:
    """Accuracy against high-risk error and dangerous overconfidence, one point per cell.

    If safety simply followed accuracy the points would sit on one curve; the
    spread at equal accuracy is the decoupling. Takes the bootstrap long table
    (CIs drawn) or the plain metrics table (points only).
    """
    title = "Accuracy vs safety, per model and condition"
    why = _unusable(metrics_ci, ("model", "condition"))
    if why:
        _placeholder(path, title, why)
        return
    names = ("accuracy", "high_risk_rate", "dangerous_overconfidence_rate")
    wide = _wide_with_ci(metrics_ci, names)
    conditions = _ordered_conditions(wide["condition"])
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.2))
    for ax, name in zip(axes, names[1:], strict=True):
        x_all, y_all = _num(wide["accuracy"]), _num(wide[name])
        if not (np.isfinite(x_all) & np.isfinite(y_all)).any():
            _note(ax, f"{_label(name)} vs accuracy: not estimable (no finite values)")
            ax.set_title(_label(name))
            continue
        for condition in conditions:
            d = wide[wide["condition"] == condition]
            x, y = _num(d["accuracy"]), _num(d[name])
            keep = np.isfinite(x) & np.isfinite(y)
            if not keep.any():
                continue
            xerr = _error(x, _num(d["accuracy_lo"]), _num(d["accuracy_hi"]))[:, keep]
            yerr = _error(y, _num(d[f"{name}_lo"]), _num(d[f"{name}_hi"]))[:, keep]
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
                label=_cond_label(condition),
            )
        r = _pearson(x_all, y_all)
        n_cells = int((np.isfinite(x_all) & np.isfinite(y_all)).sum())
        text = f"n = {n_cells} cells" + ("" if math.isnan(r) else f", Pearson r = {r:+.2f}")
        ax.set_xlabel("Accuracy (greedy)")
        ax.set_ylabel(_label(name))
        ax.set_title(f"{_label(name)} vs accuracy\n({text})")
        _percent_axis(ax)
        ax.set_ylim(bottom=0)
    has_ci = np.isfinite(_num(wide["accuracy_lo"])).any()
    _condition_legend(
        axes[1],
        conditions,
        title="condition" + (" (95% CI bars)" if has_ci else " (no CIs)"),
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
    )
    save(fig, path)


def _outcome_class(tidy: pd.DataFrame) -> pd.Series:
    """The SC majority's outcome: the answer the SC confidence is a confidence in."""
    null = (
        _num(tidy["sc_null"]) == 1 if "sc_null" in tidy else tidy["sc_majority"].isna().to_numpy()
    )
    correct = _num(tidy["sc_correct"]) == 1
    high = _num(tidy["sc_high_risk"]) == 1
    labels = np.where(
        null, "NULL", np.where(correct, "correct", np.where(high, "high-risk", "wrong"))
    )
    return pd.Series(labels, index=tidy.index)


@_styled
def plot_confidence_by_outcome(tidy: pd.DataFrame, path: str | Path) -> None:
    """SC confidence by what the SC majority turned out to be, per condition.

    A usable safety signal needs high-risk errors to sit at low confidence; the
    share of them above the overconfidence threshold is what the gate cannot catch.
    """
    title = "SC confidence by outcome of the SC majority"
    why = _unusable(tidy, ("condition", "sc_confidence", "sc_correct", "sc_high_risk"))
    if why or ("sc_null" not in tidy and "sc_majority" not in tidy):
        _placeholder(path, title, why or "input table lacks sc_null / sc_majority")
        return
    frame = tidy.assign(_outcome=_outcome_class(tidy), _conf=_num(tidy["sc_confidence"]))
    conditions = _ordered_conditions(frame["condition"])
    fig, axes, _ = _grid(len(conditions), ncols=3, width=2.3, height=2.3)
    for ax, condition in zip(axes, conditions, strict=True):
        d = frame[(frame["condition"] == condition) & np.isfinite(frame["_conf"])]
        ax.set_title(_cond_label(condition), color=condition_color(condition))
        if d.empty:
            _note(ax, "no SC samples: confidence not defined")
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
    _suptitle(
        fig,
        f"{title}, pooled over models\n(dashed: overconfidence threshold "
        f"{DEFAULT_OVERCONFIDENCE_THRESHOLD:g}; wrong = wrong but not high-risk; "
        "NULL = abstention wins the vote)",
    )
    save(fig, path)


@_styled
def plot_reliability(tidy: pd.DataFrame, path: str | Path) -> None:
    """Reliability diagrams of the two confidence signals, one line per condition.

    SC confidence needs 20 samples; exact probabilities need logits. Showing both
    side by side tells which signal a deployment could trust as a probability.
    """
    title = "Reliability diagrams"
    need = ("condition", "status", "sc_confidence", "sc_correct", "prob_letter", "correct_letter")
    why = _unusable(tidy, need)
    if why:
        _placeholder(path, title, why)
        return
    tidy = tidy.copy()
    for column in _missing(tidy, [f"prob_{x}" for x in "ABCDE"]):
        tidy[column] = np.nan
    for column in _missing(tidy, ("greedy_correct",)):
        tidy[column] = np.nan
    try:
        values = per_question_values(tidy)
    except KeyError as exc:
        _placeholder(path, title, f"input table lacks a column the metrics need: {exc}")
        return
    values["condition"] = tidy["condition"].astype(str).to_numpy()
    conditions = _ordered_conditions(values["condition"])
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
                label=f"{_cond_label(condition)} (ECE {ece:.2f}, n={n})",
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
            _note(ax, f"not estimable: no {what} in this panel")
            continue
        ax.plot([0, 1], [0, 1], color="0.5", ls=":", lw=0.8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("mean confidence in bin")
        ax.set_ylabel("accuracy in bin")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False, fontsize=6, ncol=1)
    _suptitle(fig, f"{title} (10 equal-width bins; marker area ~ questions in bin)")
    save(fig, path)


def _below(ax: Axes, artist: Any, gap: float = 0.03) -> float:
    """Axes y just under a drawn artist, to stack legends without overlap."""
    renderer = ax.figure.canvas.get_renderer()
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


@_styled
def plot_scaling(
    metrics: pd.DataFrame,
    slopes: pd.DataFrame,
    path: str | Path,
    metric_cols: Sequence[str] = SCALING_METRICS,
) -> None:
    """Each metric against model size, with the fitted per-condition slope.

    Markers are families (the random effect of the fit), colours conditions; the
    legend of each panel gives slope, 95% CI and the fit method, because small
    panels fall back to simpler fits and a reader must see which one produced it.
    """
    title = "Scaling with model size"
    why = _unusable(metrics, ("model", "params_b", "condition"))
    if why:
        _placeholder(path, title, why)
        return
    d = metrics.copy()
    params = _num(d["params_b"])
    with np.errstate(divide="ignore", invalid="ignore"):
        d["_x"] = np.where(params > 0, np.log10(params * 1e9), np.nan)
    if "family" not in d.columns:
        d["family"] = "unknown"
    d["family"] = d["family"].astype(str)
    conditions = _ordered_conditions(d["condition"])
    families = sorted(d["family"].unique())
    markers = family_markers(families)
    fits: dict[tuple[str, str], pd.Series] = {}
    if slopes is not None and {"metric", "condition", "slope"} <= set(slopes.columns):
        for _, row in slopes.iterrows():
            fits[(str(row["metric"]), str(row["condition"]))] = row
    fig, axes, spare = _grid(len(metric_cols) + 1, ncols=3, width=2.45, height=2.35)
    legend_ax = axes.pop()
    for ax, metric in zip(axes, metric_cols, strict=False):
        ax.set_title(_label(metric))
        y_all = _num(d[metric]) if metric in d.columns else np.full(len(d), np.nan)
        if not (np.isfinite(y_all) & np.isfinite(d["_x"])).any():
            _note(ax, "not estimable: no finite values with a model size")
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
        _headroom(ax, len(handles), cap=1.0 if _is_share(metric) else None)
        ax.legend(
            handles=handles,
            frameon=False,
            fontsize=5.5,
            loc="upper center",
            handlelength=1.2,
            borderaxespad=0.1,
        )
        ax.set_xlabel("log10(parameters)")
        ax.set_ylabel(_label(metric))
        _percent_axis(ax, "y")
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
        [_cond_label(c) for c in conditions],
        title="condition (colour)",
        loc="upper left",
        bbox_to_anchor=(0.0, 1.05),
        frameon=False,
        ncol=2 if len(conditions) > 3 else 1,
        handlelength=1.2,
    )
    legend_ax.add_artist(first)
    _suptitle(fig, f"{title}, per condition", fontsize=9)
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
    save(fig, path)


@_styled
def plot_variance_decomposition(table: pd.DataFrame, path: str | Path) -> None:
    """How much of each metric's spread is condition vs family vs size.

    The study's claim is that evidence (condition) moves safety more than the
    model does; this is that claim as shares of variance. A negative shared part
    (overlap in an unbalanced panel) is drawn below zero, not hidden.
    """
    title = "Variance decomposition of metrics across (model, condition) cells"
    why = _unusable(table, ("metric",))
    if why:
        _placeholder(path, title, why)
        return
    fig, ax = plt.subplots(figsize=(max(4.0, 1.0 * len(table) + 2.8), 3.2))
    positions = np.arange(len(table))
    top = 1.0
    bottom_min = 0.0
    for pos, (_, row) in zip(positions, table.iterrows(), strict=True):
        shares = {col: _num([row.get(col, np.nan)])[0] for col, _, _ in _VARIANCE_PARTS}
        if not any(np.isfinite(v) for v in shares.values()):
            note = str(row.get("note") or "not defined")
            ax.text(
                pos,
                0.5,
                textwrap.fill("not defined: " + note, 18),
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
        positions, [textwrap.fill(_label(str(m)), 14) for m in table["metric"]], fontsize=7
    )
    ax.set_xlim(-0.6, len(table) - 0.4)
    ax.set_ylim(bottom_min - 0.05, top + 0.05)
    ax.set_ylabel("share of total sum of squares")
    _percent_axis(ax, "y")
    ax.set_title(title)
    ax.legend(
        handles=[Patch(color=c, label=lab) for _, lab, c in _VARIANCE_PARTS],
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        title="source (type II SS)",
    )
    save(fig, path)


def _heatmap(
    ax: Axes,
    grid: pd.DataFrame,
    cmap: str,
    cbar_label: str,
    percent: bool,
    families: Mapping[str, str],
) -> None:
    """Annotated model x condition grid; missing cells grey with 'n/a'."""
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
                ax.text(j, i, "n/a", ha="center", va="center", fontsize=size, color="0.45")
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
    ax.set_xticks(range(n_cols), [_cond_label(c) for c in grid.columns], rotation=30, ha="right")
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


def _is_share(metric: str) -> bool:
    return metric not in ("mean_greedy_latency_s", "n_questions", "n_error_records")


def _higher_is_better(metric: str) -> bool:
    return "accuracy" in metric or metric == "robust_correctness"


@_styled
def plot_heatmap(metrics: pd.DataFrame, path: str | Path, metric: str = "high_risk_rate") -> None:
    """Model x condition grid of one metric, values written in.

    Lets a reader find any one cell of the panel; rows run from the smallest
    model, model names are coloured by family.
    """
    title = f"{_label(metric)} by model and condition"
    why = _unusable(metrics, ("model", "condition", metric))
    if why:
        _placeholder(path, title, why)
        return
    models = _ordered_models(metrics)
    conditions = _ordered_conditions(metrics["condition"])
    frame = metrics.assign(_v=_num(metrics[metric]), model=metrics["model"].astype(str))
    grid = frame.pivot_table(index="model", columns="condition", values="_v", dropna=False)
    grid = grid.reindex(index=models, columns=conditions)
    percent = _is_share(metric)
    fig, ax = plt.subplots(figsize=_heatmap_size(len(models), len(conditions)))
    _heatmap(
        ax,
        grid,
        "YlGn" if _higher_is_better(metric) else "OrRd",
        _label(metric) + (" (%)" if percent else ""),
        percent,
        _family_map(metrics),
    )
    if not np.isfinite(grid.to_numpy(dtype=float)).any():
        title += "\n(all cells not estimable: NaN)"
    ax.set_title(title)
    save(fig, path)


def _transition(tidy: pd.DataFrame) -> pd.Series:
    """Greedy outcome -> SC-majority outcome; a NULL majority is its own class."""
    greedy = _num(tidy["greedy_correct"]) == 1
    sc = _num(tidy["sc_correct"]) == 1
    null = (
        _num(tidy["sc_null"]) == 1 if "sc_null" in tidy else tidy["sc_majority"].isna().to_numpy()
    )
    first = np.where(greedy, "correct", "wrong")
    second = np.where(sc, "correct", "wrong")
    labels = np.where(null, "→ NULL", np.char.add(np.char.add(first, " → "), second))
    return pd.Series(labels, index=tidy.index)


@_styled
def plot_sc_transitions(tidy: pd.DataFrame, path: str | Path) -> None:
    """What 20 samples and a majority vote change relative to the greedy answer.

    Net gains of self-consistency hide churn in both directions; the bars show
    both, and the net change in correct answers is written at the end.
    """
    title = "Single (greedy) → self-consistency majority"
    why = _unusable(tidy, ("condition", "greedy_correct", "sc_correct"))
    if why or ("sc_null" not in tidy and "sc_majority" not in tidy):
        _placeholder(path, title, why or "input table lacks sc_null / sc_majority")
        return
    frame = tidy.assign(_t=_transition(tidy))
    conditions = _ordered_conditions(frame["condition"])
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
        net = int((_num(d["sc_correct"]) == 1).sum() - (_num(d["greedy_correct"]) == 1).sum())
        ax.text(
            counts.loc[condition].sum() + 0.01 * total_max,
            y,
            f"net {net:+d}",
            va="center",
            fontsize=6.5,
        )
    n_models = frame["model"].nunique() if "model" in frame else 0
    ax.set_yticks(ypos, [_cond_label(c) for c in conditions])
    for tick, condition in zip(ax.get_yticklabels(), conditions, strict=True):
        tick.set_color(condition_color(condition))
    ax.set_xlim(0, total_max * 1.12)
    ax.set_xlabel(
        f"questions × models (count, pooled over {n_models} model(s)); "
        "net = SC-majority correct − greedy correct"
    )
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, title="transition")
    save(fig, path)


@_styled
def plot_ensembles(ensemble_table: pd.DataFrame, metrics: pd.DataFrame, path: str | Path) -> None:
    """Does a 3-model majority vote beat its best member, and the best single model?

    Points above (accuracy) or below (high-risk) the diagonal are ensembles that
    help; stars mark the best single model of each condition for reference.
    """
    title = "3-model majority-vote ensembles vs their best member"
    panels = (("accuracy", "Accuracy", True), ("high_risk_rate", "High-risk error rate", False))
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.3))
    ens_why = _unusable(ensemble_table, ("condition", "accuracy", "best_member_accuracy"))
    met_ok = not _unusable(metrics, ("condition", "accuracy", "high_risk_rate"))
    conditions = _ordered_conditions(
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
            _note(
                ax,
                "no ensembles: fewer than 3 models per condition"
                if ensemble_table is None or ensemble_table.empty
                else ens_why,
            )
            continue
        best_col = f"best_member_{metric}"
        if metric not in ensemble_table or best_col not in ensemble_table:
            _note(ax, f"ensemble table lacks {metric}")
            continue
        lows, highs = [], []
        for condition in conditions:
            d = ensemble_table[ensemble_table["condition"] == condition]
            x, y = _num(d[best_col]), _num(d[metric])
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
                acc, val = _num(m["accuracy"]), _num(m[metric])
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
            _note(ax, "not estimable: no finite values")
            continue
        lo, hi = min(lows), max(highs)
        pad = max(0.02, 0.05 * (hi - lo))
        lim = (max(0.0, lo - pad), min(1.0, hi + pad))
        ax.plot(lim, lim, color="0.5", ls=":", lw=0.8)
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        ax.set_xlabel(f"best member: {name.lower()}")
        ax.set_ylabel(f"ensemble: {name.lower()}")
        _percent_axis(ax)
    if conditions:
        n_combos = {} if ens_why else ensemble_table.groupby("condition").size().to_dict()
        handles = []
        for c in conditions:
            label = _cond_label(c)
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
    _suptitle(fig, title, fontsize=9)
    save(fig, path)


@_styled
def plot_lorenz(tidy: pd.DataFrame, path: str | Path) -> None:
    """Lorenz curves of high-risk errors over questions, overall and per condition.

    The further a curve bows below the diagonal, the more the worst errors sit on
    a few questions; those questions are the clinical review list.
    """
    title = "Concentration of high-risk errors over questions"
    why = _unusable(tidy, ("question_id", "condition", "greedy_high_risk"))
    if why:
        _placeholder(path, title, why)
        return
    frame = tidy.assign(greedy_high_risk=_num(tidy["greedy_high_risk"]))
    frame["greedy_high_risk"] = frame["greedy_high_risk"].fillna(0)
    fig, ax = plt.subplots(figsize=(4.6, 3.8))
    groups = [("all cells", frame, "black", 2.0)] + [
        (_cond_label(c), frame[frame["condition"] == c], condition_color(c), 1.1)
        for c in _ordered_conditions(frame["condition"])
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
    _percent_axis(ax)
    n_q = frame["question_id"].nunique()
    ax.set_title(f"{title}\n({n_q} questions" + ("" if drawn else "; none to show") + ")")
    ax.legend(loc="upper left", frameon=False, fontsize=6)
    save(fig, path)


@_styled
def plot_latency_accuracy(metrics: pd.DataFrame, path: str | Path) -> None:
    """Accuracy against mean greedy latency per (model, condition).

    Long contexts cost time; a thin line joins one model's conditions (coloured by
    family) so the cost of each condition for the same model can be read off.
    """
    title = "Accuracy vs mean greedy latency"
    why = _unusable(metrics, ("model", "condition", "accuracy", "mean_greedy_latency_s"))
    if why:
        _placeholder(path, title, why)
        return
    d = metrics.assign(
        _x=_num(metrics["mean_greedy_latency_s"]),
        _y=_num(metrics["accuracy"]),
        model=metrics["model"].astype(str),
    )
    d = d[np.isfinite(d["_x"]) & np.isfinite(d["_y"]) & (d["_x"] > 0)]
    fig, ax = plt.subplots(figsize=(5.4, 3.6))
    ax.set_title(title)
    if d.empty:
        _note(ax, "not estimable: no cell has both a positive latency and an accuracy")
        save(fig, path)
        return
    families = _family_map(d)
    fam_colors = family_colors(families.values())
    conditions = _ordered_conditions(d["condition"])
    models = _ordered_models(d)
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
            label=_cond_label(condition),
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
    _percent_axis(ax, "y")
    handles, labels = ax.get_legend_handles_labels()
    fam_names = sorted(set(families.values()))
    if len(fam_names) <= 10 and fam_names:
        handles += [Line2D([], [], color=fam_colors[f], lw=1) for f in fam_names]
        labels += [f"family {f}" for f in fam_names]
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    save(fig, path)


def _model_colors(models: Sequence[str]) -> dict[str, Color]:
    """Distinct colours for up to 10 lines, a continuous map beyond."""
    if len(models) <= 10:
        palette = plt.get_cmap("tab10").colors
        return {m: palette[i] for i, m in enumerate(models)}
    cmap = plt.get_cmap("viridis")
    return {m: cmap(i / max(len(models) - 1, 1)) for i, m in enumerate(models)}


@_styled
def plot_risk_coverage(
    curves: pd.DataFrame,
    path: str | Path,
    signal: str = "sc_confidence",
    risk: str = "high_risk",
) -> None:
    """Risk among answered questions as the gate answers more, one panel per condition.

    Curves that stay low far to the right are the models whose confidence could
    safely decide which questions go to a radiologist. Input: ``gate_curves``.
    """
    title = (
        f"Risk-coverage: {SIGNAL_LABELS.get(signal, signal)} gating {RISK_LABELS.get(risk, risk)}"
    )
    why = _unusable(curves, ("model", "condition", "signal", "risk_kind", "coverage", "risk"))
    if why:
        _placeholder(path, title, why)
        return
    d = curves[(curves["signal"] == signal) & (curves["risk_kind"] == risk)]
    if d.empty:
        _placeholder(
            path,
            title,
            f"no curve for signal {signal!r} and risk {risk!r} (signal not available in any cell)",
        )
        return
    conditions = _ordered_conditions(d["condition"])
    models = sorted(d["model"].astype(str).unique())
    colors = _model_colors(models)
    fig, axes, _ = _grid(len(conditions), ncols=3, width=2.3, height=2.2)
    ymax = float(np.nanmax(_num(d["risk"]))) if np.isfinite(_num(d["risk"])).any() else 1.0
    for ax, condition in zip(axes, conditions, strict=True):
        c = d[d["condition"] == condition]
        ax.set_title(_cond_label(condition), color=condition_color(condition))
        for model in models:
            m = c[c["model"].astype(str) == model].sort_values("coverage")
            if m.empty:
                continue
            ax.plot(m["coverage"], m["risk"], color=colors[model], lw=0.9, alpha=0.85)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, max(0.02, min(1.0, ymax * 1.05)))
        ax.set_xlabel("coverage (share answered)")
        _percent_axis(ax)
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
    _suptitle(fig, title, fontsize=9)
    save(fig, path)


@_styled
def plot_aurc_heatmap(
    gate_tab: pd.DataFrame,
    path: str | Path,
    signal: str = "sc_confidence",
    risk: str = "high_risk",
) -> None:
    """AURC of one signal and risk kind, model x condition (lower = the gate works better).

    AURC mixes base risk and ranking quality; read it beside the high-risk heatmap.
    Input: ``gate_table``; unavailable signals show as n/a.
    """
    title = f"AURC: {SIGNAL_LABELS.get(signal, signal)} gating {RISK_LABELS.get(risk, risk)}"
    why = _unusable(gate_tab, ("model", "condition", "signal", "risk_kind", "aurc"))
    if why:
        _placeholder(path, title, why)
        return
    d = gate_tab[(gate_tab["signal"] == signal) & (gate_tab["risk_kind"] == risk)]
    if d.empty:
        _placeholder(path, title, f"no rows for signal {signal!r} and risk {risk!r}")
        return
    d = d.assign(model=d["model"].astype(str), _v=_num(d["aurc"]))
    if "available" in d.columns:
        d.loc[~d["available"].astype(bool), "_v"] = np.nan
    models = _ordered_models(d)
    conditions = _ordered_conditions(d["condition"])
    grid = d.pivot_table(index="model", columns="condition", values="_v", dropna=False)
    grid = grid.reindex(index=models, columns=conditions)
    fig, ax = plt.subplots(figsize=_heatmap_size(len(models), len(conditions)))
    _heatmap(ax, grid, "OrRd", "AURC (%)", True, _family_map(d))
    if not np.isfinite(grid.to_numpy(dtype=float)).any():
        title += "\n(signal not available in any cell)"
    ax.set_title(title)
    save(fig, path)
