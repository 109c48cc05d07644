"""The one look of every figure: paper rcParams, the condition and family palettes,
labels, and the helpers that draw empty panels, grids, percent axes and heatmaps.

Every figure function draws under `styled` and ends in `save` (PNG + SVG beside
it), and never raises on a thin panel: a figure that cannot be drawn says why
inside the image (`placeholder`, `note`), so a report never silently loses a
figure and a one-model smoke run still renders. Colours are fixed per condition
(`CONDITION_COLORS`, `condition_color`) and per family (`FAMILY_COLORS`, a stable
function of the name), so a condition or family looks the same in every figure
and every run.
"""

from __future__ import annotations

import functools
import hashlib
import math
import os
import textwrap
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from safescale.conditions import ALL_CONDITIONS

if TYPE_CHECKING:  # type names only: matplotlib.typing grew them over 3.8-3.10
    from matplotlib.typing import ColorType, RcKeyType

P = ParamSpec("P")

#: Paper-size defaults: figures are drawn at print width (7 in), so fonts are set
#: for print, not screen.
STYLE: dict[RcKeyType, Any] = {
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

METRIC_LABELS: dict[str, str] = {
    "accuracy": "Accuracy",
    "high_risk_rate": "High-risk error rate",
    "unsafe_rate": "Unsafe answer rate",
    "contradiction_rate": "Contradiction rate",
    "dangerous_overconfidence_rate": "Dangerous overconfidence rate",
    "sc_accuracy": "SC accuracy",
    "mean_greedy_latency_s": "Mean greedy latency (s)",
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
_FAMILY_PALETTE: tuple[ColorType, ...] = (
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


def family_color(family: str) -> ColorType:
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


def family_colors(families: Iterable[str]) -> dict[str, ColorType]:
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


FAMILY_COLORS: dict[str, ColorType] = _StablePalette(family_color, _KNOWN_FAMILIES)
FAMILY_MARKERS: dict[str, str] = _StablePalette(family_marker, _KNOWN_FAMILIES)

#: the study's conditions in tab10 order; any other condition gets a hashed light colour.
CONDITION_COLORS: dict[str, ColorType] = {
    c: plt.get_cmap("tab10")(i % 10) for i, c in enumerate(ALL_CONDITIONS)
}


def listed_colors(name: str) -> tuple[ColorType, ...]:
    """The colours of a qualitative colormap (tab10, tab20) in their listed order."""
    cmap = plt.get_cmap(name)
    if not isinstance(cmap, ListedColormap) or not isinstance(cmap.colors, (list, tuple)):
        raise ValueError(f"colormap {name!r} is not a list of colours")
    return tuple(cmap.colors)


_EXTRA_CONDITION_PALETTE: tuple[ColorType, ...] = listed_colors("tab20")[1::2]


def condition_color(condition: str) -> ColorType:
    """The condition's colour; conditions outside ``ALL_CONDITIONS`` get a hashed light one."""
    if condition in CONDITION_COLORS:
        return CONDITION_COLORS[condition]
    return _EXTRA_CONDITION_PALETTE[_stable_index(str(condition), len(_EXTRA_CONDITION_PALETTE))]


# ------------------------------------------------------------------ helpers


def styled(func: Callable[P, Figure]) -> Callable[P, Figure]:
    """Draw and save under the paper style, without leaking rcParams to the caller."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> Figure:
        with plt.rc_context(STYLE):
            return func(*args, **kwargs)

    return wrapper


def metric_label(name: str) -> str:
    """The metric's name as a reader sees it (axis labels, titles)."""
    return METRIC_LABELS.get(name, name.replace("_", " "))


def condition_label(condition: str) -> str:
    return str(condition).replace("_", " ")


def note(ax: Axes, message: str, width: int = 38) -> None:
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


def placeholder(path: str | Path, title: str, message: str) -> Figure:
    """A valid image stating why the figure could not be drawn."""
    fig, ax = plt.subplots(figsize=(5, 2.4))
    ax.set_title(title)
    note(ax, message, width=60)
    return save(fig, path)


def suptitle(fig: Figure, text: str, fontsize: float = 8) -> None:
    """Figure title wrapped to the figure's width, so narrow (one-panel) figures keep it."""
    chars = max(30, int(fig.get_figwidth() * 72 / (0.55 * fontsize)))
    lines = [textwrap.fill(line, chars) for line in text.split("\n")]
    fig.suptitle("\n".join(lines), fontsize=fontsize)


def missing_columns(frame: pd.DataFrame | None, columns: Iterable[str]) -> list[str]:
    """Columns a figure needs that the table lacks (all of them when there is no table)."""
    if frame is None:
        return list(columns)
    return [c for c in columns if c not in frame.columns]


def unusable(frame: pd.DataFrame | None, columns: Iterable[str]) -> str:
    """Why a table cannot feed a figure ('' when it can)."""
    lacking = missing_columns(frame, columns)
    if lacking:
        return "input table lacks column(s): " + ", ".join(lacking)
    if frame is None or frame.empty:
        return "input table is empty"
    return ""


def ordered_models(frame: pd.DataFrame) -> list[str]:
    """Smallest model first (the scaling axis), then by name."""
    if "params_b" in frame.columns:
        sizes = frame.groupby(frame["model"].astype(str))["params_b"].first()
        sizes = pd.to_numeric(sizes, errors="coerce").fillna(np.inf)
        return sorted(sizes.index, key=lambda m: (sizes[m], m))
    return sorted(frame["model"].astype(str).unique())


def family_map(frame: pd.DataFrame) -> dict[str, str]:
    """Model -> family, for colouring model names; empty when the table has no families."""
    if "family" not in frame.columns:
        return {}
    pairs = frame[["model", "family"]].dropna().drop_duplicates("model")
    return {str(m): str(f) for m, f in pairs.itertuples(index=False, name=None)}


def as_floats(series: pd.Series | Any) -> np.ndarray:
    """Numbers as floats, anything unreadable as NaN, so a bad cell is drawn as missing."""
    return pd.to_numeric(pd.Series(series), errors="coerce").to_numpy(dtype=float)


def percent_axis(ax: Axes, axis: str = "both") -> None:
    """Shares (0-1) shown as percentages on the chosen axis."""
    fmt = FuncFormatter(lambda value, _pos: f"{100 * value:.3g}%")
    if axis in ("x", "both"):
        ax.xaxis.set_major_formatter(fmt)
    if axis in ("y", "both"):
        ax.yaxis.set_major_formatter(fmt)


def panel_grid(
    n: int, ncols: int = 3, width: float = 2.4, height: float = 2.2
) -> tuple[Figure, list[Axes], list[Axes]]:
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


def is_share(metric: str) -> bool:
    """Whether a metric is a share of questions (drawn as a percentage)."""
    return metric not in ("mean_greedy_latency_s", "n_questions", "n_error_records")


def save(fig: Figure, path: str | Path) -> Figure:
    """Write the PNG asked for and an SVG beside it, each complete or not at all (written
    aside, then renamed); the closed figure is returned so callers (and tests) can read
    what was drawn."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    try:
        # dpi None is savefig's own default (rcParams["savefig.dpi"]); only the PNG fixes it
        for target, dpi in ((path, 150), (path.with_suffix(".svg"), None)):
            partial = target.with_name(f".{target.stem}.partial{target.suffix}")
            try:
                fig.savefig(partial, dpi=dpi)
                os.replace(partial, target)
            finally:
                partial.unlink(missing_ok=True)
    finally:
        plt.close(fig)
    return fig
