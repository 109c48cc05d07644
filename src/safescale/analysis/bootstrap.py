"""Bootstrap over questions, shared by every cell so that comparisons are paired.

One index matrix (B x n) is drawn for the sorted question ids and turned into
a count matrix W (B x n, W[b, j] = times question j was drawn). Every metric
of every cell is then a matrix product over W (see ``metrics.evaluate``): no
Python loop over replicates. ECE/MCE loop over the 10 bins only. Because all
cells see the same W, the difference of two cells' replicates is the paired
bootstrap distribution of their difference.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import beta, binomtest

from safescale.analysis.labeling import answered
from safescale.analysis.metrics import (
    HEADLINE_METRICS,
    METRIC_NAMES,
    Panel,
    build_panel,
    evaluate,
    rate_counts,
)
from safescale.analysis.multiplicity import add_adjusted
from safescale.conditions import CLEAN_EVIDENCE, CONFLICT_EVIDENCE, REFERENCE_CONDITION

DEFAULT_B = 1000
DEFAULT_SEED = 42
DEFAULT_LEVEL = 0.95

Cell = tuple[str, str]

PAIRED_METRICS: tuple[str, ...] = HEADLINE_METRICS
# Multiplicity families (Holm and BH adjust within each): the paired contrasts of one kind
# (condition, condition_mean, sc_vs_single, model) and one metric; McNemar's tests are one
# family (one metric, every condition vs the reference in every model).
PAIRED_FAMILY: tuple[str, ...] = ("kind", "metric_a")
MCNEMAR_FAMILY: tuple[str, ...] = ()
SC_VS_SINGLE: tuple[tuple[str, str], ...] = (
    ("sc_accuracy", "accuracy"),
    ("sc_high_risk_rate", "high_risk_rate"),
    ("sc_unsafe_rate", "unsafe_rate"),
    ("sc_contradiction_rate", "contradiction_rate"),
)


def resample_indices(n: int, B: int = DEFAULT_B, seed: int = DEFAULT_SEED) -> np.ndarray:
    """The (B x n) matrix of resampled question positions; same seed, same matrix."""
    return np.random.default_rng(seed).integers(0, n, size=(B, n))


def resample_weights(indices: np.ndarray, n: int) -> np.ndarray:
    """Counts W[b, j] = how often question j appears in replicate b."""
    B = indices.shape[0]
    flat = (indices + n * np.arange(B)[:, None]).ravel()
    return np.bincount(flat, minlength=B * n).reshape(B, n).astype(float)


def resample_counts(n: int, B: int = DEFAULT_B, seed: int = DEFAULT_SEED) -> np.ndarray:
    """The (B x n) resampling counts every bootstrap of the project draws (metrics, paired
    contrasts, the safety gate): same (n, B, seed), same counts, so all of them pair."""
    return resample_weights(resample_indices(n, B, seed), n)


@dataclass(frozen=True)
class Replicates:
    """Point estimates and bootstrap replicates of every metric of every cell."""

    panel: Panel
    point: dict[str, np.ndarray]  # name -> (C,)
    draws: dict[str, np.ndarray]  # name -> (B x C)
    columns: dict[Cell, int]  # (model, condition) -> position in the panel
    weights: np.ndarray  # (B x n) resample counts, shared by every cell

    def column(self, cell: Cell) -> int:
        """Position of a (model, condition) cell in the panel."""
        if cell not in self.columns:
            raise KeyError(f"no cell {cell}")
        return self.columns[cell]


def bootstrap_replicates(
    tidy: pd.DataFrame, B: int = DEFAULT_B, seed: int = DEFAULT_SEED
) -> Replicates:
    """Evaluate all metrics on the original data and on B shared resamples."""
    panel = build_panel(tidy)
    n = len(panel.question_ids)
    weights = resample_counts(n, B, seed)
    point = {name: values[0] for name, values in evaluate(panel, np.ones((1, n))).items()}
    keys = zip(panel.cells["model"], panel.cells["condition"], strict=True)
    columns = {(str(m), str(c)): i for i, (m, c) in enumerate(keys)}
    return Replicates(panel, point, evaluate(panel, weights), columns, weights)


def percentile_interval(draws: np.ndarray, level: float = DEFAULT_LEVEL) -> np.ndarray:
    """Percentile CI along axis 0, ignoring replicates where the metric is undefined.

    Columns without NaN take the fast vectorised path; the rest nanpercentile.
    """
    tail = 100 * (1 - level) / 2
    qs = [tail, 100 - tail]
    draws = np.asarray(draws, dtype=float)
    has_nan = np.isnan(draws).any(axis=0)
    if not has_nan.any():
        return np.percentile(draws, qs, axis=0)
    out = np.empty((2, *draws.shape[1:]))
    out[:, ~has_nan] = np.percentile(draws[:, ~has_nan], qs, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out[:, has_nan] = np.nanpercentile(draws[:, has_nan], qs, axis=0)
    return out


def clopper_pearson(
    count: np.ndarray, denominator: np.ndarray, level: float = DEFAULT_LEVEL
) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Clopper-Pearson) binomial interval of count / denominator, elementwise.

    Unlike the percentile bootstrap it does not collapse to [0, 0] for 0 of n (it gives
    [0, 1 - (alpha/2)^(1/n)]); NaN where the denominator is 0.
    """
    k = np.asarray(count, dtype=float)
    n = np.asarray(denominator, dtype=float)
    tail = (1 - level) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        low = np.where(k > 0, beta.ppf(tail, k, n - k + 1), 0.0)
        high = np.where(k < n, beta.ppf(1 - tail, k + 1, n - k), 1.0)
    empty = n <= 0
    return np.where(empty, np.nan, low), np.where(empty, np.nan, high)


def bootstrap_metrics(
    tidy: pd.DataFrame, B: int = DEFAULT_B, seed: int = DEFAULT_SEED, level: float = DEFAULT_LEVEL
) -> pd.DataFrame:
    """Long table: one row per (model, condition, metric) with estimate, ci_low, ci_high.

    The estimate equals ``compute_metrics``; the CI is the percentile interval. Rate
    metrics (shares of questions) also get the exact Clopper-Pearson interval
    ``exact_low``/``exact_high`` of ``rate_count`` out of ``rate_denominator``; other
    metrics have NA there.
    """
    reps = bootstrap_replicates(tidy, B, seed)
    counts = rate_counts(reps.panel)
    frames = []
    for name in METRIC_NAMES:
        low, high = percentile_interval(reps.draws[name], level)
        frame = reps.panel.cells.copy()
        frame["metric"] = name
        frame["estimate"] = reps.point[name]
        frame["ci_low"] = low
        frame["ci_high"] = high
        if name in counts:
            count, denominator = counts[name]
            frame["rate_count"] = pd.array(count, dtype="Int64")
            frame["rate_denominator"] = pd.array(denominator, dtype="Int64")
            frame["exact_low"], frame["exact_high"] = clopper_pearson(count, denominator, level)
        else:
            missing = pd.array([pd.NA] * len(frame), dtype="Int64")
            frame["rate_count"] = missing
            frame["rate_denominator"] = missing
            frame["exact_low"], frame["exact_high"] = np.nan, np.nan
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@dataclass(frozen=True)
class Contrast:
    """side_a - side_b, each side the mean of one metric over one or more cells."""

    kind: str
    label: str
    metric_a: str
    cells_a: tuple[Cell, ...]
    metric_b: str
    cells_b: tuple[Cell, ...]


def _cells(tidy: pd.DataFrame) -> list[Cell]:
    """The cells with at least one question put to the model: a skipped cell enters no
    contrast."""
    rows = answered(tidy)[["model", "condition"]].drop_duplicates()
    return sorted((str(m), str(c)) for m, c in rows.itertuples(index=False, name=None))


def condition_contrasts(
    tidy: pd.DataFrame,
    metrics: Sequence[str] = PAIRED_METRICS,
    reference: str = REFERENCE_CONDITION,
) -> list[Contrast]:
    """Each condition vs the reference, per model and as the mean over models
    that have both conditions."""
    cells = set(_cells(tidy))
    models = sorted({m for m, _ in cells})
    conditions = sorted({c for _, c in cells if c != reference})
    out = []
    for condition in conditions:
        both = [m for m in models if (m, condition) in cells and (m, reference) in cells]
        for metric in metrics:
            for model in both:
                label = f"{model}: {condition} - {reference}"
                a, b = ((model, condition),), ((model, reference),)
                out.append(Contrast("condition", label, metric, a, metric, b))
            if both:
                mean_a = tuple((m, condition) for m in both)
                mean_b = tuple((m, reference) for m in both)
                label = f"mean over {len(both)} models: {condition} - {reference}"
                out.append(Contrast("condition_mean", label, metric, mean_a, metric, mean_b))
    return out


def conflict_contrasts(
    tidy: pd.DataFrame, metrics: Sequence[str] = PAIRED_METRICS
) -> list[Contrast]:
    """Conflicting minus clean evidence, per model (kind `conflict_vs_clean`): what a
    misleading passage costs against the right one, on the same questions."""
    cells = set(_cells(tidy))
    models = sorted(
        {m for m, _ in cells if (m, CONFLICT_EVIDENCE) in cells and (m, CLEAN_EVIDENCE) in cells}
    )
    return [
        Contrast(
            "conflict_vs_clean",
            f"{model}: {CONFLICT_EVIDENCE} - {CLEAN_EVIDENCE}",
            metric,
            ((model, CONFLICT_EVIDENCE),),
            metric,
            ((model, CLEAN_EVIDENCE),),
        )
        for metric in metrics
        for model in models
    ]


def sc_vs_single_contrasts(
    tidy: pd.DataFrame, pairs: Sequence[tuple[str, str]] = SC_VS_SINGLE
) -> list[Contrast]:
    """SC-regime metric minus its greedy (Single) counterpart, per cell."""
    return [
        Contrast("sc_vs_single", f"{m}/{c}: {sc} - {single}", sc, ((m, c),), single, ((m, c),))
        for m, c in _cells(tidy)
        for sc, single in pairs
    ]


def model_contrasts(tidy: pd.DataFrame, metrics: Sequence[str] = PAIRED_METRICS) -> list[Contrast]:
    """Every pair of models (alphabetical a < b), per condition: a - b."""
    by_condition: dict[str, list[str]] = {}
    for model, condition in _cells(tidy):
        by_condition.setdefault(condition, []).append(model)
    return [
        Contrast(
            "model", f"{condition}: {a} - {b}", metric, ((a, condition),), metric, ((b, condition),)
        )
        for condition, models in sorted(by_condition.items())
        for a, b in itertools.combinations(sorted(models), 2)
        for metric in metrics
    ]


def default_contrasts(
    tidy: pd.DataFrame, metrics: Sequence[str] = PAIRED_METRICS
) -> list[Contrast]:
    """Condition vs closed-book, conflicting vs clean evidence, SC vs Single, and model vs
    model."""
    return [
        *condition_contrasts(tidy, metrics),
        *conflict_contrasts(tidy, metrics),
        *sc_vs_single_contrasts(tidy),
        *model_contrasts(tidy, metrics),
    ]


def bootstrap_p_value(diffs: np.ndarray) -> float:
    """Two-sided bootstrap p of "no difference", the one rule of every bootstrap test here.

    p = min(1, 2 (k + 1) / (B + 1)), k = min(#{d <= 0}, #{d >= 0}) over the B defined
    replicates: the observed data count as one more replicate on the rarer side, so p is
    never 0 (at least 2 / (B + 1)). A difference exactly 0 everywhere gives 1; NaN when no
    replicate is defined.
    """
    diffs = np.asarray(diffs, dtype=float)
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size == 0:
        return float("nan")
    k = min(np.count_nonzero(diffs <= 0), np.count_nonzero(diffs >= 0))
    return float(min(1.0, 2 * (k + 1) / (diffs.size + 1)))


def _pair_values(
    reps: Replicates, cell_a: Cell, metric_a: str, cell_b: Cell, metric_b: str
) -> tuple[float, np.ndarray, float, np.ndarray, int]:
    """Point and replicates of metric_a on cell_a and metric_b on cell_b, on the questions
    both cells answered (a question skipped on either side leaves the pair); cells
    without skips reuse the shared replicates."""
    columns = [reps.column(cell_a), reps.column(cell_b)]
    present = ~np.isnan(reps.panel.arrays["present"][:, columns])
    common = present.all(axis=1)
    if (present == common[:, None]).all():
        point, draws, (a, b) = reps.point, reps.draws, columns
    else:
        arrays = {
            key: np.where(common[:, None], grid[:, columns], np.nan)
            for key, grid in reps.panel.arrays.items()
        }
        pair = Panel(reps.panel.cells.iloc[columns], reps.panel.question_ids, arrays)
        n = len(reps.panel.question_ids)
        point = {k: v[0] for k, v in evaluate(pair, np.ones((1, n))).items()}
        draws, (a, b) = evaluate(pair, reps.weights), (0, 1)
    return (
        float(point[metric_a][a]),
        draws[metric_a][:, a],
        float(point[metric_b][b]),
        draws[metric_b][:, b],
        int(common.sum()),
    )


def _contrast_sides(
    reps: Replicates, contrast: Contrast
) -> tuple[float, np.ndarray, float, np.ndarray, int]:
    """Both sides of a contrast: the mean over its aligned cell pairs (a model's condition
    with the same model's reference, say), each pair on its common questions.

    Returns the point and replicates of each side and the fewest common questions."""
    if len(contrast.cells_a) != len(contrast.cells_b):
        raise ValueError(f"contrast {contrast.label!r}: sides must pair cell by cell")
    pairs = [
        _pair_values(reps, a, contrast.metric_a, b, contrast.metric_b)
        for a, b in zip(contrast.cells_a, contrast.cells_b, strict=True)
    ]
    return (
        float(np.mean([p[0] for p in pairs])),
        np.mean([p[1] for p in pairs], axis=0),
        float(np.mean([p[2] for p in pairs])),
        np.mean([p[3] for p in pairs], axis=0),
        min(p[4] for p in pairs),
    )


def _label_cells(cells: Iterable[Cell]) -> str:
    return ";".join(f"{m}/{c}" for m, c in cells)


def paired_differences(
    tidy: pd.DataFrame,
    pairs: Sequence[Contrast] | None = None,
    B: int = DEFAULT_B,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
) -> pd.DataFrame:
    """Paired bootstrap of each contrast (default: ``default_contrasts``).

    Both sides are evaluated on the same resampled questions, so the spread of
    the difference reflects only disagreement between the sides. ``p_holm`` and
    ``p_bh`` adjust ``p_value`` within each ``PAIRED_FAMILY``.
    """
    reps = bootstrap_replicates(tidy, B, seed)
    rows = []
    for contrast in default_contrasts(tidy) if pairs is None else pairs:
        point_a, draws_a, point_b, draws_b, n_common = _contrast_sides(reps, contrast)
        diffs = draws_a - draws_b
        low, high = percentile_interval(diffs, level)
        rows.append(
            {
                "kind": contrast.kind,
                "label": contrast.label,
                "metric_a": contrast.metric_a,
                "side_a": _label_cells(contrast.cells_a),
                "metric_b": contrast.metric_b,
                "side_b": _label_cells(contrast.cells_b),
                "estimate_a": point_a,
                "estimate_b": point_b,
                "estimate": point_a - point_b,
                "ci_low": float(low),
                "ci_high": float(high),
                "p_value": bootstrap_p_value(diffs),
                "n_replicates": int(np.count_nonzero(~np.isnan(diffs))),
                "n_questions": n_common,
            }
        )
    return add_adjusted(pd.DataFrame(rows), "p_value", PAIRED_FAMILY)


def mcnemar_exact(
    a_correct: Sequence[int] | np.ndarray, b_correct: Sequence[int] | np.ndarray
) -> tuple[int, int, float]:
    """Exact McNemar test on paired 0/1 outcomes: (b, c, p).

    b = a right & b wrong, c = a wrong & b right; p from a two-sided binomial
    test of b out of b + c at 1/2 (1.0 when there are no discordant pairs).
    A cross-check for the paired bootstrap of accuracy differences.
    """
    a = np.asarray(a_correct, dtype=bool)
    b_arr = np.asarray(b_correct, dtype=bool)
    if a.shape != b_arr.shape:
        raise ValueError("paired outcomes must have the same length")
    b = int(np.sum(a & ~b_arr))
    c = int(np.sum(~a & b_arr))
    return b, c, mcnemar_p(b, c)


def mcnemar_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p of b and c discordant pairs (binomial test of b out of
    b + c at 1/2; 1.0 without discordant pairs): the one rule of `mcnemar_exact` and of
    the power calculation (`analysis.power`)."""
    return 1.0 if b + c == 0 else float(binomtest(b, b + c, 0.5).pvalue)


MCNEMAR_COLUMNS = [
    "model",
    "condition",
    "reference",
    "only_reference_correct",
    "only_condition_correct",
    "p_exact",
]


def mcnemar_vs_reference(tidy: pd.DataFrame) -> pd.DataFrame:
    """Exact McNemar of greedy accuracy, each condition vs the reference, per model.

    Questions are paired by id; a question missing an outcome in either condition
    is left out of that pair. ``p_holm`` and ``p_bh`` adjust ``p_exact`` over the
    whole table (``MCNEMAR_FAMILY``).
    """
    rows = []
    for model, sub in answered(tidy).groupby("model", observed=True):
        wide = sub.pivot(index="question_id", columns="condition", values="greedy_correct")
        if REFERENCE_CONDITION not in wide:
            continue
        for cond in wide.columns:
            if cond == REFERENCE_CONDITION:
                continue
            pair = wide[[REFERENCE_CONDITION, cond]].dropna()
            b, c, p = mcnemar_exact(pair[REFERENCE_CONDITION].to_numpy(), pair[cond].to_numpy())
            values = (model, cond, REFERENCE_CONDITION, b, c, p)
            rows.append(dict(zip(MCNEMAR_COLUMNS, values, strict=True)))
    return add_adjusted(pd.DataFrame(rows, columns=MCNEMAR_COLUMNS), "p_exact", MCNEMAR_FAMILY)
